"""Encoding AWS event-stream messages, for the simulator's Bedrock streams (botocore decodes them, but has no
encoder).

"Event stream encoding" (AWS SDK documentation, and `botocore/eventstream.py`, which reads it): a message is
a prelude — total length and headers length, both big-endian uint32, then a CRC32 of those 8 bytes — the
headers, the payload, and a CRC32 of everything before it. A header is its name's length (1 byte), the
name, a value type (7: string), the value's length (uint16) and the value.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Mapping

import orjson

__all__ = ["chunk", "exception", "message"]

_STRING = 7
_PRELUDE = 12  # two lengths and the prelude's CRC
_CRC = 4


def message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers."""
    encoded = b"".join(
        struct.pack("!B", len(name_bytes)) + name_bytes + struct.pack("!BH", _STRING, len(value_bytes)) + value_bytes
        for name_bytes, value_bytes in ((n.encode(), v.encode()) for n, v in headers.items())
    )
    total = _PRELUDE + len(encoded) + len(payload) + _CRC
    prelude = struct.pack("!II", total, len(encoded))
    head = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return head + struct.pack("!I", zlib.crc32(head))


def chunk(data: bytes) -> bytes:
    """A `chunk` event of InvokeModelWithResponseStream: the model's own event, base64 in `{"bytes"}`."""
    payload = orjson.dumps({"bytes": base64.b64encode(data).decode()})
    return message({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
                   payload)


def exception(kind: str, text: str) -> bytes:
    """An exception message (`throttlingException`, `modelStreamErrorException`...) ending a stream."""
    return message({":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"},
                   orjson.dumps({"message": text}))
