"""The fixed bodies of the benchmark: what the mock upstream answers and what the load generators send.

Every target receives byte-for-byte the same request body for a scenario, and the mock answers every target
with the same bytes, so the only thing that differs between targets is the process in the middle.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

#: The model name clients send; Crossroads and LiteLLM both map it to the mock upstream.
MODEL = "bench/model"
#: The model name the gateways put in the upstream request (the mock ignores it).
UPSTREAM_MODEL = "mock-model"
#: A model Crossroads serves from the mock in Anthropic's Messages format (`/messages` scenarios).
MESSAGES_MODEL = "bench/messages-model"

_WORDS = ("Hello there, this is a fixed reply from the benchmark mock upstream. It has about twenty tokens "
          "so that usage accounting has something to count.")


def completion() -> dict[str, Any]:
    """A non-streaming OpenAI `chat.completion` object."""
    return {
        "id": "chatcmpl-bench0000000000000000000001",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": UPSTREAM_MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": _WORDS, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 14, "completion_tokens": 24, "total_tokens": 38},
    }


def stream_events() -> list[bytes]:
    """An OpenAI chat-completion SSE stream: a role chunk, content chunks, a finish chunk, a usage chunk
    with `choices: []` (as `stream_options.include_usage` asks), then `data: [DONE]`.

    24 events in all: 1 role + 20 content + 1 finish + 1 usage chunk, and `[DONE]`.
    """
    head = {"id": "chatcmpl-bench0000000000000000000002", "object": "chat.completion.chunk",
            "created": 1_700_000_000, "model": UPSTREAM_MODEL, "system_fingerprint": "fp_bench"}
    words = _WORDS.split(" ")
    # 20 content pieces: one per word, the last piece taking the remaining words.
    pieces = [w + " " for w in words[:19]] + [" ".join(words[19:])]
    chunks: list[dict[str, Any]] = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                              "finish_reason": None}]},
    ]
    chunks += [{**head, "choices": [{"index": 0, "delta": {"content": p}, "logprobs": None, "finish_reason": None}]}
               for p in pieces]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
    # The usage chunk, which only `stream_options.include_usage` requests get.
    chunks.append({**head, "choices": [], "usage": {"prompt_tokens": 14, "completion_tokens": 24,
                                                     "total_tokens": 38}})
    events = [b"data: " + _dumps(c) + b"\n\n" for c in chunks]
    events.append(b"data: [DONE]\n\n")
    return events


#: Number of SSE events in the stream, `[DONE]` included.
STREAM_EVENTS = 24


def message() -> dict[str, Any]:
    """A non-streaming Anthropic Messages `message` object, the same text and usage as `completion()`."""
    return {
        "id": "msg_bench000000000000000001",
        "type": "message",
        "role": "assistant",
        "model": UPSTREAM_MODEL,
        "content": [{"type": "text", "text": _WORDS}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 14, "output_tokens": 24},
    }


def message_events() -> list[bytes]:
    """An Anthropic Messages SSE stream of the same 20 pieces: `message_start`, one text block
    (`content_block_start`, 20 `text_delta`s, `content_block_stop`), `message_delta`, `message_stop` —
    25 events."""
    words = _WORDS.split(" ")
    pieces = [w + " " for w in words[:19]] + [" ".join(words[19:])]
    start = {**message(), "id": "msg_bench000000000000000002", "content": [], "stop_reason": None,
             "usage": {"input_tokens": 14, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 24}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n" for name, data in events]


def messages_request(*, stream: bool, model: str) -> bytes:
    """The `/messages` body a client sends (Anthropic's Messages API): the same conversation as `request`."""
    body: dict[str, Any] = {"model": model, "system": "You are a helpful assistant.", "max_tokens": 64,
                            "messages": [{"role": "user", "content": "Say hello."}]}
    if stream:
        body["stream"] = True
    return _dumps(body)


def request(*, stream: bool, large: bool = False) -> bytes:
    """The request body a client sends. `large`: about 100 KB of conversation history."""
    messages: list[dict[str, str]] = [{"role": "system", "content": "You are a helpful assistant."}]
    if large:
        paragraph = ("The quick brown fox jumps over the lazy dog while the benchmark counts every byte "
                     "that passes through the gateway on its way to the upstream and back again. ")
        turn = paragraph * 12  # about 2 KB
        for i in range(52):
            messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}: {turn}"})
    messages.append({"role": "user", "content": "Say hello."})
    body: dict[str, Any] = {"model": MODEL, "messages": messages, "max_tokens": 64}
    if stream:
        body["stream"] = True
    return _dumps(body)


def responses_request(*, stream: bool) -> bytes:
    """The same short conversation as `request` asks, as a Responses API body (`POST /responses`): the
    system message as `instructions`, the user's words as `input`, the cap as `max_output_tokens`."""
    body: dict[str, Any] = {"model": MODEL, "instructions": "You are a helpful assistant.", "input": "Say hello.",
                            "max_output_tokens": 64}
    if stream:
        body["stream"] = True
    return _dumps(body)


#: The embedding model clients send in the embeddings scenario, and its upstream name.
EMBED_MODEL = "bench/embed"
EMBED_UPSTREAM_MODEL = "mock-embed"
#: The embeddings scenario: 16 inputs, 1,536 dimensions (OpenAI's text-embedding-3-small).
EMBED_INPUTS = 16
EMBED_DIMENSIONS = 1536


def embeddings() -> dict[str, Any]:
    """An OpenAI embeddings reply: one 1,536-dimension vector per input, as base64 of little-endian float32
    (what the `openai` SDK asks for by default). Fixed bytes: the vectors are a simple function of the
    position."""
    data = []
    for index in range(EMBED_INPUTS):
        values = [((index * 31 + i * 17) % 201 - 100) / 1000 for i in range(EMBED_DIMENSIONS)]
        packed = base64.b64encode(struct.pack(f"<{EMBED_DIMENSIONS}f", *values)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": packed})
    return {"object": "list", "data": data, "model": EMBED_UPSTREAM_MODEL,
            "usage": {"prompt_tokens": 16 * 12, "total_tokens": 16 * 12}}


def embeddings_request() -> bytes:
    """The embeddings request body: 16 short documents, 1,536 dimensions, base64 vectors."""
    inputs = [f"Document {i}: the quick brown fox jumps over the lazy dog near the river bank." for i in
              range(EMBED_INPUTS)]
    return _dumps({"model": EMBED_MODEL, "input": inputs, "dimensions": EMBED_DIMENSIONS,
                   "encoding_format": "base64"})


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
