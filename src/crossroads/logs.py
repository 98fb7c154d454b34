"""Logging for every Crossroads process (gateway, shipper, simulator): text or JSON lines on stderr, and a
filter that keeps secrets out of every record.

The filter sits on the one handler every logger — aiohttp's included — writes through. It redacts the
values of credential headers (`Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`, `Cookie`, ...)
wherever they appear in a record: in the message, its arguments, an exception's text or a stack. Bearer
tokens, Crossroads API keys and the literal secrets the process was configured with (the management key,
provider keys) are redacted too. Keys are never logged on purpose; this is what makes "never" hold for
text a library puts in a log line (a parser error quoting the raw request, say).

JSON lines are built by a JSON encoder (never by formatting a template), so quotes, newlines and
tracebacks in a message still give one valid JSON object per line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, Final, TextIO

#: Headers whose values are credentials.
SECRET_HEADERS: Final = ("proxy-authorization", "authorization", "x-goog-api-key", "x-api-key", "api-key",
                         "set-cookie", "cookie")
REDACTED: Final = "[redacted]"

_HEADER_VALUE = re.compile(
    # The header's name, then `:`/`=` with any quotes or escaped quotes around it (a raw request, a dict's
    # repr, JSON), then the value up to the end of its line, a quote or an escape sequence.
    r"(?i)(" + "|".join(map(re.escape, SECRET_HEADERS)) + r")(\\?['\"]?\s*[:=]\s*\\?['\"]?)([^\r\n'\"\\]+)"
)
_TOKENS = re.compile(r"(?i)\b(bearer\s+)[^\s'\"\\,;]{6,}|\bsk-cr-v1-[0-9a-f]+")
#: ASCII text holding none of these (case aside) cannot match either pattern: the common case — an access
#: line, say — skips both scans. (Not so other text: case-insensitive matching pairs `ſ` with `s`, `K` with `k`.)
_TRIGGERS: Final = ("authorization", "api-key", "cookie", "bearer", "sk-cr-v1-")
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Attributes every LogRecord has; anything else on a record came from `extra=` and goes into JSON lines.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class Redactor(logging.Filter):
    """Rewrites each record so that no secret is left in it (it never drops a record)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Only secrets long enough not to match ordinary words.
        self._literals = tuple(sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._literals:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if text.isascii():
            lowered = text.lower()
            if not any(trigger in lowered for trigger in _TRIGGERS):
                return text
        text = _HEADER_VALUE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
        return _TOKENS.sub(lambda m: f"{m[1]}{REDACTED}" if m[1] else f"sk-cr-v1-{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep its parts, never lose the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = self.redact(message), None
        for name, value in record.__dict__.items():  # fields given with `extra=` (JSON lines print them)
            if isinstance(value, str) and name not in _STANDARD:
                record.__dict__[name] = self.redact(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """`time level logger: message`; line breaks inside the message are escaped, so one record is one line
    (a traceback follows on its own lines, as usual)."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.replace("\r", "\\r").replace("\n", "\\n")
        return super().formatMessage(record)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the exception's traceback if any, and every
    field passed with `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return self.dump(entry)

    @staticmethod
    def dump(entry: dict[str, Any]) -> str:
        return json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass") \
            .decode("utf-8", "replace")


_FORMATTER = logging.Formatter()


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes its lines in batches: up to `BATCH` lines, or until `drain()` (which the
    gateway calls every `DRAIN_SECONDS`), a record at WARNING or above, or `flush()` (at exit) — one write
    for many access lines instead of a write per request. Measured with wrk against `crossroads serve` on
    one core, non-stream c=16: the access line at INFO cost 20% of throughput written line by line."""

    BATCH: Final = 256
    DRAIN_SECONDS: Final = 0.2

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""

    def info_line(self, name: str, message: str, fields: dict[str, Any]) -> bool:
        """Queue the line `emit` would write for `logging.getLogger(name).info("%s", message, extra=fields)`,
        without making a LogRecord — for the access line, which every request writes: measured with wrk
        against `crossroads serve` on one core, non-stream c=16, the record, its filter and its formatter
        took 8% of the gateway's CPU, this path under 2%. False (nothing queued) when the handler has a
        formatter or filters this path does not reproduce; the caller then logs as usual."""
        formatter, filters = self.formatter, self.filters
        if len(filters) != 1 or type(filters[0]) is not Redactor or self.level > logging.INFO:
            return False
        redactor = filters[0]
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime(logging.Formatter.default_time_format,
                                                              time.localtime(now))
        stamp = f"{self._stamp},{int((now - second) * 1000):03d}"
        message = redactor.redact(message)
        if type(formatter) is TextFormatter:
            line = f"{stamp} INFO {name}: " + message.replace("\r", "\\r").replace("\n", "\\n")
        elif type(formatter) is JSONFormatter:
            entry: dict[str, Any] = {"time": stamp, "level": "INFO", "logger": name, "pid": os.getpid(),
                                     "message": message}
            for field, value in fields.items():
                entry[field] = redactor.redact(value) if isinstance(value, str) else value
            line = JSONFormatter.dump(entry)
        else:
            return False
        self._lines.append(line + self.terminator)
        if len(self._lines) >= self.BATCH:
            self.drain()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._lines) >= self.BATCH:
            self.drain()

    def drain(self) -> None:
        if not self._lines:
            return
        text, self._lines = "".join(self._lines), []
        self.acquire()
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # a closed or broken stream: the lines are lost, the gateway goes on
            pass
        finally:
            self.release()

    def flush(self) -> None:
        self.drain()


def quick_handler(logger: logging.Logger) -> BatchingHandler | None:
    """The one handler that an INFO record of `logger` would reach, if that is a `BatchingHandler` and
    nothing on the way (a handler or filter of `logger` or of a logger above it) would see the record: then
    `BatchingHandler.info_line` writes what logging would. None otherwise (a test capturing logs, say)."""
    if logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    current: logging.Logger | None = logger
    while current is not None and current.parent is not None:  # up to the root
        if current.handlers or not current.propagate:
            return None
        current = current.parent
    handlers = logging.root.handlers
    if len(handlers) == 1 and type(handlers[0]) is BatchingHandler:
        return handlers[0]
    return None


def configure(level: str = "INFO", as_json: bool = False, secrets: Iterable[str] = (),
              stream: TextIO | None = None, batched: bool = False) -> logging.Handler:
    """Send every logger's records to `stream` (stderr) through the redacting filter, as text or JSON
    lines; `batched`: in batches (`BatchingHandler`, whose `drain` the caller then calls now and then)."""
    # No formatter here prints the caller's file, line or thread: skip looking them up for every record.
    logging._srcfile = None  # the documented switch (logging HOWTO, "Optimization")
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = BatchingHandler(stream or sys.stderr) if batched else logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if as_json else TextFormatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


__all__ = ["REDACTED", "SECRET_HEADERS", "BatchingHandler", "JSONFormatter", "Redactor", "TextFormatter", "configure",
           "quick_handler"]
