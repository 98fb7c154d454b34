"""What each search API's row sends, and where it finds the results."""

from __future__ import annotations

import orjson

from crossroads.providers.search import SEARCH_APIS, within


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


def test_exa_and_tavily_take_domain_filters_in_the_request() -> None:
    exa = orjson.loads(SEARCH_APIS["exa"].request("https://api.exa.ai", "ek", "q", 5, (["a.org"], ["b.org"])).body)
    assert (exa["includeDomains"], exa["excludeDomains"]) == (["a.org"], ["b.org"])
    tavily = orjson.loads(SEARCH_APIS["tavily"].request("https://api.tavily.com", "tk", "q", 5, ((), ["b.org"])).body)
    assert tavily["exclude_domains"] == ["b.org"] and "include_domains" not in tavily
    brave = SEARCH_APIS["brave"].request("https://api.search.brave.com/res/v1", "bk", "q", 5, (["a.org"], ()))
    assert brave.url.endswith("?q=q&count=5")  # Brave has no such parameter: its results are filtered


def test_results_are_kept_to_the_domains_asked_for() -> None:
    assert within("https://docs.a.org/x", ["a.org"], [])
    assert within("https://www.a.org/x", ["www.a.org"], [])
    assert not within("https://nota.org/x", ["a.org"], [])
    assert not within("https://a.org/x", [], ["A.org"])
    assert within("https://c.org/x", [], ["a.org"])
