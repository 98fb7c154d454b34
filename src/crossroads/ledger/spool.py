"""The spool: a local file that makes finished generations survive the death of the process.

Each generation record is put in the spool (one JSON line) before the last byte of its response goes to the
client. The spool file is memory-mapped (`MAP_SHARED`), so putting a line there is a memory copy, not a
system call — and the page it lands in belongs to the kernel's page cache, which outlives the process: a
gateway killed with SIGKILL a moment later still leaves the record in the file. The database gets the
records in batches; once every record of a spool file is stored, the file is deleted. At start, spool
files left by processes that are gone are replayed into the database — inserts are idempotent by generation
id, so a record that did reach the database before the crash is not charged twice.

Each process writes its own files and holds an exclusive `flock` on them while it lives; a file whose lock
can be taken belongs to a dead process. A file is a fixed `FILE_BYTES` (sparse until written); when the
next record does not fit, a new file is started and the full one is kept until its records are stored.

Limits of the guarantee: a power loss or kernel crash can lose what was in the page cache but not yet on
disk (the spool does not `fsync` per record — that would cost milliseconds per request); a process killed
between choosing to answer and the spool write loses that one record.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import uuid
from collections import deque
from pathlib import Path

import orjson

from crossroads.storage.base import GenerationRecord, Store

log = logging.getLogger("crossroads.ledger")

FILE_BYTES = 16 * 1024 * 1024


class _File:
    """One spool file: its mapping, how far it is written, and how many of its records await storage."""

    __slots__ = ("fd", "map", "offset", "path", "pending")

    def __init__(self, directory: Path, size: int) -> None:
        self.path = directory / f"{uuid.uuid4().hex}.jsonl"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.offset = 0
        self.pending = 0

    def close(self, delete: bool) -> None:
        self.map.close()
        os.close(self.fd)
        if delete:
            self.path.unlink(missing_ok=True)


class Spool:
    def __init__(self, directory: Path, file_bytes: int = FILE_BYTES) -> None:
        self.directory = directory
        self._size = file_bytes
        #: Files in the order their records were written; the last one is being written.
        self._files: deque[_File] = deque()

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files.append(_File(self.directory, self._size))

    def append(self, record: GenerationRecord) -> None:
        """Put one record in the spool. Called on the request path: a memory copy."""
        line = orjson.dumps(record) + b"\n"  # orjson serialises dataclasses natively (and fast)
        current = self._files[-1]
        if current.offset + len(line) > self._size:
            if len(line) > self._size:
                raise ValueError("a generation record larger than a spool file")
            current = _File(self.directory, self._size)
            self._files.append(current)
        current.map[current.offset:current.offset + len(line)] = line
        current.offset += len(line)
        current.pending += 1

    def stored(self, count: int) -> None:
        """`count` more records (the oldest not yet stored) are in the database; spool files whose records
        are all stored, and that are full, are deleted."""
        files = self._files
        while count and files:
            oldest = files[0]
            taken = min(count, oldest.pending)
            oldest.pending -= taken
            count -= taken
            if oldest.pending == 0 and len(files) > 1:
                files.popleft().close(delete=True)

    def close(self, all_stored: bool) -> None:
        """At shutdown: delete the files if the database has every record, else keep them for the next
        start."""
        while self._files:
            self._files.popleft().close(delete=all_stored)

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self._files]


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
            records = _read(path)
            new = 0
            for start in range(0, len(records), batch):
                new += await store.write_generations(records[start:start + batch])
            added += new
            path.unlink(missing_ok=True)
            if records:
                log.info("ledger: replayed %d records from %s (%d new)", len(records), path.name, new)
        finally:
            os.close(fd)
    return added


def _read(path: Path) -> list[GenerationRecord]:
    data = path.read_bytes().rstrip(b"\0")
    out = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line:
            continue
        try:
            out.append(GenerationRecord(**orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError):
            # The process died while copying this line in: it was never answered.
            log.warning("ledger: %s line %d is incomplete; skipped", path.name, number)
    return out
