"""Thinking-block signatures: the simulator knows its own and refuses altered or invented ones."""

from __future__ import annotations

import base64

from crossroads.sim.anthropic_messages.thinking import sign_thinking, verify_signature


def test_own_signatures_verify() -> None:
    signatures = {sign_thinking(seed) for seed in range(20)}
    assert len(signatures) == 20
    assert all(verify_signature(signature) for signature in signatures)


def test_altered_or_invented_signatures_do_not() -> None:
    raw = bytearray(base64.b64decode(sign_thinking(7)))
    raw[-1] ^= 1
    assert not verify_signature(base64.b64encode(bytes(raw)).decode())
    assert not verify_signature(base64.b64encode(b"\x12\x20" + bytes(48)).decode())
    assert not verify_signature("not base64!")
    assert not verify_signature("")
