"""Logs: no key in any line, whatever a client sends; valid JSON lines whatever a message holds."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossroads.logs import REDACTED, JSONFormatter, Redactor, TextFormatter
from tests.api.test_connections import MALFORMED
from tests.test_cli import clean_env, serving

ADMIN = "admin-secret-0123456789abcdef"


@pytest.mark.parametrize("text", [
    "b'GET / HTTP/1.1\\nAuthorization: Bearer {s}\\n\\n'",
    "GET / HTTP/1.1\r\nAuthorization: Bearer {s}\r\n\r\n",
    "<CIMultiDictProxy('Host': 'x', 'Authorization': 'Bearer {s}')>",
    '{{"x-api-key": "{s}"}}',
    "{{'api-key': '{s}'}}",
    "x-goog-api-key: {s}",
    "Cookie: session={s}; other=1",
    "proxy-authorization={s}",
    "key was Bearer {s}",
    "secret {s} alone",
])
def test_the_redactor_removes_credentials_wherever_they_stand(text: str) -> None:
    for secret in ("sk-cr-v1-" + "ab" * 32, "zz-not-a-known-format-9876543210", ADMIN):
        line = Redactor([ADMIN, "zz-not-a-known-format-9876543210"]).redact(text.format(s=secret))
        assert secret not in line and REDACTED in line, line


def test_the_redactor_leaves_ordinary_text_alone() -> None:
    text = "authorization of users; Authorization header must be 'Bearer <API key>'"
    assert Redactor().redact(text) == text


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError('a "quoted"\nmultiline error')
        except ValueError:
            import sys
            exc_info = sys.exc_info()
    return logging.LogRecord("crossroads.test", logging.ERROR, __file__, 1, message, args or None, exc_info)


def test_json_lines_hold_quotes_newlines_and_tracebacks() -> None:
    formatter = JSONFormatter()
    for record in (_record('say "hi"\nand {"x": 1}'), _record("%s and %r", 'a"b', "c\nd", exc=True),
                   _record("bytes \udcff here")):
        line = formatter.format(record)
        assert "\n" not in line
        entry = json.loads(line)
        assert entry["level"] == "ERROR" and entry["logger"] == "crossroads.test"
    assert json.loads(formatter.format(_record("x", exc=True)))["exception"].startswith("Traceback")


def test_text_lines_keep_one_record_on_one_line_before_its_traceback() -> None:
    line = TextFormatter().format(_record("forged\n2026-01-01 INFO crossroads: fake"))
    assert line.count("\n") == 0 and "\\n" in line


@pytest.mark.parametrize("form", ["text", "json"])
def test_no_key_reaches_the_log_whatever_clients_send(tmp_path: Path, form: str) -> None:
    env = clean_env(CROSSROADS_ADMIN_KEY=ADMIN, CROSSROADS_LOG_LEVEL="DEBUG", CROSSROADS_LOG_FORMAT=form,
                    CROSSROADS_HEADER_TIMEOUT="1")
    log_file = tmp_path / "stderr.log"
    with log_file.open("w") as stderr, serving(tmp_path, env, stderr=stderr) as (port, key, _):
        _send_hostile_requests(port, key)
    text = log_file.read_text()
    assert "rejected a malformed HTTP request" in text and "ledger shipper started" in text
    for secret in (ADMIN, key, key.removeprefix("sk-cr-v1-")):
        assert secret not in text
    if form == "json":
        entries = [json.loads(line) for line in text.splitlines()]
        assert {e["logger"] for e in entries} >= {"crossroads.connections", "crossroads.ledger"}
        assert len({e["pid"] for e in entries}) >= 2  # the gateway and its shipper


def _send_hostile_requests(port: int, key: str) -> None:
    auth_lines = [f"Authorization: Bearer {ADMIN}".encode(), f"Authorization: Bearer {key}".encode(),
                  f"x-api-key: {key}".encode(), f"Cookie: session={key}".encode()]
    for auth in auth_lines:
        for request in MALFORMED.values():
            for separator in (b"\r\n", b"\n"):
                head = request.split(b"\r\n\r\n")[0].split(b"\n")[0].rstrip(b"\r")
                _raw(port, head + separator + auth + separator + request[len(head):].lstrip(b"\r\n"))
        _raw(port, b"GET /api/v1/keys HTTP/1.1\nHost: x\n" + auth + b"\n\n")
        _raw(port, b"GET /api/v1/keys HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\nX: \xff\xfe\r\n\r\n")
        _raw(port, b"GET /api/v1/keys HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\nX-Slow: ", wait=1.5)  # times out
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1") as http:
        for headers in ({"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {ADMIN}"}):
            http.post("/chat/completions", headers=headers, content=b"{not json")
            http.post("/chat/completions", headers=headers, json={"model": "no/such-model", "messages": []})
            http.post("/chat/completions", headers=headers,
                      json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
            http.get("/keys", headers=headers)
            http.post("/keys", headers=headers, json={"name": "x", "limit": 1e20})


def _raw(port: int, data: bytes, wait: float = 2) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        s.settimeout(wait)
        try:
            while s.recv(65536):
                pass
        except (TimeoutError, ConnectionError):
            pass


async def test_every_line_of_a_json_run_with_quotes_newlines_and_a_traceback_parses(
        start_gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import logging as logging_module

    import aiohttp

    from crossroads import logs
    from crossroads.api.models import ModelsAPI

    root = logging_module.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    logs.configure("DEBUG", as_json=True, stream=out)
    try:
        async def broken(self: ModelsAPI, request: Any) -> Any:
            raise ValueError('a "quoted"\nmulti-line failure')

        monkeypatch.setattr(ModelsAPI, "one", broken)
        async with start_gateway() as gw, aiohttp.ClientSession() as http, \
                http.get(f"{gw.url}/model/a%22b/c%0Ad") as response:
            assert response.status == 500
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    (failure,) = [e for e in entries if e["message"].startswith("unhandled error")]
    assert failure["message"] == 'unhandled error on GET /api/v1/model/a"b/c\nd'
    assert failure["exception"].startswith("Traceback") and 'a "quoted"\nmulti-line failure' in failure["exception"]


async def test_one_access_line_per_request_in_json_without_keys_or_content(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import logging as logging_module

    import aiohttp
    from aiohttp import web

    from crossroads import logs
    from crossroads.api.connections import GatewayRunner
    from crossroads.api.models import ModelsAPI
    from crossroads.app import SERVICES, connection_limits, create_app
    from crossroads.settings import from_environ

    async def broken(self: ModelsAPI, request: Any) -> Any:
        raise ValueError('a "quoted"\nmulti-line failure')

    monkeypatch.setattr(ModelsAPI, "one", broken)
    secret_content = "the-content-no-log-may-hold"
    root = logging_module.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    logs.configure("INFO", as_json=True, stream=out)
    settings = from_environ({"CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
                             "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool"), "CROSSROADS_ADMIN_KEY": ADMIN})
    app = create_app(settings)
    runner = GatewayRunner(app, limits=connection_limits(settings), shutdown_timeout=0.5)  # the default access log
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        key, _ = await app[SERVICES].keys.create('team "a"')
        auth = {"Authorization": f"Bearer {key}"}
        chat = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": secret_content}]}
        async with aiohttp.ClientSession() as http:
            made = []
            for stream in (False, True):
                async with http.post(f"{base}/api/v1/chat/completions", headers=auth,
                                     json={**chat, "stream": stream}) as got:
                    await got.read()
                    made.append((got.status, got.headers["X-Generation-Id"]))
            async with http.post(f"{base}/api/v1/chat/completions", json=chat,
                                 headers={"Authorization": f"Bearer {ADMIN}"}) as got:
                made.append((got.status, None))
            async with http.post(f"{base}/api/v1/chat/completions", headers=auth,
                                 json={**chat, "model": 'no/"such"\nmodel'}) as got:
                made.append((got.status, None))
            async with http.get(f"{base}/api/v1/model/a%22b/c%0Ad", headers=auth) as got:
                made.append((got.status, None))
    finally:
        await runner.cleanup()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = out.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]  # every line, the traceback's included
    assert any(e.get("exception", "").startswith("Traceback") for e in entries)
    access = [e for e in entries if e["logger"] == "crossroads.access"]
    assert [(e["method"], e["status"]) for e in access] == [("POST", 200), ("POST", 200), ("POST", 403),
                                                            ("POST", 400), ("GET", 500)]
    for entry, (_, generation_id) in zip(access, made, strict=True):
        assert entry["level"] == "INFO" and entry["duration_ms"] >= 0
        assert entry["generation_id"] == generation_id
    for entry in access[:2]:
        assert entry["path"] == "/api/v1/chat/completions" and entry["model"] == "openai/gpt-4o"
        assert entry["provider"] == "Simulator" and entry["key_name"] == 'team "a"'
    assert access[4]["path"] == '/api/v1/model/a"b/c\nd'
    for line in lines:
        assert key not in line and ADMIN not in line and secret_content not in line


@pytest.mark.parametrize("text", [
    "POST /api/v1/chat/completions 200 1.2ms model=openai/gpt-4o key=team-a",
    "AUTHORIZATION: abc123456", "x-Api-Key=zzzzzzzzzz", "COOKIE: a=b", "BeArEr 0123456789abcdef",
    "SK-CR-V1-0123abcd", "ſk-cr-v1-0123abcd", "cooKie: session=abcdef", "nothing to see here",
])
def test_the_quick_path_redacts_exactly_as_the_patterns_do(text: str) -> None:
    from crossroads.logs import _HEADER_VALUE, _TOKENS

    slow = _HEADER_VALUE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    slow = _TOKENS.sub(lambda m: f"{m[1]}{REDACTED}" if m[1] else f"sk-cr-v1-{REDACTED}", slow)
    assert Redactor().redact(text) == slow


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("message", [
    "POST /api/v1/chat/completions 200 1.2ms model=openai/gpt-4o provider=OpenAI generation=gen-1 key=team-a",
    'GET /api/v1/model/a"b/c\nd\r 404 0.3ms model=- provider=- generation=- key=-',
    "GET /api/v1/Bearer 0123456789abcdef 404 0.1ms model=- provider=- generation=- key=ſk-é",
])
def test_the_quick_access_line_is_the_line_logging_writes(as_json: bool, message: str) -> None:
    import io
    import re

    from crossroads import logs

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    fields = {"method": "GET", "path": message.split(" ")[1], "status": 404, "duration_ms": 0.1, "model": None,
              "key_name": "Bearer 0123456789abcdef"}
    try:
        handler = logs.configure("INFO", as_json=as_json, secrets=["0123456789abcdef"], stream=out, batched=True)
        assert isinstance(handler, logs.BatchingHandler)
        logger = logging.getLogger("crossroads.access")
        assert logs.quick_handler(logger) is handler
        logger.info("%s", message, extra=fields)
        assert handler.info_line(logger.name, message, fields)
        handler.drain()
        root.addHandler(logging.NullHandler())  # another handler would see the record: no quick path
        assert logs.quick_handler(logger) is None
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    slow, quick = out.getvalue().splitlines()
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")
    if as_json:
        slow_entry, quick_entry = json.loads(slow), json.loads(quick)
        assert stamp.fullmatch(slow_entry.pop("time")) and stamp.fullmatch(quick_entry.pop("time"))
        assert quick_entry == slow_entry
    else:
        assert stamp.match(slow) and stamp.match(quick)
        assert quick[23:] == slow[23:]
    assert "0123456789abcdef" not in out.getvalue()
