"""`catalog/check.py`: a catalog that loads can still be wrong, or not ready to serve; the check says which."""

from __future__ import annotations

from typing import Any

from crossroads.catalog.check import check, has_errors
from crossroads.catalog.loader import build, load


def document(**models: Any) -> dict[str, Any]:
    return {
        "providers": {
            "acme": {"name": "Acme", "base_url": "https://acme.example/v1", "api_key_env": "ACME_API_KEY"},
            "box": {"name": "Box", "base_url": "http://localhost:9/v1", "local": True},
            "idle": {"name": "Idle", "base_url": "https://idle.example/v1", "api_key_env": "IDLE_API_KEY"},
        },
        "models": models,
    }


def endpoint(provider: str = "acme", **fields: Any) -> dict[str, Any]:
    return {"provider": provider, "pricing": {"prompt": "1", "completion": "2"}, **fields}


def messages(doc: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    return [str(f) for f in check(build(doc, environ or {}))]


def test_a_sound_catalog_has_only_notes_about_configuration() -> None:
    doc = document(**{"a/one": {"context_length": 1000, "endpoints": [endpoint(), endpoint("box")]}})
    doc["providers"].pop("idle")
    assert messages(doc) == [
        "note: 1 of 1 models have no configured provider: a/one",
        "note: provider acme is not configured (set ACME_API_KEY)",
        "note: provider box is not configured (set CROSSROADS_PROVIDER_BOX_BASE_URL)",
    ]
    assert messages(doc, {"ACME_API_KEY": "k"}) == [
        "note: provider box is not configured (set CROSSROADS_PROVIDER_BOX_BASE_URL)"]


def test_a_model_without_endpoints_is_an_error() -> None:
    found = messages(document(**{"a/none": {"context_length": 10}}))
    assert "error: a/none: no endpoint serves it" in found


def test_contexts_and_output_caps_that_do_not_fit_are_errors() -> None:
    found = check(build(document(**{"a/one": {"context_length": 1000, "endpoints": [
        endpoint(context_length=2000), endpoint("box", max_completion_tokens=4000)]}}), {}))
    assert has_errors(found)
    assert [str(f) for f in found if f.level == "error"] == [
        "error: a/one at acme: context 2000 exceeds the model's 1000",
        "error: a/one at box: max_completion_tokens 4000 exceeds its context 1000",
    ]


def test_zero_prices_on_hosted_endpoints_are_warned_about_but_local_ones_are_fine() -> None:
    free = {"prompt": "0", "completion": "0"}
    found = messages(document(**{"a/one": {"context_length": 10, "endpoints": [
        endpoint(pricing=free), endpoint("box", pricing=free)]}}))
    assert [f for f in found if f.startswith("warning: a/one")] == [
        "warning: a/one at acme: a hosted endpoint with a price of zero (prompt 0, completion 0 per token)"]
    # An embedding model has no output tokens to charge for.
    embedding = messages(document(**{"a/embed": {"context_length": 10, "output_modalities": ["embeddings"],
                                                 "endpoints": [endpoint(pricing={"prompt": "1", "completion": "0"})]}}))
    assert not [f for f in embedding if f.startswith("warning: a/embed")]


def test_duplicate_upstream_ids_and_idle_providers_are_warned_about() -> None:
    found = messages(document(**{
        "a/one": {"context_length": 10, "endpoints": [endpoint(upstream_model="same")]},
        "a/two": {"context_length": 10, "endpoints": [endpoint(upstream_model="same")]},
    }))
    assert "warning: acme: upstream id 'same' serves 2 models: a/one, a/two" in found
    assert "warning: provider idle: serves no model" in found
    assert not has_errors(check(build(document(**{"a/one": {"context_length": 10, "endpoints": [endpoint()]}}), {})))


def test_the_builtin_catalog_has_no_errors_or_warnings() -> None:
    found = check(load([], {}))
    assert [str(f) for f in found if f.level != "note"] == []
    # The simulator is not a provider to configure.
    assert not any("simulator" in str(f) for f in check(load([], {}, simulator_url="http://127.0.0.1:1")))
