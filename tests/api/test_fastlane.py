"""The fast lane: which requests take it, and what a client sees of them on the wire — whole replies, streams,
heads and bodies in pieces, pipelining, `Connection: close`, body timeouts — beside aiohttp's requests on
the same connection. A lane answer is told from aiohttp's by its `Server` header."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from aiohttp import web

from crossroads.api.connections import ConnectionLimits, GatewayRunner
from crossroads.api.fastlane import LANE_ROUTES, MAX_HEAD, WAIT, Head, Lane, stream_response
from tests.conftest import Gateway, GatewayFactory

CHAT = "/api/v1/chat/completions"
ASK = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


async def _handler(request: Any) -> web.StreamResponse:
    return web.Response()


LANE = Lane(web.Application(), {CHAT: _handler})


def request_bytes(body: bytes = b"{}", *, path: str = CHAT, extra: str = "", length: int | None = None,
                  version: str = "HTTP/1.1") -> bytes:
    return (f"POST {path} {version}\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + body


# -- which requests take the lane ------------------------------------------------------------------------

def test_a_plain_request_takes_the_lane() -> None:
    data = request_bytes(b'{"a": 1}', extra="X-Title: caf\xe9\r\nAuthorization: Bearer k\r\n")
    head = LANE.head(data)
    assert isinstance(head, Head)
    assert head.path == CHAT and head.length == 8 and data[head.body_start:] == b'{"a": 1}' and not head.close
    assert head.headers["authorization"] == "Bearer k" and head.headers["CONTENT-TYPE"] == "application/json"
    assert head.headers["X-Title"] == "caf\xe9".encode().decode("utf-8", "surrogateescape")
    assert LANE.head(request_bytes(b"", length=10)) is not None  # the body may come after the head
    close = LANE.head(request_bytes(extra="Connection: close\r\n"))
    assert isinstance(close, Head) and close.close
    query = LANE.head(request_bytes(path=CHAT + "?beta=true"))  # as Anthropic's SDK sends /messages
    assert isinstance(query, Head) and query.path == CHAT


@pytest.mark.parametrize("data", [b"P", b"POST /api/v1/ch", b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x"])
def test_the_start_of_a_head_waits_for_the_rest(data: bytes) -> None:
    assert LANE.head(data) == WAIT


@pytest.mark.parametrize("data", [
    b"GET /api/v1/models HTTP/1.1\r\n\r\n",
    b"PUT " + CHAT.encode(),
    b"POST /api/v1/models?x HTTP/1.1\r\nHost",
    request_bytes(path="/api/v1/models"),
    request_bytes(path="/api/v1/models?x=1"),
    request_bytes(version="HTTP/1.0"),
    request_bytes(extra="Transfer-Encoding: chunked\r\n"),
    request_bytes(extra="Expect: 100-continue\r\n"),
    request_bytes(extra="Upgrade: websocket\r\nConnection: upgrade\r\n"),
    request_bytes(extra="Content-Length: 2\r\n"),
    request_bytes(extra="Connection: keep-alive\r\nConnection: close\r\n"),
    request_bytes(extra="Bad Header: y\r\n"),
    request_bytes(extra="X-Nul: a\x00b\r\n"),
    request_bytes(extra=" folded\r\n"),
    request_bytes(length=-1).replace(b"Content-Length: -1", b"Content-Length: +1"),
    b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # no Content-Length
    b"POST " + CHAT.encode() + b" HTTP/1.1\r\nX: " + b"a" * MAX_HEAD,
    request_bytes(extra=f"X-Big: {'a' * MAX_HEAD}\r\n"),
], ids=["get", "put", "another route's partial head", "another route", "another route with a query", "http/1.0",
        "chunked", "expect", "upgrade", "two lengths",
        "two connection headers", "bad name", "control character", "folded line", "signed length", "no length",
        "long partial head", "long head"])
def test_anything_else_goes_to_aiohttp(data: bytes) -> None:
    assert LANE.head(data) is None


# -- on the wire -------------------------------------------------------------------------------------------

class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            body = await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), 10)
        else:
            assert headers.get("transfer-encoding") == "chunked"
            parts = []
            while size := int((await asyncio.wait_for(self.reader.readline(), 10)).strip(), 16):
                parts.append(await self.reader.readexactly(size))
                assert await self.reader.readexactly(2) == b"\r\n"
            assert await self.reader.readexactly(2) == b"\r\n"
            body = b"".join(parts)
        return status, headers, body

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 10) == b""


@asynccontextmanager
async def connect(gw: Gateway) -> AsyncIterator[Connection]:
    url = urlsplit(gw.root)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        yield Connection(reader, writer)
    finally:
        writer.close()


def ask(gw: Gateway, body: dict[str, Any] | None = None, extra: str = "") -> bytes:
    return request_bytes(orjson.dumps(body or ASK), extra=f"Authorization: Bearer {gw.key}\r\n{extra}")


async def test_whole_replies_and_aiohttp_requests_share_a_connection(gateway: Gateway) -> None:
    async with connect(gateway) as conn:
        for _ in range(2):
            await conn.send(ask(gateway))
            status, headers, body = await conn.response()
            assert status == 200 and headers["server"] == "Crossroads"
            assert headers["content-type"] == "application/json" and headers["date"].endswith(" GMT")
            assert orjson.loads(body)["id"] == headers["x-generation-id"]
        await conn.send(b"GET /api/v1/models/count HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await conn.response()
        assert status == 200 and headers["server"] != "Crossroads"
        await conn.send(ask(gateway, {"model": "openai/gpt-4o"}))  # no messages: refused, in the lane
        status, headers, body = await conn.response()
        assert status == 400 and headers["server"] == "Crossroads" and b"messages" in body


async def test_a_head_in_pieces_and_a_late_body(gateway: Gateway) -> None:
    data = ask(gateway)
    split = data.index(b"\r\n\r\n") + 4
    async with connect(gateway) as conn:
        for start in range(0, split, 7):
            await conn.send(data[start:min(start + 7, split)])
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        await conn.send(data[split:])
        status, headers, body = await conn.response()
    assert status == 200 and headers["server"] == "Crossroads" and b'"choices"' in body


async def test_pipelined_requests_are_answered_in_order(gateway: Gateway) -> None:
    first, second = ask(gateway, {**ASK, "user": "first"}), ask(gateway, {**ASK, "user": "second"})
    async with connect(gateway) as conn:
        await conn.send(first + second + b"GET /api/v1/models/count HTTP/1.1\r\nHost: x\r\n\r\n")
        replies = [await conn.response() for _ in range(3)]
    assert [status for status, _, _ in replies] == [200, 200, 200]
    ids = [headers.get("x-generation-id") for _, headers, _ in replies[:2]]
    users = [gateway.services.ledger.recent(i).external_user for i in ids]  # type: ignore[union-attr]
    assert users == ["first", "second"] and b'"count"' in replies[2][2]


async def test_connection_close_is_honoured(gateway: Gateway) -> None:
    async with connect(gateway) as conn:
        await conn.send(ask(gateway, extra="Connection: close\r\n"))
        status, headers, _ = await conn.response()
        assert status == 200 and headers["connection"] == "close"
        assert await conn.closed()


async def test_a_stream_is_chunked_and_ends(gateway: Gateway) -> None:
    async with connect(gateway) as conn:
        for _ in range(2):  # and the connection is kept for the next request
            await conn.send(ask(gateway, {**ASK, "stream": True}))
            status, headers, body = await conn.response()
            assert status == 200 and headers["server"] == "Crossroads"
            assert headers["content-type"].startswith("text/event-stream")
            events = [line for line in body.split(b"\n") if line.startswith(b"data: ")]
            assert events[-1] == b"data: [DONE]" and b'"usage"' in events[-2]


async def test_a_body_that_never_comes_is_timed_out(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_BODY_TIMEOUT": "0.3"}) as gw, connect(gw) as conn:
        data = ask(gw)
        await conn.send(data[:-5])
        status, headers, body = await conn.response()
        assert status == 408 and headers["server"] == "Crossroads" and b"did not arrive" in body
        assert await conn.closed()  # the rest of that body would be read as the next request: no next


async def test_response_hooks_headers_are_on_lane_answers(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_DEBUG_HEADERS": "on"}) as gw, connect(gw) as conn:
        await conn.send(ask(gw))
        status, headers, _ = await conn.response()
        assert status == 200 and headers["server"] == "Crossroads" and headers["x-crossroads-worker"].isdigit()


# -- the connection around a lane request -------------------------------------------------------------------

@asynccontextmanager
async def lane_server(handler: Any, keepalive: float) -> AsyncIterator[str]:
    """A server whose only lane route is `handler`, with aiohttp's idle-connection timeout `keepalive`."""
    app = web.Application()
    app[LANE_ROUTES] = {CHAT: handler}
    runner = GatewayRunner(app, limits=ConnectionLimits(), keepalive_timeout=keepalive, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_a_stream_longer_than_the_idle_timeout_is_not_cut(caplog: pytest.LogCaptureFixture) -> None:
    async def slow(request: Any) -> web.StreamResponse:
        response = stream_response(request, {"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(6):
            await response.write(b"data: %d\n\n" % i)
            await asyncio.sleep(0.1)
        await response.write_eof()
        return response

    async with lane_server(slow, keepalive=0.2) as root:
        url = urlsplit(root)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        conn = Connection(reader, writer)
        try:
            for _ in range(2):  # the first answer arms the idle timer; the second stream outlasts it
                await conn.send(request_bytes())
                status, headers, body = await conn.response()
                assert status == 200 and headers["server"] == "Crossroads"
                assert body == b"".join(b"data: %d\n\n" % i for i in range(6))
            await asyncio.sleep(0.5)
            assert await conn.closed()  # idle afterwards: closed by the timer
        finally:
            writer.close()


async def test_a_reply_in_pieces_is_whole_on_the_lane_and_off_it(gateway: Gateway) -> None:
    """An embeddings reply in base64 is written as the provider's vectors beside the gateway's fields
    (`render.Pieces`): the same reply either way a request comes."""
    ask_embed = {"model": "openai/text-embedding-3-small", "input": ["a cat", "a dog"], "encoding_format": "base64"}
    replies = []
    for version in ("HTTP/1.1", "HTTP/1.0"):  # HTTP/1.0 is aiohttp's to answer
        async with connect(gateway) as conn:
            await conn.send(request_bytes(orjson.dumps(ask_embed), path="/api/v1/embeddings", version=version,
                                          extra=f"Authorization: Bearer {gateway.key}\r\n"))
            status, headers, body = await conn.response()
        assert status == 200 and int(headers["content-length"]) == len(body)
        assert (headers["server"] == "Crossroads") == (version == "HTTP/1.1")
        replies.append(orjson.loads(body))
    lane, aiohttp = replies
    assert lane["data"] == aiohttp["data"] and [d["index"] for d in lane["data"]] == [0, 1]
    assert all(isinstance(d["embedding"], str) for d in lane["data"]) and lane["id"] != aiohttp["id"]
