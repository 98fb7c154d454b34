"""End to end through the Gemini adapter: an unchanged `openai` SDK client holds a multi-turn, tool-using
conversation with a model Crossroads serves from a Gemini upstream (the simulator), streamed and not, and
every request that reached the upstream is checked against the Gemini API reference
(https://ai.google.dev/api/generate-content): the URL, the `x-goog-api-key` header, and a body built only
of `GenerateContentRequest` fields — validated with the official `google-genai` types, which forbid
unknown fields — and equal, field for field, to what the conversation should become.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from google.genai import types

from crossroads.sim import SimServer
from tests.conftest import GatewayFactory

MODEL = "google/gemini-test"
SYSTEM = "You are a concise travel assistant."
CATALOG = """
[providers.studio]
name = "Studio"
wire_format = "gemini"
base_url = "{url}"
api_key_env = "STUDIO_KEY"
data_policy = {{ training = false, retains_prompts = false }}

[models."google/gemini-test"]
name = "Test: Gemini"
context_length = 1048576
input_modalities = ["text", "image", "file"]
features = {{ tools = true, response_format = true, structured_outputs = true }}
reasoning = {{ supports_max_tokens = true }}

[[models."google/gemini-test".endpoints]]
provider = "studio"
upstream_model = "gemini-2.5-flash"
max_completion_tokens = 65536
pricing = {{ prompt = "0.30", completion = "2.50" }}
"""
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city",
        "parameters": {"type": "object", "additionalProperties": False, "required": ["city"], "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}}}},
    {"type": "function", "function": {
        "name": "get_time", "description": "Local time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
]
#: The same tools as Gemini declares them: the OpenAPI subset, `additionalProperties` dropped.
DECLARATIONS = [{"functionDeclarations": [
    {"name": "get_weather", "description": "Current weather for a city", "parameters": {
        "type": "OBJECT", "properties": {"city": {"type": "STRING"}, "unit": {"type": "STRING", "enum": ["c", "f"]}},
        "required": ["city"]}},
    {"name": "get_time", "description": "Local time in a city", "parameters": {
        "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}},
]}]
SETTINGS = {"temperature": 0.2, "max_tokens": 2000, "extra_body": {"reasoning": {"effort": "low"}}}
#: What those settings become: effort "low" is 20% of the 2,000-token cap, raised to the 1,024 minimum.
GENERATION_CONFIG = {"temperature": 0.2, "maxOutputTokens": 2000,
                     "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
REQUEST_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                  "cachedContent"}


@dataclass
class Turn:
    """One assistant reply as the client saw it, and the message it sends back in the history."""

    finish: str | None
    content: str
    reasoning: str
    details: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    usage: Any
    history: dict[str, Any] = field(default_factory=dict)

    def signature(self, call_id: str | None = None) -> str:
        return next(d["data"] for d in self.details if d["type"] == "reasoning.encrypted" and d.get("id") == call_id)


async def ask(client: openai.AsyncOpenAI, messages: list[dict[str, Any]], stream: bool) -> Turn:
    if not stream:
        reply = await client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS,  # type: ignore[arg-type]
                                                     **SETTINGS)
        message = reply.choices[0].message
        extra = message.model_extra or {}
        calls = [call.model_dump(include={"id", "type", "function"}) for call in message.tool_calls or ()]
        turn = Turn(reply.choices[0].finish_reason, message.content or "", extra.get("reasoning") or "",
                    extra.get("reasoning_details") or [], calls, reply.usage)
        turn.history = message.model_dump(exclude_none=True)  # the reply, appended as it came
        return turn
    chunks = [chunk async for chunk in await client.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, stream=True, **SETTINGS)]  # type: ignore[arg-type]
    assert chunks[0].choices[0].delta.role == "assistant"
    content = reasoning = ""
    finish = None
    calls: dict[int, dict[str, Any]] = {}
    details: dict[int, dict[str, Any]] = {}  # pieces sharing an `index` are one entry, concatenated
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        delta = choice.delta
        content += delta.content or ""
        extra = delta.model_extra or {}
        reasoning += extra.get("reasoning") or ""
        for detail in extra.get("reasoning_details") or ():
            if detail["index"] in details:
                details[detail["index"]]["text"] += detail.get("text") or ""
            else:
                details[detail["index"]] = dict(detail)
        for piece in delta.tool_calls or ():
            call = calls.setdefault(piece.index, {"id": piece.id, "type": "function",
                                                  "function": {"name": "", "arguments": ""}})
            if piece.function is not None:
                call["function"]["name"] += piece.function.name or ""
                call["function"]["arguments"] += piece.function.arguments or ""
    ordered = [details[i] for i in sorted(details)]
    listed = [calls[i] for i in sorted(calls)]
    history: dict[str, Any] = {"role": "assistant", "content": content or None, "reasoning_details": ordered}
    if listed:
        history["tool_calls"] = listed
    return Turn(finish, content, reasoning, ordered, listed, chunks[-1].usage, history)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_multi_turn_tool_conversation(start_gateway: GatewayFactory, sim: SimServer, stream: bool) -> None:
    env = {"STUDIO_KEY": "studio-secret"}
    async with start_gateway(env=env, catalog=CATALOG.format(url=sim.url), simulator="off") as gw, \
            openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0) as client:
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM},
                                          {"role": "user", "content": "Is it warm in Lisbon? Use get_weather."}]
        weather = await ask(client, messages, stream)
        assert weather.finish == "tool_calls" and [c["function"]["name"] for c in weather.calls] == ["get_weather"]
        weather_call = weather.calls[0]
        assert isinstance(json.loads(weather_call["function"]["arguments"])["city"], str)
        assert weather.reasoning and weather.details[0] == {
            "type": "reasoning.text", "text": weather.reasoning, "format": "google-gemini-v1", "index": 0}
        assert weather.signature(weather_call["id"])  # Gemini's thought signature, tied to the call
        usage = weather.usage
        assert usage.completion_tokens_details.reasoning_tokens > 0
        assert usage.completion_tokens > usage.completion_tokens_details.reasoning_tokens

        messages += [weather.history, {"role": "tool", "tool_call_id": weather_call["id"],
                                       "content": "Sunny, 21 degrees"}]
        answer = await ask(client, messages, stream)
        assert answer.finish == "stop" and answer.content == "Tool result: Sunny, 21 degrees"

        messages += [answer.history, {"role": "user", "content": "And the local time there? Use get_time."}]
        time = await ask(client, messages, stream)
        assert time.finish == "tool_calls" and [c["function"]["name"] for c in time.calls] == ["get_time"]
        time_call = time.calls[0]
        assert time_call["id"] != weather_call["id"]
        messages += [time.history, {"role": "tool", "tool_call_id": time_call["id"], "content": '{"time": "10:00"}'}]
        last = await ask(client, messages, stream)
        assert last.finish == "stop" and last.content == 'Tool result: {"time":"10:00"}'

    # What the upstream received, request by request.
    recorded = sim.requests
    assert len(recorded) == 4
    method = "streamGenerateContent" if stream else "generateContent"
    for request in recorded:
        assert request.path == f"/v1beta/models/gemini-2.5-flash:{method}"
        assert request.query == ("alt=sse" if stream else "")
        assert request.headers["x-goog-api-key"] == "studio-secret" and "authorization" not in request.headers
        body = request.body
        assert set(body) <= REQUEST_FIELDS
        for content in body["contents"]:
            types.Content.model_validate(content)
        types.Content.model_validate(body["systemInstruction"])
        types.Tool.model_validate(body["tools"][0])
        types.GenerationConfig.model_validate(body["generationConfig"])

    def call_turn(turn: Turn) -> dict[str, Any]:
        call = turn.calls[0]
        return {"role": "model", "parts": [{
            "functionCall": {"name": call["function"]["name"], "args": json.loads(call["function"]["arguments"])},
            "thoughtSignature": turn.signature(call["id"])}]}

    contents: list[dict[str, Any]] = [
        {"role": "user", "parts": [{"text": "Is it warm in Lisbon? Use get_weather."}]},
        call_turn(weather),
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                         "response": {"result": "Sunny, 21 degrees"}}}]},
        {"role": "model", "parts": [{"text": answer.content, "thoughtSignature": answer.signature()}]},
        {"role": "user", "parts": [{"text": "And the local time there? Use get_time."}]},
        call_turn(time),
        {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"time": "10:00"}}}]},
    ]
    for request, length in zip(recorded, (1, 3, 5, 7), strict=True):
        assert request.body == {"contents": contents[:length], "systemInstruction": {"parts": [{"text": SYSTEM}]},
                                "tools": DECLARATIONS, "generationConfig": GENERATION_CONFIG}
