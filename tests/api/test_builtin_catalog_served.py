"""Every model of the built-in catalog answers through a real gateway while the built-in simulator serves
(no provider keys): chat models a chat completion, embedding models an embedding, rerankers a ranking, each
through the simulator speaking the wire format of the model's own providers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from crossroads.catalog.types import Model
from tests.conftest import Gateway


def request_for(model: Model) -> tuple[str, dict[str, Any]]:
    if "embeddings" in model.output_modalities:
        return "embeddings", {"model": model.id, "input": "The cat sat on the mat."}
    if "rerank" in model.output_modalities:
        return "rerank", {"model": model.id, "query": "cats", "documents": ["The cat sat.", "Revenue grew."]}
    return "chat/completions", {"model": model.id, "max_tokens": 16,
                                "messages": [{"role": "user", "content": "Say hello."}]}


async def test_every_builtin_model_is_served_by_the_simulator(gateway: Gateway) -> None:
    models = list(gateway.services.catalog.models.values())
    assert len(models) >= 150
    limit = asyncio.Semaphore(8)
    failures: list[str] = []

    async with aiohttp.ClientSession(headers=gateway.auth) as http:
        async def ask(model: Model) -> None:
            path, body = request_for(model)
            async with limit, http.post(f"{gateway.url}/{path}", json=body) as response:
                reply = await response.json()
            if response.status != 200:
                failures.append(f"{model.id}: {response.status} {reply}")
            elif path == "chat/completions" and not (reply["model"] == model.id and reply["choices"]
                                                     and reply["provider"] == "Simulator"):
                failures.append(f"{model.id}: {reply}")

        await asyncio.gather(*(ask(model) for model in models))
    assert failures == []
