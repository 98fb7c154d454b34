"""The legacy `POST /completions` end to end through the `openai` SDK's `completions.create`: a real gateway
and the built-in simulator answering in each provider's own wire format."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog

MODELS = ["openai/gpt-4o-mini", "google/gemini-2.5-flash", "anthropic/claude-sonnet-4.5"]


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
async def test_a_prompt_gets_text(gateway: Gateway, model: str) -> None:
    async with client(gateway) as c:
        raw = await c.completions.with_raw_response.create(model=model, prompt="Once upon a time", max_tokens=32)
    reply = raw.parse()
    assert reply.object == "text_completion" and reply.model == model
    assert reply.id.startswith("gen-") and raw.headers["x-generation-id"] == reply.id
    assert reply.choices[0].text and reply.choices[0].finish_reason in ("stop", "length")
    assert (reply.model_extra or {})["provider"] == "Simulator"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert (reply.usage.model_extra or {})["cost"] > 0
    record = gateway.services.ledger.recent(reply.id)
    assert record is not None and record.model == model


@pytest.mark.parametrize("model", MODELS)
async def test_a_streamed_prompt_gets_text_then_usage(gateway: Gateway, model: str) -> None:
    async with client(gateway) as c:
        stream = await c.completions.create(model=model, prompt="Once upon a time", stream=True)
        chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_fallback_to_the_next_provider(start_gateway: GatewayFactory, sim: object) -> None:
    url = sim.url  # type: ignore[attr-defined]
    catalog = upstream_catalog(url, {"test/model": [{"provider": "alpha", "upstream_model": "m#status=500"},
                                                    {"provider": "beta", "upstream_model": "m"}]})
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog) as gw, client(gw) as c:
        reply = await c.completions.create(model="test/model", prompt="Hi",
                                           extra_body={"provider": {"order": ["alpha", "beta"]}})
    assert (reply.model_extra or {})["provider"] == "Beta" and reply.choices[0].text


async def test_what_a_chat_model_cannot_do_is_refused(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError, match="echo"):
            await c.completions.create(model="openai/gpt-4o-mini", prompt="x", echo=True)
        with pytest.raises(openai.BadRequestError, match="prompt"):
            await c.completions.create(model="openai/gpt-4o-mini", prompt=[1, 2, 3])
