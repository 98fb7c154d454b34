"""`GET /generation/content` and `POST /generation/feedback` end to end: requests through the `openai` SDK,
content and feedback read back through OpenRouter's SDK and checked against the spec."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import openai
import pytest
from openrouter import OpenRouter

from crossroads.sim import SimServer
from tests.conftest import ADMIN_KEY, Gateway, GatewayFactory, provider_keys, upstream_catalog
from tests.openapi import schema_for, validate

SECRET = "The launch code for project heron is 7431, what should we do?"
ON = {"CROSSROADS_LOG_CONTENT": "on"}


def _question(text: str = SECRET) -> Any:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


async def test_prompt_and_completion_are_kept_when_logging_is_on(start_gateway: GatewayFactory,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_gateway(env=ON) as gw, \
            openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0) as client, \
            OpenRouter(api_key=gw.key, server_url=gw.url) as sdk:
        reply = await client.chat.completions.create(model="openai/gpt-4o", messages=_question())
        stored = (await sdk.generations.list_generation_content_async(id=reply.id)).data
        assert stored.input.messages == _question()  # type: ignore[union-attr]
        assert stored.output.completion == reply.choices[0].message.content and stored.error is None

        stream = await client.chat.completions.create(model="openai/gpt-4o", messages=_question("Hello"),
                                                      stream=True)
        chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        async with httpx.AsyncClient(base_url=gw.url, headers=gw.auth) as http:
            response = await http.get("/generation/content", params={"id": chunks[0].id})
            assert response.status_code == 200, response.text
            validate(response.json(), schema_for("/generation/content", "get", 200))
            assert response.json()["data"]["output"]["completion"] == text
            other = await gw.new_key()
            refused = await http.get("/generation/content", params={"id": reply.id},
                                     headers={"Authorization": f"Bearer {other}"})
            assert refused.status_code == 403
            admin = await http.get("/generation/content", params={"id": reply.id}, headers=gw.admin)
            assert admin.status_code == 200
            assert (await http.get("/generation/content")).json()["error"]["metadata"]["param"] == "id"
        await gw.services.ledger.flush()
        record = await gw.services.store.get_generation(reply.id)
        assert record is not None and record.content is not None and "heron" in record.content
    assert not [r for r in caplog.records if "heron" in r.getMessage()]  # content is never logged


async def test_nothing_is_kept_by_default(gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.url, api_key=gateway.key, max_retries=0) as client:
        reply = await client.chat.completions.create(model="openai/gpt-4o", messages=_question())
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.auth) as http:
        response = await http.get("/generation/content", params={"id": reply.id})
    assert response.status_code == 404 and "CROSSROADS_LOG_CONTENT" in response.json()["error"]["message"]
    await gateway.services.ledger.flush()
    record = await gateway.services.store.get_generation(reply.id)
    assert record is not None and record.content is None


async def test_a_failed_generation_keeps_its_prompt_and_error(start_gateway: GatewayFactory,
                                                              sim: SimServer) -> None:
    catalog = upstream_catalog(sim.url, {"test/model": [{"provider": "alpha", "upstream_model": "m#status=500"}]})
    async with start_gateway(env={**ON, **provider_keys("alpha")}, catalog=catalog) as gw, \
            openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="test/model", messages=_question())
        generation_id = caught.value.response.headers["x-generation-id"]
        async with httpx.AsyncClient(base_url=gw.url, headers=gw.auth) as http:
            data = (await http.get("/generation/content", params={"id": generation_id})).json()["data"]
    assert data["input"]["messages"] == _question() and data["output"]["completion"] is None
    assert data["error"]["status"] == 503 and data["error"]["previous_errors"][0]["provider_name"] == "Alpha"


async def test_feedback_is_stored_and_shown_in_activity(gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.url, api_key=gateway.key, max_retries=0) as client:
        reply = await client.chat.completions.create(model="openai/gpt-4o", messages=_question())
    async with OpenRouter(api_key=ADMIN_KEY, server_url=gateway.url) as admin:
        result = await admin.generations.submit_feedback_async(generation_id=reply.id, category="latency",
                                                               comment="slow today")
        assert result.data.SUCCESS is True
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.auth) as http:
        own = await http.post("/generation/feedback", json={"generation_id": reply.id, "category": "other"})
        assert own.status_code == 200
        validate(own.json(), schema_for("/generation/feedback", "post", 200))
        bad = await http.post("/generation/feedback", json={"generation_id": reply.id, "category": "rude"})
        assert bad.status_code == 400 and bad.json()["error"]["metadata"]["param"] == "body.category"
        missing = await http.post("/generation/feedback", json={"generation_id": "gen-nope", "category": "other"})
        assert missing.status_code == 404
        other = await gateway.new_key()
        refused = await http.post("/generation/feedback", json={"generation_id": reply.id, "category": "other"},
                                  headers={"Authorization": f"Bearer {other}"})
        assert refused.status_code == 403
        activity = (await http.get("/activity")).json()["data"]
    assert [(a["model"], a["requests"], a["feedback"]) for a in activity] == [("openai/gpt-4o", 1, 2)]
