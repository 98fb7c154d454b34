"""The `crossroads` command as a newcomer uses it: start on embedded defaults, get a key, run the seed's
quickstart against it; manage keys and credits from the shell; refuse bad settings clearly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

CLI = [sys.executable, "-m", "crossroads"]


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any provider keys or Crossroads settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CROSSROADS_") and not k.endswith(("_API_KEY", "_TOKEN"))}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(workdir: Path, env: dict[str, str], stderr: Any = subprocess.STDOUT, *, first: bool = True) \
        -> Iterator[tuple[int, str, subprocess.Popen[str]]]:
    """`crossroads serve` on a free port in `workdir`: (port, the key it printed at first start, process);
    stopped with SIGTERM afterwards. Not `first`: a later start on the same database, which prints no key
    (the key is ""), ready once it says it is listening."""
    port = free_port()
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=workdir, env=env,
                               stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    lines = []
    key = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"sk-cr-v1-[0-9a-f]{64}", line)
        if found:
            key = found.group(0)
            break
        if not first and line.startswith("Crossroads listening"):
            key = ""
            break
    try:
        assert key is not None and (key or not first), "".join(lines)
        yield port, key, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        finally:
            process.kill()
            process.stdout.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str], Path]]:
    with serving(tmp_path, clean_env()) as (port, key, process):
        yield f"http://127.0.0.1:{port}/api/v1", key, process, tmp_path


def test_seed_quickstart_with_the_openai_sdk(served: tuple[str, str, subprocess.Popen[str], Path]) -> None:
    base_url, key, _, workdir = served
    client = openai.OpenAI(base_url=base_url, api_key=key)
    completion = client.chat.completions.create(
        extra_headers={"HTTP-Referer": "https://example.org", "X-Title": "Example"},
        model="openai/gpt-4o",
        messages=[{"role": "user", "content": "What is the meaning of life?"}],
    )
    client.close()
    assert completion.choices[0].message.content
    assert (completion.model_extra or {})["provider"] == "Simulator"
    assert (workdir / "crossroads.db").exists()


def test_seed_quickstart_with_curl(served: tuple[str, str, subprocess.Popen[str], Path]) -> None:
    base_url, key, _, _ = served
    body = '{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "What is the meaning of life?"}]}'
    out = subprocess.run(["curl", "-sS", f"{base_url}/chat/completions", "-H", "Content-Type: application/json",
                          "-H", f"Authorization: Bearer {key}", "-d", body],
                         capture_output=True, text=True, check=True, timeout=20)
    reply = json.loads(out.stdout)
    assert reply["choices"][0]["message"]["content"] and reply["id"].startswith("gen-")


def test_keys_created_from_the_shell_work_on_the_running_gateway(
        served: tuple[str, str, subprocess.Popen[str], Path]) -> None:
    base_url, _, _, workdir = served
    created = subprocess.run([*CLI, "keys", "create", "--name", "shell", "--limit", "2.5"], cwd=workdir,
                             env=clean_env(), capture_output=True, text=True, check=True, timeout=20)
    secret = created.stdout.strip()
    assert secret.startswith("sk-cr-v1-")
    listing = subprocess.run([*CLI, "keys", "list"], cwd=workdir, env=clean_env(), capture_output=True, text=True,
                             check=True, timeout=20)
    assert "'shell'" in listing.stdout and "$2.5" in listing.stdout and secret not in listing.stdout
    client = openai.OpenAI(base_url=base_url, api_key=secret, max_retries=0)
    deadline = time.monotonic() + 5
    while True:  # the gateway takes keys made elsewhere within a second
        try:
            client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
            break
        except openai.AuthenticationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    client.close()


def test_first_start_creates_a_key_only_once(served: tuple[str, str, subprocess.Popen[str], Path]) -> None:
    _, _, _, workdir = served
    listing = subprocess.run([*CLI, "keys", "list"], cwd=workdir, env=clean_env(), capture_output=True,
                             text=True, check=True, timeout=20)
    assert listing.stdout.count("sk-cr-v1-") == 1


def test_credits_from_the_shell(tmp_path: Path) -> None:
    out = subprocess.run([*CLI, "credits", "add", "12.5", "--note", "top-up"], cwd=tmp_path, env=clean_env(),
                         capture_output=True, text=True, check=True, timeout=20)
    assert "granted: $12.500000" in out.stdout


@pytest.mark.parametrize(("env", "message"), [
    ({"CROSSROADS_PORT": "abc"}, "CROSSROADS_PORT"),
    ({"CROSSROADS_DATABASE_URL": "mongodb://x"}, "CROSSROADS_DATABASE_URL"),
    ({"CROSSROADS_PROVIDER_OPENAI_BASE_URL": "not-a-url"}, "CROSSROADS_PROVIDER_OPENAI_BASE_URL"),
])
def test_bad_settings_stop_the_gateway_with_a_clear_message(tmp_path: Path, env: dict[str, str],
                                                            message: str) -> None:
    result = subprocess.run([*CLI, "serve", "--port", str(free_port())], cwd=tmp_path, env=clean_env(**env),
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


OPENROUTER = Path(__file__).parent / "data" / "openrouter"


def test_catalog_import_writes_a_file_that_check_accepts_and_the_gateway_loads(tmp_path: Path) -> None:
    out = tmp_path / "imported.toml"
    result = subprocess.run([*CLI, "catalog", "import", str(OPENROUTER / "models.json"), "--providers-from",
                             str(OPENROUTER / "endpoints"), "-o", str(out)], env=clean_env(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "imported " in result.stderr and "unknown provider 'Lambda'" in result.stderr
    assert '[models."openai/gpt-4o"]' in out.read_text()
    checked = subprocess.run([*CLI, "catalog", "check", str(out)], env=clean_env(), capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stdout
    assert f"(built-in + {out})" in checked.stdout and "0 errors" in checked.stdout


def test_catalog_check_fails_on_errors_and_reads_catalog_files_from_the_environment(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[models."openai/gpt-4o"]\ncontext_length = 1000\n')
    result = subprocess.run([*CLI, "catalog", "check"], env=clean_env(CROSSROADS_CATALOG=str(bad)),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "error: openai/gpt-4o at openai: max_completion_tokens 16384 exceeds its context 1000" in result.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text('[models."a/b"]\ncontext_length = "long"\n')
    result = subprocess.run([*CLI, "catalog", "check", str(broken)], env=clean_env(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "context_length" in result.stderr and "Traceback" not in result.stderr


async def test_catalog_import_from_a_url(tmp_path: Path) -> None:
    from aiohttp import web

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=(OPENROUTER / "models.json").read_bytes(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        process = await asyncio.create_subprocess_exec(
            *CLI, "catalog", "import", f"http://127.0.0.1:{port}/api/v1/models", env=clean_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        missing = await asyncio.create_subprocess_exec(
            *CLI, "catalog", "import", f"http://127.0.0.1:{port}/nothing", env=clean_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, missing_err = await asyncio.wait_for(missing.communicate(), 30)
    finally:
        await runner.cleanup()
    assert process.returncode == 0, stderr
    assert tomllib.loads(stdout.decode())["models"]["openai/gpt-4o"]["endpoints"][0]["pricing"]["prompt"] == "2.5"
    assert missing.returncode == 2 and b"HTTP 404 Not Found" in missing_err
