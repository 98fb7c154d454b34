"""Codex CLI itself against the gateway: `codex exec` speaks only the Responses API, and the built-in
simulator answers it in each provider's own wire format.

Two pinned releases of the `@openai/codex` npm package are installed once each into `.tools/` (ignored by
git) from the npm registry; Codex then runs offline against the gateway, with `HOME` a temporary directory.
Without `node` and `npm` the tests are skipped.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway

TOOLS = Path(__file__).resolve().parents[2] / ".tools"


@dataclass(frozen=True)
class Codex:
    version: str
    #: The function tool Codex runs commands with.
    shell: str
    #: Settings that keep Codex from tool namespaces, which newer releases send and this gateway refuses (no
    #: endpoint runs them). Their built-in `web_search` tool is served (the `web` plugin).
    settings: tuple[str, ...] = ()


CODEXES = [Codex("0.58.0", "shell"),
           Codex("0.171.0", "exec_command", ("features.multi_agent=false",))]
MODELS = ["openai/gpt-4o", "anthropic/claude-sonnet-4.5"]

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="Codex CLI tests need node and npm (to install @openai/codex)")


def _installed(codex: Codex) -> Path:
    """A pinned Codex, installed on first use; a lock keeps parallel test workers from racing."""
    folder = TOOLS / f"codex-{codex.version}"
    binary = folder / "node_modules" / ".bin" / "codex"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            done = subprocess.run(
                ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--no-save",
                 f"@openai/codex@{codex.version}"],
                capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0 or not binary.exists():
                pytest.fail(f"npm could not install @openai/codex@{codex.version}:\n{done.stderr[-2000:]}")
    return binary


async def _exec(codex: Codex, gateway: Gateway, home: Path, model: str, prompt: str) -> tuple[int, str, str]:
    provider = f'{{name="crossroads",base_url="{gateway.url}",env_key="CR_KEY",wire_api="responses"}}'
    env = {"HOME": str(home), "CR_KEY": gateway.key, "PATH": os.environ.get("PATH", "")}
    settings = [arg for setting in codex.settings for arg in ("-c", setting)]
    process = await asyncio.create_subprocess_exec(
        str(_installed(codex)), "exec", "--skip-git-repo-check", *settings, "-c", "model_provider=cr",
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


def _answered_call(body: dict[str, Any], tool: str) -> bool:
    """Whether the upstream request holds a call of `tool` and its result, in either wire format."""
    if any(m["role"] == "tool" for m in body["messages"]):  # Chat Completions
        calls = [c for m in body["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
        results = [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
        return any(c["function"]["name"] == tool and c["id"] in results for c in calls)
    blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    calls = [b for b in blocks if b["type"] == "tool_use" and b["name"] == tool]
    results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
    return any(c["id"] in results for c in calls)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("codex", CODEXES, ids=lambda codex: codex.version)
async def test_codex_exec_prints_the_simulators_reply(gateway: Gateway, tmp_path: Path, codex: Codex,
                                                      model: str) -> None:
    sim = gateway.services.simulator
    assert sim is not None
    sim.state.clear_requests()
    code, stdout, stderr = await _exec(codex, gateway, tmp_path, model, "Say hello to the gateway")
    assert code == 0, stderr
    recorded = sim.state.requests
    assert recorded, stderr
    expected = _text(await _replay(sim, recorded[-1]))
    assert expected and expected in stdout


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("codex", CODEXES, ids=lambda codex: codex.version)
async def test_codex_runs_the_shell_command_the_model_asks_for(gateway: Gateway, tmp_path: Path, codex: Codex,
                                                               model: str) -> None:
    sim = gateway.services.simulator
    assert sim is not None
    sim.state.clear_requests()
    # The simulator calls the tools the user's words name: here the function Codex runs commands with.
    code, stdout, stderr = await _exec(codex, gateway, tmp_path, model, f"Use {codex.shell} to list the files")
    assert code == 0, stderr
    recorded = sim.state.requests
    assert len(recorded) >= 2, stderr
    # The second turn carries the call and Codex's output for it (whatever the command did: the simulator's
    # arguments are random values of the tool's schema), and the model's answer quotes that output.
    assert _answered_call(recorded[-1].body, codex.shell), recorded[-1].body
    expected = _text(await _replay(sim, recorded[-1]))
    assert expected.startswith("Tool result:")
    assert expected in stdout, stdout


async def test_codex_web_search_tool_is_served(gateway: Gateway, tmp_path: Path) -> None:
    """Codex 0.171.0 sends its built-in `web_search` tool: the gateway searches, and the model gets the results
    (no function tool stands in for it)."""
    sim = gateway.services.simulator
    assert sim is not None
    sim.state.clear_requests()
    code, _, stderr = await _exec(CODEXES[1], gateway, tmp_path, "openai/gpt-4o", "What happened in the news today?")
    assert code == 0, stderr
    body = sim.state.requests[-1].body
    assert "A web search was conducted" in str(body["messages"])
    assert all(tool["type"] == "function" for tool in body.get("tools", ()))
