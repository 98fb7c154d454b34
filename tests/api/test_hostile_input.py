"""Hostile or merely unusual input: no free completions, no overspend through `n`, no leaked reservation, no
500s. Each test sends what a client could send and checks what the key was charged and what the ledger
holds, through a running gateway and simulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from crossroads.providers.registry import build_adapters
from tests.conftest import ADMIN_KEY, Gateway, GatewayFactory, provider_keys, upstream_catalog

# 1,000 USD per million prompt tokens and 2,000 per million completion tokens: a completion token costs
# 0.002 USD, so reservations and charges are large enough to read.
PROMPT, COMPLETION = Decimal("0.001"), Decimal("0.002")


def _catalog(sim_url: str, directive: str = "") -> str:
    upstream = f"m#{directive}" if directive else "m"
    return upstream_catalog(sim_url, {"test/model": [
        {"provider": "alpha", "upstream_model": upstream, "prompt": "1000", "completion": "2000"}]})


async def raw_request(root: str, request: bytes, *, read_timeout: float = 10) -> tuple[int, bytes]:
    """Send `request` as it is (bytes no HTTP client would send) and read the whole response."""
    url = urlsplit(root)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_timeout)
        status = int(head.split(b" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)}
        if b"content-length" in headers:
            body = await asyncio.wait_for(reader.readexactly(int(headers[b"content-length"])), read_timeout)
        elif headers.get(b"transfer-encoding") == b"chunked":
            parts = []
            while size := int((await asyncio.wait_for(reader.readline(), read_timeout)).strip(), 16):
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = await asyncio.wait_for(reader.read(), read_timeout)
        return status, body
    finally:
        writer.close()


def _post(path: str, body: dict[str, Any], headers: bytes) -> bytes:
    data = orjson.dumps(body)
    return (f"POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n").encode() + headers + b"\r\n" + data


async def _key(gw: Gateway, http: aiohttp.ClientSession, secret: str) -> dict[str, Any]:
    async with http.get(f"{gw.url}/key", headers={"Authorization": f"Bearer {secret}"}) as response:
        assert response.status == 200
        data: dict[str, Any] = (await response.json())["data"]
        return data


# -- billing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("header", [b"User-Agent", b"X-Title", b"HTTP-Referer", b"X-Session-Id"])
async def test_a_header_that_is_not_utf8_is_charged_recorded_and_releases_its_hold(
        start_gateway: GatewayFactory, sim: Any, header: bytes, stream: bool) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url)) as gw, \
            aiohttp.ClientSession() as http:
        secret = await gw.new_key(limit_nanos=10 * 10**9)
        body = {"model": "test/model", "stream": stream, "max_tokens": 100,
                "messages": [{"role": "user", "content": "hello"}]}
        request = _post("/api/v1/chat/completions", body,
                        b"Authorization: Bearer " + secret.encode() + b"\r\n" + header + b": \xff\xfe app\r\n")
        for _ in range(3):
            status, reply = await raw_request(gw.root, request)
            assert status == 200, reply
            assert (b"data: [DONE]" in reply) if stream else b'"choices"' in reply
        key = await _key(gw, http, secret)
        # Every completion was charged, and nothing is still held: what remains is the limit less the usage.
        assert key["usage"] > 0
        assert Decimal(str(key["limit_remaining"])) == Decimal(10) - Decimal(str(key["usage"]))
        records = gw.services.ledger.recent_records()
        assert len(records) == 3 and all(r.cost_nanos > 0 for r in records)
        fields = {b"User-Agent": "user_agent", b"X-Title": "app_title", b"HTTP-Referer": "http_referer",
                  b"X-Session-Id": "session_id"}
        assert getattr(records[0], fields[header]) == "\ufffd\ufffd app"
        async with http.get(f"{gw.url}/generation", params={"id": records[0].id},
                            headers={"Authorization": f"Bearer {secret}"}) as response:
            assert response.status == 200


async def test_header_values_are_capped(start_gateway: GatewayFactory, sim: Any) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url)) as gw, \
            aiohttp.ClientSession() as http:
        async with http.post(f"{gw.url}/chat/completions", headers={**gw.auth, "X-Title": "t" * 5000},
                             json={"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}) as r:
            assert r.status == 200
        (record,) = gw.services.ledger.recent_records()
        assert record.app_title == "t" * 1024


async def test_a_failure_to_record_still_releases_the_hold_and_answers(
        start_gateway: GatewayFactory, sim: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url)) as gw, \
            aiohttp.ClientSession() as http:
        secret = await gw.new_key(limit_nanos=10 * 10**9)
        writer = gw.services.ledger
        original = writer.record
        calls = []

        def flaky(record: Any) -> None:
            calls.append(record)
            if len(calls) == 1:
                raise OSError("disk full")
            original(record)

        monkeypatch.setattr(writer, "record", flaky)
        async with http.post(f"{gw.url}/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                             json={"model": "test/model", "max_tokens": 100,
                                   "messages": [{"role": "user", "content": "hi"}]}) as r:
            assert r.status == 200
        assert len(calls) == 2  # written again, with its text made safe
        assert "could not be recorded" in caplog.text
        key = await _key(gw, http, secret)
        assert Decimal(str(key["limit_remaining"])) == Decimal(10) - Decimal(str(key["usage"]))


async def test_an_unexpected_exception_releases_the_hold(start_gateway: GatewayFactory, sim: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url)) as gw, \
            aiohttp.ClientSession() as http:
        secret = await gw.new_key(limit_nanos=10 * 10**9)
        adapter = gw.services.dispatcher.adapters["openai_chat"]

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

        monkeypatch.setattr(adapter, "parse_response", broken)
        monkeypatch.setattr(adapter, "stream_translator", broken)
        for stream in (False, True):
            async with http.post(f"{gw.url}/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                                 json={"model": "test/model", "stream": stream, "max_tokens": 100,
                                       "messages": [{"role": "user", "content": "hi"}]}) as r:
                assert r.status == 500
                assert (await r.json())["error"]["code"] == 500
        key = await _key(gw, http, secret)
        assert key["limit_remaining"] == 10  # both holds released
        records = gw.services.ledger.recent_records()
        assert [r.status for r in records] == [500, 500]


async def test_n_is_in_the_reservation(start_gateway: GatewayFactory, sim: Any) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url)) as gw, \
            aiohttp.ClientSession() as http:
        # One completion of at most 100 tokens needs about 0.23 USD held; eight need 1.63.
        secret = await gw.new_key(limit_nanos=1 * 10**9)
        auth = {"Authorization": f"Bearer {secret}"}
        body = {"model": "test/model", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
        async with http.post(f"{gw.url}/chat/completions", headers=auth, json={**body, "n": 8}) as r:
            assert r.status == 402, await r.text()
        async with http.post(f"{gw.url}/chat/completions", headers=auth, json={**body, "n": 1}) as r:
            assert r.status == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_concurrent_requests_with_n_never_take_a_key_past_its_limit(start_gateway: GatewayFactory, sim: Any,
                                                                         stream: bool) -> None:
    # Each request makes 4 choices of 100 tokens (0.8 USD of output) and takes 0.2 s upstream; the limit is
    # 1 USD. Reserving for one choice would let four run at once and spend 3.2 USD.
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url, "tokens=100;latency=200")) \
            as gw, aiohttp.ClientSession() as http:
        secret = await gw.new_key(limit_nanos=1 * 10**9)
        auth = {"Authorization": f"Bearer {secret}"}
        body = {"model": "test/model", "n": 4, "max_tokens": 100, "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}

        async def one() -> int:
            async with http.post(f"{gw.url}/chat/completions", headers=auth, json=body) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(one() for _ in range(8)))
        assert 200 in statuses and 402 in statuses
        records = gw.services.ledger.recent_records()
        assert records and all(r.tokens_completion == 400 for r in records if r.status == 200)
        assert sum(r.cost_nanos for r in records) <= 1 * 10**9


def test_every_adapter_is_covered_by_the_output_multiplier() -> None:
    # `n` is the only parameter that multiplies output in the OpenAI format; an adapter that maps another
    # (Gemini's candidateCount is `n` renamed) would need its own term in the reservation.
    for name, adapter in build_adapters().items():
        for parameter in getattr(adapter, "params", {}) or {}:
            assert parameter not in ("best_of", "candidate_count", "num_completions"), (name, parameter)


# -- 500s from ordinary input ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/chat/completions", "/api/v1/keys", "/api/v1/key", "/api/v1/credits"])
async def test_an_authorization_header_that_is_not_utf8_is_a_401_or_403(gateway: Gateway, path: str) -> None:
    method = "POST" if path.endswith("completions") else "GET"
    request = (f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Length: 2\r\nConnection: close\r\n"
               f"Authorization: Bearer ").encode() + b"\xff\xfe\r\n\r\n{}"
    status, body = await raw_request(gateway.root, request)
    assert status in (401, 403), body
    assert orjson.loads(body)["error"]["code"] == status


@pytest.mark.parametrize("name", ["top_k", "seed", "max_tokens", "max_completion_tokens", "n", "top_logprobs"])
@pytest.mark.parametrize("value", [1e30, 2**63, 1e308, -(2**64)])
async def test_integers_out_of_range_are_a_400_naming_the_parameter(gateway: Gateway, name: str,
                                                                   value: float) -> None:
    body = orjson.dumps({"model": "openai/gpt-4o", name: value, "messages": [{"role": "user", "content": "hi"}]},
                        option=orjson.OPT_PASSTHROUGH_DATACLASS) if isinstance(value, float) else \
        b'{"model": "openai/gpt-4o", "%s": %d, "messages": [{"role": "user", "content": "hi"}]}' % (
            name.encode(), value)
    async with aiohttp.ClientSession() as http, \
            http.post(f"{gateway.url}/chat/completions", headers={**gateway.auth, "Content-Type": "application/json"},
                      data=body) as r:
        assert r.status == 400, await r.text()
        error = (await r.json())["error"]
        assert error["metadata"]["param"] == name


async def test_a_gemini_seed_beyond_int32_is_a_400(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http, \
            http.post(f"{gateway.url}/chat/completions", headers=gateway.auth,
                      json={"model": "google/gemini-2.5-flash", "seed": 2**40,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["metadata"]["param"] == "seed"
    async with aiohttp.ClientSession() as http, \
            http.post(f"{gateway.url}/chat/completions", headers=gateway.auth,
                      json={"model": "google/gemini-2.5-flash", "seed": 2**31 - 1,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status == 200, await r.text()


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/api/v1/keys", {"name": "x", "limit": 1e20}, "limit"),
    ("/api/v1/keys", {"name": "x", "limit": 1e308}, "limit"),
    ("/api/v1/credits", {"amount": 1e20}, "amount"),
    ("/api/v1/credits", {"amount": 1e308}, "amount"),
])
async def test_money_amounts_are_bounded(gateway: Gateway, path: str, body: dict[str, Any], param: str) -> None:
    async with aiohttp.ClientSession() as http, \
            http.post(f"{gateway.root}{path}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, json=body) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["metadata"]["param"] == f"body.{param}"


async def test_a_key_limit_can_be_updated_within_bounds_only(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/keys", headers=gateway.admin, json={"name": "x", "limit": 5}) as r:
            assert r.status == 201, await r.text()
            key_hash = (await r.json())["data"]["hash"]
        async with http.patch(f"{gateway.url}/keys/{key_hash}", headers=gateway.admin, json={"limit": 1e20}) as r:
            assert r.status == 400
        async with http.patch(f"{gateway.url}/keys/{key_hash}", headers=gateway.admin, json={"limit": 1e9}) as r:
            assert r.status == 200


@pytest.mark.parametrize("field", ["disabled", "name", "include_byok_in_limit"])
async def test_null_for_a_field_that_cannot_be_cleared_is_a_400(gateway: Gateway, field: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/keys", headers=gateway.admin, json={"name": "x"}) as r:
            key_hash = (await r.json())["data"]["hash"]
        async with http.patch(f"{gateway.url}/keys/{key_hash}", headers=gateway.admin, json={field: None}) as r:
            assert r.status == 400, await r.text()
            assert (await r.json())["error"]["metadata"]["param"] == f"body.{field}"
        async with http.post(f"{gateway.url}/keys", headers=gateway.admin,
                             json={"name": "y", "include_byok_in_limit": None}) as r:
            assert r.status == 400, await r.text()


async def test_a_null_expiry_means_the_key_never_expires(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/keys", headers=gateway.admin,
                             json={"name": "0", "expires_at": None}) as r:
            assert r.status == 201, await r.text()
            data = (await r.json())["data"]
            assert data["expires_at"] is None
        async with http.patch(f"{gateway.url}/keys/{data['hash']}", headers=gateway.admin,
                              json={"expires_at": "2999-01-01T00:00:00Z"}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["data"]["expires_at"] == "2999-01-01T00:00:00Z"
        async with http.patch(f"{gateway.url}/keys/{data['hash']}", headers=gateway.admin,
                              json={"expires_at": None}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["data"]["expires_at"] is None


async def test_credits_granted_in_all_stay_within_bounds(gateway: Gateway) -> None:
    # Grants are summed into a 64-bit total: the total is bounded, not only each grant.
    await gateway.services.store.grant_credits("earlier", (10**9 - 10) * 10**9, None, 0.0)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/credits", headers=gateway.admin, json={"amount": 5}) as r:
            assert r.status == 201
        async with http.post(f"{gateway.url}/credits", headers=gateway.admin, json={"amount": 6}) as r:
            assert r.status == 400, await r.text()
        async with http.get(f"{gateway.url}/credits", headers=gateway.admin) as r:
            assert (await r.json())["data"]["total_credits"] == 10**9 - 5


async def test_a_fault_mid_stream_ends_the_stream_properly_and_releases_the_hold(
        start_gateway: GatewayFactory, sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from crossroads.routing.outcome import OpenStream

    async def broken(self: OpenStream) -> None:
        raise RuntimeError("a bug")

    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url)) as gw, \
            aiohttp.ClientSession() as http:
        secret = await gw.new_key(limit_nanos=10 * 10**9)
        monkeypatch.setattr(OpenStream, "next_pieces", broken)
        async with http.post(f"{gw.url}/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                             json={"model": "test/model", "stream": True, "max_tokens": 100,
                                   "messages": [{"role": "user", "content": "hi"}]}) as r:
            assert r.status == 200
            body = await r.read()
        events = [e for e in body.split(b"\n\n") if e]
        assert events[-1] == b"data: [DONE]"
        last = orjson.loads(events[-2][6:])
        assert last["error"]["code"] == 500 and last["choices"][0]["finish_reason"] == "error"
        key = await _key(gw, http, secret)
        assert Decimal(str(key["limit_remaining"])) == Decimal(10) - Decimal(str(key["usage"]))
        (record,) = gw.services.ledger.recent_records()
        assert record.status == 500
