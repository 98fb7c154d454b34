"""Every response the gateway gives, checked against the schemas of OpenRouter's OpenAPI specification."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import ADMIN_KEY, Gateway, GatewayFactory, provider_keys, upstream_catalog
from tests.openapi import validate_component, validate_response

MESSAGES = [{"role": "user", "content": "Hello there"}]


async def _json(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as resp:
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, await resp.json()


async def test_chat_result(gateway: Gateway) -> None:
    async with aiohttp.ClientSession(headers=gateway.auth) as http:
        status, body = await _json(http, "POST", f"{gateway.url}/chat/completions",
                                   json={"model": "openai/gpt-4o", "messages": MESSAGES})
    assert status == 200
    validate_response(body, "/chat/completions", "post", 200)


async def test_chat_stream_chunks(gateway: Gateway) -> None:
    async with aiohttp.ClientSession(headers=gateway.auth) as http, \
            http.post(f"{gateway.url}/chat/completions",
                      json={"model": "openai/gpt-4o", "stream": True, "messages": MESSAGES}) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = (await resp.read()).decode()
    events = [e for e in text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert len(events) > 1  # at least one chunk before [DONE], so the loop below checks something
    for event in events[:-1]:
        assert event.startswith("data: ")
        validate_response({"data": orjson.loads(event[6:])}, "/chat/completions", "post", 200,
                          "text/event-stream")


async def test_in_band_error_chunk(start_gateway: GatewayFactory, sim: Any) -> None:
    catalog = upstream_catalog(sim.url, {"test/model": [{"provider": "alpha", "upstream_model": "m#drop_after=2"}]})
    async with start_gateway(env=provider_keys("alpha"), catalog=catalog) as gw, \
            aiohttp.ClientSession(headers=gw.auth) as http, \
            http.post(f"{gw.url}/chat/completions",
                      json={"model": "test/model", "stream": True, "messages": MESSAGES}) as resp:
        text = (await resp.read()).decode()
    events = [orjson.loads(e[6:]) for e in text.split("\n\n") if e.startswith("data: {")]
    error_chunk = events[-1]
    assert error_chunk["error"]["code"] == 502
    assert error_chunk["choices"][0]["finish_reason"] == "error"
    validate_component(error_chunk, "ChatStreamChunk")


@pytest.mark.parametrize(("body", "status"), [
    ({"model": "openai/gpt-4o", "messages": MESSAGES, "temperature": 9}, 400),
    ({"model": "nope/nope", "messages": MESSAGES}, 400),
    ({"model": "openai/gpt-4o", "messages": MESSAGES, "provider": {"only": ["nobody"]}}, 404),
])
async def test_chat_errors(gateway: Gateway, body: dict[str, Any], status: int) -> None:
    async with aiohttp.ClientSession(headers=gateway.auth) as http:
        got, payload = await _json(http, "POST", f"{gateway.url}/chat/completions", json=body)
    assert got == status
    assert payload["error"]["code"] == status
    validate_response(payload, "/chat/completions", "post", status)


async def test_chat_error_statuses_without_a_valid_request(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        status, body = await _json(http, "POST", f"{gateway.url}/chat/completions", json={"messages": MESSAGES})
        assert status == 401
        validate_response(body, "/chat/completions", "post", 401)
        status, body = await _json(http, "POST", f"{gateway.url}/chat/completions", data=b"{not json",
                                   headers=gateway.auth)
        assert status == 400 and "not valid JSON" in body["error"]["message"]
        validate_response(body, "/chat/completions", "post", 400)
        status, body = await _json(http, "GET", f"{gateway.url}/chat/completions", headers=gateway.auth)
        assert status == 405
        status, body = await _json(http, "GET", f"{gateway.url}/no/such/thing")
        assert status == 404 and body["error"]["code"] == 404


async def test_catalog_endpoints(gateway: Gateway) -> None:
    async with aiohttp.ClientSession(headers=gateway.auth) as http:
        status, body = await _json(http, "GET", f"{gateway.url}/models")
        validate_response(body, "/models", "get", status)
        status, body = await _json(http, "GET", f"{gateway.url}/models/count")
        validate_response(body, "/models/count", "get", status)
        status, body = await _json(http, "GET", f"{gateway.url}/model/openai/gpt-4o")
        validate_response(body, "/model/{author}/{slug}", "get", status)
        status, body = await _json(http, "GET", f"{gateway.url}/models/openai/gpt-4o/endpoints")
        assert status == 200
        validate_component(body["data"], "ListEndpointsResponse")
        for endpoint in body["data"]["endpoints"]:
            validate_component(endpoint, "PublicEndpoint")
        status, body = await _json(http, "GET", f"{gateway.url}/providers")
        validate_response(body, "/providers", "get", status)


async def test_key_endpoints(gateway: Gateway) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as http:
        status, body = await _json(http, "GET", f"{gateway.url}/key", headers=gateway.auth)
        validate_response(body, "/key", "get", status)
        status, body = await _json(http, "POST", f"{gateway.url}/keys", headers=admin,
                                   json={"name": "conformance", "limit": 1.5})
        assert status == 201
        validate_response(body, "/keys", "post", status)
        key_hash = body["data"]["hash"]
        status, body = await _json(http, "GET", f"{gateway.url}/keys", headers=admin)
        validate_response(body, "/keys", "get", status)
        status, body = await _json(http, "GET", f"{gateway.url}/keys/{key_hash}", headers=admin)
        validate_response(body, "/keys/{hash}", "get", status)
        status, body = await _json(http, "PATCH", f"{gateway.url}/keys/{key_hash}", headers=admin,
                                   json={"name": "renamed"})
        validate_response(body, "/keys/{hash}", "patch", status)
        status, body = await _json(http, "DELETE", f"{gateway.url}/keys/{key_hash}", headers=admin)
        validate_response(body, "/keys/{hash}", "delete", status)
        status, body = await _json(http, "GET", f"{gateway.url}/keys", headers=gateway.auth)
        assert status == 403
        validate_response(body, "/keys", "post", 403)
        status, body = await _json(http, "GET", f"{gateway.url}/credits", headers=admin)
        validate_response(body, "/credits", "get", status)


async def test_generation_endpoint(gateway: Gateway) -> None:
    async with aiohttp.ClientSession(headers=gateway.auth) as http:
        _, chat = await _json(http, "POST", f"{gateway.url}/chat/completions",
                              json={"model": "openai/gpt-4o", "messages": MESSAGES})
        status, body = await _json(http, "GET", f"{gateway.url}/generation", params={"id": chat["id"]})
        assert status == 200
        validate_response(body, "/generation", "get", status)
        status, body = await _json(http, "GET", f"{gateway.url}/generation", params={"id": "gen-missing"})
        assert status == 404
        validate_response(body, "/generation", "get", 404)



@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4", "openai/gpt-4o"])
async def test_messages_result(gateway: Gateway, model: str) -> None:
    """Both a provider's own Messages reply (relayed) and one translated from chat carry what the spec
    requires: `container`, `stop_details`, text blocks' `citations`, usage's details, null where unknown."""
    async with aiohttp.ClientSession(headers=gateway.auth) as http:
        status, body = await _json(http, "POST", f"{gateway.url}/messages",
                                   json={"model": model, "max_tokens": 50, "messages": MESSAGES})
    assert status == 200 and body["content"][0]["type"] == "text"
    validate_response(body, "/messages", "post", 200)


async def test_responses_result(gateway: Gateway) -> None:
    """A Responses reply carries what the spec requires: `completed_at` and the penalties, echoed."""
    async with aiohttp.ClientSession(headers=gateway.auth) as http:
        status, body = await _json(http, "POST", f"{gateway.url}/responses",
                                   json={"model": "openai/gpt-4o", "input": "Hello there", "presence_penalty": 0.5})
    assert status == 200 and body["status"] == "completed"
    assert body["completed_at"] >= body["created_at"] and body["presence_penalty"] == 0.5
    assert body["frequency_penalty"] is None
    validate_response(body, "/responses", "post", 200)
