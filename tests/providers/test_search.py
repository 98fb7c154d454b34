"""What each search API's row sends, and where it finds the results."""

from __future__ import annotations

import orjson

from crossroads.providers.search import SEARCH_APIS


def test_get_shapes_put_the_query_in_the_url_and_post_shapes_in_a_json_body() -> None:
    brave = SEARCH_APIS["brave"].request("https://api.search.brave.com/res/v1", "bk", "tides & moon", 50)
    assert (brave.method, brave.body) == ("GET", b"")
    assert brave.url == "https://api.search.brave.com/res/v1/web/search?q=tides+%26+moon&count=20"  # Brave's cap
    assert brave.headers["x-subscription-token"] == "bk" and "content-type" not in brave.headers
    searxng = SEARCH_APIS["searxng"].request("http://searx.local/", "", "tides", 5)
    assert searxng.url == "http://searx.local/search?q=tides&format=json"
    assert "authorization" not in searxng.headers
    exa = SEARCH_APIS["exa"].request("https://api.exa.ai", "ek", "tides", 5)
    assert exa.method == "POST" and exa.url == "https://api.exa.ai/search"
    assert orjson.loads(exa.body)["numResults"] == 5 and exa.headers["x-api-key"] == "ek"


def test_results_are_found_where_each_api_keeps_them() -> None:
    page = {"url": "https://a.example", "title": "A"}
    assert SEARCH_APIS["brave"].found({"web": {"results": [page, "junk"]}}) == [page]
    assert SEARCH_APIS["brave"].found({"results": [page]}) == []
    assert SEARCH_APIS["searxng"].found({"results": [page]}) == [page]
    assert SEARCH_APIS["tavily"].found({"web": None}) == []
