"""The dashboard's sign-in, sessions and CSRF at the HTTP level: nothing answers without a session, an API
key's session sees only that key, cookies carry their flags, and state changes need the CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_KEY, Gateway, GatewayFactory

COOKIE = "crossroads_session"
#: Every dashboard API call, with a path that exists (a session would get data from each).
CALLS = [
    ("DELETE", "/session"), ("GET", "/catalog/providers"),
    ("GET", "/activity"), ("GET", "/keys"), ("POST", "/keys"), ("PATCH", "/keys/abc"), ("DELETE", "/keys/abc"),
    ("GET", "/key"), ("GET", "/credits"), ("GET", "/models"), ("GET", "/model/openai/gpt-4o"),
    ("GET", "/models/openai/gpt-4o/endpoints"), ("GET", "/models/openai/gpt-4o/history"), ("GET", "/providers"),
    ("GET", "/generation?id=gen-1"), ("GET", "/generations"), ("POST", "/chat/completions"),
]
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


class Browser:
    """A cookie-keeping client of one gateway's dashboard, as a browser would be."""

    def __init__(self, gateway: Gateway, http: aiohttp.ClientSession) -> None:
        self.gateway = gateway
        self.http = http
        self.csrf = ""

    async def sign_in(self, key: str) -> aiohttp.ClientResponse:
        resp = await self.http.post(f"{self.gateway.root}/dashboard/api/session", json={"key": key})
        if resp.status == 200:
            self.csrf = (await resp.json())["data"]["csrf_token"]
        return resp

    async def call(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if csrf and method != "GET":
            headers["X-CSRF-Token"] = self.csrf
        async with self.http.request(method, f"{self.gateway.root}/dashboard/api{path}", headers=headers,
                                     **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def browser(gateway: Gateway) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Browser(gateway, http)


async def _chat(gateway: Gateway, key: str) -> str:
    async with aiohttp.ClientSession() as http, http.post(
            f"{gateway.url}/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200
        generation_id: str = (await resp.json())["id"]
        return generation_id


async def test_nothing_answers_without_a_session(browser: Browser) -> None:
    for method, path in CALLS:
        status, body = await browser.call(method, path, json={})
        assert status == 401, (method, path, body)
        assert body["error"]["code"] == 401
    # Asking whether there is a session is the one call answered, with nothing.
    assert await browser.call("GET", "/session") == (200, {"data": None})
    # A made-up cookie is no session either.
    browser.http.cookie_jar.update_cookies({COOKIE: "made-up"})
    status, _ = await browser.call("GET", "/activity")
    assert status == 401
    # The pages are one static shell, without data.
    async with browser.http.get(f"{browser.gateway.root}/dashboard/keys") as resp:
        assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    async with browser.http.get(f"{browser.gateway.root}/") as resp:
        assert resp.status == 200


async def test_sign_in_refuses_wrong_and_disabled_keys(gateway: Gateway, browser: Browser) -> None:
    assert (await browser.sign_in("sk-cr-v1-" + "0" * 64)).status == 401
    assert (await browser.sign_in("")).status == 400
    secret = await gateway.new_key()
    key_hash = next(k.hash for k in gateway.services.keys.all() if k.record.label[-3:] == secret[-3:])
    await gateway.services.keys.update(key_hash, {"disabled": True})
    assert (await browser.sign_in(secret)).status == 401
    assert COOKIE not in {c.key for c in browser.http.cookie_jar}


async def test_cookie_flags(gateway: Gateway, browser: Browser) -> None:
    resp = await browser.sign_in(ADMIN_KEY)
    assert resp.status == 200
    cookie = SimpleCookie(resp.headers["Set-Cookie"])[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert 0 < int(cookie["max-age"]) <= 86400
    assert not cookie["secure"]  # plain HTTP, no trusted proxy
    assert ADMIN_KEY not in resp.headers["Set-Cookie"]
    # X-Forwarded-Proto from an address that is not a trusted proxy changes nothing.
    resp = await browser.http.post(f"{gateway.root}/dashboard/api/session", json={"key": ADMIN_KEY},
                                   headers={"X-Forwarded-Proto": "https"})
    assert not SimpleCookie(resp.headers["Set-Cookie"])[COOKIE]["secure"]


async def test_secure_cookie_behind_a_trusted_proxy(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_TRUSTED_PROXIES": "127.0.0.0/8"}) as gw, aiohttp.ClientSession() as http:
        url = f"{gw.root}/dashboard/api/session"
        async with http.post(url, json={"key": ADMIN_KEY}, headers={"X-Forwarded-Proto": "https"}) as resp:
            assert SimpleCookie(resp.headers["Set-Cookie"])[COOKIE]["secure"]
        async with http.post(url, json={"key": ADMIN_KEY}, headers={"X-Forwarded-Proto": "http"}) as resp:
            assert not SimpleCookie(resp.headers["Set-Cookie"])[COOKIE]["secure"]


async def test_state_changes_need_the_csrf_token(browser: Browser) -> None:
    assert (await browser.sign_in(ADMIN_KEY)).status == 200
    new_key = {"name": "from the dashboard"}
    for method, path, body in [("POST", "/keys", new_key), ("DELETE", "/session", None),
                               ("POST", "/chat/completions", CHAT)]:
        status, error = await browser.call(method, path, csrf=False, json=body)
        assert status == 403, (method, path)
        assert "CSRF" in error["error"]["message"]
        status, _ = await browser.call(method, path, csrf=False, json=body, headers={"X-CSRF-Token": "guess"})
        assert status == 403
    # Another origin is refused even with the token.
    status, _ = await browser.call("POST", "/keys", json=new_key, headers={"Origin": "https://evil.example"})
    assert status == 403
    status, _ = await browser.call("GET", "/keys")
    assert status == 200
    status, created = await browser.call("POST", "/keys", json=new_key)
    assert status == 201 and created["key"].startswith("sk-cr-v1-")
    key_hash = created["data"]["hash"]
    status, updated = await browser.call("PATCH", f"/keys/{key_hash}", json={"limit": 5, "disabled": True})
    assert status == 200 and updated["data"]["limit"] == 5 and updated["data"]["disabled"]
    status, _ = await browser.call("DELETE", f"/keys/{key_hash}")
    assert status == 200
    status, _ = await browser.call("DELETE", "/session")
    assert status == 200
    assert await browser.call("GET", "/session") == (200, {"data": None})


async def test_an_api_key_sees_only_its_own_data(gateway: Gateway, browser: Browser) -> None:
    other = await gateway.new_key()
    mine = await _chat(gateway, gateway.key)
    theirs = await _chat(gateway, other)
    assert (await browser.sign_in(gateway.key)).status == 200
    status, session = await browser.call("GET", "/session")
    assert status == 200 and session["data"]["role"] == "key"
    own_hash = session["data"]["api_key_hash"]
    status, _ = await browser.call("GET", "/keys")
    assert status == 403
    status, _ = await browser.call("POST", "/keys", json={"name": "x"})
    assert status == 403
    status, body = await browser.call("GET", f"/generation?id={mine}")
    assert status == 200 and body["data"]["id"] == mine
    status, _ = await browser.call("GET", f"/generation?id={theirs}")
    assert status == 403
    status, body = await browser.call("GET", "/generations")
    assert status == 200 and [g["id"] for g in body["data"]] == [mine]
    status, body = await browser.call("GET", "/activity?group_by=key")
    assert status == 200 and [row["api_key_hash"] for row in body["data"]] == [own_hash]
    other_hash = next(k.hash for k in gateway.services.keys.all() if k.hash != own_hash)
    status, _ = await browser.call("GET", f"/activity?api_key_hash={other_hash}")
    assert status == 400
    status, body = await browser.call("GET", "/key")
    assert status == 200 and body["data"]["usage"] > 0
    # Once the key is disabled, its session shows nothing more.
    await gateway.services.keys.update(own_hash, {"disabled": True})
    for path in ("/generations", "/key", "/models/openai/gpt-4o/history"):
        status, _ = await browser.call("GET", path)
        assert status == 401, path
    await gateway.services.keys.update(own_hash, {"disabled": False})
    # The admin sees both.
    admin = Browser(gateway, browser.http)
    browser.http.cookie_jar.clear()
    assert (await admin.sign_in(ADMIN_KEY)).status == 200
    status, body = await admin.call("GET", "/generations")
    assert {g["id"] for g in body["data"]} == {mine, theirs}
    status, body = await admin.call("GET", "/generations?app=nope")
    assert body["data"] == []


async def test_admin_playground_streams_with_a_key_of_its_own(gateway: Gateway, browser: Browser) -> None:
    assert (await browser.sign_in(ADMIN_KEY)).status == 200
    before = {k.hash for k in gateway.services.keys.all()}
    async with browser.http.post(f"{gateway.root}/dashboard/api/chat/completions",
                                 json={**CHAT, "stream": True}, headers={"X-CSRF-Token": browser.csrf}) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        text = await resp.text()
    assert '"provider":"Simulator"' in text.replace(" ", "") and text.rstrip().endswith("data: [DONE]")
    added = [k for k in gateway.services.keys.all() if k.hash not in before]
    assert [k.record.name for k in added] == ["Dashboard playground"]
    assert added[0].record.expires_at is not None
    # The same key serves the next request; signing out deletes it.
    async with browser.http.post(f"{gateway.root}/dashboard/api/chat/completions", json=CHAT,
                                 headers={"X-CSRF-Token": browser.csrf}) as resp:
        assert resp.status == 200
    assert len(gateway.services.keys.all()) == len(before) + 1
    status, _ = await browser.call("DELETE", "/session")
    assert status == 200
    assert {k.hash for k in gateway.services.keys.all()} == before


async def test_model_history_after_traffic(gateway: Gateway, browser: Browser) -> None:
    await _chat(gateway, gateway.key)
    assert (await browser.sign_in(gateway.key)).status == 200
    status, body = await browser.call("GET", "/models/openai/gpt-4o-mini/history")
    assert status == 200
    served = [e for e in body["data"] if any(v is not None for v in e["uptime"])]
    assert [e["provider_name"] for e in served] == ["Simulator"]
    assert served[0]["uptime"][-1] == 100.0 and served[0]["ttft"][-1] is not None
    assert len(served[0]["ttft"]) == 30 and len(served[0]["uptime"]) == 24
    status, _ = await browser.call("GET", "/models/nobody/nothing/history")
    assert status == 404
