"""End to end through OpenRouter's official Python SDK, which validates every response strictly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openrouter import OpenRouter

from tests.conftest import ADMIN_KEY, Gateway


@pytest.fixture
async def sdk(gateway: Gateway) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(api_key=gateway.key, server_url=gateway.url) as client:
        yield client


@pytest.fixture
async def admin_sdk(gateway: Gateway) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(api_key=ADMIN_KEY, server_url=gateway.url) as client:
        yield client


async def test_chat_send(sdk: OpenRouter) -> None:
    result = await sdk.chat.send_async(model="openai/gpt-4o",
                                       messages=[{"role": "user", "content": "What is the meaning of life?"}])
    assert result.id.startswith("gen-")
    assert result.choices[0].message.content
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None and result.usage.cost is not None and result.usage.cost > 0


async def test_chat_send_stream(sdk: OpenRouter) -> None:
    stream = await sdk.chat.send_async(model="openai/gpt-4o", stream=True,
                                       messages=[{"role": "user", "content": "Hello"}])
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


async def test_chat_send_with_tools(sdk: OpenRouter) -> None:
    result = await sdk.chat.send_async(
        model="openai/gpt-4o", tool_choice="required",
        messages=[{"role": "user", "content": "call get_time"}],
        tools=[{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
                                                                                     "properties": {}}}}],
    )
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.choices[0].message.tool_calls


async def test_models_list_count_and_one(sdk: OpenRouter) -> None:
    listing = (await sdk.models.list_async()).result
    assert listing.total_count >= 40 and len(listing.data) == listing.total_count
    ids = {m.id for m in listing.data}
    assert "openai/gpt-4o" in ids
    gpt = next(m for m in listing.data if m.id == "openai/gpt-4o")
    assert "temperature" in gpt.supported_parameters and "tools" in gpt.supported_parameters
    count = await sdk.models.count_async()
    assert count.data.count == listing.total_count
    one = await sdk.models.get_async(author="openai", slug="gpt-4o")
    assert one.data.id == "openai/gpt-4o"


async def test_endpoints_and_providers(sdk: OpenRouter) -> None:
    endpoints = await sdk.endpoints.list_async(author="meta-llama", slug="llama-3.3-70b-instruct")
    names = {e.provider_name for e in endpoints.data.endpoints}
    assert "Simulator" in names and len(names) >= 3
    providers = await sdk.providers.list_async()
    assert {"openai", "anthropic", "groq"} <= {p.slug for p in providers.data}


# The SDK warns on reading the deprecated (but required) `rate_limit` field of /key.
@pytest.mark.filterwarnings("ignore:.*DEPRECATED.*:DeprecationWarning")
async def test_current_key(sdk: OpenRouter) -> None:
    key = await sdk.api_keys.get_current_key_metadata_async()
    assert key.data.limit is None and key.data.usage == 0
    assert key.data.is_management_key is False


async def test_key_provisioning_round_trip(admin_sdk: OpenRouter, gateway: Gateway) -> None:
    created = await admin_sdk.api_keys.create_async(name="ci", limit=5.0, limit_reset="monthly")
    assert created.key.startswith("sk-cr-v1-")
    key_hash = created.data.hash
    listing = await admin_sdk.api_keys.list_async()
    assert key_hash in {k.hash for k in listing.data}
    fetched = await admin_sdk.api_keys.get_async(hash=key_hash)
    assert fetched.data.limit == 5.0 and fetched.data.limit_reset == "monthly"
    updated = await admin_sdk.api_keys.update_async(hash=key_hash, disabled=True)
    assert updated.data.disabled is True
    deleted = await admin_sdk.api_keys.delete_async(hash=key_hash)
    assert deleted.DELETED is True


async def test_credits(admin_sdk: OpenRouter) -> None:
    credits = await admin_sdk.credits.get_credits_async()
    assert credits.data.total_credits == 0


async def test_generation_stats(sdk: OpenRouter) -> None:
    result = await sdk.chat.send_async(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    stats = await sdk.generations.get_generation_async(id=result.id)
    assert stats.data.id == result.id
    assert stats.data.model == "openai/gpt-4o-mini"
    assert stats.data.provider_name == "Simulator"
    assert stats.data.total_cost == pytest.approx(result.usage.cost)  # type: ignore[union-attr]
    assert stats.data.tokens_completion == result.usage.completion_tokens  # type: ignore[union-attr]
