"""The resumable journal: which archive objects are completely in the table already.

An append-only JSON-lines file. The first line is a header holding the job's identity; every
following line records one finished object (all its items acknowledged by DynamoDB). Each line
is written whole, flushed and fsync'd before the next, so after a crash at any moment the file
is valid up to, at most, a torn last line, which loading ignores.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import UsageError
from ..source.archive import ArchiveObject

JOURNAL_VERSION = 1
DEFAULT_DIRECTORY = ".populator"


@dataclass(frozen=True)
class JobIdentity:
    """What makes two invocations the same job: resuming one with the other is safe."""

    archive: str
    table: str
    since: str | None
    mode: str  # "batch" or "conditional"
    include_expired: bool = False  # changes which items an object yields
    shard: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "table": self.table,
            "since": self.since,
            "mode": self.mode,
            "include_expired": self.include_expired,
            "shard": self.shard,
        }

    def digest(self) -> str:
        return hashlib.sha256(orjson.dumps(self.as_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def default_path(identity: JobIdentity, directory: Path | None = None) -> Path:
    """`.populator/<table>-<digest>.jsonl` in the working directory: one file per job."""
    safe_table = re.sub(r"[^A-Za-z0-9_.-]", "_", identity.table)
    return (directory or Path(DEFAULT_DIRECTORY)) / f"{safe_table}-{identity.digest()}.jsonl"


@dataclass(frozen=True)
class FinishedObject:
    key: str
    etag: str
    size: int
    lines: int
    items: int
    bad_rows: int


class Journal:
    """An open checkpoint journal. Use `Journal.open`; call `record` for each finished object."""

    def __init__(
        self, path: Path, identity: JobIdentity, finished: dict[str, FinishedObject], handle: Any
    ) -> None:
        self.path = path
        self.identity = identity
        self._finished = finished
        self._handle = handle
        self.resumed = bool(finished)

    @classmethod
    def open(cls, path: Path, identity: JobIdentity, *, restart: bool = False) -> Journal:
        """Load the journal at `path` (or start one), checking it belongs to this job."""
        finished: dict[str, FinishedObject] = {}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if restart and path.exists():
                path.unlink()
            if path.exists() and path.stat().st_size > 0:
                finished = _load(path, identity)
                handle = open(path, "ab")  # noqa: SIM115 - held open for the whole run
                _terminate_torn_line(path, handle)
            else:
                handle = open(path, "wb")  # noqa: SIM115
                header = {"type": "header", "version": JOURNAL_VERSION, "identity": identity.as_dict()}
                _append(handle, header)
        except OSError as exc:
            raise UsageError(f"checkpoint {path} cannot be used: {exc.strerror or exc}.") from None
        return cls(path, identity, finished, handle)

    def is_finished(self, obj: ArchiveObject) -> bool:
        """Finished in an earlier run, and not changed since (same ETag)."""
        done = self._finished.get(obj.key)
        return done is not None and done.etag == obj.etag

    @property
    def finished_count(self) -> int:
        return len(self._finished)

    def record(self, done: FinishedObject) -> None:
        self._finished[done.key] = done
        _append(self._handle, {"type": "object", **done.__dict__})

    def close(self) -> None:
        self._handle.close()


def _append(handle: Any, record: dict[str, Any]) -> None:
    handle.write(orjson.dumps(record) + b"\n")
    handle.flush()
    os.fsync(handle.fileno())


def _terminate_torn_line(path: Path, handle: Any) -> None:
    """After a crash mid-write the file may not end in a newline: end the torn line."""
    with open(path, "rb") as reader:
        reader.seek(-1, os.SEEK_END)
        if reader.read(1) != b"\n":
            handle.write(b"\n")
            handle.flush()


def _load(path: Path, identity: JobIdentity) -> dict[str, FinishedObject]:
    lines = path.read_bytes().split(b"\n")
    try:
        header = orjson.loads(lines[0])
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise UsageError(
            f"checkpoint {path} is not a populator journal. Pass --checkpoint with another path, or "
            "--restart to replace it."
        )
    recorded = header.get("identity", {})
    differences = [
        f"{name}: journal has {recorded.get(name)!r}, this command has {value!r}"
        for name, value in identity.as_dict().items()
        if recorded.get(name) != value
    ]
    if differences:
        raise UsageError(
            f"checkpoint {path} belongs to another job ({'; '.join(differences)}). Run the command that "
            "started it to resume, or add --restart to start this job over from the beginning."
        )
    finished: dict[str, FinishedObject] = {}
    for raw in lines[1:]:
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # a torn line from a crash mid-write: that object is simply not finished
        if isinstance(record, dict) and record.get("type") == "object":
            try:
                done = FinishedObject(
                    key=record["key"],
                    etag=record["etag"],
                    size=record["size"],
                    lines=record["lines"],
                    items=record["items"],
                    bad_rows=record["bad_rows"],
                )
            except KeyError:
                continue
            finished[done.key] = done
    return finished
