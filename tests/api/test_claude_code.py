"""Claude Code itself against the gateway: `claude -p` with `ANTHROPIC_BASE_URL=<gateway>/api`, answered by
the simulator, once with a model served in the Messages API's own format and once with one served in
OpenAI's; and a tool round trip through the agent.

The npm package is installed once, pinned, into `.cache/claude-code/<version>` (git ignores `.cache/`),
and reused by later runs. The tests skip, saying why, where `node` or `npm` is missing or the npm registry
cannot be reached.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory

VERSION = "2.1.332"
PACKAGE = f"@anthropic-ai/claude-code@{VERSION}"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "claude-code" / VERSION
CLAUDE, GPT = "anthropic/claude-sonnet-4.5", "openai/gpt-5-mini"
UPSTREAM = {CLAUDE: "claude-sonnet-4-5-20250929", GPT: "gpt-5-mini"}


def _install() -> Path:
    """The package's launcher (`cli-wrapper.cjs` finds the platform's native binary, whether or not npm ran
    the install script that would have copied it into place)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Claude Code needs node and npm, which are not installed")
    wrapper = CACHE / "node_modules" / "@anthropic-ai" / "claude-code" / "cli-wrapper.cjs"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:  # test workers share one install
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (CACHE / ".installed").exists():
            result = subprocess.run(["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund",
                                     "--no-save", PACKAGE], capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.skip(f"npm could not install {PACKAGE}: {result.stderr.strip()[-500:]}")
            (CACHE / ".installed").write_text(PACKAGE)
    return wrapper


@pytest.fixture(scope="module")
def claude() -> Path:
    return _install()


@pytest.fixture
async def gw(start_gateway: GatewayFactory, sim: SimServer) -> AsyncIterator[Gateway]:
    env = {"ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "sk-openai",
           "CROSSROADS_PROVIDER_ANTHROPIC_BASE_URL": sim.url, "CROSSROADS_PROVIDER_OPENAI_BASE_URL": sim.url + "/v1"}
    async with start_gateway(env=env, simulator="off") as gateway:
        yield gateway


async def run_claude(claude: Path, gw: Gateway, home: Path, cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "ANTHROPIC_BASE_URL": gw.root + "/api", "ANTHROPIC_AUTH_TOKEN": gw.key, "ANTHROPIC_API_KEY": "",
           "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    process = await asyncio.create_subprocess_exec("node", str(claude), *args, cwd=cwd, env=env,
                                                   stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def replay(sim: SimServer, body: dict[str, Any], path: str) -> str:
    """The text the simulator answers this request with (its replies depend only on the conversation)."""
    async with aiohttp.ClientSession() as session, \
            session.post(sim.url + path, json={**{k: v for k, v in body.items() if k != "stream_options"},
                                               "stream": False},
                         headers={"x-api-key": "sk-ant", "anthropic-version": "2023-06-01",
                                  "Authorization": "Bearer sk-openai"}) as response:
        reply = await response.json()
    if path.endswith("/messages"):
        return "".join(block["text"] for block in reply["content"] if block["type"] == "text")
    text: str = reply["choices"][0]["message"]["content"]
    return text


def main_requests(sim: SimServer, model: str) -> list[dict[str, Any]]:
    return [r.body for r in sim.requests if isinstance(r.body, dict) and r.body.get("model") == UPSTREAM[model]]


@pytest.mark.parametrize("model", [CLAUDE, GPT])
async def test_claude_code_prints_the_reply(claude: Path, gw: Gateway, sim: SimServer, tmp_path: Path,
                                            model: str) -> None:
    code, out, err = await run_claude(claude, gw, tmp_path, tmp_path, "-p", "Say hello in one sentence.",
                                      "--model", model, "--tools", "")
    assert code == 0, err
    sent = main_requests(sim, model)[-1]
    expected = await replay(sim, sent, "/v1/messages" if model == CLAUDE else "/v1/chat/completions")
    assert expected and out.strip() == expected.strip()


@pytest.mark.parametrize("model", [CLAUDE, GPT])
async def test_claude_code_tool_round_trip(claude: Path, gw: Gateway, sim: SimServer, tmp_path: Path,
                                           model: str) -> None:
    """The simulator calls the tool the prompt names (Read); Claude Code runs it and sends the result back;
    the simulator's last answer quotes that result."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "notes.txt").write_text("the quick brown fox\n")
    code, out, err = await run_claude(claude, gw, tmp_path, scratch, "-p", "Read notes.txt", "--model", model,
                                      "--tools", "Read", "--allowedTools", "Read")
    assert code == 0, err
    last = main_requests(sim, model)[-1]
    if model == CLAUDE:
        call = next(block for block in last["messages"][-2]["content"] if block["type"] == "tool_use")
        result = next(block for block in last["messages"][-1]["content"] if block["type"] == "tool_result")
        assert call["name"] == "Read" and result["tool_use_id"] == call["id"]
    else:
        call = last["messages"][-2]["tool_calls"][0]
        assert call["function"]["name"] == "Read"
        assert last["messages"][-1]["role"] == "tool" and last["messages"][-1]["tool_call_id"] == call["id"]
    assert out.strip().startswith("Tool result:")
