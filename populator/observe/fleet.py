"""A fleet at a glance: the status snapshots of a `--log-path`, judged at one moment.

Pure: snapshots and a clock in, a `Fleet` out. Snapshots are grouped into jobs (the same job
key and the same N: another N is another job); each shard is judged:

* what its snapshot says once the run ended (`finished`, `failed`, `stopped`, `interrupted`);
* `running` while its last snapshot is younger than `stale_after`;
* `stale` when a running shard's last snapshot is older than that: killed (`kill -9`, a lost
  node or Spot instance), hung, or cut off from the log path;
* `missing` for a shard of N that never wrote one (not started yet, or started without
  `--log-path`).

A job's ETA is when its slowest shard will be done: the largest time left among its running
shards (each measured when its snapshot was written), known only while every other shard has
finished; a failed, stale, stopped, interrupted or missing shard will not finish by itself.

The exit code of `populator status` follows: 0 when every shard of every job finished, 1 when
any needs someone (failed, stale, stopped, interrupted, or missing while nothing of its job
runs), `EXIT_RUNNING` (6) while shards run and nothing needs anyone, and 2 when there is no
snapshot at all (not the log path the runs were given, or none has started).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import EXIT_FAILED, EXIT_OK, EXIT_RUNNING, EXIT_USAGE
from ..source.shard import Shard
from .shard_status import FINISHED, RUNNING, ShardStatus, iso_utc, with_shard

STALE = "stale"
MISSING = "missing"
BLOCKED = "blocked"  # a job: some shard will not finish unless someone acts
DEFAULT_STALE_AFTER_SECONDS = 180.0


@dataclass(frozen=True)
class ShardView:
    """One shard as judged at a moment; `status` is None for a missing shard."""

    shard: Shard | None
    state: str
    status: ShardStatus | None
    age_s: float | None  # seconds since its last snapshot
    eta_s: float | None  # time left now (running shards)
    command: str | None  # to go on with, when it needs someone
    needs_someone: bool  # will not finish by itself (a missing shard of a job that runs may yet start)

    @property
    def label(self) -> str:
        return str(self.shard) if self.shard is not None else "-"

    def as_dict(self) -> dict[str, Any]:
        status = self.status
        data: dict[str, Any] = {
            "shard": str(self.shard) if self.shard is not None else None,
            "state": self.state,
            "age_s": _round(self.age_s),
            "eta_s": _round(self.eta_s),
            "command": self.command,
        }
        if status is None:
            return data
        figures = status.as_dict()
        for key in ("job", "archive", "table", "since", "mode", "dry_run", "shard", "state", "command"):
            figures.pop(key)
        figures["eta_s_when_written"] = figures.pop("eta_s")
        return {**data, **figures}


@dataclass(frozen=True)
class JobView:
    """The shards of one job, and its figures summed."""

    key: str
    first: ShardStatus  # the newest snapshot: what the job is (archive, table, since...)
    shard_count: int | None  # None: a run of the whole archive
    shards: list[ShardView]

    @property
    def present(self) -> list[ShardStatus]:
        return [view.status for view in self.shards if view.status is not None]

    @property
    def objects_total(self) -> int:
        return sum(status.objects_total for status in self.present)

    @property
    def objects_done(self) -> int:
        return sum(status.objects_done for status in self.present)

    @property
    def objects_failed(self) -> int:
        return sum(status.objects_failed for status in self.present)

    @property
    def items_done(self) -> int:
        return sum(status.items_done for status in self.present)

    @property
    def bytes_total(self) -> int:
        return sum(status.bytes_total for status in self.present)

    @property
    def bytes_done(self) -> int:
        return sum(status.bytes_done for status in self.present)

    @property
    def cost_usd(self) -> float:
        return sum(status.cost_usd for status in self.present)

    @property
    def listing_done(self) -> bool:
        """Whether the totals are final: every shard present and done listing."""
        return all(view.status is not None and view.status.listing_done for view in self.shards)

    @property
    def items_per_s(self) -> float:
        """The running shards' rates, summed."""
        return sum(
            (view.status.items_per_s or 0.0)
            for view in self.shards
            if view.state == RUNNING and view.status is not None
        )

    @property
    def eta_s(self) -> float | None:
        if any(view.needs_someone or view.state == MISSING for view in self.shards):
            return None
        left = [view.eta_s for view in self.shards if view.state == RUNNING]
        if not left:
            return 0.0
        return None if any(eta is None for eta in left) else max(eta for eta in left if eta is not None)

    @property
    def state(self) -> str:
        """`finished`, `running`, or `blocked` (a shard will not finish unless someone acts)."""
        if any(view.needs_someone for view in self.shards):
            return BLOCKED
        return FINISHED if all(view.state == FINISHED for view in self.shards) else RUNNING

    def count(self, state: str) -> int:
        return sum(1 for view in self.shards if view.state == state)

    @property
    def exit_code(self) -> int:
        if self.state == BLOCKED:
            return EXIT_FAILED
        return EXIT_OK if self.state == FINISHED else EXIT_RUNNING

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {
            "job": self.key,
            "archive": first.archive,
            "table": first.table,
            "since": first.since,
            "mode": first.mode,
            "dry_run": first.dry_run,
            "shards_total": self.shard_count,
            "state": self.state,
            "shards_by_state": {state: self.count(state) for state in _ORDER if self.count(state)},
            "listing_done": self.listing_done,
            "objects_total": self.objects_total,
            "objects_done": self.objects_done,
            "objects_failed": self.objects_failed,
            "bytes_total": self.bytes_total,
            "bytes_done": self.bytes_done,
            "items_done": self.items_done,
            "items_per_s": round(self.items_per_s, 1),
            "eta_s": _round(self.eta_s),
            "cost_usd": round(self.cost_usd, 6),
            "shards": [view.as_dict() for view in self.shards],
        }


@dataclass(frozen=True)
class Fleet:
    """Every job found under a log path, at `now`."""

    location: str
    now: datetime
    stale_after_s: float
    jobs: list[JobView]
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.jobs:
            return EXIT_USAGE  # nothing here: not the log path the runs were given, or none started
        codes = {job.exit_code for job in self.jobs}
        for code in (EXIT_FAILED, EXIT_RUNNING):
            if code in codes:
                return code
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "checked_at": iso_utc(self.now),
            "stale_after_s": self.stale_after_s,
            "exit_code": self.exit_code,
            "jobs": [job.as_dict() for job in self.jobs],
            "unreadable": [{"where": where, "why": why} for where, why in self.unreadable],
        }


_ORDER = (RUNNING, FINISHED, "failed", "stopped", "interrupted", STALE, MISSING)


def judge(status: ShardStatus, now: datetime, stale_after_s: float) -> ShardView:
    """One shard's state at `now`, from its last snapshot."""
    age = max((now - status.written).total_seconds(), 0.0)
    state = status.state
    eta: float | None = None
    if state == RUNNING:
        if age > stale_after_s:
            state = STALE
        elif status.eta_s is not None:
            eta = max(status.eta_s - age, 0.0)
    needs_someone = state not in (RUNNING, FINISHED)
    return ShardView(
        status.shard, state, status, age, eta, status.command if needs_someone else None, needs_someone
    )


def fleet(
    location: str,
    snapshots: Iterable[ShardStatus],
    now: datetime,
    stale_after_s: float = DEFAULT_STALE_AFTER_SECONDS,
    unreadable: Iterable[tuple[str, str]] = (),
) -> Fleet:
    """Group `snapshots` into jobs and judge every shard at `now`; the newest job first."""
    groups: dict[tuple[str, int | None], list[ShardStatus]] = {}
    for status in snapshots:
        groups.setdefault((status.job, status.shard_count), []).append(status)
    jobs = [_job(key, count, found, now, stale_after_s) for (key, count), found in groups.items()]
    jobs.sort(key=lambda job: job.first.written, reverse=True)
    return Fleet(location, now, stale_after_s, jobs, list(unreadable))


def _job(
    key: str, count: int | None, found: list[ShardStatus], now: datetime, stale_after_s: float
) -> JobView:
    newest = max(found, key=lambda status: status.written)
    by_index = {status.shard_index: status for status in sorted(found, key=lambda status: status.written)}
    views: list[ShardView] = []
    if count is None:
        views = [judge(status, now, stale_after_s) for status in by_index.values()]
    else:
        sibling = next((status.command for status in found if status.command), None)
        running = any(judge(status, now, stale_after_s).state == RUNNING for status in found)
        for index in range(count):
            status = by_index.get(index)
            if status is not None:
                views.append(judge(status, now, stale_after_s))
                continue
            shard = Shard(index, count)
            command = with_shard(sibling, shard) if sibling else None
            # While the job runs, a missing shard may yet start (a queued array child): no concern yet.
            views.append(ShardView(shard, MISSING, None, None, None, command, needs_someone=not running))
    return JobView(key, newest, count, views)


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
