"""The spool: local files that carry finished generations from a gateway process to the database.

The gateway puts each generation record in the spool (one JSON line) before the last byte of its response
goes to the client. A spool file is memory-mapped (`MAP_SHARED`), so putting a line there is a memory copy,
not a system call — and the page it lands in belongs to the kernel's page cache, which outlives the
process: a gateway killed with SIGKILL a moment later still leaves the record in the file. A separate
process, the shipper (`ledger/shipper.py`), reads the files and writes their records to the database in
batches; so the gateway's event loop never spends time on database writes (nor waits for a thread holding
the GIL to do them).

Files are named `<tag>-<sequence>.jsonl`, the tag naming the gateway process that writes them. A gateway
holds an exclusive `flock` on the file it is writing; a file whose lock can be taken is finished (its
writer moved on to the next file, or is gone). Files are a fixed `FILE_BYTES`, sparse until written; the
end of the written part is the end of the last complete line.

Limits of the guarantee: a power loss or kernel crash can lose what was in the page cache but not yet on
disk (the spool does not `fsync` per record — that would cost milliseconds per request); a process killed
between choosing to answer and the spool write loses that one record.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from crossroads.storage.base import GenerationRecord

FILE_BYTES = 16 * 1024 * 1024
#: How much of a spool file the shipper reads at a time.
READ_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Position:
    """How far a spool has been written (or shipped): a file name and a byte offset in it."""

    file: str
    offset: int


def name(tag: str, sequence: int) -> str:
    return f"{tag}-{sequence:06d}.jsonl"


def tag_of(file: str) -> str:
    return file.rsplit("-", 1)[0]


class Spool:
    """The writing side, used by a gateway process."""

    def __init__(self, directory: Path, file_bytes: int = FILE_BYTES, tag: str | None = None) -> None:
        self.directory = directory
        self.tag = tag or f"{os.getpid()}{uuid.uuid4().hex[:8]}"
        self._size = file_bytes
        self._sequence = 0
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._file = ""
        self._offset = 0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._start_file()

    def _start_file(self) -> None:
        self._sequence += 1
        self._file = name(self.tag, self._sequence)
        fd = os.open(self.directory / self._file, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, self._size)
        self._map = mmap.mmap(fd, self._size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._fd, self._offset = fd, 0

    def _finish_file(self) -> None:
        """Release the current file (closing it drops the lock): the shipper may finish and delete it."""
        if self._map is not None:
            self._map.close()
            os.close(self._fd)
            self._map, self._fd = None, -1

    def append(self, record: GenerationRecord) -> None:
        """Put one record in the spool. Called on the request path: two memory copies."""
        line = orjson.dumps(record)  # orjson serialises dataclasses natively (and fast)
        size = len(line) + 1
        if self._offset + size > self._size:
            if size > self._size:
                raise ValueError("a generation record larger than a spool file")
            self._finish_file()
            self._start_file()
        assert self._map is not None, "Spool.open() was not called"
        start = self._offset
        # The line first, its newline after: a reader that sees the newline sees the whole line (stores
        # become visible in program order on the platforms this runs on, and readers re-check parses).
        self._map[start:start + size - 1] = line
        self._map[start + size - 1] = 10
        self._offset = start + size

    @property
    def position(self) -> Position:
        return Position(self._file, self._offset)

    def close(self) -> None:
        self._finish_file()


def locked(path: Path) -> bool:
    """Whether a live process holds the file (is still writing it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_lines(path: Path, offset: int, final: bool) -> tuple[list[GenerationRecord], int, int]:
    """Records from `offset` to the last complete line: (records, new offset, lines that could not be
    read). A line that does not parse is left for the next read while the file may still be being written;
    once `final` (its writer is gone), it is skipped — its response was never answered."""
    pieces = []
    with path.open("rb") as fh:
        fh.seek(offset)
        while True:  # up to the first NUL: the rest of the (sparse) file is not written yet
            piece = fh.read(READ_BYTES)
            end = piece.find(b"\0")
            if end >= 0:
                pieces.append(piece[:end])
                break
            pieces.append(piece)
            if len(piece) < READ_BYTES:
                break
    data = b"".join(pieces)
    cut = data.rfind(b"\n") + 1
    records: list[GenerationRecord] = []
    bad = 0
    position = offset
    for line in data[:cut].split(b"\n")[:-1]:
        try:
            records.append(GenerationRecord(**orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError):
            if not final:
                return records, position, bad
            bad += 1
        position += len(line) + 1
    return records, position, bad
