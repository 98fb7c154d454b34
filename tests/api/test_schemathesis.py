"""Schemathesis over OpenRouter's OpenAPI specification (`tests/data/openrouter-openapi.yaml`), against a live
gateway served by the simulator.

Every operation of the spec is either run here, with the credential OpenRouter asks for (an API key for
inference and the key's own views, the management key for keys, credits, presets, guardrails, activity and
stored generations), or listed in `NOT_IMPLEMENTED` with the reason (and checked to answer 404). Each
operation takes requests that fit its schemas (positive) and requests that break them (negative), half of
them pointed at things that exist — a catalog model, a key, a preset, a guardrail, a generation — and the
spec's own documented example requests, of which at least one must succeed: replies of 2xx are reached and
checked, not only 404s for made-up ids.

The checks, for every reply: never a 5xx; a 2xx or 4xx matches the spec's schema for it (Schemathesis'
`response_schema_conformance`, unless `Covered.excluded` says why not for that operation); a 4xx is an error
envelope with a message — OpenRouter's `{"error": {"code", "message"}}` with the status as `code`,
Anthropic's for `/messages`, OpenRouter's with the Responses API's string codes for `/responses`.

The run is bounded and reproducible: a few examples per operation and mode, derandomized (the seed comes from
the test's code), no example database."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import enum
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import ADMIN_KEY, Gateway, open_gateway
from tests.openapi import spec

#: The spec with provider names open (see `tests/openapi.py`): the simulator and local servers are providers too.
SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(spec()))
#: Examples per operation and mode; and how many of the spec's documented examples of each operation are sent.
EXAMPLES = 8
DOCUMENTED = 5


class Credential(enum.Enum):
    KEY = "an API key"
    MANAGEMENT = "the management key"


@dataclass
class Known:
    """What exists on the gateway under test, for examples pointed at real things."""

    http: httpx.Client
    generation: str
    preset: str
    guardrail: str
    target: str  # a key to read, change and assign guardrails to (not the key that runs inference)

    def key(self) -> str:
        """A new key of its own, for an example that deletes one."""
        return str(self.http.post("/keys", json={"name": "schemathesis"}).json()["data"]["hash"])

    def rail(self) -> str:
        return str(self.http.post("/guardrails", json={"name": "schemathesis"}).json()["data"]["id"])


#: How an example is pointed at real things: path parameters, query parameters and body fields to set.
Aim = Callable[[Known], dict[str, dict[str, Any]]]


def _model(name: str) -> Aim:
    return lambda known: {"body": {"model": name}}


def reply_conformance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 2xx matches the spec's schema for it."""
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


def error_conformance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 4xx matches the spec's schema for it."""
    if 400 <= response.status_code < 500:
        return response_schema_conformance(ctx, response, case)
    return None


@dataclass(frozen=True)
class Covered:
    credential: Credential
    aim: Aim | None = None
    #: Schemathesis checks not run for this operation, each with the reason in a comment where it is set.
    excluded: tuple[CheckFunction, ...] = ()
    wire: str = "openrouter"


_KEY = Credential.KEY
_MGMT = Credential.MANAGEMENT

COVERED: dict[tuple[str, str], Covered] = {
    ("POST", "/chat/completions"): Covered(_KEY, _model("openai/gpt-4o-mini")),
    ("POST", "/messages"): Covered(_KEY, _model("anthropic/claude-sonnet-4"), wire="anthropic"),
    # OpenRouter answers /responses errors with the Responses API's string codes (`invalid_prompt`,
    # `rate_limit_exceeded`, `server_error`: what Codex and OpenAI's SDKs act on), where its spec documents
    # the integer codes of its other APIs (`BadRequestResponse`): the gateway does as OpenRouter does.
    ("POST", "/responses"): Covered(_KEY, _model("openai/gpt-4o-mini"), excluded=(error_conformance,),
                                    wire="responses"),
    ("POST", "/embeddings"): Covered(_KEY, _model("openai/text-embedding-3-small")),
    ("GET", "/embeddings/models"): Covered(_KEY),
    ("POST", "/rerank"): Covered(_KEY, _model("cohere/rerank-v3.5")),
    ("GET", "/models"): Covered(_KEY),
    ("GET", "/models/count"): Covered(_KEY),
    ("GET", "/models/user"): Covered(_KEY),
    ("GET", "/model/{author}/{slug}"): Covered(_KEY, lambda k: {"path": {"author": "openai", "slug": "gpt-4o"}}),
    ("GET", "/models/{author}/{slug}/endpoints"):
        Covered(_KEY, lambda k: {"path": {"author": "openai", "slug": "gpt-4o"}}),
    ("GET", "/endpoints/zdr"): Covered(_KEY),
    ("GET", "/providers"): Covered(_KEY),
    ("GET", "/key"): Covered(_KEY),
    ("GET", "/generation"): Covered(_KEY, lambda k: {"query": {"id": k.generation}}),
    ("GET", "/generation/content"): Covered(_MGMT, lambda k: {"query": {"id": k.generation}}),
    ("POST", "/generation/feedback"): Covered(_MGMT, lambda k: {"body": {"generation_id": k.generation}}),
    ("GET", "/activity"): Covered(_MGMT, lambda k: {"query": {"api_key_hash": k.target}}),
    ("GET", "/credits"): Covered(_MGMT),
    ("GET", "/keys"): Covered(_MGMT),
    ("POST", "/keys"): Covered(_MGMT),
    ("GET", "/keys/{hash}"): Covered(_MGMT, lambda k: {"path": {"hash": k.target}}),
    ("PATCH", "/keys/{hash}"): Covered(_MGMT, lambda k: {"path": {"hash": k.target}}),
    ("DELETE", "/keys/{hash}"): Covered(_MGMT, lambda k: {"path": {"hash": k.key()}}),
    ("GET", "/presets"): Covered(_MGMT),
    ("GET", "/presets/{slug}"): Covered(_MGMT, lambda k: {"path": {"slug": k.preset}}),
    ("GET", "/presets/{slug}/versions"): Covered(_MGMT, lambda k: {"path": {"slug": k.preset}}),
    ("GET", "/presets/{slug}/versions/{version}"):
        Covered(_MGMT, lambda k: {"path": {"slug": k.preset, "version": "1"}}),
    ("POST", "/presets/{slug}/chat/completions"):
        Covered(_MGMT, lambda k: {"path": {"slug": k.preset}, "body": {"model": "openai/gpt-4o-mini"}}),
    ("POST", "/presets/{slug}/messages"):
        Covered(_MGMT, lambda k: {"path": {"slug": k.preset}, "body": {"model": "anthropic/claude-sonnet-4"}}),
    ("POST", "/presets/{slug}/responses"):
        Covered(_MGMT, lambda k: {"path": {"slug": k.preset}, "body": {"model": "openai/gpt-4o-mini"}}),
    ("GET", "/guardrails"): Covered(_MGMT),
    ("POST", "/guardrails"): Covered(_MGMT),
    ("GET", "/guardrails/{id}"): Covered(_MGMT, lambda k: {"path": {"id": k.guardrail}}),
    ("PATCH", "/guardrails/{id}"): Covered(_MGMT, lambda k: {"path": {"id": k.guardrail}}),
    ("DELETE", "/guardrails/{id}"): Covered(_MGMT, lambda k: {"path": {"id": k.rail()}}),
    ("GET", "/guardrails/assignments/keys"): Covered(_MGMT),
    ("GET", "/guardrails/{id}/assignments/keys"): Covered(_MGMT, lambda k: {"path": {"id": k.guardrail}}),
    ("POST", "/guardrails/{id}/assignments/keys"):
        Covered(_MGMT, lambda k: {"path": {"id": k.guardrail}, "body": {"key_hashes": [k.target]}}),
    ("POST", "/guardrails/{id}/assignments/keys/remove"):
        Covered(_MGMT, lambda k: {"path": {"id": k.guardrail}, "body": {"key_hashes": [k.target]}}),
}

_ORGANIZATION = "organizations and their members: a self-hosted gateway has keys, not users"
_ANALYTICS = "analytics queries: the ledger is read through /activity and /generation"
_IMAGES = "image generation: the catalog has no image models"
_NOT_IMPLEMENTED_GROUPS: list[tuple[str, list[str]]] = [
    (_ANALYTICS, ["GET /analytics/meta", "POST /analytics/query"]),
    ("speech: the catalog has no text-to-speech models", ["POST /audio/speech"]),
    ("transcription: the catalog has no speech-to-text models", ["POST /audio/transcriptions"]),
    ("OAuth PKCE: keys are created with the management key", ["POST /auth/keys", "POST /auth/keys/code"]),
    ("OpenRouter's own data sets: benchmarks, traffic classifications, rankings",
     ["GET /benchmarks", "GET /classifications/task", "GET /datasets/app-rankings", "GET /datasets/rankings-daily",
      "GET /datasets/session-cost"]),
    ("payments: credits are granted with the management key (POST /credits)", ["POST /credits/coinbase"]),
    ("BYOK: provider keys are the operator's, set in the environment",
     ["GET /byok", "POST /byok", "DELETE /byok/{id}", "GET /byok/{id}", "PATCH /byok/{id}"]),
    ("file storage: files travel inside requests",
     ["GET /files", "POST /files", "DELETE /files/{file_id}", "GET /files/{file_id}",
      "GET /files/{file_id}/content"]),
    (_ORGANIZATION,
     ["GET /guardrails/{id}/assignments/members", "POST /guardrails/{id}/assignments/members",
      "POST /guardrails/{id}/assignments/members/remove", "GET /guardrails/assignments/members",
      "GET /organization/members", "GET /scim/group-mappings", "POST /scim/group-mappings",
      "DELETE /scim/group-mappings/{id}", "GET /scim/group-mappings/{id}", "PATCH /scim/group-mappings/{id}",
      "GET /scim/groups", "GET /workspaces", "POST /workspaces", "DELETE /workspaces/{id}", "GET /workspaces/{id}",
      "PATCH /workspaces/{id}", "GET /workspaces/{id}/budgets", "DELETE /workspaces/{id}/budgets/{interval}",
      "GET /workspaces/{id}/budgets/{interval}", "PUT /workspaces/{id}/budgets/{interval}",
      "GET /workspaces/{id}/members", "POST /workspaces/{id}/members/add", "POST /workspaces/{id}/members/remove"]),
    (_IMAGES, ["POST /images", "GET /images/models", "GET /images/models/{author}/{slug}/endpoints"]),
    ("observability destinations: traces go to CROSSROADS_OTLP_ENDPOINT",
     ["GET /observability/destinations", "POST /observability/destinations", "DELETE /observability/destinations/{id}",
      "GET /observability/destinations/{id}", "PATCH /observability/destinations/{id}"]),
    ("video generation: the catalog has no video models",
     ["POST /videos", "GET /videos/{jobId}", "GET /videos/{jobId}/content", "GET /videos/models"]),
]
#: The spec's operations the gateway does not serve, each with the reason.
NOT_IMPLEMENTED: dict[tuple[str, str], str] = {
    (label.partition(" ")[0], label.partition(" ")[2]): reason
    for reason, labels in _NOT_IMPLEMENTED_GROUPS for label in labels}


def error_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 4xx is an error envelope with a message: OpenRouter's `{"error": {"code", "message"}}` with the
    reply's status as `code`; Anthropic's `{"type": "error", "error": {"type", "message"}}` for `/messages`;
    for `/responses`, OpenRouter's envelope with the Responses API's string codes (`invalid_prompt`, ...)."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"], body
    wire = COVERED[(case.method.upper(), case.operation.path)].wire
    if wire == "anthropic":
        assert body["type"] == "error" and isinstance(error["type"], str), body
    elif wire == "responses":
        assert isinstance(error["code"], str) and error["code"], body
    else:
        assert error["code"] == response.status_code, body
    return True


@dataclass
class Live:
    gateway: Gateway
    known: Known
    credentials: dict[Credential, str]


@contextlib.contextmanager
def gateway_thread(directory: Path) -> Iterator[Gateway]:
    """`open_gateway` on an event loop of its own thread: Schemathesis calls it synchronously."""
    loop = uvloop.new_event_loop()
    started: concurrent.futures.Future[tuple[Gateway, asyncio.Event]] = concurrent.futures.Future()

    async def serve() -> None:
        try:
            # Content logging on: `/generation/content` has something to answer.
            async with open_gateway(directory, env={"CROSSROADS_LOG_CONTENT": "on"}) as gateway:
                stop = asyncio.Event()
                started.set_result((gateway, stop))
                await stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="gateway")
    thread.start()
    try:
        gateway, stop = started.result(timeout=60)
        try:
            yield gateway
        finally:
            loop.call_soon_threadsafe(stop.set)
    finally:
        thread.join(timeout=30)
        loop.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with gateway_thread(tmp_path_factory.mktemp("schemathesis")) as gateway, \
            httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as admin:
        chat = httpx.post(f"{gateway.url}/chat/completions", headers=gateway.auth, timeout=30,
                          json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        preset = admin.post("/presets/schemathesis/chat/completions", json={"model": "openai/gpt-4o-mini",
                                                                             "temperature": 0.5})
        assert chat.status_code == 200 and preset.status_code == 200, (chat.text, preset.text)
        known = Known(admin, generation=chat.json()["id"], preset="schemathesis", guardrail="", target="")
        known.guardrail = known.rail()
        known.target = known.key()
        yield Live(gateway, known, {Credential.KEY: gateway.key, Credential.MANAGEMENT: ADMIN_KEY})


def _aimed(case: Case, aim: dict[str, dict[str, Any]]) -> None:
    case.path_parameters = {**(case.path_parameters or {}), **aim.get("path", {})}
    case.query = {**(case.query or {}), **aim.get("query", {})}
    if "body" in aim and isinstance(case.body, dict):
        case.body = {**case.body, **aim["body"]}


def _call(live: Live, operation: tuple[str, str], case: Case, aimed: bool) -> Response:
    """Send `case` with the operation's credential (pointed at real things if `aimed`) and run the checks."""
    covered = COVERED[operation]
    if aimed and covered.aim is not None:
        _aimed(case, covered.aim(live.known))
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {live.credentials[covered.credential]}"}
    checks = [check for check in (not_a_server_error, reply_conformance, error_conformance, error_envelope)
              if check not in covered.excluded]
    return case.call_and_validate(base_url=live.gateway.url, checks=checks, timeout=30)


_BOUNDED = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("operation", list(COVERED), ids=lambda o: f"{o[0]} {o[1]}")
def test_operation(live: Live, operation: tuple[str, str], mode: GenerationMode) -> None:
    method, path = operation

    @_BOUNDED
    @given(case=SCHEMA[path][method].as_strategy(mode), aimed=st.booleans())
    def run(case: Case, aimed: bool) -> None:
        _call(live, operation, case, aimed)

    run()


@pytest.mark.parametrize("operation", list(COVERED), ids=lambda o: f"{o[0]} {o[1]}")
def test_documented_examples(live: Live, operation: tuple[str, str]) -> None:
    """The spec's own example requests for the operation (its first few), pointed at real things: each passes
    the checks, and at least one is a success — so the conformance of 2xx replies is always exercised."""
    method, path = operation
    api_operation = SCHEMA[path][method]
    strategies = api_operation.get_strategies_from_examples()[:DOCUMENTED] or [api_operation.as_strategy()]
    statuses: list[int] = []

    @settings(_BOUNDED, max_examples=1)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        statuses.extend(_call(live, operation, data.draw(strategy), aimed=True).status_code
                        for strategy in strategies)

    run()
    assert any(200 <= status < 300 for status in statuses), statuses


def test_every_operation_is_covered_or_excluded() -> None:
    operations = {(method.upper(), path) for path, item in spec()["paths"].items() for method in item
                  if method in {"get", "post", "put", "patch", "delete"}}
    assert not set(COVERED) & set(NOT_IMPLEMENTED)
    assert operations == set(COVERED) | set(NOT_IMPLEMENTED)


@pytest.mark.parametrize("operation", list(NOT_IMPLEMENTED), ids=lambda o: f"{o[0]} {o[1]}")
def test_operations_not_implemented_answer_an_error(live: Live, operation: tuple[str, str]) -> None:
    """What the table says is missing is missing: a 404 in OpenRouter's envelope, not a 2xx or a 5xx."""
    method, path = operation
    url = live.gateway.url + path.replace("{", "").replace("}", "")
    response = httpx.request(method, url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, json={}, timeout=30)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == response.status_code
