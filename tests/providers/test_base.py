"""The adapter skeleton: a parameter table applied to a request's parameters, and the per-endpoint plans."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.providers.base import Convert, Keep, Plan, Plans, Rename, Unsupported, apply_params, plan


def _sampler(value: Any, params: Mapping[str, Any], out: dict[str, Any]) -> None:
    out["sampler"] = {"name": value, "temperature": params.get("temperature")}


TABLE = {
    "temperature": Keep(),
    "top_p": Rename("config.topP"),
    "stop": Rename("stop_sequences", convert=lambda v: [v] if isinstance(v, str) else v),
    "sampler": Convert(_sampler),
    "seed": Unsupported(),
    "tools": Keep(needs="tools"),
}


def endpoint(features: Features) -> Endpoint:
    provider = Provider(slug="p", name="P", wire_format="openai_chat", base_url="https://p.example", api_key="k",
                        data_policy=DataPolicy())
    return Endpoint(model_id="a/m", provider=provider, tag="p", upstream_model="m", context_length=1000,
                    max_completion_tokens=None, max_prompt_tokens=None, quantization=None,
                    pricing=Pricing(prompt=Decimal(0), completion=Decimal(0)), features=features,
                    input_modalities=frozenset({"text"}))


def test_a_table_applied_keeps_renames_nests_converts_and_drops() -> None:
    made = plan(TABLE, Features())
    assert made.supported == {"temperature", "top_p", "stop", "sampler"}
    out: dict[str, Any] = {}
    apply_params(made.rows, {"temperature": 0.5, "top_p": 0.9, "stop": "x", "sampler": "greedy", "seed": 3,
                             "tools": [], "unknown": 1}, out)
    assert out == {"temperature": 0.5, "config": {"topP": 0.9}, "stop_sequences": ["x"],
                   "sampler": {"name": "greedy", "temperature": 0.5}}


def test_a_plan_follows_the_endpoints_features_and_exclusions() -> None:
    assert "tools" in plan(TABLE, Features(tools=True)).supported
    assert plan(TABLE, Features(tools=True), without=frozenset({"tools", "stop"})).supported == {
        "temperature", "top_p", "sampler"}


def test_plans_are_made_once_per_endpoint() -> None:
    made: list[str] = []

    def make(target: Endpoint) -> Plan:
        made.append(target.key)
        return plan(TABLE, target.features)

    plans = Plans(make)
    target = endpoint(Features())
    assert plans(target) is plans(target)
    assert made == [target.key]
