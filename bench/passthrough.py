"""A minimal forwarding proxy: the floor of what a Python gateway on aiohttp can do.

It is the benchmark's reference point, not part of Crossroads: an aiohttp server and one aiohttp
ClientSession on uvloop. Every request to any path is sent to the upstream base URL with the same path
suffix, method, body and content headers; the reply's status and content type come back, a JSON reply in
one piece and anything else (server-sent events) chunk by chunk as the upstream sends it. No parsing, no
authentication, no accounting.

    python bench/passthrough.py --port 8100 --upstream http://127.0.0.1:8081/v1 --prefix /api/v1

With `--processes N` it runs N such processes on the port (`SO_REUSEPORT`), the reference for
`crossroads serve --workers N`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import subprocess
import sys

import aiohttp
import uvloop
from aiohttp import web

_FORWARDED = ("Content-Type", "Accept", "Authorization")


def make_app(upstream: str, prefix: str) -> web.Application:
    upstream = upstream.rstrip("/")
    prefix = prefix.rstrip("/")
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, socket_factory=_nodelay_socket)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         timeout=aiohttp.ClientTimeout(total=None, sock_read=300),
                                         skip_auto_headers=("User-Agent",)) as session:
            app[session_key] = session
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        path = request.path
        if prefix and path.startswith(prefix):
            path = path[len(prefix):]
        headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
        body = await request.read()
        session = request.app[session_key]
        async with session.request(request.method, upstream + path, data=body, headers=headers) as reply:
            content_type = reply.headers.get("Content-Type", "application/octet-stream")
            if not content_type.startswith("text/event-stream"):
                return web.Response(status=reply.status, body=await reply.read(),
                                    headers={"Content-Type": content_type})
            response = web.StreamResponse(status=reply.status, headers={"Content-Type": content_type,
                                                                        "Cache-Control": "no-cache"})
            await response.prepare(request)
            async for chunk in reply.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def _nodelay_socket(addr_info: tuple[int, int, int, str, tuple[str, int]]) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


async def serve(host: str, port: int, upstream: str, prefix: str, reuse_port: bool) -> None:
    runner = web.AppRunner(make_app(upstream, prefix), access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096, reuse_address=True, reuse_port=reuse_port or None).start()
    print(f"passthrough listening on http://{host}:{port}{prefix} -> {upstream}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="upstream base URL, e.g. http://127.0.0.1:8081/v1")
    parser.add_argument("--prefix", default="/api/v1", help="path prefix replaced by the upstream base URL")
    parser.add_argument("--processes", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    others: list[subprocess.Popen[bytes]] = []
    if args.processes > 1:  # the others run this same command with one process each
        command = [sys.executable, __file__, "--host", args.host, "--port", str(args.port), "--upstream",
                   args.upstream, "--prefix", args.prefix, "--processes", "1", "--reuse-port"]
        others = [subprocess.Popen(command) for _ in range(args.processes - 1)]
    try:
        uvloop.run(serve(args.host, args.port, args.upstream, args.prefix, args.processes > 1 or args.reuse_port))
    finally:
        for other in others:
            other.terminate()
        for other in others:
            other.wait()


if __name__ == "__main__":
    main()
