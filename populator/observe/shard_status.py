"""A run's status snapshot: the small JSON object each run with `--log-path` publishes there.

Every few seconds (and at its start and end) a run writes where it stands: which job and shard
it is, on which host and pid, its state (`running`, then `finished`, `failed`, `stopped` at a
limit or `interrupted`, with the exit code), objects and items done of the totals known, its
current rate and ETA, what it cost so far, its failures (the first few named) and the command
to go on. `populator status` reads them all (see `fleet`).

Snapshots are kept under `<log path>/status/<job>/`, one file a shard:
`shard-K-of-N.json`, or `unsharded.json` for a run of the whole archive. `<job>` is
`<table>-<digest>` of the job's identity without its shard (archive, table, --since, mode,
--include-expired), so the shards of one job write side by side, a rerun of a shard replaces
its own snapshot, and a rerun after a crash takes over from the stale one. A dry run is a job
of its own (`<job>-dry-run`): it never hides the real job's figures.

Secrets registered with `logs.add_secret` are masked in every string of a snapshot.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import EXIT_LIMIT_REACHED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM
from ..source.shard import Shard
from .logs import redact_data
from .report import Tally
from .snapshot import Speedometer

FORMAT = 1  # the snapshot's own version: readers skip what they do not know
STATUS_FOLDER = "status"
UNSHARDED_NAME = "unsharded.json"
FAILURES_NAMED = 5  # failures a snapshot names (all are counted)

# What a run says it is doing; `fleet` adds `stale` and `missing`, which no run can say of itself.
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
STOPPED = "stopped"  # at a limit: --max-write-units, --max-cost, --max-duration (exit 4)
INTERRUPTED = "interrupted"  # SIGINT or SIGTERM (exit 130, 143)
SETTLED = (FINISHED, FAILED, STOPPED, INTERRUPTED)

_SHARD_FILE = re.compile(r"shard-(\d+)-of-(\d+)\.json")


def state_for_exit(code: int) -> str:
    """How a run that ended with `code` stands."""
    if code == EXIT_OK:
        return FINISHED
    if code == EXIT_LIMIT_REACHED:
        return STOPPED
    if code in (EXIT_SIGINT, EXIT_SIGTERM):
        return INTERRUPTED
    return FAILED


def shard_file(shard: Shard | None) -> str:
    return UNSHARDED_NAME if shard is None else f"shard-{shard.index}-of-{shard.count}.json"


def status_key(job: str, shard: Shard | None) -> str:
    """The snapshot's path below the log path: `status/<job>/shard-K-of-N.json`."""
    return f"{STATUS_FOLDER}/{job}/{shard_file(shard)}"


def is_status_file(name: str) -> bool:
    return name == UNSHARDED_NAME or _SHARD_FILE.fullmatch(name) is not None


def with_shard(command: str, shard: Shard) -> str:
    """`command` with its `--shard` value made `K/N` (an `auto/N` names no shard on another
    machine, and a missing shard's command is a sibling's with its own K)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    for position, word in enumerate(words):
        if word == "--shard" and position + 1 < len(words):
            words[position + 1] = str(shard)
            return shlex.join(words)
        if word.startswith("--shard="):
            words[position] = f"--shard={shard}"
            return shlex.join(words)
    return command


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class JobFacts:
    """What a snapshot says of the job it belongs to (the run's `JobIdentity`, told by `commands`)."""

    key: str  # `<table>-<digest>` of the identity without the shard (`-dry-run` for a dry run)
    archive: str
    table: str
    since: str | None
    mode: str
    dry_run: bool
    shard: Shard | None


@dataclass(frozen=True)
class ShardStatus:
    """One snapshot, as written and as read back."""

    job: str
    archive: str
    table: str
    since: str | None
    mode: str
    dry_run: bool
    shard_index: int | None  # None: the whole archive
    shard_count: int | None
    host: str
    pid: int
    started_at: str  # ISO 8601, UTC
    written_at: str
    state: str  # RUNNING or one of SETTLED
    exit_code: int | None  # once settled
    listing_done: bool
    objects_total: int  # listed so far (of the shard)
    objects_done: int  # finished, by this run or an earlier one
    objects_done_before: int  # of them, finished by an earlier run (the checkpoint's)
    objects_failed: int
    bytes_total: int  # compressed bytes to read (listed, less those done before)
    bytes_done: int
    items_done: int  # acknowledged by this run (planned, in a dry run)
    items_per_s: float | None  # over the last seconds (the average until there is a reading)
    eta_s: float | None  # this shard's time left when written (None: unknown yet)
    write_units: float
    cost_usd: float
    failures: tuple[tuple[str, str], ...] = ()  # (object, reason), the first FAILURES_NAMED
    command: str | None = None  # the command to go on with
    error: str | None = None  # what ended the run, when an error did
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # keys of later formats

    @property
    def shard(self) -> Shard | None:
        if self.shard_index is None or self.shard_count is None:
            return None
        return Shard(self.shard_index, self.shard_count)

    @property
    def shard_label(self) -> str:
        return str(self.shard) if self.shard is not None else "-"

    @property
    def written(self) -> datetime:
        return parse_time(self.written_at)

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _FIELDS if name not in ("failures", "extra")}
        data["shard"] = str(self.shard) if self.shard is not None else None
        data["failures"] = [{"object": key, "reason": reason} for key, reason in self.failures]
        return data

    def to_bytes(self) -> bytes:
        return orjson.dumps(redact_data(self.as_dict()), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> ShardStatus:
        """Raises ValueError when `data` is not a snapshot."""
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ShardStatus:
        try:
            values = {
                name: raw[name] for name in _FIELDS if name in raw and name not in ("failures", "extra")
            }
            values["failures"] = tuple(
                (str(entry["object"]), str(entry["reason"])) for entry in raw.get("failures") or ()
            )
            values["extra"] = {
                key: value for key, value in raw.items() if key not in _FIELDS and key != "shard"
            }
            status = cls(**values)
            status.written  # noqa: B018  (a time that does not parse is no snapshot)
            parse_time(status.started_at)
            if (status.shard_index is None) != (status.shard_count is None):
                raise ValueError("a shard index without a count, or a count without an index")
            status.shard  # noqa: B018  (0 <= K < N <= 10,000)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a status snapshot ({type(exc).__name__}: {exc})") from None
        wrong = [name for name, kinds in _TYPES.items() if not _is(getattr(status, name), kinds)]
        if wrong:
            raise ValueError(f"not a status snapshot (wrong types: {', '.join(wrong)})")
        return status


_FIELDS = tuple(ShardStatus.__dataclass_fields__)
# What each field read back must be (None where allowed): a snapshot is only data from a file.
_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("job", "archive", "table", "mode", "host", "started_at", "written_at", "state"), (str,)),
    **dict.fromkeys(("since", "command", "error"), (str, type(None))),
    **dict.fromkeys(("dry_run", "listing_done"), (bool,)),
    **dict.fromkeys(("shard_index", "shard_count", "exit_code"), (int, type(None))),
    **dict.fromkeys(
        ("pid", "objects_total", "objects_done", "objects_done_before", "objects_failed", "bytes_total"),
        (int,),
    ),
    **dict.fromkeys(("bytes_done", "items_done", "format"), (int,)),
    **dict.fromkeys(("write_units", "cost_usd"), (int, float)),
    **dict.fromkeys(("items_per_s", "eta_s"), (int, float, type(None))),
}


def _is(value: object, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON's true is no count
    return isinstance(value, kinds)


class StatusSource:
    """Makes a run's snapshot from its tally whenever asked (the feed's thread asks)."""

    def __init__(
        self,
        tally: Tally,
        job: JobFacts,
        *,
        started: datetime,
        command: str | None,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self._tally = tally
        self._job = job
        self._speed = Speedometer(tally)
        self._started = started
        self._command = with_shard(command, job.shard) if command and job.shard is not None else command
        self._host = host if host is not None else socket.gethostname()
        self._pid = pid if pid is not None else os.getpid()

    @property
    def key(self) -> str:
        return status_key(self._job.key, self._job.shard)

    def snapshot(
        self, *, exit_code: int | None = None, error: str | None = None, now: datetime | None = None
    ) -> ShardStatus:
        """While running (`exit_code` None), or as the run ended."""
        tally, job = self._tally, self._job
        snap = self._speed.snapshot()
        state = RUNNING if exit_code is None else state_for_exit(exit_code)
        return ShardStatus(
            job=job.key,
            archive=job.archive,
            table=job.table,
            since=job.since,
            mode=job.mode,
            dry_run=job.dry_run,
            shard_index=job.shard.index if job.shard is not None else None,
            shard_count=job.shard.count if job.shard is not None else None,
            host=self._host,
            pid=self._pid,
            started_at=iso_utc(self._started),
            written_at=iso_utc(now or datetime.now(UTC)),
            state=state,
            exit_code=exit_code,
            listing_done=snap.listing_done,
            objects_total=snap.objects_total,
            objects_done=snap.objects_done + snap.objects_skipped,
            objects_done_before=snap.objects_skipped,
            objects_failed=snap.objects_failed,
            bytes_total=snap.bytes_total,
            bytes_done=snap.bytes_done,
            items_done=snap.items,
            items_per_s=_rounded(
                snap.items_per_s_now if snap.items_per_s_now is not None else snap.items_per_s_avg
            ),
            eta_s=_rounded(snap.eta_s) if state == RUNNING else 0.0 if state == FINISHED else None,
            write_units=round(snap.write_units, 1),
            cost_usd=round(snap.cost_usd, 6),
            failures=tuple(list(tally.failures.items())[:FAILURES_NAMED]),
            command=self._command if state != FINISHED else None,
            error=error,
        )


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
