"""The objects an earlier run finished, in 16 bytes each: a digest and where its record is.

A resume of a million-object archive must not hold a million records (a dict of them took
about 460 bytes an object). `FinishedSet` is an open-addressing hash table in two flat arrays:
a 64-bit blake2b digest of each finished object's key, and the offset of its full record in the
journal's spool file on disk. A digest match is only a candidate: the record is read back and
its key and ETag compared exactly, so a digest collision can never mark an object done that
is not (at worst it costs one read). Objects finished during this run are not added: a run
lists each object once, so nothing asks about them again.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from typing import BinaryIO

import orjson

_EMPTY = 0
# How the journal writes a record's start: orjson.dumps({"type": "object", "key": ..., "etag": ...}).
_RECORD_START = b'{"type":"object","key":'
_ETAG = b',"etag":'
_AFTER_ETAG = (b",", b"}")
LOAD = 0.6
WINDOW = 256 * 1024  # bytes of the spool read at once to check the records of a resume
_MAX_RECORD = 8192  # a journal record is one line: a key of at most 1,024 bytes and a few numbers


def _digest(key: str) -> int:
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return value or 1  # 0 marks an empty slot


class FinishedSet:
    """Keys and ETags of finished objects, their records in `spool` (opened for reading)."""

    def __init__(self, spool: BinaryIO | None, expected: int) -> None:
        # At most LOAD full, so probes stay short (linear probing: about 2 slots a lookup).
        self._size = size = int(expected / LOAD) + 16
        self._digests = array("Q", bytes(8 * size))
        self._offsets = array("Q", bytes(8 * size))
        self._spool = spool
        self._fileno = spool.fileno() if spool is not None else -1
        self._window = b""
        self._window_start = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, key: str, offset: int) -> None:
        """The record of `key` is at `offset` of the spool; a later record of a key replaces it."""
        digest = _digest(key)
        digests, size = self._digests, self._size
        slot = digest % size
        while (found := digests[slot]) != _EMPTY:
            if found == digest and self._record(self._offsets[slot])[0] == key:
                self._offsets[slot] = offset  # the object changed and was finished again
                return
            slot = slot + 1 if slot + 1 < size else 0
        if self._count + 1 > size * LOAD + 8:
            raise OverflowError("FinishedSet is full: size it for the records it will hold")
        digests[slot] = digest
        self._offsets[slot] = offset
        self._count += 1

    def holds(self, key: str, etag: str) -> bool:
        """Whether `key` was finished with this very ETag (read back from the record)."""
        if not self._count:
            return False
        digest = _digest(key)
        digests, size = self._digests, self._size
        slot = digest % size
        prefix = b""
        while (found := digests[slot]) != _EMPTY:
            if found == digest:
                # The record starts with its key and ETag as the journal writes them: comparing
                # those bytes is exact and spares parsing the line (half of a resume's time).
                prefix = prefix or _RECORD_START + orjson.dumps(key) + _ETAG + orjson.dumps(etag)
                start = self._read(self._offsets[slot], len(prefix) + 1)
                if start[:-1] == prefix and start[-1:] in _AFTER_ETAG:
                    return True
                recorded_key, recorded_etag = self._record(self._offsets[slot])  # written otherwise
                if recorded_key == key:
                    return recorded_etag == etag
            slot = slot + 1 if slot + 1 < size else 0
        return False

    def _read(self, offset: int, size: int) -> bytes:
        """`size` bytes of the spool at `offset`, through a window read ahead: a resume asks for
        records nearly in the order they were written (the listing's), so one read of WINDOW
        serves thousands of them (a read each was half of a resume's time, 10 us apiece)."""
        start = offset - self._window_start
        if start >= 0 and start + size <= len(self._window):
            return self._window[start : start + size]
        self._window = os.pread(self._fileno, max(WINDOW, size), offset)
        self._window_start = offset
        return self._window[:size]

    def _record(self, offset: int) -> tuple[str, str]:
        raw = self._read(offset, _MAX_RECORD).split(b"\n", 1)[0]
        record = orjson.loads(raw)
        return record["key"], record["etag"]

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
