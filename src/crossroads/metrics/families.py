"""The metric families `GET /metrics` exposes: one declarative table, built into `prometheus_client` metrics.

Names and labels follow Prometheus conventions (`_total` counters, base units: seconds, bytes) and, where
one exists, OpenTelemetry's semantic conventions for generative AI (metric `gen_ai.server.request.duration`
becomes `gen_ai_server_request_duration_seconds`, attribute `gen_ai.request.model` becomes the label
`gen_ai_request_model`; https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/). Histogram
buckets are the ones those conventions advise.

Label values are bounded: `api` is one of the inbound APIs, models and providers come from the catalog (a
request for a model the catalog lacks is refused before it has a model label), `status` is an HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Kind = Literal["counter", "gauge", "histogram"]
GaugeMode = Literal["livesum", "livemax", "liveall"]

#: The labels of everything measured per request.
REQUEST: Final = ("api", "gen_ai_request_model", "gen_ai_provider_name")

#: OpenTelemetry's advice for `gen_ai.server.request.duration` (seconds).
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: ... for `gen_ai.server.time_to_first_token` (seconds).
TTFT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: ... for `gen_ai.client.token.usage` (tokens).
TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


@dataclass(frozen=True, slots=True)
class Family:
    #: The name without the `_total` a counter gets on the wire.
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    #: How the gauges of several processes combine (prometheus_client's multiprocess modes; `live...`: only
    #: processes alive count).
    mode: GaugeMode = "livesum"


FAMILIES: Final = (
    Family("crossroads_requests", "counter",
           "Inference requests answered, by inbound API, model, provider and status (499: the client went "
           "away; refusals before routing have empty model and provider)", (*REQUEST, "status")),
    Family("gen_ai_server_request_duration_seconds", "histogram",
           "Time from a request's arrival to the end of its response", REQUEST, DURATION_BUCKETS),
    Family("gen_ai_server_time_to_first_token_seconds", "histogram",
           "Time from a request's arrival to the serving provider's first byte (requests a provider served)",
           REQUEST, TTFT_BUCKETS),
    Family("gen_ai_client_token_usage", "histogram",
           "Tokens per request a provider served, by type (input: prompt, output: completion); the sum is "
           "the tokens charged", (*REQUEST, "gen_ai_token_type"), TOKEN_BUCKETS),
    Family("crossroads_cost_usd", "counter", "What requests were charged, in USD", REQUEST),
    Family("crossroads_upstream_attempts", "counter",
           "Attempts at providers, by outcome as routing health counts them: success, failure, "
           "rate_limited, or not_counted (the caller's fault: 400, 413, 422)",
           ("gen_ai_provider_name", "gen_ai_request_model", "outcome")),
    Family("crossroads_limit_refusals", "counter",
           "Requests refused by a limit: rate (429: a key's or a free model's rate limit) or credit (402: a "
           "key's spend limit or the account's credits)", ("api", "limit")),
    Family("crossroads_requests_in_flight", "gauge", "Inference requests being served"),
    Family("crossroads_streams_open", "gauge", "Streamed responses under way"),
    Family("crossroads_spool_backlog_bytes", "gauge",
           "Bytes of generation records spooled and not yet stored in the database"),
    Family("crossroads_shipper_lag_seconds", "gauge",
           "Age of the oldest generation record not yet stored in the database (1 s resolution)",
           mode="livemax"),
    Family("process_resident_memory_bytes", "gauge", "Resident memory of each gateway process", mode="liveall"),
    Family("process_cpu_seconds", "counter", "CPU time (user and system) of the gateway processes"),
)


Metric = Counter | Gauge | Histogram


def build(registry: CollectorRegistry) -> dict[str, Metric]:
    """Every family as a prometheus_client metric registered with `registry`, by name."""
    built: dict[str, Metric] = {}
    for family in FAMILIES:
        metric: Metric
        if family.kind == "counter":
            metric = Counter(family.name, family.help, family.labels, registry=registry)
        elif family.kind == "gauge":
            metric = Gauge(family.name, family.help, family.labels, registry=registry,
                           multiprocess_mode=family.mode)
        else:
            metric = Histogram(family.name, family.help, family.labels, registry=registry, buckets=family.buckets)
        built[family.name] = metric
    return built


__all__ = ["DURATION_BUCKETS", "FAMILIES", "REQUEST", "TOKEN_BUCKETS", "TTFT_BUCKETS", "Family", "Metric", "build"]
