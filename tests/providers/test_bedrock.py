"""The Bedrock adapter: InvokeModel requests for Claude, Bedrock's errors, and its event streams — framed by
the simulator's encoder, checked by botocore's decoder, and unwrapped into Anthropic's events."""

from __future__ import annotations

import base64
from decimal import Decimal

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.errors import UpstreamError
from crossroads.providers.bedrock import Bedrock, is_anthropic
from crossroads.providers.bedrock.eventstream import EventStreamDecoder, InvokeStreamDecoder
from crossroads.schema.chat import parse_chat_request
from crossroads.sim.cloud import eventstream

ADAPTER = Bedrock()
BASE = "https://bedrock-runtime.us-east-1.amazonaws.com"
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 7, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello — ünïcode"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
    {"type": "message_stop"},
]


def endpoint(model: str = CLAUDE, key: str | None = None) -> Endpoint:
    provider = Provider(slug="amazon-bedrock", name="Amazon Bedrock", wire_format="bedrock", base_url=BASE,
                        api_key=key, data_policy=DataPolicy(), credentials="aws", options=(("region", "us-east-1"),))
    return Endpoint(model_id="anthropic/claude-sonnet-4.5", provider=provider, tag="amazon-bedrock",
                    upstream_model=model, context_length=200000, max_completion_tokens=64000,
                    max_prompt_tokens=None, quantization=None,
                    pricing=Pricing(prompt=Decimal("0.000003"), completion=Decimal("0.000015")),
                    features=Features(tools=True, reasoning=True), input_modalities=frozenset({"text"}))


def frames() -> bytes:
    return b"".join(eventstream.chunk(orjson.dumps(event)) for event in EVENTS)


def test_the_simulators_frames_decode_with_botocore() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(frames())
    messages = list(buffer)
    assert [m.headers for m in messages] == [
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}] * len(EVENTS)
    assert [orjson.loads(base64.b64decode(orjson.loads(m.payload)["bytes"])) for m in messages] == EVENTS


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_decoder_yields_anthropic_events_however_the_bytes_are_split(size: int) -> None:
    data = frames()
    decoder = InvokeStreamDecoder()
    events = [event for i in range(0, len(data), size) for event in decoder.feed(data[i:i + size])]
    assert [(name, orjson.loads(payload)) for name, payload in events] == [(None, event) for event in EVENTS]


def test_exception_message_becomes_an_anthropic_error_event() -> None:
    decoder = InvokeStreamDecoder()
    [(name, payload)] = decoder.feed(eventstream.exception("throttlingException", "Too many requests"))
    assert name == "error"
    assert orjson.loads(payload) == {"type": "error",
                                     "error": {"type": "rate_limit_error", "message": "Too many requests"}}


def test_a_corrupted_frame_ends_the_stream_with_an_error() -> None:
    data = bytearray(eventstream.chunk(b'{"type":"message_stop"}'))
    data[-6] ^= 0xFF  # a payload byte: the message CRC no longer matches
    decoder = InvokeStreamDecoder()
    [(name, payload)] = decoder.feed(bytes(data))
    assert name == "error" and orjson.loads(payload)["error"]["type"] == "api_error"
    assert decoder.feed(frames()) == []


def test_stream_translates_through_the_anthropic_translator() -> None:
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                                 "m")
    translator = ADAPTER.stream_translator(request, endpoint())
    decoder = translator.decoder()
    pieces = [piece for name, data in decoder.feed(frames()) for piece in translator.feed(name, data)]
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in pieces) == "Hello — ünïcode"
    assert translator.finish_reason == "stop"
    assert translator.usage is not None and translator.usage.completion_tokens == 5


@pytest.mark.parametrize("stream", [False, True])
def test_invoke_request(stream: bool) -> None:
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream,
                                  "max_tokens": 50}, "m")
    upstream = ADAPTER.build_request(request, endpoint())
    method = "invoke-with-response-stream" if stream else "invoke"
    assert upstream.url == f"{BASE}/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/{method}"
    assert orjson.loads(upstream.body) == {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
                                           "messages": [{"role": "user", "content": "hi"}]}
    assert upstream.headers["accept"] == ("application/vnd.amazon.eventstream" if stream else "application/json")
    assert not {"x-api-key", "anthropic-version", "Authorization"} & set(upstream.headers)


def test_betas_go_in_the_body_and_an_api_key_as_a_bearer_token() -> None:
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "m",
                                 headers={"x-anthropic-beta": "context-1m-2025-08-07, interleaved-thinking-2025-05-14"})
    upstream = ADAPTER.build_request(request, endpoint(key="bedrock-api-key"))
    assert orjson.loads(upstream.body)["anthropic_beta"] == ["context-1m-2025-08-07",
                                                             "interleaved-thinking-2025-05-14"]
    assert upstream.headers["Authorization"] == "Bearer bedrock-api-key"
    assert "anthropic-beta" not in upstream.headers


def test_other_models_go_through_converse() -> None:
    assert is_anthropic(CLAUDE) and is_anthropic("anthropic.claude-3-haiku-20240307-v1:0")
    assert not is_anthropic("meta.llama3-3-70b-instruct-v1:0")
    nova = endpoint("us.amazon.nova-pro-v1:0")
    assert {"temperature", "top_p", "stop", "tools", "tool_choice"} <= ADAPTER.supported_parameters(nova)
    assert "seed" not in ADAPTER.supported_parameters(nova)
    request = parse_chat_request({"model": "m", "stop": "END", "tool_choice": "none", "tools": [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "messages": [
        {"role": "system", "content": "Short."}, {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}, "m")
    upstream = ADAPTER.build_request(request, nova)
    assert upstream.url == f"{BASE}/model/us.amazon.nova-pro-v1%3A0/converse"
    assert orjson.loads(upstream.body) == {
        "messages": [{"role": "user", "content": [
            {"text": "What is this?"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]}],
        "system": [{"text": "Short."}], "inferenceConfig": {"stopSequences": ["END"], "maxTokens": 64000}}


def test_converse_refuses_image_urls_it_cannot_fetch() -> None:
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}]}]}, "m")
    with pytest.raises(UpstreamError, match="inline base64") as caught:
        ADAPTER.build_request(request, endpoint("us.amazon.nova-pro-v1:0"))
    assert caught.value.code == 400


def test_converse_stream_exceptions_and_framing() -> None:
    decoder = EventStreamDecoder()
    [(name, payload)] = decoder.feed(eventstream.exception("throttlingException", "Slow down"))
    assert (name, orjson.loads(payload)) == ("exception", {"exception": "throttlingException", "message": "Slow down"})
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                                 "m")
    translator = ADAPTER.stream_translator(request, endpoint("us.amazon.nova-pro-v1:0"))
    with pytest.raises(UpstreamError) as caught:
        translator.feed(name, payload)
    assert caught.value.code == 429


def test_errors_keep_bedrocks_name_and_status() -> None:
    headers = {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
               "retry-after": "3"}
    error = ADAPTER.parse_error(429, b'{"message":"Too many requests, please wait."}', headers, endpoint())
    assert (error.code, error.metadata["provider_code"], error.message) == (429, "ThrottlingException",
                                                                            "Too many requests, please wait.")
    assert error.retry_after == 3
    failed = ADAPTER.parse_error(424, b'{"message":"Model error"}', {}, endpoint())
    assert failed.code == 502
