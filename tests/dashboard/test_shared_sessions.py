"""Two `crossroads serve` processes on one SQLite file, as behind a load balancer: a dashboard session opened
on one works on the other; signing out on either, or the key being disabled, ends it on both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.test_cli import clean_env, serving

COOKIE = "crossroads_session"
ADMIN_KEY = "shared-sessions-admin-key"
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(root of the first, root of the second, the key printed at first start)."""
    env = clean_env(CROSSROADS_ADMIN_KEY=ADMIN_KEY)
    with contextlib.ExitStack() as stack:
        first, key, _ = stack.enter_context(serving(tmp_path, env))
        second, _, _ = stack.enter_context(serving(tmp_path, env, first=False))
        yield f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}", key


class Tab:
    """One browser tab's calls to one gateway, carrying a session cookie by hand (cookies are not bound to a
    port, so a browser sends the same cookie to both, as behind one load-balanced name)."""

    def __init__(self, http: aiohttp.ClientSession, root: str) -> None:
        self.http = http
        self.root = root

    async def sign_in(self, key: str) -> tuple[str, str]:
        """(the session's cookie token, its CSRF token)."""
        async with self.http.post(f"{self.root}/dashboard/api/session", json={"key": key}) as resp:
            assert resp.status == 200, await resp.text()
            return resp.cookies[COOKIE].value, (await resp.json())["data"]["csrf_token"]

    async def call(self, method: str, path: str, session: tuple[str, str], **kwargs: Any) -> tuple[int, Any]:
        token, csrf = session
        headers = {"Cookie": f"{COOKIE}={token}", "X-CSRF-Token": csrf}
        async with self.http.request(method, f"{self.root}/dashboard/api{path}", headers=headers,
                                     **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, f"{self.root}/api/v1{path}", **kwargs,
                                     headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def test_a_session_is_shared_by_every_process_and_ends_on_all(gateways: tuple[str, str, str]) -> None:
    first_root, second_root, key = gateways
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        first, second = Tab(http, first_root), Tab(http, second_root)
        # An API key's session, opened on the first, answers on the second; signed out there, it is refused
        # on the first.
        session = await first.sign_in(key)
        status, body = await second.call("GET", "/key", session)
        assert status == 200 and body["data"]["label"].endswith(key[-3:])
        status, body = await second.call("GET", "/session", session)
        assert body["data"]["csrf_token"] == session[1]
        status, _ = await second.call("DELETE", "/session", session)
        assert status == 200
        for tab in (first, second):
            status, _ = await tab.call("GET", "/key", session)
            assert status == 401
            assert await tab.call("GET", "/session", session) == (200, {"data": None})

        # An admin session's playground key, made on the second, is deleted by signing out on the first.
        admin = await first.sign_in(ADMIN_KEY)
        status, _ = await second.call("POST", "/chat/completions", admin, json=CHAT)
        assert status == 200
        names = [k["name"] for k in (await second.admin("GET", "/keys"))["data"]]
        assert names.count("Dashboard playground") == 1
        status, _ = await first.call("DELETE", "/session", admin)
        assert status == 200
        status, _ = await second.call("GET", "/keys", admin)
        assert status == 401
        names = [k["name"] for k in (await first.admin("GET", "/keys"))["data"]]
        assert names == ["default"]

        # A key disabled through one process ends its sessions on the other within its key refresh.
        session = await first.sign_in(key)
        assert (await first.call("GET", "/key", session))[0] == 200
        key_hash = next(k["hash"] for k in (await second.admin("GET", "/keys"))["data"]
                        if k["label"].endswith(key[-3:]))
        await second.admin("PATCH", f"/keys/{key_hash}", json={"disabled": True})
        for _ in range(50):  # five seconds
            status, _ = await first.call("GET", "/key", session)
            if status != 200:
                break
            await asyncio.sleep(0.1)
        assert status == 401
        # That ended the session itself: enabling the key again does not bring it back, on either process.
        await second.admin("PATCH", f"/keys/{key_hash}", json={"disabled": False})
        await asyncio.sleep(1.5)  # both processes have taken the key back by now
        for tab in (first, second):
            assert await tab.call("GET", "/session", session) == (200, {"data": None})
            status, _ = await tab.call("GET", "/key", session)
            assert status == 401
        assert (await first.call("GET", "/key", await first.sign_in(key)))[0] == 200
