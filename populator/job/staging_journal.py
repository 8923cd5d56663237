"""The import's own journal, next to the checkpoint: staged objects, open uploads, the import.

`populator import` keeps the checkpoint (which archive objects are done) as `run` does, and this
journal for what only it has: each multipart upload started (so a rerun can abort one a crash
left open), each staged object completed (its key, sizes, items and the archive objects it
holds, whole), the `ClientToken` before `ImportTable` is asked, the import's ARN once it
answered, and the end. The same format as the checkpoint: JSON lines, each written whole,
flushed and fsync'd; a torn last line is ignored.

A staged object is recorded here before its archive objects are recorded in the checkpoint, so
after a crash between the two `reconcile` finishes them from here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import LocalWriteError, UsageError
from ..sink.staging import HeldObject, StagedObject
from ..source.archive import ArchiveObject
from .checkpoint import FinishedObject, Journal, commit_lines, terminate_torn_line

VERSION = 1


def journal_path(checkpoint: Path) -> Path:
    """`.populator/<table>-<digest>.jsonl` → `.populator/<table>-<digest>.staging.jsonl`."""
    return checkpoint.with_name(f"{checkpoint.stem}.staging{checkpoint.suffix or '.jsonl'}")


@dataclass
class StagingState:
    """What the journal says so far."""

    nonce: str
    uploads: dict[str, str] = field(default_factory=dict)  # key → upload id, neither staged nor aborted
    staged: dict[str, StagedObject] = field(default_factory=dict)
    client_token: str | None = None  # ImportTable was asked with it (perhaps without an answer)
    import_arn: str | None = None
    finished: dict[str, Any] | None = None  # the import's end (status, counts)
    cleaned: bool = False  # the staged objects were deleted after the import

    @property
    def items(self) -> int:
        return sum(staged.items for staged in self.staged.values())

    @property
    def bytes(self) -> int:
        """Uncompressed bytes staged: what ImportTable bills."""
        return sum(staged.bytes for staged in self.staged.values())

    @property
    def compressed_bytes(self) -> int:
        return sum(staged.size for staged in self.staged.values())

    @property
    def duplicates(self) -> int:
        return sum(staged.duplicates for staged in self.staged.values())


class StagingJournal:
    """Open with `StagingJournal.open`; every method appends one record."""

    def __init__(self, path: Path, handle: Any, state: StagingState) -> None:
        self.path = path
        self.state = state
        self._handle = handle

    @classmethod
    def open(cls, path: Path, job: dict[str, Any], *, restart: bool = False) -> StagingJournal:
        """Load (or start) the journal of the job described by `job` (identity, staging, job id)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if restart and path.exists():
                path.unlink()
            # Unbuffered: a record is one write of ours, undone whole when it fails (commit_lines).
            if path.exists() and path.stat().st_size > 0:
                state = _load(path, job)
                handle = open(path, "ab", buffering=0)  # noqa: SIM115 - held open for the whole run
                terminate_torn_line(path, handle)
            else:
                state = StagingState(nonce=secrets.token_hex(8))
                handle = open(path, "wb", buffering=0)  # noqa: SIM115
                header = {"type": "header", "version": VERSION, "job": job, "nonce": state.nonce}
                commit_lines(handle, [orjson.dumps(header) + b"\n"])
        except OSError as exc:
            raise UsageError(f"staging journal {path} cannot be used: {exc.strerror or exc}.") from None
        return cls(path, handle, state)

    def _append(self, record: dict[str, Any]) -> None:
        """One record, written and synced whole, or not at all (a full disk: told with its path)."""
        try:
            commit_lines(self._handle, [orjson.dumps(record) + b"\n"])
        except OSError as exc:
            then = "run the same command: it resumes (what was staged since is staged again)."
            raise LocalWriteError.of("the staging journal", self.path, exc, then) from None

    def upload_started(self, key: str, upload_id: str) -> None:
        self.state.uploads[key] = upload_id
        self._append({"type": "upload", "key": key, "upload_id": upload_id})

    def aborted(self, key: str, upload_id: str) -> None:
        self.state.uploads.pop(key, None)
        self._append({"type": "aborted", "key": key, "upload_id": upload_id})

    def staged(self, staged: StagedObject) -> None:
        self.state.uploads.pop(staged.key, None)
        self.state.staged[staged.key] = staged
        record = {
            "type": "staged",
            "key": staged.key,
            "size": staged.size,
            "bytes": staged.bytes,
            "items": staged.items,
            "duplicates": staged.duplicates,
            "held": [_held(held) for held in staged.held],
        }
        self._append(record)

    def orphan_deleted(self, key: str) -> None:
        """An object under the data prefix that no staged record names (completed just before a
        crash): deleted, its archive objects are staged again."""
        self.state.uploads.pop(key, None)
        self._append({"type": "orphan_deleted", "key": key})

    def staging_deleted(self) -> None:
        """Every staged object deleted after the import (the records stay, for the totals)."""
        self.state.cleaned = True
        self._append({"type": "staging_deleted"})

    def import_requested(self, token: str) -> None:
        self.state.client_token = token
        self._append({"type": "import_requested", "client_token": token})

    def import_started(self, arn: str) -> None:
        self.state.import_arn = arn
        self._append({"type": "import", "arn": arn})

    def import_finished(self, outcome: dict[str, Any]) -> None:
        self.state.finished = outcome
        self._append({"type": "finished", **outcome})

    def reconcile(self, checkpoint: Journal) -> frozenset[tuple[str, str]]:
        """Record in the checkpoint the archive objects of staged objects it lacks (a crash came
        between the two journals); returns their (key, ETag), finished from now on."""
        added: set[tuple[str, str]] = set()
        for staged in self.state.staged.values():
            for held in staged.held:
                if not checkpoint.is_finished(ArchiveObject(held.key, held.size, held.etag, "")):
                    checkpoint.record(finished(held))
                    added.add((held.key, held.etag))
        return frozenset(added)

    def close(self) -> None:
        self._handle.close()


def finished(held: HeldObject) -> FinishedObject:
    return FinishedObject(held.key, held.etag, held.size, held.lines, held.items, held.bad_rows)


def _held(held: HeldObject) -> dict[str, Any]:
    return {
        "key": held.key,
        "etag": held.etag,
        "size": held.size,
        "lines": held.lines,
        "items": held.items,
        "bad_rows": held.bad_rows,
    }


def _load(path: Path, job: dict[str, Any]) -> StagingState:
    lines = path.read_bytes().split(b"\n")
    try:
        header = orjson.loads(lines[0])
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header" or "nonce" not in header:
        raise UsageError(
            f"staging journal {path} is not a populator staging journal. Pass --checkpoint with another "
            "path, or --restart to replace it."
        )
    recorded = header.get("job", {})
    differences = [
        f"{name}: journal has {recorded.get(name)!r}, this command has {value!r}"
        for name, value in job.items()
        if recorded.get(name) != value
    ]
    if differences:
        raise UsageError(
            f"staging journal {path} belongs to another import ({'; '.join(differences)}). Run the command "
            "that started it to go on, or add --restart to start this import over."
        )
    state = StagingState(nonce=str(header["nonce"]))
    for raw in lines[1:]:
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # a torn line from a crash mid-write
        if not isinstance(record, dict):
            continue
        try:
            _apply(state, record)
        except (KeyError, TypeError, ValueError):
            continue
    return state


def _apply(state: StagingState, record: dict[str, Any]) -> None:
    kind = record.get("type")
    if kind == "upload":
        state.uploads[record["key"]] = record["upload_id"]
    elif kind == "aborted":
        state.uploads.pop(record["key"], None)
    elif kind == "staged":
        held = tuple(
            HeldObject(h["key"], h["etag"], h["size"], h["lines"], h["items"], h["bad_rows"])
            for h in record["held"]
        )
        staged = StagedObject(
            record["key"], record["size"], record["bytes"], record["items"], held, record.get("duplicates", 0)
        )
        state.uploads.pop(staged.key, None)
        state.staged[staged.key] = staged
    elif kind == "orphan_deleted":
        state.uploads.pop(record["key"], None)
    elif kind == "staging_deleted":
        state.cleaned = True
    elif kind == "import_requested":
        state.client_token = record["client_token"]
    elif kind == "import":
        state.import_arn = record["arn"]
    elif kind == "finished":
        state.finished = {k: v for k, v in record.items() if k != "type"}
