"""The upstream HTTP client against hand-written servers: every body framing, reuse, failures, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from crossroads.providers.http import HTTPClient, HTTPError, Target, request_head

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP server running `handler` per connection; yields its URL and a list of connection counts."""
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/x", connections
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def post(client: HTTPClient, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    target = Target.parse(url)
    response = await client.post(target, request_head(target, {"Content-Type": "application/json"}, len(body)), body)
    return response.status, await response.read()


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    value = HTTPClient(connect_timeout=2, read_timeout=2)
    yield value
    await value.close()


async def test_request_bytes_and_keep_alive_reuse(client: HTTPClient) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(ok(b'{"n": %d}' % len(seen)))
            await writer.drain()

    async with serve(handler) as (url, connections):
        for n in range(1, 4):
            assert await post(client, url, b'{"a": 1}') == (200, b'{"n": %d}' % n)
    assert len(connections) == 1  # one connection, reused
    assert seen[0].startswith(b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 8\r\n" in seen[0] and seen[0].endswith(b'\r\n\r\n{"a": 1}')


async def test_chunked_and_streamed(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
        for part in (b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with serve(handler) as (url, _):
        target = Target.parse(url)
        response = await client.post(target, request_head(target, {}, 2), b"{}")
        assert response.headers["content-type"] == "text/event-stream"
        chunks = []
        while (chunk := await response.next()) is not None:
            chunks.append(chunk)
    assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n" and len(chunks) >= 2


async def test_gzip_and_close_delimited_bodies(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = gzip.compress(b'{"hello": "world"}')
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()

    async with serve(handler) as (url, _):
        assert await post(client, url) == (200, b'{"hello": "world"}')


async def test_stale_keep_alive_connection_is_retried_once(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"first"))
        await writer.drain()
        # Keep-alive was promised, but the server closes the idle connection before the next request.

    async with serve(handler) as (url, connections):
        assert await post(client, url) == (200, b"first")
        await asyncio.sleep(0.05)
        assert await post(client, url) == (200, b"first")
    assert len(connections) == 2


async def test_connection_dropped_mid_body_is_an_error(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.transport.abort()

    async with serve(handler) as (url, _):
        with pytest.raises(HTTPError) as caught:
            await post(client, url)
    assert caught.value.kind == "closed"


async def test_silence_is_a_timeout() -> None:
    client = HTTPClient(connect_timeout=2, read_timeout=0.2)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    try:
        async with serve(handler) as (url, _):
            with pytest.raises(HTTPError) as caught:
                await post(client, url)
    finally:
        await client.close()
    assert caught.value.kind == "timeout"


async def test_silence_inside_a_body_is_a_timeout_and_trickling_is_not() -> None:
    client = HTTPClient(connect_timeout=2, read_timeout=0.3)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = (await read_request(reader)).split(b" ")[1]
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):  # a chunk every 0.1 s: 0.6 s in all, twice the timeout, never 0.3 s of silence
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
        if path.endswith(b"/stall"):
            await asyncio.sleep(5)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    try:
        async with serve(handler) as (url, _):
            assert await post(client, url) == (200, b"x" * 6)
            with pytest.raises(HTTPError) as caught:
                await post(client, url.rsplit("/", 1)[0] + "/stall")
            assert caught.value.kind == "timeout"
            await asyncio.sleep(0.2)
            assert not client.watchdog.armed  # nothing in flight: no timer left running
    finally:
        await client.close()


async def test_malformed_response_is_a_protocol_error(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP is not HTTP\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with serve(handler) as (url, _):
        with pytest.raises(HTTPError) as caught:
            await post(client, url)
    assert caught.value.kind == "protocol"


async def test_connection_refused(client: HTTPClient) -> None:
    with pytest.raises(HTTPError) as caught:
        await post(client, "http://127.0.0.1:1/v1/x")
    assert caught.value.kind == "connect"


def replying(body: bytes) -> Handler:
    """A handler that answers one request with `body` (Content-Length)."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(body))
        await writer.drain()

    return handler


async def test_a_large_body_is_read_with_back_pressure(client: HTTPClient) -> None:
    payload = b"x" * (5 << 20)
    async with serve(replying(payload)) as (url, _):
        target = Target.parse(url)
        response = await client.post(target, request_head(target, {}, 2), b"{}")
        total = 0
        while (chunk := await response.next()) is not None:
            total += len(chunk)
            await asyncio.sleep(0)
    assert total == len(payload)


async def test_a_large_body_read_whole_is_not_held_back(client: HTTPClient) -> None:
    # Reading pauses beyond HIGH_WATER bytes only for a body taken piece by piece; read() takes it whole.
    payload = b"y" * (5 << 20)
    async with serve(replying(payload)) as (url, _):
        assert await asyncio.wait_for(post(client, url), 1.5) == (200, payload)  # read_timeout is 2 s


async def test_a_gzip_body_streamed_in_pieces_decodes_to_the_whole(client: HTTPClient) -> None:
    text = b"".join(b"data: {\"n\": %d}\n\n" % i for i in range(2000))
    packed = gzip.compress(text)
    pieces = [packed[i:i + 700] for i in range(0, len(packed), 700)]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with serve(handler) as (url, _):
        target = Target.parse(url)
        response = await client.post(target, request_head(target, {}, 2), b"{}")
        got = []
        while (chunk := await response.next()) is not None:
            assert chunk
            got.append(chunk)
        assert b"".join(got) == text and len(got) > 1
        assert await post(client, url) == (200, text)  # and read whole


async def test_a_finished_response_never_sees_the_next_exchange_on_its_connection(client: HTTPClient) -> None:
    # The connection's body buffer is shared with the response in progress; one that has ended (here a
    # gzip stream, whose end a consumer may ask for again) must not read the next exchange's bytes.
    second = b"the second reply"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(gzip.compress(b"first"), b"Content-Encoding: gzip\r\n"))
        await read_request(reader)
        writer.write(ok(second))
        await writer.drain()

    async with serve(handler) as (url, connections):
        target = Target.parse(url)
        first = await client.post(target, request_head(target, {}, 2), b"{}")
        assert await first.next() == b"first"
        assert await first.next() is None
        following = await client.post(target, request_head(target, {}, 2), b"{}")
        await asyncio.sleep(0.05)  # its body has arrived, not yet taken
        assert await first.next() is None
        assert await following.read() == second
        assert len(connections) == 1


async def test_an_undecodable_gzip_body_is_a_protocol_error(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"not gzip at all", b"Content-Encoding: gzip\r\n"))
        await writer.drain()

    async with serve(handler) as (url, _):
        with pytest.raises(HTTPError) as caught:
            await post(client, url)
    assert caught.value.kind == "protocol"


async def test_closing_a_response_drops_the_connection(client: HTTPClient) -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await reader.read()  # returns when the client drops the connection
        closed.set()

    async with serve(handler) as (url, _):
        target = Target.parse(url)
        response = await client.post(target, request_head(target, {}, 2), b"{}")
        response.close()
        await asyncio.wait_for(closed.wait(), 2)


def test_targets_and_header_safety() -> None:
    target = Target.parse("https://api.example.com/v1/chat/completions?x=1")
    assert target.origin == ("https", "api.example.com", 443)
    assert target.host_header == "api.example.com" and target.path == "/v1/chat/completions?x=1"
    assert Target.parse("http://127.0.0.1:8080/v1").host_header == "127.0.0.1:8080"
    with pytest.raises(ValueError, match="line break"):
        request_head(target, {"X-Evil": "a\r\nInjected: yes"}, 0)
    with pytest.raises(ValueError, match="not an http"):
        Target.parse("ftp://example.com/")
