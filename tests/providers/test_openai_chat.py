"""The OpenAI Chat Completions adapter: what reaches each provider flavour, and how replies come back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.errors import UpstreamError
from crossroads.providers.openai_chat import QUIRKS, OpenAIChat
from crossroads.schema.chat import parse_chat_request

ADAPTER = OpenAIChat()
_TAGS = iter(range(1_000_000))
FULL = Features(tools=True, response_format=True, structured_outputs=True, logprobs=True, reasoning=False)


def endpoint(quirks: str = "generic", features: Features = FULL, key: str | None = "secret") -> Endpoint:
    provider = Provider(slug=quirks, name=quirks.title(), wire_format="openai_chat",
                        base_url="https://api.example.com/v1", api_key=key, quirks=quirks,
                        data_policy=DataPolicy())
    # Adapters cache per endpoint key, which a catalog makes unique: give every test endpoint its own tag.
    return Endpoint(model_id="a/m", provider=provider, tag=f"{quirks}/{next(_TAGS)}", upstream_model="upstream-m",
                    context_length=8192, max_completion_tokens=4096, max_prompt_tokens=None, quantization=None,
                    pricing=Pricing(prompt=Decimal("0.000001"), completion=Decimal("0.000002")),
                    features=features, input_modalities=frozenset({"text"}))


def sent(body: dict[str, Any], target: Endpoint) -> dict[str, Any]:
    request = parse_chat_request({"model": "a/m", "messages": [{"role": "user", "content": "hi"}], **body}, "a/m")
    upstream = ADAPTER.build_request(request, target)
    data: dict[str, Any] = orjson.loads(upstream.body)
    return data


def test_request_shape_url_and_auth() -> None:
    target = endpoint("openai")
    request = parse_chat_request({"model": "a/m", "messages": [{"role": "user", "content": "hi"}]}, "a/m")
    upstream = ADAPTER.build_request(request, target)
    assert upstream.url == "https://api.example.com/v1/chat/completions"
    assert upstream.headers["Authorization"] == "Bearer secret"
    body = orjson.loads(upstream.body)
    assert body == {"model": "upstream-m", "messages": [{"role": "user", "content": "hi"}]}


def test_gateway_fields_never_reach_the_provider() -> None:
    body = sent({"provider": {"order": ["x"]}, "models": ["b/c"], "route": "fallback", "transforms": [],
                 "plugins": [{"id": "web", "enabled": False}], "usage": {"include": True}, "session_id": "s",
                 "debug": {}},
                endpoint("vllm"))
    assert set(body) == {"model", "messages"}


def test_openai_takes_max_completion_tokens_and_drops_samplers_it_lacks() -> None:
    body = sent({"max_tokens": 50, "top_k": 5, "repetition_penalty": 1.1, "min_p": 0.1, "temperature": 0.2,
                 "seed": 3}, endpoint("openai"))
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert "top_k" not in body and "repetition_penalty" not in body and "min_p" not in body
    assert body["temperature"] == 0.2 and body["seed"] == 3


def test_openai_reasoning_models_get_effort_and_lose_sampling_parameters() -> None:
    reasoning = Features(tools=True, response_format=True, reasoning=True)
    body = sent({"reasoning": {"effort": "high"}, "temperature": 0.5, "top_p": 0.9}, endpoint("openai", reasoning))
    assert body["reasoning_effort"] == "high"
    assert "temperature" not in body and "top_p" not in body and "reasoning" not in body


@pytest.mark.parametrize(("reasoning", "effort"), [
    ({}, None),
    ({"reasoning": {}}, None),
    ({"include_reasoning": False}, None),
    ({"include_reasoning": True}, "medium"),
    ({"reasoning": {"enabled": True}}, "medium"),
    ({"reasoning": {"exclude": True}}, "medium"),
    ({"reasoning": {"max_tokens": 2000}}, "medium"),
    ({"reasoning_effort": "low"}, "low"),
    ({"reasoning": {"effort": "max"}}, "high"),
    ({"reasoning_effort": "xhigh", "include_reasoning": False}, "high"),
    ({"reasoning": {"effort": "none"}}, "minimal"),
    ({"reasoning": {"enabled": False, "effort": "high"}}, "minimal"),
])
def test_reasoning_settings_become_one_effort(reasoning: dict[str, Any], effort: str | None) -> None:
    body = sent(reasoning, endpoint("groq", Features(reasoning=True)))
    assert body.get("reasoning_effort") == effort
    assert not body.keys() & {"reasoning", "include_reasoning"}


def test_reasoning_is_dropped_for_models_without_it() -> None:
    assert "reasoning_effort" not in sent({"reasoning_effort": "high"}, endpoint("openai"))


def test_mistral_renames_seed_and_forwards_safe_prompt() -> None:
    body = sent({"seed": 7, "safe_prompt": True, "logit_bias": {"1": 2}, "unknown_thing": 1}, endpoint("mistral"))
    assert body["random_seed"] == 7 and "seed" not in body
    assert body["safe_prompt"] is True
    assert "logit_bias" not in body and "unknown_thing" not in body


def test_local_servers_take_sampler_extras_and_unknown_fields() -> None:
    body = sent({"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "mirostat": 2}, endpoint("vllm"))
    assert body["top_k"] == 20 and body["min_p"] == 0.05 and body["mirostat"] == 2


def test_strict_providers_lose_unknown_fields() -> None:
    assert "safe_prompt" not in sent({"safe_prompt": True}, endpoint("openai"))


def test_tools_dropped_where_the_model_lacks_them() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    body = sent({"tools": tools, "tool_choice": "auto"}, endpoint("generic", Features()))
    assert "tools" not in body and "tool_choice" not in body
    assert sent({"tools": tools}, endpoint("generic"))["tools"] == tools


def test_streams_ask_for_usage_except_where_unsupported() -> None:
    assert sent({"stream": True}, endpoint("groq"))["stream_options"] == {"include_usage": True}
    assert "stream_options" not in sent({"stream": True}, endpoint("cohere"))


def test_strict_providers_get_messages_without_openrouter_extras() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "ok", "reasoning": "thought", "reasoning_details": []},
        {"role": "user", "content": "more"},
    ]
    request = parse_chat_request({"model": "a/m", "messages": messages}, "a/m")
    body = orjson.loads(ADAPTER.build_request(request, endpoint("openai")).body)
    assert body["messages"][0]["content"][0] == {"type": "text", "text": "hi"}
    assert body["messages"][1] == {"role": "assistant", "content": "ok"}
    assert messages[1]["reasoning"] == "thought"  # the client's body is not modified


@pytest.mark.parametrize("quirks", sorted(QUIRKS))
def test_supported_parameters_come_from_the_table(quirks: str) -> None:
    supported = ADAPTER.supported_parameters(endpoint(quirks))
    assert {"temperature", "max_tokens", "stop"} <= supported
    body = sent({"top_k": 3, "logit_bias": {"1": 1}, "seed": 1}, endpoint(quirks))
    for name in ("top_k", "logit_bias"):
        assert (name in body) == (name in supported), (quirks, name)


def test_parse_response_normalises_finish_and_reasoning() -> None:
    reply = {"id": "x", "choices": [{"index": 0, "finish_reason": "eos", "message": {
        "role": "assistant", "content": "hi", "reasoning_content": "hmm",
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 1},
                  "completion_tokens_details": {"reasoning_tokens": 2}}}
    completion = ADAPTER.parse_response(orjson.dumps(reply), endpoint())
    choice = completion.choices[0]
    assert choice["finish_reason"] == "stop" and choice["native_finish_reason"] == "eos"
    assert choice["message"]["reasoning"] == "hmm"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert completion.usage is not None
    assert (completion.usage.cached_tokens, completion.usage.reasoning_tokens) == (1, 2)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"choices": []}', b'{"choices": [{"text": "x"}]}'])
def test_malformed_replies_are_502(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_response(body, endpoint())
    assert caught.value.code == 502


def test_errors_keep_the_upstream_message_and_retry_hint() -> None:
    error = ADAPTER.parse_error(429, b'{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}',
                                {"retry-after": "3"}, endpoint())
    assert error.code == 429 and error.retry_after == 3 and error.message == "slow down"
    assert error.fallback_worthy
    bad = ADAPTER.parse_error(400, b'{"error": {"message": "bad"}}', {}, endpoint())
    assert bad.code == 400 and not bad.fallback_worthy
    auth = ADAPTER.parse_error(401, b'{"error": {"message": "bad key"}}', {}, endpoint())
    assert auth.code == 502 and auth.upstream_status == 401 and auth.fallback_worthy


def test_stream_translation_holds_usage_and_normalises() -> None:
    stream = ADAPTER.stream_translator(parse_chat_request({"messages": [{"role": "user", "content": "x"}]}, "a/m"),
                                       endpoint())
    first = stream.feed(None, b'{"id":"u1","choices":[{"index":0,"delta":{"role":"assistant","content":"He"}}]}')
    assert first[0]["choices"][0]["delta"]["content"] == "He"
    assert stream.feed(None, b'{"choices":[{"index":0,"delta":{"reasoning_content":"r"}}]}')[0]["choices"][0][
        "delta"] == {"reasoning": "r"}
    last = stream.feed(None, b'{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}')
    assert last[0]["choices"][0]["finish_reason"] == "length"
    assert stream.feed(None, b'{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}') == []
    assert stream.feed(None, b"[DONE]") == []
    assert stream.usage is not None and stream.usage.completion_tokens == 2
    assert stream.upstream_id == "u1" and stream.finish_reason == "length"
    with pytest.raises(UpstreamError):
        stream.feed(None, b'{"error": {"message": "overloaded", "code": 503}}')


def test_stream_chunks_get_the_gateway_head() -> None:
    from crossroads.api.chat import _encode, _prefix

    stream = ADAPTER.stream_translator(parse_chat_request({"messages": [{"role": "user", "content": "x"}]}, "a/m"),
                                       endpoint())
    pieces = stream.feed(None, b'{"id":"u1","object":"chat.completion.chunk","created":1,"model":"m",'
                               b'"system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant",'
                               b'"content":"Hi"},"finish_reason":null}],"usage":null,"obfuscation":"x"}')
    assert stream.head_fields == {"system_fingerprint": "fp_1"}
    head = {"id": "gen-1", "provider": "P", "model": "a/m", "object": "chat.completion.chunk", "created": 2,
            **stream.head_fields}
    event = _encode(_prefix(head), pieces)
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert orjson.loads(event[6:]) == {**head, "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None,
         "native_finish_reason": None}]}
    assert stream.completion_chars == 2


def test_chunks_that_need_translation_are_decoded() -> None:
    stream = ADAPTER.stream_translator(parse_chat_request({"messages": [{"role": "user", "content": "x"}]}, "a/m"),
                                       endpoint())
    stream.feed(None, b'{"id":"u1","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}')
    renamed = stream.feed(None, b'{"id":"u1","choices":[{"index":0,"delta":{"reasoning_content":"r"},'
                                b'"finish_reason":null}]}')
    assert renamed == [{"choices": [{"index": 0, "delta": {"reasoning": "r"}, "finish_reason": None,
                                     "native_finish_reason": None}]}]
    finished = stream.feed(None, b'{"id":"u1","choices":[{"index":0,"delta":{},"finish_reason":"eos"}]}')
    assert finished == [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                      "native_finish_reason": "eos"}]}]
    assert stream.finish_reason == "stop" and stream.native_finish_reason == "eos"
