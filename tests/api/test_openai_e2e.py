"""End to end through the OpenAI Chat adapter, read on the wire: the reasoning an OpenAI-format upstream
returns as `reasoning_content` (DeepSeek, vLLM and the simulator do) reaches the client as OpenRouter's
`reasoning`, in messages and in stream deltas, text unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from crossroads.sim import SimServer
from tests.conftest import GatewayFactory

CATALOG = """
[providers.thinkers]
name = "Thinkers"
wire_format = "openai_chat"
base_url = "{url}/v1"
api_key_env = "THINKERS_KEY"
quirks = "generic"

[models."test/thinker"]
name = "Test: Thinker"
context_length = 32768
reasoning = {{ supported_efforts = ["low", "medium", "high"] }}

[[models."test/thinker".endpoints]]
provider = "thinkers"
upstream_model = "thinker-1"
pricing = {{ prompt = "1", completion = "2" }}
"""
MESSAGES = [{"role": "user", "content": "Think it over: what is 6 times 7?"}]


async def _post(http: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any]) -> bytes:
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 200, await response.text()
        return await response.read()


def _sse(raw: bytes) -> list[dict[str, Any]]:
    payloads = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    return [json.loads(payload) for payload in payloads[:-1]]


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_content_reaches_the_client_as_reasoning(start_gateway: GatewayFactory, sim: SimServer,
                                                                 stream: bool) -> None:
    body = {"model": "test/thinker", "messages": MESSAGES, "stream": stream, "reasoning": {"effort": "low"}}
    catalog = CATALOG.format(url=sim.url)
    async with start_gateway(env={"THINKERS_KEY": "k"}, catalog=catalog, simulator="off") as gw, \
            aiohttp.ClientSession() as http:
        raw = await _post(http, f"{gw.url}/chat/completions", gw.key, body)
        # What the upstream said, asked again with the very body the gateway sent (its replies are
        # deterministic): the reasoning text to expect.
        sent = sim.requests[-1].body
        assert sent["reasoning_effort"] == "low"
        again = {k: v for k, v in sent.items() if k not in ("stream", "stream_options")}
        upstream = json.loads(await _post(http, f"{sim.url}/v1/chat/completions", "k", again))
    expected = upstream["choices"][0]["message"]["reasoning_content"]
    assert expected
    if not stream:
        message = json.loads(raw)["choices"][0]["message"]
        assert "reasoning_content" not in message
        assert message["reasoning"] == expected and message["content"]
        return
    deltas = [chunk["choices"][0]["delta"] for chunk in _sse(raw) if chunk["choices"]]
    assert not any("reasoning_content" in delta for delta in deltas)
    thoughts = [i for i, delta in enumerate(deltas) if delta.get("reasoning")]
    words = [i for i, delta in enumerate(deltas) if delta.get("content")]
    assert len(thoughts) > 1 and words and thoughts[-1] < words[0]  # streamed piece by piece, before the answer
    assert "".join(deltas[i]["reasoning"] for i in thoughts) == expected
