"""Catalog files are read strictly: an unknown key or a value of the wrong type in any table is an error that
names the file, the table and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossroads.catalog.document import FeaturesTable, PricingTable, ReasoningTable
from crossroads.catalog.loader import load
from crossroads.catalog.types import PRICE_KEYS, Features, Reasoning
from crossroads.errors import ConfigError

PROVIDER = ("[providers.box]\n{line}\n", "[providers.box]")
MODEL = ('[models."org/m"]\n{line}\n', '[models."org/m"]')
ENDPOINT = ('[[models."openai/gpt-4o".endpoints]]\nprovider = "groq"\ntag = "groq/x"\n{line}\n',
            """[[models."openai/gpt-4o".endpoints]] #1 ('groq/x')""")
ROUTING = ("[routing]\n{line}\n", "[routing]")
PRICED = 'pricing = {{ prompt = "1", completion = "1", {extra} }}'


def refusal(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = tmp_path / "extra.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load([path], {})
    return path, str(caught.value)


UNKNOWN_KEYS = [
    (PROVIDER, 'bse_url = "http://x"', "bse_url"),
    (PROVIDER, "data_policy = { trainng = false }", "data_policy.trainng"),
    (MODEL, "context_lenght = 10", "context_lenght"),
    (MODEL, "features = { tool = true }", "features.tool"),
    (MODEL, "reasoning = { effort = 'low' }", "reasoning.effort"),
    (ENDPOINT, 'upstream = "x"', "upstream"),
    (ENDPOINT, PRICED.format(extra='cache_read = "1"'), "pricing.cache_read"),
    (ENDPOINT, "features = { seeds = true }", "features.seeds"),
    (ROUTING, 'order = ["groq"]', "order"),
]


@pytest.mark.parametrize(("template", "line", "key"), UNKNOWN_KEYS, ids=[case[2] for case in UNKNOWN_KEYS])
def test_an_unknown_key_names_file_table_and_key(tmp_path: Path, template: tuple[str, str], line: str,
                                                 key: str) -> None:
    text, table = template
    path, message = refusal(tmp_path, text.format(line=line))
    assert message == f"{path}: {table} {key}: unknown key"


WRONG_VALUES = [
    (PROVIDER, "name = 1", "name"),
    (PROVIDER, 'wire_format = "soap"', "wire_format"),
    (PROVIDER, 'base_url = "ftp://box"', "base_url"),
    (PROVIDER, "api_key_env = true", "api_key_env"),
    (PROVIDER, "quirks = 1", "quirks"),
    (PROVIDER, 'local = "yes"', "local"),
    (PROVIDER, "enabled = 1", "enabled"),
    (PROVIDER, "headquarters = 1", "headquarters"),
    (PROVIDER, 'datacenters = "US"', "datacenters"),
    (PROVIDER, "privacy_policy_url = 1", "privacy_policy_url"),
    (PROVIDER, "terms_of_service_url = 1", "terms_of_service_url"),
    (PROVIDER, "status_page_url = 1", "status_page_url"),
    (PROVIDER, 'data_policy = { training = "no" }', "data_policy.training"),
    (PROVIDER, "data_policy = { retains_prompts = 0 }", "data_policy.retains_prompts"),
    (PROVIDER, 'data_policy = { retention_days = "30" }', "data_policy.retention_days"),
    (PROVIDER, "data_policy = { retention_days = -1 }", "data_policy.retention_days"),
    (PROVIDER, "headers = { X-A = 1 }", "headers[...]"),
    (MODEL, "name = 1", "name"),
    (MODEL, '''created = "2024"''', "created"),
    (MODEL, "description = 1", "description"),
    (MODEL, "context_length = 0", "context_length"),
    (MODEL, "context_length = 1.5", "context_length"),
    (MODEL, "context_length = true", "context_length"),
    (MODEL, 'input_modalities = ["smell"]', "input_modalities[0]"),
    (MODEL, 'output_modalities = "text"', "output_modalities"),
    (MODEL, "tokenizer = 1", "tokenizer"),
    (MODEL, "instruct_type = 1", "instruct_type"),
    (MODEL, "hugging_face_id = 1", "hugging_face_id"),
    (MODEL, "knowledge_cutoff = 2024-06-01", "knowledge_cutoff"),
    (MODEL, "expiration_date = 1", "expiration_date"),
    (MODEL, 'features = { tools = "yes" }', "features.tools"),
    (MODEL, 'reasoning = { supported_efforts = "low" }', "reasoning.supported_efforts"),
    (MODEL, "reasoning = { default_effort = 1 }", "reasoning.default_effort"),
    (MODEL, 'reasoning = { mandatory = "no" }', "reasoning.mandatory"),
    (MODEL, "disabled = 1", "disabled"),
    (ENDPOINT, "upstream_model = 1", "upstream_model"),
    (ENDPOINT, "context_length = -5", "context_length"),
    (ENDPOINT, 'max_completion_tokens = "8k"', "max_completion_tokens"),
    (ENDPOINT, "max_prompt_tokens = 0", "max_prompt_tokens"),
    (ENDPOINT, 'quantization = "int3"', "quantization"),
    (ENDPOINT, PRICED.format(extra='request = "x"'), "pricing.request"),
    (ENDPOINT, PRICED.format(extra='input_cache_read = "-1"'), "pricing.input_cache_read"),
    (ENDPOINT, PRICED.format(extra='image = "NaN"'), "pricing.image"),
    (ENDPOINT, PRICED.format(extra="audio = true"), "pricing.audio"),
    (ENDPOINT, 'pricing = { prompt = "1" }', "pricing.completion"),
    (ENDPOINT, 'pricing = "free"', "pricing"),
    (ENDPOINT, "features = { seed = 1 }", "features.seed"),
    (ENDPOINT, 'input_modalities = ["text", "smell"]', "input_modalities[1]"),
    (ENDPOINT, 'supports_implicit_caching = "no"', "supports_implicit_caching"),
    (ENDPOINT, 'disabled = "yes"', "disabled"),
    (ROUTING, 'allow = "groq"', "allow"),
    (ROUTING, "deny = [1]", "deny[0]"),
    (ROUTING, 'sort = "cheapest"', "sort"),
]


@pytest.mark.parametrize(("template", "line", "key"), WRONG_VALUES, ids=[c[1] for c in WRONG_VALUES])
def test_a_wrong_value_names_file_table_and_key(tmp_path: Path, template: tuple[str, str], line: str,
                                                key: str) -> None:
    text, table = template
    path, message = refusal(tmp_path, text.format(line=line))
    assert message.startswith(f"{path}: {table} {key}: "), message
    assert "unknown key" not in message


def test_messages_say_what_was_expected(tmp_path: Path) -> None:
    _, message = refusal(tmp_path, PROVIDER[0].format(line='data_policy = { retention_days = "30" }'))
    assert message.endswith("data_policy.retention_days: expected `int`, got `str`")
    _, message = refusal(tmp_path, ENDPOINT[0].format(line='quantization = "int3"'))
    assert message.endswith("quantization: invalid enum value 'int3' (one of int4, int8, fp4, mxfp4, nvfp4, fp6, "
                            "fp8, mxfp8, fp16, bf16, fp32, unknown)")
    _, message = refusal(tmp_path, ENDPOINT[0].format(line=PRICED.format(extra='input_cache_read = "-1"')))
    assert message.endswith("pricing.input_cache_read: must be a non-negative number, not -1")
    _, message = refusal(tmp_path, MODEL[0].format(line="context_length = 0"))
    assert message.endswith("context_length: expected `int` >= 1")
    _, message = refusal(tmp_path, ROUTING[0].format(line='allow = "groq"'))
    assert message.endswith("[routing] allow: expected array, got `str`")


def test_a_table_that_is_not_a_table(tmp_path: Path) -> None:
    path, message = refusal(tmp_path, '[models]\n"org/m" = 3\n')
    assert message == f"""{path}: [models."org/m"]: expected table, got `int`"""
    path, message = refusal(tmp_path, "[provider.box]\nname = 'x'\n")
    assert message == f"{path}: the top level provider: unknown key"


def test_the_second_endpoint_is_named_by_its_place(tmp_path: Path) -> None:
    text = ('[models."org/m"]\ncontext_length = 10\n[[models."org/m".endpoints]]\nprovider = "groq"\n'
            '[[models."org/m".endpoints]]\nprovider = "together"\nquantisation = "fp8"\n')
    path, message = refusal(tmp_path, text)
    assert message == f"""{path}: [[models."org/m".endpoints]] #2 ('together') quantisation: unknown key"""


def test_an_unknown_provider_names_the_file_that_uses_it(tmp_path: Path) -> None:
    path, message = refusal(tmp_path, ENDPOINT[0].replace('"groq"', '"grok"').format(
        line='pricing = { prompt = "1", completion = "1" }'))
    assert message == f"""{path}: [[models."openai/gpt-4o".endpoints]] #1 provider: unknown provider 'grok'"""


def test_a_provider_may_come_from_a_later_file(tmp_path: Path) -> None:
    uses = tmp_path / "uses.toml"
    uses.write_text('[models."org/m"]\ncontext_length = 10\n[[models."org/m".endpoints]]\nprovider = "box"\n'
                    'pricing = { prompt = "1", completion = "2" }\n')
    defines = tmp_path / "defines.toml"
    defines.write_text('[providers.box]\nbase_url = "http://box/v1"\n')
    assert load([uses, defines], {}).models["org/m"].endpoints[0].provider.base_url == "http://box/v1"


def test_a_model_id_without_its_author(tmp_path: Path) -> None:
    path, message = refusal(tmp_path, "[models.tiny]\ncontext_length = 10\n")
    assert message == f"{path}: [models.tiny]: model ids look like 'author/slug'"


def test_what_only_the_merged_catalog_can_tell_is_checked_after_merging(tmp_path: Path) -> None:
    _, message = refusal(tmp_path, '[models."org/m"]\nname = "M"\n')
    assert message == "model 'org/m': context_length is missing (a positive integer)"
    _, message = refusal(tmp_path, '[[models."openai/gpt-4o".endpoints]]\nprovider = "groq"\ntag = "groq/x"\n')
    assert "pricing needs at least 'prompt' and 'completion'" in message


def test_the_tables_hold_the_fields_of_the_types_they_build() -> None:
    assert list(FeaturesTable.__struct_fields__) == list(Features.__dataclass_fields__)
    assert list(ReasoningTable.__struct_fields__) == list(Reasoning.__dataclass_fields__)
    assert list(PricingTable.__struct_fields__) == [*PRICE_KEYS, "discount"]
