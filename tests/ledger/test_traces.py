"""Traces of generations over OTLP/HTTP: a collector of a few lines (aiohttp, decoding the protobuf with
`opentelemetry-proto`) receives the spans the shipper makes from the records it stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog

PROMPT = "Name a lighthouse keeper"
MESSAGES = [{"role": "user", "content": PROMPT}]
FALLBACK = {"order": ["alpha", "beta"]}


class Collector:
    """An OTLP/HTTP trace receiver: `POST /v1/traces` with an `ExportTraceServiceRequest`."""

    def __init__(self, stall: bool = False) -> None:
        self.spans: list[Span] = []
        self.resources: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.stall = stall
        self.release = asyncio.Event()
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if self.stall:  # a collector that never answers (until the test ends)
            await self.release.wait()
        message = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in message.resource_spans:
            self.resources.append(attributes_of(resource_spans.resource.attributes))
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def generation(self, generation_id: str) -> Span | None:
        return next((s for s in self.spans if attributes_of(s.attributes).get("gen_ai.response.id") == generation_id),
                    None)

    def children(self, parent: Span) -> list[Span]:
        children = [s for s in self.spans if s.parent_span_id == parent.span_id and s.trace_id == parent.trace_id]
        return sorted(children, key=lambda s: attributes_of(s.attributes)["crossroads.attempt"])

    async def wait_for(self, *generation_ids: str, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while not all(self.generation(g) for g in generation_ids):
            assert time.monotonic() < deadline, "the spans never arrived"
            await asyncio.sleep(0.05)


def attributes_of(values: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in values}


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    async for value in _collector(stall=False):
        yield value


async def _collector(stall: bool) -> AsyncIterator[Collector]:
    value = Collector(stall)
    app = web.Application()
    app.router.add_post("/v1/traces", value.receive)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    value.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield value
    finally:
        value.release.set()
        await runner.cleanup()


def catalog(sim: SimServer) -> str:
    return upstream_catalog(sim.url, {
        "test/model": [{"provider": "alpha", "upstream_model": "a#status=503"},
                       {"provider": "beta", "upstream_model": "b"}],
        "test/steady": [{"provider": "beta", "upstream_model": "steady"}],
    }, providers=("alpha", "beta"))


def tracing(collector: Collector, **more: str) -> dict[str, str]:
    return {**provider_keys("alpha", "beta"), "CROSSROADS_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "50", **more}


async def chat(gw: Gateway, **body: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession(headers=gw.auth) as http, \
            http.post(f"{gw.url}/chat/completions", json={"messages": MESSAGES, **body}) as resp:
        assert resp.status == 200, await resp.text()
        if not body.get("stream"):
            reply: dict[str, Any] = await resp.json()
            return reply
        chunks = [orjson.loads(line[6:]) async for line in resp.content
                  if line.startswith(b"data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return {"id": chunks[0]["id"], "usage": chunks[-1]["usage"], "text": text}


async def test_a_span_per_generation_and_a_child_per_attempt(start_gateway: GatewayFactory, sim: SimServer,
                                                             collector: Collector) -> None:
    env = tracing(collector, OTEL_SERVICE_NAME="crossroads-test", OTEL_EXPORTER_OTLP_HEADERS="x-tenant=blue")
    before = time.time_ns()
    async with start_gateway(env=env, catalog=catalog(sim)) as gw:
        plain = await chat(gw, model="test/steady")
        stream = await chat(gw, model="test/steady", stream=True)
        fallback = await chat(gw, model="test/model", provider=FALLBACK)
        await collector.wait_for(plain["id"], stream["id"], fallback["id"])
    after = time.time_ns()
    assert {r.get("service.name") for r in collector.resources} == {"crossroads-test"}
    assert all(h.get("x-tenant") == "blue" for h in collector.headers)

    for reply, streamed in ((plain, False), (stream, True)):
        span = collector.generation(reply["id"])
        assert span is not None
        attributes = attributes_of(span.attributes)
        assert span.name == "chat test/steady" and span.kind == Span.SPAN_KIND_SERVER
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"] == "test/steady"
        assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "Beta"
        assert attributes["gen_ai.usage.input_tokens"] == reply["usage"]["prompt_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] == reply["usage"]["completion_tokens"] > 0
        assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
        assert attributes["crossroads.cost"] == pytest.approx(reply["usage"]["cost"]) and reply["usage"]["cost"] > 0
        assert 0 <= attributes["crossroads.time_to_first_token"] < 60
        assert attributes["crossroads.streamed"] is streamed
        assert attributes.get("gen_ai.response.time_to_first_chunk") == (
            attributes["crossroads.time_to_first_token"] if streamed else None)
        assert attributes["crossroads.attempts"] == 1
        assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes
        (child,) = collector.children(span)
        assert child.kind == Span.SPAN_KIND_CLIENT
        assert attributes_of(child.attributes)["http.response.status_code"] == 200
        assert before <= span.start_time_unix_nano <= child.start_time_unix_nano <= child.end_time_unix_nano
        assert child.end_time_unix_nano <= span.end_time_unix_nano <= after + 50_000_000

    span = collector.generation(fallback["id"])
    assert span is not None
    attributes = attributes_of(span.attributes)
    assert attributes["crossroads.attempts"] == 2
    assert attributes["gen_ai.request.model"] == "test/model" and attributes["gen_ai.provider.name"] == "Beta"
    failed, served = collector.children(span)
    first, second = attributes_of(failed.attributes), attributes_of(served.attributes)
    assert (first["gen_ai.provider.name"], first["http.response.status_code"]) == ("Alpha", 503)
    assert first["error.type"] and failed.status.code == Status.STATUS_CODE_ERROR
    assert (second["gen_ai.provider.name"], second["http.response.status_code"]) == ("Beta", 200)
    assert "error.type" not in second and served.status.code != Status.STATUS_CODE_ERROR
    assert span.start_time_unix_nano <= failed.start_time_unix_nano <= failed.end_time_unix_nano
    assert failed.end_time_unix_nano <= served.start_time_unix_nano <= served.end_time_unix_nano
    assert served.end_time_unix_nano <= span.end_time_unix_nano
    assert all(s.trace_id == span.trace_id for s in (failed, served))
    assert len({s.trace_id for s in collector.spans}) == 3  # one trace per generation


async def test_content_goes_only_with_the_switch_on(start_gateway: GatewayFactory, sim: SimServer,
                                                    collector: Collector) -> None:
    async with start_gateway(env=tracing(collector, CROSSROADS_OTLP_CONTENT="on"), catalog=catalog(sim)) as gw:
        plain = await chat(gw, model="test/steady")
        plain["text"] = plain["choices"][0]["message"]["content"]
        stream = await chat(gw, model="test/steady", stream=True)
        fallback = await chat(gw, model="test/model", provider=FALLBACK)
        fallback["text"] = fallback["choices"][0]["message"]["content"]
        await collector.wait_for(plain["id"], stream["id"], fallback["id"])
    for reply in (plain, stream, fallback):
        assert reply["text"]
        span = collector.generation(reply["id"])
        assert span is not None
        attributes = attributes_of(span.attributes)
        assert orjson.loads(attributes["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
        assert orjson.loads(attributes["gen_ai.output.messages"]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": reply["text"]}], "finish_reason": "stop"}]
        assert all("gen_ai.input.messages" not in attributes_of(c.attributes) for c in collector.children(span))


async def test_each_api_names_its_operation(start_gateway: GatewayFactory, collector: Collector) -> None:
    env = {"CROSSROADS_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    async with start_gateway(env=env, simulator="on") as gw, aiohttp.ClientSession(headers=gw.auth) as http:
        ids = {}
        for operation, path, body in (
                ("chat", "chat/completions", {"model": "openai/gpt-4o", "messages": MESSAGES}),
                ("text_completion", "completions", {"model": "openai/gpt-4o", "prompt": PROMPT}),
                ("embeddings", "embeddings", {"model": "openai/text-embedding-3-small", "input": [PROMPT]})):
            async with http.post(f"{gw.url}/{path}", json=body) as resp:
                assert resp.status == 200, await resp.text()
                ids[operation] = (body["model"], resp.headers.get("X-Generation-Id") or (await resp.json())["id"])
        await collector.wait_for(*(generation_id for _, generation_id in ids.values()))
    for operation, (model, generation_id) in ids.items():
        span = collector.generation(generation_id)
        assert span is not None
        assert span.name == f"{operation} {model}"
        assert attributes_of(span.attributes)["gen_ai.operation.name"] == operation
        (attempt,) = collector.children(span)
        assert attempt.name == f"{operation} {model}"
        assert attributes_of(attempt.attributes)["gen_ai.operation.name"] == operation


async def test_a_stalled_collector_never_holds_up_the_ledger(start_gateway: GatewayFactory, sim: SimServer) -> None:
    async for stalled in _collector(stall=True):
        async with start_gateway(env=tracing(stalled), catalog=catalog(sim)) as gw:
            ids = [(await chat(gw, model="test/steady"))["id"] for _ in range(3)]
            await gw.services.ledger.flush()
            for generation_id in ids:
                assert await gw.services.store.get_generation(generation_id) is not None
            deadline = time.monotonic() + 10
            while not stalled.headers:  # the exporter did try the collector
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            # An export hangs on the collector now (it never answers); records are stored all the same.
            ids.append((await chat(gw, model="test/steady"))["id"])
            await gw.services.ledger.flush()
            assert await gw.services.store.get_generation(ids[-1]) is not None


async def test_an_unreachable_collector_loses_no_record(start_gateway: GatewayFactory, sim: SimServer) -> None:
    env = {**provider_keys("alpha", "beta"), "OTEL_BSP_SCHEDULE_DELAY": "50",
           "CROSSROADS_OTLP_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens on port 9
    async with start_gateway(env=env, catalog=catalog(sim)) as gw:
        ids = [(await chat(gw, model="test/model", provider=FALLBACK))["id"] for _ in range(3)]
        await asyncio.sleep(0.3)  # exports have been tried, and failed
        ids.append((await chat(gw, model="test/steady", stream=True))["id"])
        await gw.services.ledger.flush()
        for generation_id in ids:
            assert await gw.services.store.get_generation(generation_id) is not None
