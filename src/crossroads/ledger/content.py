"""A generation's content — its prompt and its completion — kept for `GET /generation/content` when the operator
turned content logging on (`CROSSROADS_LOG_CONTENT=on`; off by default).

The content rides in the generation's own record (`GenerationRecord.content`, JSON text), so it reaches the
database through the spool and the shipper like every other field: nothing on the request path waits for
it. It never goes to a log. Stored content older than `CROSSROADS_LOG_CONTENT_DAYS` is deleted by `purge`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

import orjson

from crossroads.storage.base import Store

log = logging.getLogger("crossroads.ledger")

#: Content larger than this (encoded) keeps its completion but not its prompt: a record must fit in a spool
#: file (`ledger/spool.py`).
MAX_BYTES: Final = 4 * 1024 * 1024


def started(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The content of a generation before any reply: the prompt (a failed request keeps it too)."""
    return {"input": {"messages": messages}, "output": {"completion": None, "reasoning": None}}


def of_reply(content: dict[str, Any], choices: list[dict[str, Any]]) -> None:
    """Fill in a whole reply's output (its first choice)."""
    message = (choices[0].get("message") or {}) if choices else {}
    text = message.get("content")
    reasoning = message.get("reasoning")
    content["output"] = {"completion": text if isinstance(text, str) else None,
                         "reasoning": reasoning if isinstance(reasoning, str) else None}


class StreamTranscript:
    """A stream's output, gathered from its chunks as they go by (the first choice)."""

    __slots__ = ("content", "reasoning", "text")

    def __init__(self, content: dict[str, Any]) -> None:
        self.content = content
        self.text: list[str] = []
        self.reasoning: list[str] = []

    def add(self, pieces: list[dict[str, Any]]) -> None:
        """Take a batch of `chat.completion.chunk`-shaped pieces."""
        for piece in pieces:
            for choice in piece.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    self.text.append(delta["content"])
                if isinstance(delta.get("reasoning"), str):
                    self.reasoning.append(delta["reasoning"])

    def close(self) -> None:
        self.content["output"] = {"completion": "".join(self.text) if self.text else None,
                                  "reasoning": "".join(self.reasoning) if self.reasoning else None}


def encode(content: dict[str, Any] | None) -> str | None:
    """The record's `content` column."""
    if content is None:
        return None
    data = orjson.dumps(content)
    if len(data) > MAX_BYTES:
        data = orjson.dumps({**content, "input": {"messages": []}, "truncated": True})
    return data.decode()


async def purge(store: Store, days: int, every: float = 3600.0) -> None:
    """Delete stored content older than `days`, now and then every `every` seconds."""
    while True:
        try:
            removed = await store.purge_content(time.time() - days * 86400)
            if removed:
                log.info("deleted the stored content of %d generations older than %d days", removed, days)
        except Exception:
            log.warning("could not delete old generation content", exc_info=True)
        await asyncio.sleep(every)
