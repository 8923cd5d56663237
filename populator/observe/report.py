"""The tally of a run (a subscriber that counts everything) and the JSON report made of it."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import exit_status
from ..sink.pricing import DEFAULT_PRICE_PER_MILLION_WRU, write_cost_usd
from .hub import (
    BytesRead,
    ClockSkewed,
    Event,
    ItemsAcknowledged,
    LinesParsed,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
    ObjectRestarted,
    ObjectSkipped,
    PrefixCarried,
    RateChanged,
    RunsSelected,
    ServiceWaiting,
    TableReady,
    Throttled,
)


@dataclass
class Tally:
    """Counts every event of a run. Subscribe it to the hub; read it at any time."""

    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    dry_run: bool = False
    runs: int = 0
    objects_total: int = 0
    bytes_total: int = 0
    listing_done: bool = False
    objects_done: int = 0
    objects_skipped: int = 0  # finished in an earlier run, per the checkpoint
    bytes_skipped: int = 0
    object_restarts: int = 0  # reads broken off and started again
    objects_resumed_partway: int = 0  # read again past a prefix whose items were stored already
    items_carried_over: int = 0  # the items of those prefixes: not written again
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM" when stopped early
    checkpoint: str | None = None
    bytes_read: int = 0
    lines_read: int = 0
    blank_lines: int = 0
    items_written: int = 0
    items_planned: int = 0  # dry run: items that would be written
    already_present: int = 0
    merged_duplicates: int = 0
    skipped_expired: int = 0
    no_fingerprint: int = 0  # valid events without a fingerprint: skipped, never bad rows
    throttle_events: int = 0  # requests that met a throttle signal
    throttled_by_reason: Counter[str] = field(default_factory=Counter)
    write_units_reported: float = 0.0  # from DynamoDB's ConsumedCapacity
    write_units_counted: float = 0.0  # one an item, where a response carried no ConsumedCapacity
    items_with_reported_units: int = 0  # items of the requests whose answers reported units
    price_per_million: float = DEFAULT_PRICE_PER_MILLION_WRU  # USD per million write units
    limit_reached: str | None = None  # "max_write_units", "max_cost" or "max_duration"
    rate_cuts: int = 0  # times the rate controller slowed down
    write_rate: float | None = None  # the controller's current items/s
    write_ceiling: float | None = None
    bad_rows_by_reason: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    table: str | None = None
    table_created: bool = False
    ttl_problem: str | None = None  # why time to live is not on for `ttl` (None: it is, or no table)
    outages: int = 0  # times a service stopped answering
    clock_offset: float | None = None  # seconds AWS's clock is ahead of this machine's, when told
    # service → (since, why) for each process waiting for it (each worker watches on its own)
    _waiting: dict[str, list[tuple[float, str]]] = field(default_factory=dict, repr=False)
    # Runs done: every object of the run listed, and each finished, failed or skipped.
    _listed_by_run: Counter[str] = field(default_factory=Counter, repr=False)
    _settled_by_run: Counter[str] = field(default_factory=Counter, repr=False)
    _last_listed_run: str | None = field(default=None, repr=False)

    @property
    def waiting_for(self) -> str | None:
        """ "DynamoDB since 14:02:11 (connection refused)" while a service does not answer."""
        told = [
            f"{service} since {time.strftime('%H:%M:%S', time.localtime(since))} ({reason})"
            for service, waiting in self._waiting.items()
            if waiting
            for since, reason in [min(waiting)]
        ]
        return "; ".join(told) or None

    def __call__(self, event: Event) -> None:
        # Patterns are tried in order: the events of every line and of every object come first.
        match event:
            case BytesRead(count=count):
                self.bytes_read += count
            case LinesParsed():
                self.lines_read += event.lines
                self.blank_lines += event.blank
                self.skipped_expired += event.expired
                self.no_fingerprint += event.no_fingerprint
                self.merged_duplicates += event.merged
                if event.bad:
                    self.bad_rows_by_reason.update(event.bad)
            case ItemsAcknowledged(dry_run=True):
                self.items_planned += event.written
            case ItemsAcknowledged():
                self.items_written += event.written
                self.already_present += event.already_present
                self.write_units_reported += event.units_reported
                self.write_units_counted += event.units_counted
                if event.units_reported:
                    self.items_with_reported_units += event.written + event.already_present
            case ObjectListed(obj=obj):
                self.objects_total += 1
                self.bytes_total += obj.size
                self._listed_by_run[obj.run] += 1
                self._last_listed_run = obj.run
            case ObjectSkipped(obj=obj):  # listed, and done before
                self.objects_total += 1
                self.bytes_total += obj.size
                self._listed_by_run[obj.run] += 1
                self._last_listed_run = obj.run
                self.objects_skipped += 1
                self.bytes_skipped += obj.size
                self._settled_by_run[obj.run] += 1
            case Throttled(reason=reason):
                self.throttle_events += 1
                self.throttled_by_reason[reason] += 1
            case RateChanged(state=state):
                self.write_rate = state.rate
                self.write_ceiling = state.ceiling
                self.rate_cuts = state.throttle_events
            case ObjectFinished(obj=obj):
                self.objects_done += 1
                self._settled_by_run[obj.run] += 1
            case ServiceWaiting(service=service, since=since, reason=reason):
                waiting = self._waiting.setdefault(service, [])
                if since is None:
                    if waiting:
                        waiting.pop()
                else:
                    self.outages += not waiting  # one outage, however many processes meet it
                    waiting.append((since, reason))
            case ClockSkewed(offset=offset):
                self.clock_offset = offset
            case PrefixCarried(items=items):
                self.objects_resumed_partway += 1
                self.items_carried_over += items
            case ObjectRestarted():
                self.object_restarts += 1
                self.lines_read -= event.lines
                self.blank_lines -= event.blank
                self.skipped_expired -= event.expired
                self.no_fingerprint -= event.no_fingerprint
                self.merged_duplicates -= event.merged
                self.bad_rows_by_reason.subtract(event.bad)
                self.bad_rows_by_reason = +self.bad_rows_by_reason
            case ObjectFailedEvent(obj=obj, reason=reason):
                if obj.key not in self.failures:
                    self._settled_by_run[obj.run] += 1
                self.failures[obj.key] = reason
            case ListingDone():
                self.listing_done = True
            case RunsSelected(runs=runs):
                self.runs = len(runs)
            case TableReady(table=table):
                self.table = table.name
                self.table_created = table.created
                self.ttl_problem = table.ttl_problem

    @property
    def started_work(self) -> bool:
        """Whether anything was listed yet (a summary then says something)."""
        return self.objects_total > 0 or self.runs > 0

    @property
    def writes_began(self) -> bool:
        """Whether any item was acknowledged (written, or found there): from now on an error that
        ends the run no longer means "nothing was written"."""
        return not self.dry_run and self.items_written + self.already_present > 0

    @property
    def runs_done(self) -> int:
        """Runs whose objects are all listed and each finished, failed or skipped."""
        # A copy first: progress displays read this from their own thread.
        return sum(
            1
            for run, listed in tuple(self._listed_by_run.items())
            if self._settled_by_run[run] >= listed and (self.listing_done or run != self._last_listed_run)
        )

    @property
    def items_done(self) -> int:
        """Items acknowledged (written or already present), or planned in a dry run."""
        return self.items_planned if self.dry_run else self.items_written + self.already_present

    @property
    def write_units_consumed(self) -> float:
        if self.reported_units_implausible:  # one unit an item at least, as DynamoDB bills it
            return self.items_with_reported_units + self.write_units_counted
        return self.write_units_reported + self.write_units_counted

    @property
    def reported_units_implausible(self) -> bool:
        """Whether the endpoint reported less than one write unit an item, which DynamoDB never
        does (every item written costs at least one): its figures are then not believed."""
        return self.write_units_reported < self.items_with_reported_units * 0.999

    @property
    def write_units_source(self) -> str:
        """ "dynamodb" when every unit was read from a response, "counted" when any was counted."""
        return "counted" if self.write_units_counted or self.reported_units_implausible else "dynamodb"

    @property
    def estimated_cost_usd(self) -> float:
        """What the units consumed cost at `price_per_million` (on demand)."""
        return write_cost_usd(self.write_units_consumed, self.price_per_million)

    @property
    def bad_rows(self) -> int:
        return sum(self.bad_rows_by_reason.values())

    @property
    def duration_s(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    @property
    def items_per_s(self) -> float:
        return self.items_done / self.duration_s if self.duration_s > 0 else 0.0

    def finish(self) -> None:
        self.finished = time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data (for --report and tests)."""
        return {
            "dry_run": self.dry_run,
            "table": self.table,
            "table_created": self.table_created,
            "ttl_problem": self.ttl_problem,
            "runs": self.runs,
            "runs_done": self.runs_done,
            "objects_total": self.objects_total,
            "objects_done": self.objects_done,
            "objects_skipped": self.objects_skipped,
            "object_restarts": self.object_restarts,
            "objects_resumed_partway": self.objects_resumed_partway,
            "outages": self.outages,
            "clock_offset_s": None if self.clock_offset is None else round(self.clock_offset, 1),
            "items_carried_over": self.items_carried_over,
            "interrupted_by": self.interrupted_by,
            "checkpoint": self.checkpoint,
            "objects_failed": len(self.failures),
            "failures": [{"object": key, "reason": reason} for key, reason in self.failures.items()],
            "bytes_total": self.bytes_total,
            "bytes_read": self.bytes_read,
            "lines_read": self.lines_read,
            "blank_lines": self.blank_lines,
            "items_written": self.items_written,
            "items_planned": self.items_planned,
            "already_present": self.already_present,
            "merged_duplicates": self.merged_duplicates,
            "bad_rows": self.bad_rows,
            "bad_rows_by_reason": dict(sorted(self.bad_rows_by_reason.items())),
            "skipped_expired": self.skipped_expired,
            "no_fingerprint": self.no_fingerprint,
            "throttle_events": self.throttle_events,
            "throttled_by_reason": dict(sorted(self.throttled_by_reason.items())),
            "write_units_consumed": round(self.write_units_consumed, 1),
            "write_units_source": self.write_units_source,
            "write_units_reported_by_endpoint": round(self.write_units_reported, 1),
            "price_per_million_wru": self.price_per_million,
            "estimated_cost_usd": round(self.estimated_cost_usd, 6),
            "limit": self.limit_reached,
            "rate_cuts": self.rate_cuts,
            "write_rate": round(self.write_rate, 1) if self.write_rate is not None else None,
            "write_ceiling": self.write_ceiling,
            "duration_s": round(self.duration_s, 3),
            "items_per_s": round(self.items_per_s, 1),
        }


def run_report(
    tally: Tally,
    *,
    exit_code: int,
    started_at: datetime,
    finished_at: datetime,
    job: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The `--report` JSON: what was asked (`job`), how it ended, and every count of the tally.

    Secrets registered with `logs.add_secret` are masked in every string.
    """
    from .. import __version__
    from .logs import redact_data

    report: dict[str, Any] = {
        "populator_version": __version__,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "exit_code": exit_code,
        "status": exit_status(exit_code),
        "error": error,
        **(job or {}),
    }
    for key, value in tally.as_dict().items():
        if value is not None or key not in report:  # the job's table name, even in a dry run
            report[key] = value
    return dict(redact_data(report))


def report_bytes(report: dict[str, Any]) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
