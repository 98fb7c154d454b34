"""The spool: an append-only local file that makes finished generations survive the death of the process.

Each generation record is written to the spool (one JSON line, one `write()` call) before the last byte of
its response goes to the client. A `write()` lands in the kernel's page cache, which outlives the process:
a gateway killed with SIGKILL a moment later still leaves the record on disk. The database gets the records
in batches; once a spool file's records are all stored, the file is deleted. At start, spool files left by
processes that are gone are replayed into the database — inserts are idempotent by generation id, so a
record that did reach the database before the crash is not charged twice.

Each process writes its own file and holds an exclusive `flock` on it while it lives; a file whose lock can
be taken belongs to a dead process.

Limits of the guarantee: a power loss or kernel crash can lose what was in the page cache but not yet on
disk (the spool does not `fsync` per record — that would cost milliseconds per request); a process killed
between choosing to answer and the spool write loses that one record.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from pathlib import Path

import orjson

from crossroads.storage.base import GenerationRecord, Store

log = logging.getLogger("crossroads.ledger")

#: Start a new spool file once the current one holds this many bytes (and all of it is stored).
ROTATE_BYTES = 4 * 1024 * 1024


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._path: Path | None = None
        self._written = 0  # records written to the current file
        self._stored = 0  # of those, how many the database has
        self._size = 0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._start_file()

    def _start_file(self) -> None:
        path = self.directory / f"{uuid.uuid4().hex}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._path = fd, path
        self._written = self._stored = self._size = 0

    def append(self, record: GenerationRecord) -> None:
        """Put one record on disk (the page cache). Called on the request path: one syscall."""
        assert self._fd is not None, "Spool.open() was not called"
        line = orjson.dumps(record) + b"\n"  # orjson serialises dataclasses natively (and fast)
        os.write(self._fd, line)
        self._written += 1
        self._size += len(line)

    def stored(self, count: int) -> None:
        """`count` more records of the current file are in the database. When all are and the file is big
        enough, it is deleted and a new one started."""
        self._stored += count
        if self._stored >= self._written and self._size >= ROTATE_BYTES:
            self._finish_file()
            self._start_file()

    def _finish_file(self) -> None:
        if self._fd is not None and self._path is not None:
            os.close(self._fd)
            self._path.unlink(missing_ok=True)
            self._fd = self._path = None

    def close(self, all_stored: bool) -> None:
        """At shutdown: delete the file if the database has every record, else keep it for the next start."""
        if all_stored:
            self._finish_file()
        elif self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def path(self) -> Path | None:
        return self._path


async def replay(directory: Path, store: Store, batch: int = 500) -> int:
    """Store the records of spool files whose process is gone, then delete those files. Returns how many
    records were new to the database. (Runs once at start, before serving: blocking file I/O is fine.)"""
    if not directory.is_dir():  # noqa: ASYNC240
        return 0
    added = 0
    for path in sorted(directory.glob("*.jsonl")):  # noqa: ASYNC240
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process owns it
            records = list(_read(path))
            for start in range(0, len(records), batch):
                added += await store.write_generations(records[start:start + batch])
            path.unlink(missing_ok=True)
            if records:
                log.info("ledger: replayed %d records from %s (%d new)", len(records), path.name, added)
        finally:
            os.close(fd)
    return added


def _read(path: Path) -> list[GenerationRecord]:
    out = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                log.warning("ledger: %s line %d is incomplete (the process died mid-write); skipped", path.name,
                            number)
                continue
            out.append(GenerationRecord(**orjson.loads(line)))
    return out
