"""Thinking-block signatures: the simulator signs the thinking blocks it sends, so it can refuse one a client
altered or invented when it comes back (as Anthropic does)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from .. import reply

__all__ = ["sign_thinking", "verify_signature"]

_SIGNING_KEY = b"crossroads-sim/thinking-signature"


def sign_thinking(seed: int) -> str:
    """A signature for a thinking block: a nonce and its keyed hash, so `verify_signature` can tell the
    simulator's own signatures from altered or invented ones."""
    nonce = reply.mix(seed, 0x5164).to_bytes(8, "little") + reply.mix(seed, 0x5165).to_bytes(8, "little")
    mac = hmac.new(_SIGNING_KEY, nonce, hashlib.sha256).digest()
    return base64.b64encode(b"\x12\x20" + nonce + mac).decode()


def verify_signature(signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 50 or raw[:2] != b"\x12\x20":
        return False
    return hmac.compare_digest(raw[18:], hmac.new(_SIGNING_KEY, raw[2:18], hashlib.sha256).digest())
