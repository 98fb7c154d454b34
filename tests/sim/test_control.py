"""The control API over HTTP, its in-process twin on `SimServer`, and the `run` entry point."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web

from crossroads.sim import SimServer, create_app
from crossroads.sim.server import MAX_RECORDED

from .support import USER, chat, post_chat


async def test_behaviours_over_http(http: aiohttp.ClientSession, client: openai.AsyncOpenAI, sim: SimServer) -> None:
    async with http.put("/_sim/behaviours/openai%2Fgpt-4o", data="status=429; retry_after=3") as response:
        assert response.status == 200
        installed = await response.json()
    assert installed["model"] == "openai/gpt-4o"
    assert installed["directives"] == "status=429;retry_after=3"
    assert installed["behaviour"]["status"] == 429
    assert sim.behaviours == {"openai/gpt-4o": "status=429;retry_after=3"}

    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="openai/gpt-4o", messages=USER)
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices

    async with http.put("/_sim/behaviours/gpt-4o", data="tokens=4") as response:
        assert response.status == 200
    async with http.get("/_sim/behaviours") as response:
        assert await response.json() == {"openai/gpt-4o": "status=429;retry_after=3", "gpt-4o": "tokens=4"}

    async with http.delete("/_sim/behaviours/openai%2Fgpt-4o") as response:
        assert response.status == 204
    assert (await client.chat.completions.create(model="openai/gpt-4o", messages=USER)).choices
    assert sim.behaviours == {"gpt-4o": "tokens=4"}

    async with http.delete("/_sim/behaviours") as response:
        assert response.status == 204
    assert sim.behaviours == {}


async def test_bad_behaviour_over_http(http: aiohttp.ClientSession, sim: SimServer) -> None:
    async with http.put("/_sim/behaviours/gpt-4o", data="tokens=many") as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["directive"] == "tokens=many"
    assert "tokens=many" in error["message"]
    assert sim.behaviours == {}


async def test_requests_over_http(http: aiohttp.ClientSession, sim: SimServer) -> None:
    await post_chat(http, chat(extra_field=[1, 2]), headers={"X-Custom": "yes"})
    await post_chat(http, b"not json")
    async with http.get("/_sim/requests") as response:
        recorded = await response.json()
    assert len(recorded) == 2
    first = recorded[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["method"] == "POST"
    assert first["body"] == chat(extra_field=[1, 2])
    assert first["headers"]["x-custom"] == "yes"
    assert recorded[1]["body"] == "not json"
    assert [request.as_dict() for request in sim.requests] == recorded

    async with http.delete("/_sim/requests") as response:
        assert response.status == 204
    assert sim.requests == []
    async with http.get("/_sim/requests") as response:
        assert await response.json() == []


async def test_recording_keeps_the_latest() -> None:
    assert MAX_RECORDED == 1000
    async with SimServer(max_recorded=3) as sim, aiohttp.ClientSession(base_url=sim.url) as http:
        for i in range(5):
            await post_chat(http, chat(seq=i, model="gpt-4o#tokens=1"))
        assert [request.body["seq"] for request in sim.requests] == [2, 3, 4]


async def test_stats_and_reset(http: aiohttp.ClientSession, client: openai.AsyncOpenAI, sim: SimServer) -> None:
    await client.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o#status=500", messages=USER)
    async with http.get("/_sim/stats") as response:
        stats = await response.json()
    assert stats == {"requests": 2, "completed": 2, "cancelled": 0, "dropped": 0, "in_flight": 0}
    assert sim.stats == stats

    sim.set_behaviour("gpt-4o", "tokens=2")
    async with http.post("/_sim/reset") as response:
        assert response.status == 204
    assert sim.stats == {"requests": 0, "completed": 0, "cancelled": 0, "dropped": 0, "in_flight": 0}
    assert sim.requests == []
    assert sim.behaviours == {}

    sim.set_behaviour("gpt-4o", "tokens=2")
    await client.chat.completions.create(model="gpt-4o", messages=USER)
    sim.reset()
    assert sim.stats["requests"] == 0
    assert sim.requests == []
    assert sim.behaviours == {}


async def test_in_flight_is_visible(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    task = asyncio.create_task(client.chat.completions.create(model="gpt-4o#latency=300", messages=USER))
    stats = await sim.wait_until(lambda stats: stats["in_flight"] == 1)
    assert stats["requests"] == 1
    await task
    assert (await sim.wait_idle())["completed"] == 1


async def test_tcp_nodelay_is_set() -> None:
    async def nodelay(request: web.Request) -> web.Response:
        sock = request.transport.get_extra_info("socket") if request.transport else None
        assert sock is not None
        return web.Response(text=str(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))

    app = create_app()
    app.router.add_get("/nodelay", nodelay)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/nodelay") as response:
            assert await response.text() == "1"
    finally:
        await runner.cleanup()


async def test_health(http: aiohttp.ClientSession) -> None:
    async with http.get("/_sim/health") as response:
        assert await response.json() == {"status": "ok"}


async def test_server_lifecycle() -> None:
    sim = SimServer()
    with pytest.raises(RuntimeError):
        _ = sim.url
    await sim.start()
    try:
        assert sim.url == f"http://127.0.0.1:{sim.port}"
        assert sim.port > 0
        with pytest.raises(RuntimeError):
            await sim.start()
    finally:
        await sim.close()
    await sim.close()


async def test_close_with_a_hanging_request(sim: SimServer) -> None:
    session = aiohttp.ClientSession(base_url=sim.url)
    task = asyncio.create_task(post_chat(session, chat(model="gpt-4o#hang")))
    await sim.wait_until(lambda stats: stats["in_flight"] == 1)
    await sim.close()
    assert (await sim.wait_idle())["cancelled"] == 1
    with pytest.raises(aiohttp.ClientError):
        await task
    await session.close()


SOURCE = Path(__file__).resolve().parents[2] / "src"


async def test_run_serves_until_terminated() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE), os.environ.get("PYTHONPATH")]))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from crossroads.sim import run; run('127.0.0.1', 0)",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
        assert line.startswith("crossroads sim listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url + "/v1/chat/completions", data=orjson.dumps(chat()), headers={"Authorization": "Bearer x"}
            ) as response,
        ):
            assert response.status == 200
            assert (await response.json())["object"] == "chat.completion"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
