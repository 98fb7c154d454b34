"""The routing view of a one-shot request (embeddings, rerank): what routing, limits and accounting see."""

from __future__ import annotations

import pytest

from crossroads.errors import InvalidParameter
from crossroads.schema import routed
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.routed import routing_view


def test_a_view_is_made_once_per_model_and_each_request_gets_its_own() -> None:
    routed._VIEWS.clear()
    first = routing_view({"model": "openai/text-embedding-3-small"}, 10)
    second = routing_view({"model": "openai/text-embedding-3-small"}, 20)
    assert list(routed._VIEWS) == ["openai/text-embedding-3-small"]
    assert (first.prompt_chars, second.prompt_chars) == (10, 20)
    assert first.models == second.models and first.messages == second.messages == []
    first.headers["x"] = "y"
    first.metadata["k"] = "v"
    assert second.headers == {} and second.metadata == {}  # nothing one request does reaches the next
    fresh = parse_chat_request({"model": "openai/text-embedding-3-small", "prompt": ""}, "")
    assert second.models == fresh.models and second.provider == fresh.provider


@pytest.mark.parametrize("fields", [
    {"model": "a/b", "user": "u-1"},
    {"model": "a/b", "provider": {"order": ["x"]}},
    {"models": ["a/b", "c/d"]},
])
def test_views_with_more_than_a_model_are_made_each_time(fields: dict[str, object]) -> None:
    routed._VIEWS.clear()
    view = routing_view(fields, 5)
    assert routed._VIEWS == {} and view.prompt_chars == 5
    assert view.models[0] == "a/b"


def test_the_views_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    routed._VIEWS.clear()
    monkeypatch.setattr(routed, "_VIEWS_KEPT", 3)
    for index in range(5):
        routing_view({"model": f"a/m{index}"}, 1)
    assert len(routed._VIEWS) <= 3 and "a/m4" in routed._VIEWS


def test_a_refused_model_is_not_kept() -> None:
    routed._VIEWS.clear()
    with pytest.raises(InvalidParameter):
        routing_view({"model": ""}, 1)
    assert routed._VIEWS == {}
