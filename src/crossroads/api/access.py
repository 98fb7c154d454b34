"""The access log: one line per request at INFO on the `crossroads.access` logger, in place of aiohttp's.

    POST /api/v1/chat/completions 200 12.3ms model=openai/gpt-4o provider=OpenAI generation=gen-... key=team-a

Method, path (never the query string), status, duration, and for a request that reached a model the model
that served it, its provider, the generation id and the key's name — from the generation's record, which
the ledger already keeps, so the request path does nothing for this line. Never a key's secret, never
content. In JSON lines (`CROSSROADS_LOG_FORMAT=json`) the same values are fields of their own.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from crossroads.api.fastlane import LaneRequest
from crossroads.errors import NotFound
from crossroads.ledger.keys import KeyRing
from crossroads.ledger.writer import LedgerWriter
from crossroads.logs import quick_handler

LOGGER = "crossroads.access"


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the access log finds what a generation id stands for."""

    ledger: LedgerWriter
    keys: KeyRing


SOURCES = web.AppKey("crossroads.access", Sources)


class AccessLog(AbstractAccessLogger):
    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        generation_id = response.headers.get("X-Generation-Id")
        model = provider = key = None
        sources = request.app.get(SOURCES) if isinstance(request, web.Request | LaneRequest) else None
        if generation_id is not None and sources is not None:
            record = sources.ledger.recent(generation_id)
            if record is not None:
                model, provider = record.model, record.provider_name
                with contextlib.suppress(NotFound):  # unless deleted meanwhile
                    key = sources.keys.get(record.key_hash).record.name
        duration_ms = round(time * 1000, 1)
        method, path, status = request.method, request.path, response.status
        message = (f"{method} {path} {status} {duration_ms:.1f}ms model={model or '-'} provider={provider or '-'} "
                   f"generation={generation_id or '-'} key={key or '-'}")
        fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms, "model": model,
                  "provider": provider, "generation_id": generation_id, "key_name": key}
        handler = quick_handler(self.logger)
        if handler is None or not handler.info_line(self.logger.name, message, fields):
            self.logger.info("%s", message, extra=fields)


def access_logger() -> logging.Logger:
    return logging.getLogger(LOGGER)


__all__ = ["LOGGER", "SOURCES", "AccessLog", "Sources", "access_logger"]
