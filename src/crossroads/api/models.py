"""The catalog, as OpenRouter publishes it: `/models`, `/models/count`, `/model/{author}/{slug}`,
`/models/{author}/{slug}/endpoints` and `/providers`.

`supported_parameters` come from the adapters' parameter tables (`Adapter.supported_parameters`), never from
hand-written lists; endpoint `status`, uptime, latency and throughput come from live health statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from crossroads.api.render import json_response
from crossroads.catalog.types import Catalog, Endpoint, Model
from crossroads.errors import InvalidParameter, NotFound
from crossroads.providers.base import Adapter
from crossroads.routing.health import Health
from crossroads.routing.plan import Planner
from crossroads.schema.chat import PUBLISHED_PARAMETERS

#: OpenRouter's endpoint `status`: 0 normal; negatives are degraded or down. We use -1 (degraded: recent
#: failures), -2 (not configured: no key / base URL), -3 (no adapter for its wire format), -5 (down).
STATUS_OK, STATUS_DEGRADED, STATUS_UNCONFIGURED, STATUS_NO_ADAPTER, STATUS_DOWN = 0, -1, -2, -3, -5



class ModelsAPI:
    def __init__(self, catalog: Catalog, adapters: Mapping[str, Adapter], health: Health, planner: Planner) -> None:
        self.catalog = catalog
        self.adapters = adapters
        self.health = health
        self.planner = planner

    # -- /models ----------------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return self.listing(request)

    def listing(self, request: web.Request, keep: Callable[[Model], bool] | None = None) -> web.Response:
        """`/models`, or (with `keep`) the models one key may use."""
        models = self._filtered(request.query)
        if keep is not None:
            models = [m for m in models if keep(m)]
        total = len(models)
        offset, limit = _page(request.query)
        if limit is not None:
            page = models[offset:offset + limit]
            following = f"{request.path}?offset={offset + limit}&limit={limit}" if offset + limit < total else None
        else:
            page, following = models[offset:], None
        return json_response({"data": [self._model(m) for m in page], "total_count": total,
                              "links": {"next": following}})

    async def count(self, request: web.Request) -> web.Response:
        return json_response({"data": {"count": len(self._filtered(request.query))}})

    async def one(self, request: web.Request) -> web.Response:
        model = self._lookup(request)
        return json_response({"data": self._model(model)})

    async def endpoints(self, request: web.Request) -> web.Response:
        model = self._lookup(request)
        return json_response({"data": {
            "id": model.id,
            "name": model.name,
            "created": model.created,
            "description": model.description,
            "architecture": _architecture(model),
            "endpoints": [self._endpoint(model, e) for e in model.endpoints],
        }})

    async def zdr(self, request: web.Request) -> web.Response:
        """Endpoints whose provider keeps no data (zero data retention)."""
        data = [self._endpoint(m, e) for m in self.catalog.models.values() for e in m.endpoints
                if e.provider.data_policy.zdr and not e.is_simulator]
        return json_response({"data": data})

    async def providers(self, request: web.Request) -> web.Response:
        data = []
        for provider in sorted(self.catalog.providers.values(), key=lambda p: p.slug):
            data.append({
                "name": provider.name,
                "slug": provider.slug,
                "privacy_policy_url": provider.privacy_policy_url,
                "terms_of_service_url": provider.terms_of_service_url,
                "status_page_url": provider.status_page_url,
                "headquarters": provider.headquarters,
                "datacenters": list(provider.datacenters) or None,
            })
        return json_response({"data": data})

    # -- rendering ----------------------------------------------------------------------------------------

    def _lookup(self, request: web.Request) -> Model:
        slug = f"{request.match_info['author']}/{request.match_info['slug']}"
        try:
            model, _ = self.planner.resolve(slug)
        except Exception:
            raise NotFound(f"Model {slug} not found") from None
        return model

    def _filtered(self, query: Mapping[str, str]) -> list[Model]:
        models = list(self.catalog.models.values())
        outputs = query.get("output_modalities", "text")
        if outputs != "all":
            wanted = set(outputs.split(","))
            models = [m for m in models if wanted & set(m.output_modalities)]
        if "input_modalities" in query:
            wanted = set(query["input_modalities"].split(","))
            models = [m for m in models if wanted <= set(m.input_modalities)]
        if "supported_parameters" in query:
            wanted = set(query["supported_parameters"].split(","))
            models = [m for m in models if wanted <= set(self._supported(m))]
        if "q" in query:
            needle = query["q"].lower()
            models = [m for m in models if needle in m.id.lower() or needle in m.name.lower()]
        if "providers" in query:
            wanted = {self.catalog.provider_slug(p) or p for p in query["providers"].split(",")}
            models = [m for m in models if any(e.provider.slug in wanted for e in m.endpoints)]
        sort = query.get("sort")
        if sort:
            if sort not in _SORTS:
                raise InvalidParameter("sort", f"must be one of {', '.join(_SORTS)}")
            models.sort(key=_SORTS[sort])
        return models

    def _routable(self, endpoint: Endpoint) -> bool:
        return (endpoint.provider.configured or endpoint.is_simulator) and \
            endpoint.provider.wire_format in self.adapters

    def _supported(self, model: Model) -> list[str]:
        if "text" not in model.output_modalities:
            return []  # embedding and rerank models take none of the chat parameters
        names: set[str] = set()
        for endpoint in model.endpoints:
            adapter = self.adapters.get(endpoint.provider.wire_format)
            if adapter is not None and not endpoint.is_simulator:
                names |= adapter.supported_parameters(endpoint)
        if not names:  # only the simulator (or nothing routable): report what it takes
            for endpoint in model.endpoints:
                adapter = self.adapters.get(endpoint.provider.wire_format)
                if adapter is not None:
                    names |= adapter.supported_parameters(endpoint)
        return sorted(names & PUBLISHED_PARAMETERS)

    def _model(self, model: Model) -> dict[str, Any]:
        real = [e for e in model.endpoints if not e.is_simulator] or list(model.endpoints)
        routable = [e for e in real if self._routable(e)] or real
        cheapest = min(routable, key=lambda e: e.pricing.blended(), default=None)
        top = max(routable, key=lambda e: e.context_length, default=None)
        out: dict[str, Any] = {
            "id": model.id,
            "canonical_slug": model.id,
            "hugging_face_id": model.hugging_face_id,
            "name": model.name,
            "created": model.created,
            "description": model.description,
            "context_length": model.context_length,
            "architecture": _architecture(model),
            "pricing": cheapest.pricing.public() if cheapest else {"prompt": "0", "completion": "0"},
            "top_provider": {
                "context_length": top.context_length if top else model.context_length,
                "max_completion_tokens": top.max_completion_tokens if top else None,
                "is_moderated": False,
            },
            "per_request_limits": None,
            "supported_parameters": self._supported(model),
            "default_parameters": None,
            "supported_voices": None,
            "knowledge_cutoff": model.knowledge_cutoff,
            "expiration_date": model.expiration_date,
            "links": {"details": f"/api/v1/models/{model.id}/endpoints"},
        }
        if model.reasoning is not None:
            r = model.reasoning
            out["reasoning"] = {
                "supported_efforts": list(r.supported_efforts) if r.supported_efforts is not None else None,
                "default_effort": r.default_effort,
                "default_enabled": r.default_enabled,
                "supports_max_tokens": r.supports_max_tokens,
                "mandatory": r.mandatory,
            }
        return out

    def _endpoint(self, model: Model, endpoint: Endpoint) -> dict[str, Any]:
        adapter = self.adapters.get(endpoint.provider.wire_format)
        supported = sorted(adapter.supported_parameters(endpoint) & PUBLISHED_PARAMETERS) \
            if adapter and "text" in model.output_modalities else []
        snapshot = self.health.snapshot(endpoint.key)
        if adapter is None:
            status = STATUS_NO_ADAPTER
        elif not (endpoint.provider.configured or endpoint.is_simulator):
            status = STATUS_UNCONFIGURED
        elif snapshot.uptime_5m is not None and snapshot.uptime_5m < 80:
            status = STATUS_DOWN
        elif self.health.recently_failing(endpoint.key) or (snapshot.uptime_5m or 100) < 95:
            status = STATUS_DEGRADED
        else:
            status = STATUS_OK
        tools = "tools" in supported
        return {
            "name": f"{endpoint.provider.name} | {model.id}",
            "model_id": model.id,
            "model_name": model.name,
            "provider_name": endpoint.provider.name,
            "tag": endpoint.tag,
            "quantization": endpoint.quantization,
            "context_length": endpoint.context_length,
            "max_completion_tokens": endpoint.max_completion_tokens,
            "max_prompt_tokens": endpoint.max_prompt_tokens,
            "pricing": endpoint.pricing.public(),
            "supported_parameters": supported,
            "supports_implicit_caching": endpoint.supports_implicit_caching,
            "supports_tool_choice": {"auto": tools, "none": tools, "required": tools,
                                     "function": tools and "tool_choice" in supported},
            "supports_diarization": False,
            "native_tools": {},
            "service_tier": None,
            "status": status,
            "uptime_last_5m": snapshot.uptime_5m,
            "uptime_last_30m": snapshot.uptime_30m,
            "uptime_last_1d": snapshot.uptime_1d,
            "latency_last_30m": _scaled(snapshot.latency, 1000.0),
            "throughput_last_30m": snapshot.throughput,
            "is_simulator": endpoint.is_simulator,
            "configured": endpoint.provider.configured or endpoint.is_simulator,
        }


def _architecture(model: Model) -> dict[str, Any]:
    return {
        "modality": f"{'+'.join(model.input_modalities)}->{'+'.join(model.output_modalities)}",
        "input_modalities": list(model.input_modalities),
        "output_modalities": list(model.output_modalities),
        "tokenizer": model.tokenizer or "Other",
        "instruct_type": model.instruct_type,
    }


def _scaled(percentiles: dict[str, float] | None, factor: float) -> dict[str, float] | None:
    """Seconds → milliseconds (OpenRouter publishes time to first token in milliseconds)."""
    if percentiles is None:
        return None
    return {k: round(v * factor, 1) for k, v in percentiles.items()}


def _model_price(model: Model) -> float:
    return float(min((e.pricing.blended() for e in model.endpoints), default=0))


_SORTS: dict[str, Callable[[Model], float]] = {
    "pricing-low-to-high": _model_price,
    "pricing-high-to-low": lambda m: -_model_price(m),
    "context-high-to-low": lambda m: -m.context_length,
    "newest": lambda m: -m.created,
}


def _page(query: Mapping[str, str]) -> tuple[int, int | None]:
    def number(name: str, low: int, high: int) -> int | None:
        if name not in query:
            return None
        try:
            value = int(query[name])
        except ValueError:
            raise InvalidParameter(name, "expected an integer") from None
        if not low <= value <= high:
            raise InvalidParameter(name, f"must be between {low} and {high}")
        return value

    offset = number("offset", 0, 1_000_000)
    limit = number("limit", 1, 1000)
    if offset is not None and limit is None:
        limit = 500
    return offset or 0, limit
