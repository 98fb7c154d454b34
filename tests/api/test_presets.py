"""Presets end to end: created, versioned and read through OpenRouter's SDK with the management key, used
through the `openai` and `anthropic` SDKs with an API key, answered by the built-in simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import redis.asyncio as aioredis
from openrouter import OpenRouter

from tests.conftest import ADMIN_KEY, Gateway, GatewayFactory
from tests.openapi import schema_for, validate
from tests.redis_support import REDIS_URL, namespace, wipe
from tests.storage.test_stores import pg_schema

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT = "You answer in one short sentence, politely, and never mention the weather at all."


@pytest.fixture
async def admin_sdk(gateway: Gateway) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(api_key=ADMIN_KEY, server_url=gateway.url) as client:
        yield client


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gateway.url, api_key=gateway.key, max_retries=0) as sdk:
        yield sdk


async def test_create_version_list_and_read_through_the_sdk(admin_sdk: OpenRouter) -> None:
    created = await admin_sdk.presets.create_presets_chat_completions_async(
        slug="brief", model="openai/gpt-4o", temperature=0.3, max_tokens=5,
        messages=[{"role": "system", "content": PROMPT}, *QUESTION])
    first = created.data
    assert first.slug == "brief" and first.status == "active"
    assert first.designated_version.version == 1 and first.designated_version.system_prompt == PROMPT
    # Only the configuration is kept: not the conversation, not the system prompt (kept apart).
    assert first.designated_version.config == {"model": "openai/gpt-4o", "temperature": 0.3, "max_tokens": 5}

    second = (await admin_sdk.presets.create_presets_chat_completions_async(
        slug="brief", model="anthropic/claude-sonnet-4", messages=QUESTION)).data
    assert second.id == first.id and second.designated_version.version == 2
    assert second.designated_version_id == second.designated_version.id != first.designated_version_id

    got = (await admin_sdk.presets.get_async(slug="brief")).data
    assert got.designated_version.config == {"model": "anthropic/claude-sonnet-4"}
    listing = (await admin_sdk.presets.list_async()).result
    assert listing.total_count == 1 and listing.data[0].slug == "brief"
    versions = (await admin_sdk.presets.list_versions_async(slug="brief")).result
    assert [v.version for v in versions.data] == [1, 2] and versions.total_count == 2
    one = (await admin_sdk.presets.get_version_async(slug="brief", version="1")).data
    assert one.system_prompt == PROMPT and one.config["temperature"] == 0.3


async def test_responses_match_the_spec(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.admin) as http:
        made = await http.post("/presets/spec/messages", json={
            "model": "anthropic/claude-sonnet-4", "max_tokens": 64, "system": PROMPT, "messages": QUESTION})
        assert made.status_code == 200, made.text
        validate(made.json(), schema_for("/presets/{slug}/messages", "post", 200))
        assert made.json()["data"]["designated_version"]["system_prompt"] == PROMPT
        for path, operation in (("/presets", "/presets"), ("/presets/spec", "/presets/{slug}"),
                                ("/presets/spec/versions", "/presets/{slug}/versions"),
                                ("/presets/spec/versions/1", "/presets/{slug}/versions/{version}")):
            response = await http.get(path)
            assert response.status_code == 200, response.text
            validate(response.json(), schema_for(operation, "get", 200))
        missing = await http.get("/presets/nothing-here")
        assert missing.status_code == 404 and "nothing-here" in missing.json()["error"]["message"]
        assert (await http.get("/presets/spec/versions/7")).status_code == 404
        bad = await http.get("/presets", params={"limit": "500"})
        assert bad.status_code == 400 and bad.json()["error"]["metadata"]["param"] == "limit"


async def test_a_preset_is_checked_like_a_request(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.admin) as http:
        bad = await http.post("/presets/hot/chat/completions", json={"temperature": 9})
        assert bad.status_code == 400 and bad.json()["error"]["metadata"]["param"] == "temperature"
        slug = await http.post("/presets/no%20spaces/chat/completions", json={"temperature": 1})
        assert slug.status_code == 400 and slug.json()["error"]["metadata"]["param"] == "slug"
        assert (await http.get("/presets/hot")).status_code == 404


async def test_management_needs_the_admin_key(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.auth) as http:
        assert (await http.get("/presets")).status_code == 403
        assert (await http.get("/presets/x/versions")).status_code == 403


async def _save(gateway: Gateway, slug: str, body: dict[str, object], api: str = "chat/completions") -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.admin) as http:
        response = await http.post(f"/presets/{slug}/{api}", json=body)
        assert response.status_code == 200, response.text


async def test_model_at_preset_uses_its_model_parameters_and_system_prompt(gateway: Gateway,
                                                                           client: openai.AsyncOpenAI) -> None:
    await _save(gateway, "brief", {"model": "anthropic/claude-sonnet-4", "max_tokens": 3,
                                   "messages": [{"role": "system", "content": PROMPT}]})
    plain = await client.chat.completions.create(model="openai/gpt-4o", messages=QUESTION)
    used = await client.chat.completions.create(model="@preset/brief", messages=QUESTION)
    assert used.model == "anthropic/claude-sonnet-4"
    assert used.usage is not None and plain.usage is not None
    assert used.usage.completion_tokens == 3 and used.choices[0].finish_reason == "length"
    assert used.usage.prompt_tokens > plain.usage.prompt_tokens  # the system prompt went upstream


async def test_request_fields_override_the_preset(gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    await _save(gateway, "brief", {"model": "anthropic/claude-sonnet-4", "max_tokens": 3,
                                   "messages": [{"role": "system", "content": PROMPT}]})
    mine = await client.chat.completions.create(model="openai/gpt-4o@preset/brief", messages=QUESTION,
                                                max_tokens=4)
    assert mine.model == "openai/gpt-4o" and mine.usage is not None and mine.usage.completion_tokens == 4
    field = await client.chat.completions.create(model="openai/gpt-4o-mini", messages=QUESTION,
                                                 extra_body={"preset": "brief"})
    assert field.model == "openai/gpt-4o-mini" and field.usage is not None and field.usage.completion_tokens == 3
    own_system = [{"role": "system", "content": "Hi."}, *QUESTION]
    with_own = await client.chat.completions.create(model="@preset/brief", messages=own_system)  # type: ignore[arg-type]
    without = await client.chat.completions.create(model="anthropic/claude-sonnet-4", messages=own_system,  # type: ignore[arg-type]
                                                   max_tokens=3)
    assert with_own.usage is not None and without.usage is not None
    assert with_own.usage.prompt_tokens == without.usage.prompt_tokens


async def test_the_preset_url_serves_requests_with_an_api_key(gateway: Gateway) -> None:
    await _save(gateway, "brief", {"model": "anthropic/claude-sonnet-4", "max_tokens": 3})
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/presets/brief", api_key=gateway.key,
                                  max_retries=0) as via_url:
        reply = await via_url.chat.completions.create(model="", messages=QUESTION)  # type: ignore[arg-type]
        assert reply.model == "anthropic/claude-sonnet-4" and reply.usage is not None
        assert reply.usage.completion_tokens == 3
        stream = await via_url.chat.completions.create(model="", messages=QUESTION, stream=True)  # type: ignore[arg-type]
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].model == "anthropic/claude-sonnet-4"


async def test_unknown_preset_is_404_naming_it(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="@preset/nope", messages=QUESTION)  # type: ignore[arg-type]
    assert "nope" in str(caught.value)


async def test_messages_and_responses_take_presets(gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    await _save(gateway, "claude", {"model": "anthropic/claude-sonnet-4", "max_tokens": 3, "system": PROMPT},
                api="messages")
    async with anthropic.AsyncAnthropic(base_url=gateway.root + "/api", api_key=gateway.key, max_retries=0) as claude:
        message = await claude.messages.create(model="@preset/claude", messages=QUESTION, max_tokens=1024)  # type: ignore[arg-type]
        plain = await claude.messages.create(model="anthropic/claude-sonnet-4", messages=QUESTION,  # type: ignore[arg-type]
                                             max_tokens=1024)
    assert message.usage.input_tokens > plain.usage.input_tokens  # the preset's system prompt

    await _save(gateway, "resp", {"model": "openai/gpt-4o", "max_output_tokens": 16, "instructions": PROMPT,
                                  "input": "hello"}, api="responses")
    response = await client.responses.create(model="@preset/resp", input="What is the capital of France?")
    assert response.model == "openai/gpt-4o" and response.instructions == PROMPT
    assert response.usage is not None and response.usage.output_tokens <= 16


async def test_presets_reach_other_processes(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/shared.db"
    async with start_gateway(env={"CROSSROADS_DATABASE_URL": database}) as one, \
            start_gateway(env={"CROSSROADS_DATABASE_URL": database}) as two:
        await _save(one, "shared", {"model": "anthropic/claude-sonnet-4"})
        for _ in range(40):  # the periodic refresh: within a second
            if two.services.presets.find("shared") is not None:
                break
            await asyncio.sleep(0.1)
        async with openai.AsyncOpenAI(base_url=two.url, api_key=two.key, max_retries=0) as other:
            reply = await other.chat.completions.create(model="@preset/shared", messages=QUESTION)  # type: ignore[arg-type]
        assert reply.model == "anthropic/claude-sonnet-4"


async def test_on_postgresql_a_saved_preset_is_announced_through_redis(start_gateway: GatewayFactory) -> None:
    ns = namespace()
    listener = aioredis.Redis.from_url(REDIS_URL)
    try:
        async with pg_schema() as pg_url, listener.pubsub() as pubsub:
            await pubsub.subscribe(f"{ns}:presets")
            env = {"CROSSROADS_DATABASE_URL": pg_url, "CROSSROADS_REDIS_URL": REDIS_URL,
                   "CROSSROADS_REDIS_NAMESPACE": ns}
            async with start_gateway(env=env) as one, start_gateway(env=env) as two:
                await _save(one, "shared", {"model": "anthropic/claude-sonnet-4", "max_tokens": 3})
                message = None
                for _ in range(50):
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if message is not None:
                        break
                assert message is not None and message["data"].decode().endswith(":shared")
                for _ in range(40):
                    if two.services.presets.find("shared") is not None:
                        break
                    await asyncio.sleep(0.05)
                async with openai.AsyncOpenAI(base_url=two.url, api_key=two.key, max_retries=0) as other:
                    reply = await other.chat.completions.create(model="@preset/shared", messages=QUESTION)  # type: ignore[arg-type]
                assert reply.model == "anthropic/claude-sonnet-4" and reply.usage is not None
                assert reply.usage.completion_tokens == 3
    finally:
        await listener.aclose()
        await wipe(ns)
