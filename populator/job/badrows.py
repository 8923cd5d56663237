"""Bad rows: a JSON-lines file the user can inspect, and the `--max-bad-rows` guard.

Both are subscribers to `BadRowFound`. A resumed or restarted object may report the same bad
row twice; the file is for inspection, not an exact count (the summary has that). A file that
cannot be written (a full disk) stops the run with a `LocalWriteError`: the error of a file of
ours, never taken for an object's read breaking off.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

import orjson

from ..errors import LocalWriteError, PopulatorError, UsageError
from ..observe.hub import BadRowFound, Event


class TooManyBadRows(PopulatorError):
    """More bad rows than `--max-bad-rows` allows: the archive is probably not what it seems."""

    exit_code = 1


class BadRowFile:
    """Appends `{"object", "line", "reason", "head"}` records, `head` being the line's first KiB."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: each record is written whole at once (bad rows are few), or not at all.
            self._handle: IO[bytes] = open(path, "ab", buffering=0)  # noqa: SIM115 - held for the run
        except OSError as exc:
            raise UsageError(f"--bad-rows {path} cannot be written: {exc.strerror or exc}.") from None
        self.path = path

    def __call__(self, event: Event) -> None:
        if isinstance(event, BadRowFound):
            record = {
                "object": event.obj.key,
                "line": event.line,
                "reason": event.reason,
                "head": event.head[:1024].decode("utf-8", "replace"),
            }
            self._append(orjson.dumps(record) + b"\n")

    def _append(self, data: bytes) -> None:
        fd = self._handle.fileno()
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)  # a short write leaves no torn record behind
            then = "run the same command: it resumes (the bad rows of objects read again are added again)."
            raise LocalWriteError.of("--bad-rows", self.path, exc, then) from None

    def close(self) -> None:
        self._handle.close()


class BadRowLimit:
    """Raises `TooManyBadRows` from the reader that finds bad row number `limit + 1`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, BadRowFound):
            self.seen += 1
            if self.seen > self.limit:
                raise TooManyBadRows(
                    f"more than {self.limit} bad rows (--max-bad-rows); stopped. The last one: "
                    f"{event.obj.key} line {event.line}: {event.reason}. Objects finished so far are in "
                    "the checkpoint; fix the input or raise the limit, then run the same command again."
                )
