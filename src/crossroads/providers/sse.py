"""Server-sent events, decoded by the spec (https://html.spec.whatwg.org/multipage/server-sent-events.html).

Lines end in CRLF, LF or CR — and nothing else: `str.splitlines()` would also split on U+2028/U+2029, which
may sit unescaped inside JSON strings. A blank line dispatches the event; `data:` lines are joined with LF;
lines starting with `:` are comments; `event:` names the event (Anthropic's format uses names).
"""

from __future__ import annotations

from typing import Protocol

#: An event's name (None for the default, "message") and its data. A plain tuple: a stream has many events,
#: and building a named tuple costs several times as much.
Event = tuple[str | None, bytes]


class StreamDecoder(Protocol):
    """What splits a stream's bytes into events: `SSEDecoder` here, or another framing (AWS event streams)."""

    def feed(self, chunk: bytes) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


class SSEDecoder:
    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[Event]:
        if self._pending_cr:
            # A CR ended the previous chunk; a LF starting this one belongs to the same line ending.
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                self._pending_cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[Event] = []
        for line in lines:
            if not line:
                data = self._data
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    self._data = []
                self._event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b":"):
                continue
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode("utf-8", "replace")
            # `id:` and `retry:` carry nothing a gateway needs.
        return events

    def flush(self) -> list[Event]:
        """The stream ended: dispatch what a final blank line would have."""
        return self.feed(b"\n\n") if self._buffer or self._data else []
