"""Traces of generations, exported over OTLP/HTTP by the shipper process — never on the request path.

The shipper (`ledger/shipper.py`) already reads every generation record to store it; once a batch is stored,
each record becomes one span for the generation and one child span per upstream attempt of its routing
trace, with start and end times taken from the record (the request's start, each attempt's offset and
duration), so tracing adds no work to requests. Spans follow OpenTelemetry's semantic conventions for
generative AI (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/); what they have no name
for (cost, time to first token, the routing trace) is under `crossroads.`.

Spans go through the SDK's batch span processor: a slow or absent collector delays or drops spans (the
exporter logs a warning), never the storing of records. Records re-read after a shipper restart are stored
once (by id) but may be traced twice.

Configured by the environment: `CROSSROADS_OTLP_ENDPOINT` (the collector's OTLP/HTTP base URL, e.g.
`http://collector:4318`; `/v1/traces` is appended) turns tracing on, and the SDK's standard variables apply
on top of it: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (a full URL, which wins), `OTEL_EXPORTER_OTLP_HEADERS`,
`..._TIMEOUT`, `..._COMPRESSION`, `..._CERTIFICATE`, `OTEL_SERVICE_NAME` (default `crossroads`),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`. `CROSSROADS_OTLP_CONTENT=on` adds the prompt and completion of
generations whose record carries them (`GenerationRecord.trace_content`), as the conventions' `gen_ai.input.messages`
and `gen_ai.output.messages`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from crossroads.storage.base import NANOS_PER_USD, GenerationRecord

log = logging.getLogger("crossroads.ledger")

ENDPOINT_ENV: Final = "CROSSROADS_OTLP_ENDPOINT"
CONTENT_ENV: Final = "CROSSROADS_OTLP_CONTENT"
TRACES_PATH: Final = "/v1/traces"
DEFAULT_SERVICE: Final = "crossroads"
#: The operation of records spooled before they named theirs.
OPERATION: Final = "chat"
_NS_PER_MS: Final = 1_000_000
_NS_PER_S: Final = 1_000_000_000


def traces_url(base: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base URL (as the SDK does with OTEL_EXPORTER_OTLP_ENDPOINT)."""
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


class Traces:
    """Makes the spans of stored generation records and hands them to a batch span processor."""

    def __init__(self, provider: TracerProvider, content: bool) -> None:
        self._provider = provider
        self._tracer: Tracer = provider.get_tracer("crossroads.ledger")
        self.content = content

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Traces | None:
        """Tracing as the environment configures it; None when `CROSSROADS_OTLP_ENDPOINT` is not set."""
        base = environ.get(ENDPOINT_ENV)
        if not base:
            return None
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or traces_url(base)
        resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider, environ.get(CONTENT_ENV) == "on")

    def export(self, records: Iterable[GenerationRecord]) -> None:
        """Queue the spans of `records` for export. Never raises: a record that cannot be traced is logged."""
        for record in records:
            try:
                self._spans(record)
            except Exception:
                log.warning("traces: generation %s could not be traced", record.id, exc_info=True)

    def close(self, within: float = 5.0) -> None:
        """Export what is queued, waiting at most `within` seconds for the collector, then stop."""
        # The SDK's own shutdown may wait on a slow collector for half a minute; the process does not.
        closing = threading.Thread(target=self._provider.shutdown, name="crossroads-traces-close", daemon=True)
        closing.start()
        closing.join(within)
        if closing.is_alive():
            log.warning("traces: the collector did not take the last spans within %.0fs; they are dropped", within)

    def _spans(self, record: GenerationRecord) -> None:
        attempts = _attempts(record)
        start = int(record.created_at * _NS_PER_S)
        request_model = attempts[0].get("model") if attempts else record.model
        operation = record.operation or OPERATION
        parent = self._tracer.start_span(
            f"{operation} {request_model}", kind=SpanKind.SERVER, start_time=start,
            attributes=_generation_attributes(record, operation, request_model, len(attempts), self.content))
        if record.status >= 400:
            parent.set_status(Status(StatusCode.ERROR, record.error_message))
        context = trace.set_span_in_context(parent)
        end = start + (record.latency_ms or 0) * _NS_PER_MS
        at = start
        for number, attempt in enumerate(attempts, 1):
            offset = attempt.get("start_ms")
            # Records spooled before attempts carried their offset: each attempt began where the last ended.
            begin = start + int(offset) * _NS_PER_MS if isinstance(offset, int) else at
            at = begin + int(attempt.get("latency_ms") or 0) * _NS_PER_MS
            end = max(end, at)
            child = self._tracer.start_span(
                f"{operation} {attempt.get('model')}", context=context, kind=SpanKind.CLIENT, start_time=begin,
                attributes=_attempt_attributes(attempt, operation, number))
            status = attempt.get("status")
            if isinstance(status, int) and status >= 400:
                child.set_status(Status(StatusCode.ERROR, attempt.get("error_type")))
            child.end(end_time=at)
        parent.end(end_time=end)


def _attempts(record: GenerationRecord) -> list[dict[str, Any]]:
    if not record.trace:
        return []
    value = orjson.loads(record.trace)
    return [a for a in value if isinstance(a, dict)] if isinstance(value, list) else []


def _generation_attributes(record: GenerationRecord, operation: str, request_model: Any, attempts: int,
                           content: bool) -> dict[str, Any]:
    served = record.provider_name is not None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": str(request_model),
        "gen_ai.response.id": record.id,
        "gen_ai.usage.input_tokens": record.tokens_prompt,
        "gen_ai.usage.output_tokens": record.tokens_completion,
        "crossroads.cost": record.cost_nanos / NANOS_PER_USD,
        "crossroads.status": record.status,
        "crossroads.streamed": record.streamed,
        "crossroads.attempts": attempts,
        "crossroads.usage_estimated": record.usage_estimated,
    }
    if served:
        attributes["gen_ai.response.model"] = record.model
        attributes["gen_ai.provider.name"] = record.provider_name
        attributes["gen_ai.system"] = record.provider_name  # the attribute's name before semconv 1.37
        if record.latency_ms is not None:
            attributes["crossroads.time_to_first_token"] = record.latency_ms / 1000
            if record.streamed:
                attributes["gen_ai.response.time_to_first_chunk"] = record.latency_ms / 1000
    optional = {
        "gen_ai.response.finish_reasons": [record.finish_reason] if record.finish_reason else None,
        "gen_ai.conversation.id": record.session_id,
        "gen_ai.usage.reasoning.output_tokens": record.tokens_reasoning,
        "gen_ai.usage.cache_read.input_tokens": record.tokens_cached,
        "gen_ai.usage.cache_creation.input_tokens": record.tokens_cache_write,
        "crossroads.upstream_id": record.upstream_id,
        "crossroads.endpoint": record.endpoint,
        "crossroads.app": record.app_title,
        "crossroads.cancelled": record.cancelled or None,
        "error.type": _error_type(record),
    }
    attributes.update((k, v) for k, v in optional.items() if v is not None)
    if content and record.trace_content:
        kept = orjson.loads(record.trace_content)
        output = [{**m, "finish_reason": record.finish_reason or "error"} for m in _messages(kept.get("output"))]
        attributes["gen_ai.input.messages"] = orjson.dumps(_messages(kept.get("input"))).decode()
        attributes["gen_ai.output.messages"] = orjson.dumps(output).decode()
    return attributes


def _messages(messages: Any) -> list[dict[str, Any]]:
    """OpenAI-shaped chat messages as the conventions' messages: a role and typed parts. Media (images,
    files, audio) are named by their kind only, never exported."""
    out = []
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        parts: list[dict[str, Any]] = []
        if message.get("role") == "tool":
            parts.append({"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content})
        elif isinstance(content, str):
            if content:
                parts.append({"type": "text", "content": content})
        elif isinstance(content, list):
            for item in content:
                if isinstance(item, dict) and item.get("type") == "text":
                    parts.append({"type": "text", "content": item.get("text")})
                elif isinstance(item, dict):
                    parts.append({"type": str(item.get("type"))})
        if isinstance(message.get("reasoning"), str):
            parts.insert(0, {"type": "reasoning", "content": message["reasoning"]})
        for call in message.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            function = call.get("function") or {}
            parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments")})
        out.append({"role": message.get("role"), "parts": parts})
    return out


def _attempt_attributes(attempt: dict[str, Any], operation: str, number: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": str(attempt.get("model")),
        "gen_ai.provider.name": str(attempt.get("provider")),
        "gen_ai.system": str(attempt.get("provider")),
        "crossroads.attempt": number,
        "crossroads.endpoint": str(attempt.get("endpoint")),
    }
    status = attempt.get("status")
    if isinstance(status, int):
        attributes["http.response.status_code"] = status
    if attempt.get("error_type"):
        attributes["error.type"] = str(attempt["error_type"])
    return attributes


def _error_type(record: GenerationRecord) -> str | None:
    if record.cancelled:
        return "cancelled"
    return str(record.status) if record.status >= 400 else None


__all__ = ["CONTENT_ENV", "ENDPOINT_ENV", "Traces", "traces_url"]
