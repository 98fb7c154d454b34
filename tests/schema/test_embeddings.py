"""`parse_embeddings_request` and `parse_rerank_request`: OpenAI's input forms, and what routing sees."""

from __future__ import annotations

import pytest

from crossroads.errors import InvalidParameter
from crossroads.schema.embeddings import MAX_INPUTS, parse_embeddings_request
from crossroads.schema.rerank import parse_rerank_request


@pytest.mark.parametrize(("given", "items", "chars"), [
    ("hello", ("hello",), 5),
    (["a", "bc"], ("a", "bc"), 3),
    ([1, 2, 3], ([1, 2, 3],), 12),
    ([[1, 2], [3]], ([1, 2], [3]), 12),
])
def test_the_four_input_forms(given: object, items: tuple[object, ...], chars: int) -> None:
    request = parse_embeddings_request({"model": "m", "input": given})
    assert request.inputs == items
    assert request.route.prompt_chars == chars and request.route.messages == []
    assert request.encoding_format == "float" and request.dimensions is None


def test_routing_fields_reach_the_route() -> None:
    request = parse_embeddings_request({"model": "a", "models": ["b"], "input": "x", "user": "u",
                                        "provider": {"order": ["openai"]}, "dimensions": 256,
                                        "encoding_format": "base64", "input_type": "search_query"})
    assert request.models == ("a", "b") and request.user == "u"
    assert request.route.provider.order == ("openai",)
    assert (request.dimensions, request.encoding_format, request.input_type) == (256, "base64", "search_query")


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": ""}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": ["ok", ""]}, "input[1]"),
    ({"model": "m", "input": [True]}, "input[0]"),
    ({"model": "m", "input": ["x"] * (MAX_INPUTS + 1)}, "input"),
    ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
])
def test_bad_requests_name_the_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_embeddings_request(body)
    assert caught.value.param == param


def test_rerank_documents_as_strings_or_text_objects() -> None:
    request = parse_rerank_request({"model": "m", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 1})
    assert request.documents == ("a", "b") and request.top_n == 1 and request.return_documents
    with pytest.raises(InvalidParameter, match="image"):
        parse_rerank_request({"model": "m", "query": "q", "documents": [{"image": "data:..."}]})
