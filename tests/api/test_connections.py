"""Connections before and around a request: malformed HTTP answered in the JSON envelope, a half-closed
client still answered, slow headers timed out, and slow connections bounded per client address — while
other clients are served as usual."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from tests.api.test_hostile_input import raw_request
from tests.conftest import Gateway, GatewayFactory

MALFORMED = {
    "bare LF line endings": b"GET /api/v1/models HTTP/1.1\nHost: x\nAuthorization: Bearer sk-secret-0123\n\n",
    "a bare CR in a header": b"GET /api/v1/models HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
    "a bad request line": b"NOT HTTP AT ALL\r\n\r\n",
    "a header over the limit": b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    "bad chunking": (b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"zz\r\nabc\r\n0\r\n\r\n"),
    "a bad header name": b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_request_gets_a_json_400(gateway: Gateway, request_bytes: bytes,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    status, body = await raw_request(gateway.root, request_bytes)
    assert status == 400
    error = orjson.loads(body)["error"]
    assert error["code"] == 400 and error["message"].startswith("Malformed HTTP request")
    assert error["metadata"]["error_type"] == "invalid_request"
    lines = [r for r in caplog.records if r.name.startswith(("aiohttp", "crossroads.connections"))]
    assert len(lines) == 1 and lines[0].levelname == "INFO" and not lines[0].exc_info
    assert "sk-secret" not in caplog.text


async def _half_closed(gateway: Gateway, request: bytes) -> bytes:
    url = urlsplit(gateway.root)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(request)
    writer.write_eof()  # shutdown(SHUT_WR): the client will send nothing more
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_a_client_that_half_closes_after_its_request_gets_the_response(gateway: Gateway) -> None:
    body = orjson.dumps({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    request = (f"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    for _ in range(3):
        reply = await _half_closed(gateway, request)
        assert reply.startswith(b"HTTP/1.1 200 OK") and b'"choices"' in reply
    reply = await _half_closed(gateway, b"GET /api/v1/models/count HTTP/1.1\r\nHost: x\r\n\r\n")
    count = sum(1 for model in gateway.services.catalog.models.values() if "text" in model.output_modalities)
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b'{"data":{"count":%d}}' % count)


async def test_a_half_closed_connection_with_an_unfinished_body_gets_a_400(gateway: Gateway) -> None:
    request = (f"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n").encode() + b'{"model": "x"'
    reply = await _half_closed(gateway, request)
    assert reply.startswith(b"HTTP/1.1 400")


async def test_slow_headers_are_timed_out(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_HEADER_TIMEOUT": "0.5"}) as gw:
        url = urlsplit(gw.root)
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(b"GET /api/v1/models HTTP/1.1\r\nHo")
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert 0.4 < time.monotonic() - started < 3
        assert reply.startswith(b"HTTP/1.1 408") and b'"code":408' in reply
        # A connection that sends nothing at all is closed too, without a reply.
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_a_kept_alive_connection_times_out_a_slow_second_request(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_HEADER_TIMEOUT": "0.5"}) as gw:
        url = urlsplit(gw.root)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(b"GET /api/v1/models/count HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
        await asyncio.sleep(0.8)  # idle between requests is allowed (keep-alive) ...
        writer.write(b"GET /api/v1/models/count HTTP/1.1\r\nHo")  # ... a request trickling in is not
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert reply.startswith(b"HTTP/1.1 408")


async def test_slow_connections_are_bounded_per_client_and_others_are_served(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_MAX_PENDING_PER_CLIENT": "5", "CROSSROADS_HEADER_TIMEOUT": "30"}) \
            as gw, aiohttp.ClientSession() as http:
        url = urlsplit(gw.root)
        connections = [await asyncio.open_connection(url.hostname, url.port) for _ in range(40)]
        for _, writer in connections:
            writer.write(b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        # Trickle a byte now and then, as a slowloris client does.
        for _ in range(4):
            await asyncio.sleep(0.5)
            for _, writer in connections:
                if not writer.is_closing() and not writer.transport.is_closing():
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        writer.write(b"a")
            started = time.monotonic()
            async with http.get(f"{gw.url}/models/count") as response:
                assert response.status == 200
            assert time.monotonic() - started < 0.5
        open_ = 0
        for reader, writer in connections:
            try:
                closed = await asyncio.wait_for(reader.read(), 0.05) == b""
            except TimeoutError:
                closed = False
            except ConnectionError:
                closed = True
            open_ += not closed
            writer.close()
        assert open_ == 5


async def test_a_burst_of_prompt_connections_is_not_limited(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_MAX_PENDING_PER_CLIENT": "2"}) as gw:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            async def one() -> int:
                async with http.get(f"{gw.url}/models/count") as response:
                    return response.status

            assert await asyncio.gather(*(one() for _ in range(200))) == [200] * 200
