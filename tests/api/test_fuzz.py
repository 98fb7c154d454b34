"""Fuzzing: requests shaped by OpenRouter's OpenAPI spec (`tests/data/openrouter-openapi.yaml`) with values
that range from valid to hostile — huge integers, odd floats, wrong types, odd text — sent to a running
gateway. Whatever the input, the answer is never a 5xx, and an error is always OpenRouter's envelope.

Chat requests take one to three of the spec's `ChatRequest` fields at a time (so that a bad first field
does not hide the rest), on top of a valid model and messages most of the time.

The suite's runs are derandomized: the same examples every time, so a run fails only when the code changed.
A fuzzing campaign looks further: `CROSSROADS_FUZZ_RANDOM=1` draws new examples, and
`CROSSROADS_FUZZ_SCALE=10` tries ten times as many."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_cli import clean_env, serving

SPEC = yaml.safe_load((Path(__file__).parents[1] / "data" / "openrouter-openapi.yaml").read_text())
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
ADMIN = "fuzz-admin-key-0123456789"
MODELS = ["openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4", "google/gemini-2.5-flash"]

_integers = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, -1, 2**31, 2**63, 2**64])
_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e30, 1e308, -1e308, 0.5, 5e-324])
_text = st.text(max_size=24) | st.sampled_from(["", "\x00", "\udcff".encode("utf-8", "surrogatepass").decode(
    "utf-8", "replace"), "a" * 5000, "openai/gpt-4o", "auto", "none", "low"])
JSON = st.recursive(st.none() | st.booleans() | _integers | _floats | _text,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                    max_leaves=12)


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of the schema's shape (valid or nearly), mixed with arbitrary JSON."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return from_schema(SCHEMAS[name], depth + 1) if depth < 4 else JSON
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return st.one_of([from_schema(s, depth + 1) for s in schema[combinator][:6]] + [JSON])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | JSON
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    shaped: st.SearchStrategy[Any]
    if kind == "integer":
        shaped = _integers
    elif kind == "number":
        shaped = _floats | _integers
    elif kind == "string":
        shaped = _text
    elif kind == "boolean":
        shaped = st.booleans()
    elif kind == "array" and depth < 6:
        shaped = st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=3)
    elif kind == "object" and depth < 6 and schema.get("properties"):
        properties = schema["properties"]
        shaped = st.fixed_dictionaries({}, optional={k: from_schema(v, depth + 1) for k, v in properties.items()})
    else:
        return JSON
    return st.one_of(shaped, shaped, JSON)


CHAT_FIELDS: dict[str, Any] = SCHEMAS["ChatRequest"]["properties"]
_messages = st.just([{"role": "user", "content": "hello"}]) | from_schema(CHAT_FIELDS["messages"])


@st.composite
def chat_requests(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON)  # not even an object, now and then
    body: dict[str, Any] = {"model": draw(st.sampled_from(MODELS) | _text), "messages": draw(_messages)}
    for name in draw(st.lists(st.sampled_from(sorted(CHAT_FIELDS)), max_size=3, unique=True)):
        body[name] = draw(from_schema(CHAT_FIELDS[name]))
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.integers(1, 64))
    return body


def _request_schema(path: str, method: str) -> dict[str, Any]:
    schema: dict[str, Any] = SPEC["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return schema


key_creations = from_schema(_request_schema("/keys", "post"))
key_updates = from_schema(_request_schema("/keys/{hash}", "patch"))
credit_grants = st.fixed_dictionaries({"amount": _floats | _integers | JSON}, optional={"note": _text}) | JSON


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    env = clean_env(CROSSROADS_ADMIN_KEY=ADMIN, CROSSROADS_LOG_LEVEL="WARNING")
    with serving(tmp_path_factory.mktemp("fuzz"), env, stderr=subprocess.DEVNULL) as (port, key, _):
        yield f"http://127.0.0.1:{port}/api/v1", key


def _check(response: httpx.Response, sent: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text, sent)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] == response.status_code and isinstance(error["message"], str), response.text


_SCALE = int(os.environ.get("CROSSROADS_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=150 * _SCALE, deadline=None, derandomize=os.environ.get("CROSSROADS_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(body=chat_requests(), stream=st.booleans())
def test_chat_completions_never_answer_5xx(gateway: tuple[str, str], body: Any, stream: bool) -> None:
    url, key = gateway
    if stream and isinstance(body, dict):
        body["stream"] = True
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        _check(response, body)


@settings(FUZZ, max_examples=60 * _SCALE)
@given(create=key_creations, update=key_updates)
def test_keys_never_answer_5xx(gateway: tuple[str, str], create: Any, update: Any) -> None:
    url, _ = gateway
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{url}/keys", json=create, headers=admin)
        _check(response, create)
        if response.status_code != 201:
            response = http.post(f"{url}/keys", json={"name": "fuzz"}, headers=admin)
        key_hash = response.json()["data"]["hash"]
        _check(http.patch(f"{url}/keys/{key_hash}", json=update, headers=admin), update)
        _check(http.get(f"{url}/keys/{key_hash}", headers=admin), None)
        _check(http.delete(f"{url}/keys/{key_hash}", headers=admin), None)


@settings(FUZZ, max_examples=40 * _SCALE)
@given(grant=credit_grants)
def test_credits_never_answer_5xx(gateway: tuple[str, str], grant: Any) -> None:
    url, _ = gateway
    with httpx.Client(timeout=30) as http:
        _check(http.post(f"{url}/credits", json=grant, headers={"Authorization": f"Bearer {ADMIN}"}), grant)
        _check(http.get(f"{url}/credits", headers={"Authorization": f"Bearer {ADMIN}"}), None)


@settings(FUZZ, max_examples=40 * _SCALE)
@given(body=chat_requests(), slug=st.sampled_from(["fuzz", "fuzz-2"]) | _text)
def test_presets_never_answer_5xx(gateway: tuple[str, str], body: Any, slug: str) -> None:
    url, key = gateway
    admin = {"Authorization": f"Bearer {ADMIN}"}
    path = quote(slug, safe="")
    with httpx.Client(timeout=30) as http:
        _check(http.post(f"{url}/presets/{path}/chat/completions", json=body, headers=admin), body)
        _check(http.get(f"{url}/presets/{path}/versions", headers=admin), None)
        used = {**body, "model": f"@preset/{slug}"} if isinstance(body, dict) else body
        _check(http.post(f"{url}/chat/completions", json=used, headers={"Authorization": f"Bearer {key}"}), used)


guardrail_creations = from_schema(_request_schema("/guardrails", "post"))
guardrail_updates = from_schema(_request_schema("/guardrails/{id}", "patch"))


@settings(FUZZ, max_examples=40 * _SCALE)
@given(create=guardrail_creations, update=guardrail_updates)
def test_guardrails_never_answer_5xx(gateway: tuple[str, str], create: Any, update: Any) -> None:
    url, key = gateway
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{url}/guardrails", json=create, headers=admin)
        _check(response, create)
        if response.status_code != 201:
            response = http.post(f"{url}/guardrails", json={"name": "fuzz"}, headers=admin)
        rail_id = response.json()["data"]["id"]
        _check(http.patch(f"{url}/guardrails/{rail_id}", json=update, headers=admin), update)
        key_hash = http.get(f"{url}/key", headers={"Authorization": f"Bearer {key}"}).json()["data"]["hash"]
        _check(http.post(f"{url}/guardrails/{rail_id}/assignments/keys", json={"key_hashes": [key_hash]},
                         headers=admin), None)
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello 10.0.0.1"}]}
        _check(http.post(f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}), body)
        _check(http.delete(f"{url}/guardrails/{rail_id}", headers=admin), None)
