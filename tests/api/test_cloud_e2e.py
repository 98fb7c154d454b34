"""End to end through the clouds: an unchanged `openai` SDK client → Crossroads (the built-in catalog's
`amazon-bedrock`, `google-vertex` and `azure` providers) → a local front door that checks what the cloud
checks (a SigV4 signature recomputed with botocore; a bearer token issued by a fake Google token endpoint
for a test service-account key, or by a fake Entra ID to an App Service managed identity) → the simulator
speaking the cloud's wire format (Bedrock's event streams, Vertex's publisher URLs, Azure's deployments),
and back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from botocore.credentials import ReadOnlyCredentials

from crossroads.sim import SimServer
from tests.api.test_anthropic_e2e import WEATHER, ask
from tests.cloud_fakes import (
    EntraID,
    TokenEndpoint,
    aws_environment,
    bearer_check,
    entra_check,
    front_door,
    sigv4_check,
)
from tests.conftest import Gateway, GatewayFactory
from tests.providers.auth.test_azure import AZURE_VARIABLES

CLAUDE = "anthropic/claude-sonnet-4.5"
BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_CLAUDE = "claude-sonnet-4-5@20250929"
CREDENTIALS = ReadOnlyCredentials("AKIDCROSSROADSTEST01", "test/secret+key", "test-session-token")
REGION = "us-west-2"
PROJECT = "test-project"
VERTEX_REGION = "europe-west1"
AZURE_KEY = "azure-test-key"
#: USD per token of the catalog's endpoints used here, by model and provider. Claude Sonnet 4.5 costs 10%
#: more on a Bedrock geographic profile or a Vertex regional endpoint than from Anthropic.
PRICES = {(CLAUDE, "Anthropic"): (Decimal("0.000003"), Decimal("0.000015")),
          (CLAUDE, "Amazon Bedrock"): (Decimal("0.0000033"), Decimal("0.0000165")),
          (CLAUDE, "Google Vertex"): (Decimal("0.0000033"), Decimal("0.0000165")),
          ("meta-llama/llama-3.3-70b-instruct", "Amazon Bedrock"): (Decimal("0.00000072"), Decimal("0.00000072")),
          ("google/gemini-2.5-flash", "Google Vertex"): (Decimal("0.0000003"), Decimal("0.0000025")),
          ("openai/gpt-4.1-mini", "Azure"): (Decimal("0.0000004"), Decimal("0.0000016"))}


def only(slug: str) -> dict[str, Any]:
    return {"provider": {"only": [slug], "allow_fallbacks": False}}


def assert_cost(model: str, turn: dict[str, Any]) -> None:
    prompt, completion = PRICES[model, turn["provider"]]
    usage = turn["usage"]
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    cost = Decimal(str((usage.model_extra or {})["cost"]))
    assert cost == usage.prompt_tokens * prompt + usage.completion_tokens * completion


@pytest.fixture
async def bedrock(start_gateway: GatewayFactory, sim: SimServer, monkeypatch: pytest.MonkeyPatch,
                  tmp_path: Path) -> AsyncIterator[Gateway]:
    for name, value in aws_environment(CREDENTIALS, tmp_path).items():
        monkeypatch.setenv(name, value)
    async with front_door(sim.url, sigv4_check(CREDENTIALS, REGION)) as url:
        env = {"AWS_REGION": REGION, "CROSSROADS_PROVIDER_AMAZON_BEDROCK_BASE_URL": url,
               "ANTHROPIC_API_KEY": "sk-ant-test", "CROSSROADS_PROVIDER_ANTHROPIC_BASE_URL": sim.url}
        async with start_gateway(env=env, simulator="off") as gateway:
            yield gateway


@pytest.fixture
async def vertex(start_gateway: GatewayFactory, sim: SimServer, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> AsyncIterator[tuple[Gateway, TokenEndpoint]]:
    async with TokenEndpoint().running() as tokens:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tokens.service_account(tmp_path / "sa.json")))
        async with front_door(sim.url, bearer_check(tokens)) as url:
            base = f"{url}/v1/projects/{{project}}/locations/{{region}}"
            env = {"GOOGLE_CLOUD_PROJECT": PROJECT, "CROSSROADS_PROVIDER_GOOGLE_VERTEX_REGION": VERTEX_REGION,
                   "CROSSROADS_PROVIDER_GOOGLE_VERTEX_BASE_URL": base}
            async with start_gateway(env=env, simulator="off") as gateway:
                yield gateway, tokens


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
async def test_bedrock_claude_signed_with_sigv4(bedrock: Gateway, sim: SimServer, stream: bool) -> None:
    async with client(bedrock) as c:
        turn = await ask(c, stream, model=CLAUDE, messages=[{"role": "user", "content": "Hello there"}],
                         max_tokens=300, extra_body=only("amazon-bedrock"))
    assert turn["provider"] == "Amazon Bedrock" and turn["finish"] == "stop"
    assert turn["message"]["content"]
    assert_cost(CLAUDE, turn)
    recorded = sim.requests[-1]
    method = "invoke-with-response-stream" if stream else "invoke"
    assert recorded.path == f"/model/{BEDROCK_CLAUDE}/{method}"
    assert recorded.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={CREDENTIALS.access_key}/")
    assert recorded.headers["x-amz-security-token"] == CREDENTIALS.token
    assert recorded.body["anthropic_version"] == "bedrock-2023-05-31"
    assert recorded.body["max_tokens"] == 300
    assert "model" not in recorded.body and "stream" not in recorded.body


@pytest.mark.parametrize("stream", [False, True])
async def test_bedrock_tool_call(bedrock: Gateway, sim: SimServer, stream: bool) -> None:
    async with client(bedrock) as c:
        turn = await ask(c, stream, model=CLAUDE, tools=[WEATHER], max_tokens=300, extra_body=only("amazon-bedrock"),
                         messages=[{"role": "user", "content": "Weather in Paris? Use get_weather."}])
    assert turn["finish"] == "tool_calls" and turn["provider"] == "Amazon Bedrock"
    call = turn["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and "city" in call["function"]["arguments"]
    assert sim.requests[-1].body["tools"][0]["name"] == "get_weather"


@pytest.mark.parametrize("stream", [False, True])
async def test_bedrock_converse_for_other_models(bedrock: Gateway, sim: SimServer, stream: bool) -> None:
    model = "meta-llama/llama-3.3-70b-instruct"
    async with client(bedrock) as c:
        turn = await ask(c, stream, model=model, tools=[WEATHER], max_tokens=300, temperature=0.5,
                         extra_body=only("amazon-bedrock"),
                         messages=[{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "Weather in Oslo? Use get_weather."}])
        assert turn["provider"] == "Amazon Bedrock" and turn["finish"] == "tool_calls"
        call = turn["message"]["tool_calls"][0]
        assert call["function"]["name"] == "get_weather"
        assert_cost(model, turn)
        recorded = sim.requests[-1]
        method = "converse-stream" if stream else "converse"
        assert recorded.path == f"/model/us.meta.llama3-3-70b-instruct-v1:0/{method}"
        assert recorded.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
        assert recorded.body["system"] == [{"text": "Be brief."}]
        assert recorded.body["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.5}
        assert recorded.body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
        # The tool's result goes back and the model answers from it.
        answer = await ask(c, stream, model=model, tools=[WEATHER], max_tokens=300, extra_body=only("amazon-bedrock"),
                           messages=[{"role": "user", "content": "Weather in Oslo? Use get_weather."},
                                     turn["message"], {"role": "tool", "tool_call_id": call["id"], "content": "Snow"}])
    assert "Snow" in answer["message"]["content"] and answer["finish"] == "stop"
    assert sim.requests[-1].body["messages"][-1]["content"][0]["toolResult"]["toolUseId"] == call["id"]


@pytest.mark.parametrize("stream", [False, True])
async def test_failing_bedrock_falls_back_to_anthropic(bedrock: Gateway, sim: SimServer, stream: bool) -> None:
    sim.set_behaviour(BEDROCK_CLAUDE, "status=429")
    async with client(bedrock) as c:
        turn = await ask(c, stream, model=CLAUDE, messages=[{"role": "user", "content": "Hello"}], max_tokens=200,
                         extra_body={"provider": {"order": ["amazon-bedrock", "anthropic"]}})
    assert turn["provider"] == "Anthropic"
    assert_cost(CLAUDE, turn)
    assert [r.path for r in sim.requests][-2:] == [
        f"/model/{BEDROCK_CLAUDE}/{'invoke-with-response-stream' if stream else 'invoke'}", "/v1/messages"]


async def test_bedrock_stream_error_mid_stream_ends_in_band(bedrock: Gateway, sim: SimServer) -> None:
    sim.set_behaviour(BEDROCK_CLAUDE, "error_after=2;tokens=20;tps=50")
    async with client(bedrock) as c:
        stream = await c.chat.completions.create(model=CLAUDE, stream=True, max_tokens=200,
                                                 messages=[{"role": "user", "content": "Hello"}],
                                                 extra_body=only("amazon-bedrock"))
        chunks: list[Any] = []

        async def read() -> None:
            async for chunk in stream:
                chunks.append(chunk)

        with pytest.raises(openai.APIError, match="Bedrock is unable to process your request"):
            await read()
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # content came first


@pytest.mark.parametrize("stream", [False, True])
async def test_vertex_claude_with_a_service_account_token(
        vertex: tuple[Gateway, TokenEndpoint], sim: SimServer, stream: bool) -> None:
    gw, tokens = vertex
    async with client(gw) as c:
        turn = await ask(c, stream, model=CLAUDE, tools=[WEATHER], max_tokens=300, extra_body=only("google-vertex"),
                         messages=[{"role": "user", "content": "Weather in Rome? Use get_weather."}])
    assert turn["provider"] == "Google Vertex" and turn["finish"] == "tool_calls"
    assert_cost(CLAUDE, turn)
    recorded = sim.requests[-1]
    method = "streamRawPredict" if stream else "rawPredict"
    assert recorded.path == (f"/v1/projects/{PROJECT}/locations/{VERTEX_REGION}/publishers/anthropic/models/"
                             f"{VERTEX_CLAUDE}:{method}")
    assert recorded.headers["authorization"] == f"Bearer {tokens.issued[0]}"
    assert recorded.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in recorded.body
    assert "x-api-key" not in recorded.headers and "anthropic-version" not in recorded.headers


@pytest.mark.parametrize("stream", [False, True])
async def test_vertex_gemini(vertex: tuple[Gateway, TokenEndpoint], sim: SimServer, stream: bool) -> None:
    gw, tokens = vertex
    model = "google/gemini-2.5-flash"
    async with client(gw) as c:
        for _ in range(2):
            turn = await ask(c, stream, model=model, messages=[{"role": "user", "content": "Hi"}],
                             extra_body=only("google-vertex"))
            assert turn["provider"] == "Google Vertex" and turn["message"]["content"]
            assert_cost(model, turn)
    assert len(tokens.issued) == 1  # the token is cached
    recorded = sim.requests[-1]
    method = "streamGenerateContent" if stream else "generateContent"
    assert recorded.path == (f"/v1/projects/{PROJECT}/locations/{VERTEX_REGION}/publishers/google/models/"
                             f"gemini-2.5-flash:{method}")
    assert recorded.query == ("alt=sse" if stream else "")
    assert "x-goog-api-key" not in recorded.headers


@pytest.mark.parametrize(("version", "path", "query"), [
    ("2024-10-21", "/openai/deployments/gpt-4.1-mini/chat/completions", "api-version=2024-10-21"),
    ("v1", "/openai/v1/chat/completions", ""),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_azure_deployment(start_gateway: GatewayFactory, sim: SimServer, stream: bool, version: str, path: str,
                                query: str) -> None:
    env = {"AZURE_OPENAI_API_KEY": AZURE_KEY, "CROSSROADS_PROVIDER_AZURE_BASE_URL": sim.url,
           "OPENAI_API_VERSION": version}
    model = "openai/gpt-4.1-mini"
    async with start_gateway(env=env, simulator="off") as gw, client(gw) as c:
        turn = await ask(c, stream, model=model, messages=[{"role": "user", "content": "Hi"}], extra_body=only("azure"))
    assert turn["provider"] == "Azure" and turn["message"]["content"]
    assert_cost(model, turn)
    recorded = sim.requests[-1]
    assert (recorded.path, recorded.query) == (path, query)
    assert recorded.headers["api-key"] == AZURE_KEY and "authorization" not in recorded.headers
    assert recorded.body["model"] == "gpt-4.1-mini"


@pytest.fixture
async def entra(start_gateway: GatewayFactory, sim: SimServer, monkeypatch: pytest.MonkeyPatch,
                tmp_path: Path) -> AsyncIterator[tuple[EntraID, str]]:
    """Entra ID, with this process as an App Service app with a managed identity, and Azure OpenAI behind a
    front door that accepts only the tokens it issued: (the fake Entra ID, the front door's URL)."""
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    async with EntraID(tmp_path).running() as fake, front_door(sim.url, entra_check(fake)) as url:
        for name, value in fake.managed_identity().items():
            monkeypatch.setenv(name, value)
        yield fake, url


def entra_gateway(start_gateway: GatewayFactory, sim: SimServer, url: str, **env: str) -> Any:
    """A gateway with Azure at the front door, and OpenAI (the simulator) to fall back on."""
    return start_gateway(env={"CROSSROADS_PROVIDER_AZURE_BASE_URL": url, "OPENAI_API_KEY": "sk-test",
                              "CROSSROADS_PROVIDER_OPENAI_BASE_URL": f"{sim.url}/v1", **env}, simulator="off")


@pytest.mark.parametrize("stream", [False, True])
async def test_azure_with_an_entra_id_token(start_gateway: GatewayFactory, sim: SimServer,
                                            entra: tuple[EntraID, str], stream: bool) -> None:
    fake, url = entra
    model = "openai/gpt-4.1-mini"
    # A key is configured, but the auth option asks for Entra ID: the key is not sent.
    async with entra_gateway(start_gateway, sim, url, AZURE_OPENAI_API_KEY=AZURE_KEY,
                             CROSSROADS_PROVIDER_AZURE_AUTH="entra") as gw, client(gw) as c:
        for _ in range(2):
            turn = await ask(c, stream, model=model, messages=[{"role": "user", "content": "Hi"}],
                             extra_body=only("azure"))
            assert turn["provider"] == "Azure" and turn["message"]["content"]
            assert_cost(model, turn)
        assert not fake.connections[0].is_closing()  # kept alive while the gateway runs
    (token,) = fake.issued  # one token for both requests
    assert fake.requests == ["managed_identity"]
    await asyncio.sleep(0.05)
    assert fake.connections[0].is_closing()  # the credential was closed with the gateway
    recorded = sim.requests[-1]
    assert recorded.path == "/openai/deployments/gpt-4.1-mini/chat/completions"
    assert recorded.headers["authorization"] == f"Bearer {token}" and "api-key" not in recorded.headers


@pytest.mark.parametrize("stream", [False, True])
async def test_azure_without_a_token_falls_back(start_gateway: GatewayFactory, sim: SimServer,
                                               entra: tuple[EntraID, str], stream: bool) -> None:
    fake, url = entra
    fake.identity_header = "not-what-app-service-gave"  # the managed-identity endpoint refuses the app
    model = "openai/gpt-4.1-mini"
    async with entra_gateway(start_gateway, sim, url) as gw, client(gw) as c:
        turn = await ask(c, stream, model=model, messages=[{"role": "user", "content": "Hi"}],
                         extra_body={"provider": {"order": ["azure", "openai"]}})
        assert turn["provider"] == "OpenAI" and turn["message"]["content"]
        assert sim.requests[-1].path == "/v1/chat/completions"  # Azure was never sent the request
        with pytest.raises(openai.APIStatusError) as caught:
            await c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}],
                                            stream=stream, extra_body=only("azure"))
    assert fake.requests == ["managed_identity"] and not fake.issued  # the failure is held a few seconds
    error = caught.value
    body: Any = error.body
    # A provider unavailable (502) is a transient failure: with no other endpoint to try, 503.
    assert error.status_code == 503 and body["code"] == 503
    assert body["message"].startswith("No Microsoft Entra ID token for Azure: DefaultAzureCredential failed")
    assert body["metadata"]["provider_name"] == "Azure"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_token_azure_refuses_falls_back(start_gateway: GatewayFactory, sim: SimServer,
                                                entra: tuple[EntraID, str], stream: bool) -> None:
    fake, url = entra
    model = "openai/gpt-4.1-mini"
    order = {"provider": {"order": ["azure", "openai"]}}
    async with entra_gateway(start_gateway, sim, url) as gw, client(gw) as c:
        first = await ask(c, stream, model=model, messages=[{"role": "user", "content": "Hi"}], extra_body=order)
        assert first["provider"] == "Azure"
        fake.revoke()  # Azure no longer accepts the token the gateway holds
        turn = await ask(c, stream, model=model, messages=[{"role": "user", "content": "Hi"}], extra_body=order)
        assert turn["provider"] == "OpenAI" and turn["message"]["content"]
        with pytest.raises(openai.APIStatusError) as caught:
            await c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}],
                                            stream=stream, extra_body=only("azure"))
    body: Any = caught.value.body
    assert caught.value.status_code == 502 and body["code"] == 502
    assert body["message"].startswith("Azure refused the gateway's credentials (HTTP 401): Unauthorized. Access "
                                      "token is missing, invalid")
    assert body["metadata"]["provider_name"] == "Azure"
