"""Sessions keep no usable secret: tokens only as hashes, credentials sealed with the token; they expire."""

from __future__ import annotations

import pickle

from crossroads.dashboard.sessions import ADMIN, Sessions, csrf_matches, seal, unseal

SECRET = "sk-cr-v1-" + "ab" * 32


def test_a_session_is_found_by_its_token_and_keeps_neither_token_nor_secret_in_clear() -> None:
    sessions = Sessions()
    token, session = sessions.open(SECRET, ADMIN)
    assert sessions.find(token) is session and session.admin
    assert sessions.find(token + "x") is None and sessions.find(None) is None
    memory = pickle.dumps(sessions._by_hash)
    assert token.encode() not in memory and SECRET.encode() not in memory
    assert unseal(token, session.sealed) == SECRET
    assert unseal(token + "x", session.sealed) != SECRET


def test_sessions_expire_and_close() -> None:
    now = [1000.0]
    sessions = Sessions(clock=lambda: now[0], lifetime=60)
    token, _ = sessions.open(SECRET, "somehash")
    now[0] += 59
    assert sessions.find(token) is not None
    now[0] += 1
    assert sessions.find(token) is None
    token, _ = sessions.open(SECRET, "somehash")
    assert sessions.close(token) is not None
    assert sessions.find(token) is None


def test_csrf_tokens_and_seals() -> None:
    _, session = Sessions().open(SECRET, ADMIN)
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, None) and not csrf_matches(session, session.csrf[:-1] + "?")
    assert seal("t1", SECRET) != seal("t2", SECRET)
