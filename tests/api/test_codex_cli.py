"""Codex CLI itself against the gateway: `codex exec` speaks only the Responses API, and the built-in
simulator answers it in each provider's own wire format.

The pinned `@openai/codex` npm package is installed once into `.tools/` (ignored by git) from the npm
registry; Codex then runs offline against the gateway, with `HOME` a temporary directory. Without `node` and
`npm` the tests are skipped.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway

CODEX_VERSION = "0.58.0"
TOOLS = Path(__file__).resolve().parents[2] / ".tools" / f"codex-{CODEX_VERSION}"

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="Codex CLI tests need node and npm (to install @openai/codex)")


def _codex() -> Path:
    """The pinned Codex, installed on first use; a lock keeps parallel test workers from racing."""
    binary = TOOLS / "node_modules" / ".bin" / "codex"
    TOOLS.mkdir(parents=True, exist_ok=True)
    with open(TOOLS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            done = subprocess.run(
                ["npm", "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", "--no-save",
                 f"@openai/codex@{CODEX_VERSION}"],
                capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0 or not binary.exists():
                pytest.fail(f"npm could not install @openai/codex@{CODEX_VERSION}:\n{done.stderr[-2000:]}")
    return binary


async def _exec(gateway: Gateway, home: Path, model: str, prompt: str) -> tuple[int, str, str]:
    provider = f'{{name="crossroads",base_url="{gateway.url}",env_key="CR_KEY",wire_api="responses"}}'
    env = {"HOME": str(home), "CR_KEY": gateway.key, "PATH": os.environ.get("PATH", "")}
    process = await asyncio.create_subprocess_exec(
        str(_codex()), "exec", "--skip-git-repo-check", "-c", "model_provider=cr",
        "-c", f"model_providers.cr={provider}", "-m", model, prompt,
        cwd=home, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _replay(sim: SimServer, recorded: Any) -> dict[str, Any]:
    """What the simulator answers to an upstream request, asked again without streaming (its replies depend
    only on the conversation)."""
    body = {**recorded.body, "stream": False}
    body.pop("stream_options", None)
    headers = {name: value for name, value in recorded.headers.items()
               if name in ("authorization", "x-api-key", "anthropic-version")}
    async with aiohttp.ClientSession() as session, \
            session.post(f"{sim.url}{recorded.path}", json=body, headers=headers) as reply:
        data: dict[str, Any] = await reply.json()
        return data


def _text(reply: dict[str, Any]) -> str:
    if "choices" in reply:
        return str(reply["choices"][0]["message"]["content"])
    return "".join(block["text"] for block in reply["content"] if block["type"] == "text")


def _answered_call(body: dict[str, Any]) -> bool:
    """Whether the upstream request holds a `shell` call and its result, in either wire format."""
    if any(m["role"] == "tool" for m in body["messages"]):  # Chat Completions
        calls = [c for m in body["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
        results = [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
        return any(c["function"]["name"] == "shell" and c["id"] in results for c in calls)
    blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    calls = [b for b in blocks if b["type"] == "tool_use" and b["name"] == "shell"]
    results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
    return any(c["id"] in results for c in calls)


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4.5"])
async def test_codex_exec_prints_the_simulators_reply(gateway: Gateway, tmp_path: Path, model: str) -> None:
    sim = gateway.services.simulator
    assert sim is not None
    sim.state.clear_requests()
    code, stdout, stderr = await _exec(gateway, tmp_path, model, "Say hello to the gateway")
    assert code == 0, stderr
    recorded = sim.state.requests
    assert recorded, stderr
    expected = _text(await _replay(sim, recorded[-1]))
    assert expected and expected in stdout


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4.5"])
async def test_codex_runs_the_shell_command_the_model_asks_for(gateway: Gateway, tmp_path: Path, model: str) -> None:
    sim = gateway.services.simulator
    assert sim is not None
    sim.state.clear_requests()
    # The simulator calls the tools the user's words name: here Codex's `shell` function.
    code, stdout, stderr = await _exec(gateway, tmp_path, model, "Use the shell to list the files")
    assert code == 0, stderr
    recorded = sim.state.requests
    assert len(recorded) >= 2, stderr
    # The second turn carries the call and Codex's output for it (whatever the command did: the simulator's
    # arguments are random values of the tool's schema), and the model's answer quotes that output.
    assert _answered_call(recorded[-1].body), recorded[-1].body
    expected = _text(await _replay(sim, recorded[-1]))
    assert expected.startswith("Tool result:")
    assert expected in stdout, stdout
