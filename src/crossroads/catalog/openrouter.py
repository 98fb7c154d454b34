"""OpenRouter's public model documents as types: the model list (`GET /api/v1/models`) and a model's
endpoint list (`GET /api/v1/models/{author}/{slug}/endpoints`), as OpenRouter's OpenAPI specification
describes them (schemas `ModelsListResponse`, `Model`, `ListEndpointsResponse`, `PublicEndpoint`).

Only the fields the catalog uses are declared; msgspec skips the rest, so a field OpenRouter adds later does
not break an import. Prices are strings of USD per token, as published; they stay strings here and are
converted exactly by `importer.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec
from msgspec import Struct

from crossroads.errors import ConfigError

T = TypeVar("T")


class Pricing(Struct):
    """`PublicPricing`: USD per token (per unit for `request`, `image`, `web_search`), as strings."""

    prompt: str
    completion: str
    input_cache_read: str | None = None
    input_cache_write: str | None = None
    input_cache_write_1h: str | None = None
    internal_reasoning: str | None = None
    image_token: str | None = None
    audio: str | None = None
    request: str | None = None
    image: str | None = None
    web_search: str | None = None
    discount: float | None = None
    audio_output: str | None = None
    image_output: str | None = None
    input_audio_cache: str | None = None


class Architecture(Struct):
    input_modalities: list[str] = []
    output_modalities: list[str] = []
    tokenizer: str | None = None
    instruct_type: str | None = None


class TopProvider(Struct):
    context_length: int | None = None
    max_completion_tokens: int | None = None


class Reasoning(Struct):
    """`ModelReasoning`."""

    supported_efforts: list[str] | None = None
    default_effort: str | None = None
    default_enabled: bool | None = None
    supports_max_tokens: bool | None = None
    mandatory: bool = False


class Model(Struct):
    """One entry of `GET /api/v1/models` (`Model`)."""

    id: str
    name: str
    pricing: Pricing
    created: int = 0
    description: str = ""
    context_length: int | None = None
    architecture: Architecture = msgspec.field(default_factory=Architecture)
    top_provider: TopProvider = msgspec.field(default_factory=TopProvider)
    supported_parameters: list[str] = []
    hugging_face_id: str | None = None
    knowledge_cutoff: str | None = None
    expiration_date: str | None = None
    reasoning: Reasoning | None = None


class ModelList(Struct):
    """`ModelsListResponse`."""

    data: list[Model]


class Endpoint(Struct):
    """`PublicEndpoint`. `provider_model_id` (the provider's own id for the model) is not in the public
    specification; OpenRouter's site lists it, and an endpoint document that carries it is read with it."""

    provider_name: str
    tag: str
    pricing: Pricing
    context_length: int
    quantization: str | None = None
    max_completion_tokens: int | None = None
    max_prompt_tokens: int | None = None
    supported_parameters: list[str] = []
    supports_implicit_caching: bool = False
    provider_model_id: str | None = None


class EndpointsData(Struct):
    id: str
    endpoints: list[Endpoint]


class EndpointList(Struct):
    """`ListEndpointsResponse`, the body of `GET /api/v1/models/{author}/{slug}/endpoints`."""

    data: EndpointsData


def decode_models(body: bytes, source: str) -> ModelList:
    """Decode a `/api/v1/models` body; `source` names it in errors."""
    return _decode(body, ModelList, source)


def decode_endpoints(body: bytes, source: str) -> list[EndpointList]:
    """Decode an endpoint-list body, or a JSON array of them (several models' lists in one file)."""
    if body.lstrip()[:1] == b"[":
        return _decode(body, list[EndpointList], source)
    return [_decode(body, EndpointList, source)]


def read_endpoints(path: Path) -> list[EndpointList]:
    """The endpoint lists in a file, or in every `*.json` file under a directory (in name order)."""
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    lists: list[EndpointList] = []
    for file in files:
        try:
            body = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
        lists.extend(decode_endpoints(body, str(file)))
    return lists


def _decode(body: bytes, kind: type[T], source: str) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: not an OpenRouter document: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc}") from exc


__all__ = ["Architecture", "Endpoint", "EndpointList", "Model", "ModelList", "Pricing", "Reasoning", "TopProvider",
           "decode_endpoints", "decode_models", "read_endpoints"]
