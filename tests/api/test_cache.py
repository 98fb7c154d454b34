"""The response cache's own rules: who opted in, what keys an entry, and how a stored stream is replayed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from crossroads.api.cache import MemoryStore, ResponseCache, replayed_stream
from crossroads.errors import InvalidParameter
from crossroads.ledger.keys import Key, Spend
from crossroads.schema.chat import parse_chat_request as parse
from crossroads.storage.base import KeyRecord

BODY: dict[str, Any] = {"model": "m/x", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def chat_of(body: dict[str, Any]) -> Any:
    return parse(body, "m/x")


def key(opted: bool = False, name: str = "h") -> Key:
    return Key(KeyRecord(hash=name, name="k", label="k", created_at=0, response_cache=opted), Spend())


def cache(default_on: bool = False) -> ResponseCache:
    return ResponseCache(MemoryStore(), default_on=default_on, ttl=300)


@pytest.mark.parametrize(("default_on", "opted", "header", "on"), [
    (False, False, None, False),
    (False, True, None, True),
    (True, False, None, True),
    (False, False, "true", True),
    (False, True, "false", False),
    (True, True, "false", False),
])
def test_the_header_decides_then_the_key_then_the_operator(default_on: bool, opted: bool, header: str | None,
                                                           on: bool) -> None:
    headers = {} if header is None else {"X-OpenRouter-Cache": header}
    found = cache(default_on).lookup_chat("chat", key(opted), BODY, chat_of(BODY), headers)
    assert (found is not None) is on


def test_entries_differ_by_key_api_stream_and_body() -> None:
    c, on = cache(True), {}
    chat = chat_of(BODY)
    base = c.lookup_chat("chat", key(), BODY, chat, on)
    assert base is not None and base.ttl == 300 and not base.stream
    streaming = {**BODY, "stream": True}
    streamed = c.lookup_chat("chat", key(), streaming, chat_of(streaming), on)
    assert streamed is not None and streamed.stream
    others = [c.lookup_chat("chat", key(name="other"), BODY, chat, on),
              c.lookup_chat("messages", key(), BODY, chat, on), streamed, c.lookup("embeddings", key(), BODY, on)]
    assert len({base.key, *(o.key for o in others if o is not None)}) == 5
    warm = {**BODY, "temperature": 0.5}
    assert c.lookup_chat("chat", key(), warm, chat_of(warm), on) is None
    with pytest.raises(InvalidParameter):
        c.lookup("embeddings", key(), BODY, {"X-OpenRouter-Cache-TTL": "86401"})


def test_a_stored_stream_is_replayed_under_the_new_id_with_usage_zeroed() -> None:
    old, new = "gen-1-aaaa", "gen-2-bbbbbbbb"
    chunk = {"id": old, "choices": [{"delta": {"content": "hi"}}]}
    last = {"id": old, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "cost": 0.5,
                                                "is_byok": False, "cost_details": {"upstream_inference_cost": None}}}
    start = {"type": "message_start", "message": {"id": old, "usage": {"input_tokens": 9, "output_tokens": 1}}}
    done = {"type": "response.completed", "response": {"id": old, "output": [], "usage": {"input_tokens": 4}}}
    events = (b"data: " + orjson.dumps(chunk) + b"\n\n" + b"data: " + orjson.dumps(last) + b"\n\n"
              + b"event: message_start\r\ndata: " + orjson.dumps(start) + b"\r\n\r\n"
              + b"event: response.completed\ndata: " + orjson.dumps(done) + b"\n\n" + b": comment\n\ndata: [DONE]\n\n")
    body, source = replayed_stream(old.encode() + b"\n" + events, new)
    assert source == old and old.encode() not in body
    lines = body.split(b"\n")
    assert lines[0] == b"data: " + orjson.dumps({**chunk, "id": new})
    assert orjson.loads(lines[2][6:])["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost": 0,
                                                   "is_byok": False, "cost_details": {"upstream_inference_cost": None}}
    assert lines[4] == b"event: message_start\r" and lines[5].endswith(b"\r")
    assert orjson.loads(lines[5][6:-1])["message"] == {"id": new, "usage": {"input_tokens": 0, "output_tokens": 0}}
    assert orjson.loads(lines[8][6:])["response"]["usage"] == {"input_tokens": 0}
    assert lines[-5:] == [b": comment", b"", b"data: [DONE]", b"", b""]
