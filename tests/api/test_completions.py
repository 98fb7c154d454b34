"""The legacy `POST /completions` end to end through the `openai` SDK's `completions.create`: a real gateway
and the built-in simulator answering in each provider's own wire format."""

from __future__ import annotations

import openai
import pytest

from crossroads.sim.reply import count_tokens
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
    # Claude is served in the Messages format only: a prompt reaches it as a user message.
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError, match="echo"):
            await c.completions.create(model="anthropic/claude-sonnet-4.5", prompt="x", echo=True)
        with pytest.raises(openai.BadRequestError, match="prompt"):
            await c.completions.create(model="anthropic/claude-sonnet-4.5", prompt=[1, 2, 3])
        with pytest.raises(openai.BadRequestError, match="best_of"):
            await c.completions.create(model="anthropic/claude-sonnet-4.5", prompt="x", best_of=3)


# --- sent natively where the provider serves the Completions API -------------------------------------------

NATIVE = {"test/base": [{"provider": "alpha", "upstream_model": "base-7b"},
                        {"provider": "beta", "upstream_model": "base-7b-chat"}]}


async def _paths(sim: object) -> list[tuple[str, object]]:
    requests = sim.state.requests  # type: ignore[attr-defined]
    return [(r.path, r.body) for r in requests]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_provider_with_the_api_gets_the_prompt_as_written(start_gateway: GatewayFactory, sim: object,
                                                                 stream: bool) -> None:
    catalog = upstream_catalog(sim.url, NATIVE, quirks={"alpha": "vllm"})  # type: ignore[attr-defined]
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog) as gw, client(gw) as c:
        order = {"provider": {"order": ["alpha"]}}
        if stream:
            chunks = [ch async for ch in await c.completions.create(
                model="test/base", prompt="The sky is", max_tokens=12, stream=True, extra_body=order)]
            text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
            usage = chunks[-1].usage
        else:
            reply = await c.completions.create(model="test/base", prompt="The sky is", max_tokens=12,
                                               extra_body=order)
            text, usage = reply.choices[0].text, reply.usage
    assert text and usage is not None and usage.completion_tokens > 0
    (path, body), = await _paths(sim)
    assert path == "/v1/completions"
    assert body["prompt"] == "The sky is" and body["model"] == "base-7b" and "messages" not in body
    assert "provider" not in body and body["max_tokens"] == 12
    if stream:
        assert body["stream_options"] == {"include_usage": True}


async def test_a_chat_only_provider_gets_a_user_message(start_gateway: GatewayFactory, sim: object) -> None:
    catalog = upstream_catalog(sim.url, NATIVE, quirks={"alpha": "vllm"})  # type: ignore[attr-defined]
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog) as gw, client(gw) as c:
        reply = await c.completions.create(model="test/base", prompt="The sky is",
                                           extra_body={"provider": {"only": ["beta"]}})
    assert reply.choices[0].text
    (path, body), = await _paths(sim)
    assert path == "/v1/chat/completions" and body["messages"] == [{"role": "user", "content": "The sky is"}]


async def test_what_only_the_api_does_goes_only_where_it_is_served(start_gateway: GatewayFactory,
                                                                   sim: object) -> None:
    catalog = upstream_catalog(sim.url, NATIVE, quirks={"alpha": "vllm"})  # type: ignore[attr-defined]
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog) as gw, client(gw) as c:
        # beta is cheaper-or-equal and listed first, but cannot echo: alpha serves.
        reply = await c.completions.create(model="test/base", prompt=["Roses are", [101, 102, 103]], n=2,
                                           echo=True, logprobs=2, max_tokens=5,
                                           extra_body={"provider": {"order": ["beta", "alpha"]}})
        with pytest.raises(openai.BadRequestError, match="echo"):
            await c.completions.create(model="test/base", prompt="x", echo=True,
                                       extra_body={"provider": {"only": ["beta"]}})
    assert (reply.model_extra or {})["provider"] == "Alpha"
    assert [ch.index for ch in reply.choices] == [0, 1, 2, 3]
    assert reply.choices[0].text.startswith("Roses are") and reply.choices[2].text.startswith("<101><102><103>")
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and len(logprobs.tokens) == len(logprobs.token_logprobs or [])
    assert logprobs.text_offset and logprobs.text_offset[0] == len("Roses are")
    (path, body), = await _paths(sim)
    assert path == "/v1/completions" and body["prompt"] == ["Roses are", [101, 102, 103]] and body["echo"] is True
    # The provider's count of a raw prompt (no chat template), billed at the endpoint's price, 1 USD per million.
    assert reply.usage is not None and reply.usage.prompt_tokens == count_tokens("Roses are") + 3
    assert (reply.usage.model_extra or {})["cost"] == pytest.approx(
        (reply.usage.prompt_tokens * 1 + reply.usage.completion_tokens * 2) / 1e6, abs=1e-12)


# --- models of another API ---------------------------------------------------------------------------------

async def test_a_chat_request_to_an_embeddings_or_rerank_model_is_refused(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError, match="/api/v1/embeddings"):
            await c.chat.completions.create(model="openai/text-embedding-3-small",
                                            messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError, match="/api/v1/rerank"):
            await c.completions.create(model="cohere/rerank-v3.5", prompt="hi")
        with pytest.raises(openai.BadRequestError, match="embeddings model"):
            await c.responses.create(model="openai/text-embedding-3-small", input="hi")
