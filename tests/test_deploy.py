"""The deployment files: the Dockerfile and compose.yaml as files, the image where a container engine can
build it, and the compose topology's equivalent run here — two hosts' `crossroads serve` processes sharing
one PostgreSQL and one Redis (deploy/README.md)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.test_multiprocess import ADMIN, MESSAGES, Process, free_port, pg_url, spawn, stop

__all__ = ["pg_url"]  # the fixture, shared with tests/test_multiprocess.py

ROOT = Path(__file__).resolve().parents[1]


# -- the files -------------------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def compose() -> dict[str, Any]:
    value: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return value


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def test_the_image_is_slim_python_run_by_a_user_of_its_own_serving_on_every_interface() -> None:
    stage = final_stage()
    (base,) = [rest for name, rest in stage if name == "FROM"]
    assert base.startswith("python:") and base.endswith("-slim")
    users = [rest for name, rest in stage if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    environment = " ".join(rest for name, rest in stage if name == "ENV")
    assert "CROSSROADS_HOST=0.0.0.0" in environment
    assert json.loads(next(rest for name, rest in stage if name == "ENTRYPOINT")) == ["crossroads"]
    assert json.loads(next(rest for name, rest in stage if name == "CMD")) == ["serve"]
    assert any(name == "HEALTHCHECK" for name, _ in stage)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored  # the build context stays small


def healthcheck() -> list[str]:
    rest = next(rest for name, rest in final_stage() if name == "HEALTHCHECK")
    command = json.loads(rest[rest.index("CMD") + 3:].strip())
    assert isinstance(command, list) and command[0] == "python"
    return [sys.executable, *command[1:]]


async def test_the_image_health_check_passes_on_a_running_gateway_and_fails_without_one(tmp_path: Path) -> None:
    process = spawn({"CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/health.db", "CROSSROADS_SIMULATOR": "on",
                     "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool")}, tmp_path)
    try:
        port = process.url.split(":")[2].split("/")[0]
        result = await asyncio.to_thread(subprocess.run, healthcheck(), env={**os.environ, "CROSSROADS_PORT": port},
                                         capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
    finally:
        stop(process)
    result = await asyncio.to_thread(subprocess.run, healthcheck(), capture_output=True, timeout=30,
                                     env={**os.environ, "CROSSROADS_PORT": str(free_port())})
    assert result.returncode != 0


def test_compose_runs_the_gateway_with_postgresql_and_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"crossroads", "postgres", "redis"}
    gateway = services["crossroads"]
    assert gateway["build"] == "."
    environment = gateway["environment"]
    assert environment["CROSSROADS_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in environment["CROSSROADS_DATABASE_URL"]
    assert environment["CROSSROADS_REDIS_URL"] == "redis://redis:6379/0"
    assert environment["CROSSROADS_REDIS_NAMESPACE"]
    assert "CROSSROADS_ADMIN_KEY" in environment
    assert gateway["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                     "redis": {"condition": "service_healthy"}}
    assert any(str(p).endswith(":8000") for p in gateway["ports"])
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in compose()["volumes"]  # the data outlives the container
    spool = environment["CROSSROADS_SPOOL_DIR"]
    assert any(spool.startswith(v.split(":")[1]) for v in gateway["volumes"])  # the spool survives restarts


def docker_compose() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"], ["podman", "compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    return None


def test_compose_config_is_valid_for_docker_compose() -> None:
    command = docker_compose()
    if command is None:
        pytest.skip("no compose tool (docker compose, docker-compose, podman compose) on this machine; "
                    "compose.yaml's structure is checked by test_compose_runs_the_gateway_with_postgresql_and_redis")
    result = subprocess.run([*command, "-f", str(ROOT / "compose.yaml"), "config", "--quiet"], capture_output=True,
                            text=True, env={**os.environ, "CROSSROADS_ADMIN_KEY": "compose-check-admin-key"},
                            timeout=60)
    assert result.returncode == 0, result.stderr


# -- the image ---------------------------------------------------------------------------------------------------

BASE_PULL_TIMEOUT = 180


def engine() -> str:
    """A container engine that works and can get the base image; skips the test, saying why, otherwise."""
    name = next((n for n in ("docker", "podman") if shutil.which(n)), None)
    if name is None:
        pytest.skip("no container engine (docker or podman) on this machine")
    if subprocess.run([name, "info"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip(f"{name} is installed but its daemon is not reachable")
    (base,) = [rest for instruction, rest in final_stage() if instruction == "FROM"]
    present = subprocess.run([name, "image", "inspect", base], capture_output=True, timeout=60).returncode == 0
    if not present:
        try:
            pulled = subprocess.run([name, "pull", base], capture_output=True, text=True, timeout=BASE_PULL_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.skip(f"{name} could not pull the base image {base} within {BASE_PULL_TIMEOUT}s")
        if pulled.returncode != 0:
            pytest.skip(f"{name} cannot pull the base image {base} (no access to its registry): "
                        f"{pulled.stderr.strip()[-300:]}")
    return name


@pytest.fixture
def image() -> Iterator[tuple[str, str]]:
    name = engine()
    tag = f"crossroads-test:{uuid.uuid4().hex[:8]}"
    built = subprocess.run([name, "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    try:
        yield name, tag
    finally:
        subprocess.run([name, "image", "rm", "-f", tag], capture_output=True, timeout=120)


def test_the_image_serves_as_an_unprivileged_user_and_becomes_healthy(image: tuple[str, str]) -> None:
    name, tag = image
    port = free_port()
    started = subprocess.run([name, "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000",
                              "-e", "CROSSROADS_SIMULATOR=on", "-e", f"CROSSROADS_ADMIN_KEY={ADMIN}", tag],
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        user = subprocess.run([name, "exec", container, "id", "-u"], capture_output=True, text=True, timeout=60)
        assert user.stdout.strip() not in ("", "0")
        deadline = time.monotonic() + 90
        status = ""
        while status != "healthy":
            assert time.monotonic() < deadline, f"the container's health is {status!r}"
            time.sleep(1)
            status = subprocess.run([name, "inspect", "-f", "{{.State.Health.Status}}", container],
                                    capture_output=True, text=True, timeout=60).stdout.strip()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/models", timeout=30) as resp:
            assert resp.status == 200 and json.loads(resp.read())["data"]
    finally:
        subprocess.run([name, "stop", "-t", "20", container], capture_output=True, timeout=120)


# -- two hosts, one PostgreSQL, one Redis ------------------------------------------------------------------------


def host_environment(database_url: str, namespace: str, spool: Path) -> dict[str, str]:
    """compose.yaml's gateway settings, with its service names replaced by the services running here."""
    environment = {k: str(v) for k, v in compose()["services"]["crossroads"]["environment"].items()}
    assert environment["CROSSROADS_DATABASE_URL"].startswith("postgresql://")
    environment.update({
        "CROSSROADS_DATABASE_URL": database_url,
        "CROSSROADS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CROSSROADS_REDIS_NAMESPACE": namespace,  # the same on both hosts
        "CROSSROADS_ADMIN_KEY": ADMIN,  # the same on both hosts
        "CROSSROADS_SPOOL_DIR": str(spool),  # each host its own
        "CROSSROADS_HOST": "0.0.0.0",
        "CROSSROADS_SIMULATOR": "on",
    })
    return environment


@pytest.fixture
async def hosts(pg_url: str, tmp_path: Path) -> Any:
    from tests.redis_support import namespace, wipe

    ns = namespace()
    first = spawn(host_environment(pg_url, ns, tmp_path / "spool-a"), tmp_path)
    try:
        second = spawn(host_environment(pg_url, ns, tmp_path / "spool-b"), tmp_path)
    except BaseException:
        stop(first)
        raise
    try:
        yield first, second
    finally:
        await asyncio.to_thread(stop, first)
        await asyncio.to_thread(stop, second)
        await wipe(ns)


async def chat(http: aiohttp.ClientSession, host: Process, key: str) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{host.url}/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json={"model": "openai/gpt-4o", "messages": MESSAGES, "max_tokens": 40}) as resp:
        return resp.status, await resp.json()


async def new_key(http: aiohttp.ClientSession, host: Process, **fields: Any) -> str:
    async with http.post(f"{host.url}/keys", json={"name": "deploy", **fields},
                         headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert resp.status == 201, await resp.text()
        key: str = (await resp.json())["key"]
        return key


async def key_data(http: aiohttp.ClientSession, host: Process, key: str) -> dict[str, Any]:
    async with http.get(f"{host.url}/key", headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = (await resp.json())["data"]
        return data


async def usage(http: aiohttp.ClientSession, host: Process, key: str, expected: float) -> float:
    """`usage` as `/key` on `host` reports it, once it reaches `expected`: a host reads usage from the
    database after storing its own records; the other host's last records may still be on their way (its
    shipper stores them within moments, later on a machine whose cores are all busy)."""
    deadline = time.monotonic() + 15
    while True:
        value: float = (await key_data(http, host, key))["usage"]
        if value == pytest.approx(expected) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def remaining(http: aiohttp.ClientSession, host: Process, key: str, expected: float) -> float:
    """`limit_remaining` on `host` once it reaches `expected`, or after two seconds."""
    deadline = time.monotonic() + 2
    while True:
        value: float = (await key_data(http, host, key))["limit_remaining"]
        if value == pytest.approx(expected) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_two_hosts_share_keys_at_once_and_spend(hosts: tuple[Process, Process]) -> None:
    a, b = hosts
    limit = 1.0
    async with aiohttp.ClientSession() as http:
        key = await new_key(http, a, limit=limit)
        costs = []
        for host in (b, a, b, a, b):  # made on A a moment ago, used on B at once
            status, body = await chat(http, host, key)
            assert status == 200, body
            costs.append(body["usage"]["cost"])
        spent = sum(costs)
        assert spent > 0
        for host in hosts:
            # What the limit has left counts every request on both hosts (Redis) as soon as the last request's
            # hold is given back (the hosts flush their holds to Redis in batches, every 50 ms)...
            assert await remaining(http, host, key, limit - spent) == pytest.approx(limit - spent)
            # ... and the usage stored by both hosts shows on either (PostgreSQL).
            assert await usage(http, host, key, spent) == pytest.approx(spent)


async def test_a_credit_limit_holds_across_two_hosts(hosts: tuple[Process, Process]) -> None:
    limit = 0.002
    async with aiohttp.ClientSession() as http:
        key = await new_key(http, hosts[1], limit=limit)
        costs: list[float] = []
        refused = {0: False, 1: False}
        for turn in range(400):
            status, body = await chat(http, hosts[turn % 2], key)
            if status == 402:
                refused[turn % 2] = True
                if all(refused.values()):
                    break
                continue
            assert status == 200, body
            costs.append(body["usage"]["cost"])
        assert all(refused.values()), "the limit was never reached"
        assert sum(costs) <= limit
        for host in hosts:
            assert await usage(http, host, key, sum(costs)) == pytest.approx(sum(costs))


def test_the_hosts_run_the_command_of_the_image() -> None:
    """The processes above are what the image runs: `crossroads serve`, with compose.yaml's settings."""
    stage = final_stage()
    entry = json.loads(next(rest for name, rest in stage if name == "ENTRYPOINT"))
    command = json.loads(next(rest for name, rest in stage if name == "CMD"))
    assert shlex.join([*entry, *command]) == "crossroads serve"
