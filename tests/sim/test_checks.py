"""Request checks every simulated wire format shares: JSON kinds, the model a body names, bearer credentials."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from crossroads.sim.checks import bearer_token, is_integer, is_number, model_in_body


@pytest.mark.parametrize(("value", "number", "integer"), [
    (1, True, True), (-2, True, True), (1.5, True, False), (2.0, True, False), (True, False, False),
    (False, False, False), ("1", False, False), (None, False, False), ([1], False, False),
])
def test_json_number_kinds(value: Any, number: bool, integer: bool) -> None:
    assert is_number(value) is number
    assert is_integer(value) is integer


def test_model_in_body() -> None:
    assert model_in_body({"model": "gpt-4o#tokens=3"}) == "gpt-4o#tokens=3"
    assert model_in_body({"model": 4}) is None
    assert model_in_body({}) is None
    assert model_in_body(["model"]) is None
    assert model_in_body("model") is None


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer sk-1", "sk-1"), ("bearer  sk-2 ", "sk-2"), ("  BEARER sk-3", "sk-3"), ("Bearer ", ""), ("Bearer", ""),
    ("Basic dXNlcjpwdw==", ""), ("sk-4", ""), (None, ""),
])
def test_bearer_token(header: str | None, token: str) -> None:
    headers = {"Authorization": header} if header is not None else {}
    assert bearer_token(make_mocked_request("POST", "/v1/chat/completions", headers=headers)) == token
