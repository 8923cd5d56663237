"""The tally of a run: a subscriber that counts everything, and the summary it produces."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .observe import (
    BytesRead,
    Event,
    ItemsAcknowledged,
    LinesParsed,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
    ObjectRestarted,
    ObjectSkipped,
    RateChanged,
    RunsSelected,
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
    throttle_events: int = 0  # requests that met a throttle signal
    rate_cuts: int = 0  # times the rate controller slowed down
    write_rate: float | None = None  # the controller's current items/s
    write_ceiling: float | None = None
    bad_rows_by_reason: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    table: str | None = None
    table_created: bool = False

    def __call__(self, event: Event) -> None:
        match event:
            case BytesRead(count=count):
                self.bytes_read += count
            case LinesParsed():
                self.lines_read += event.lines
                self.blank_lines += event.blank
                self.skipped_expired += event.expired
                self.merged_duplicates += event.merged
                if event.bad:
                    self.bad_rows_by_reason.update(event.bad)
            case ItemsAcknowledged(dry_run=True):
                self.items_planned += event.written
            case ItemsAcknowledged():
                self.items_written += event.written
                self.already_present += event.already_present
            case Throttled():
                self.throttle_events += 1
            case RateChanged(state=state):
                self.write_rate = state.rate
                self.write_ceiling = state.ceiling
                self.rate_cuts = state.throttle_events
            case ObjectFinished():
                self.objects_done += 1
            case ObjectSkipped(obj=obj):
                self.objects_skipped += 1
                self.bytes_skipped += obj.size
            case ObjectRestarted():
                self.object_restarts += 1
                self.lines_read -= event.lines
                self.blank_lines -= event.blank
                self.skipped_expired -= event.expired
                self.merged_duplicates -= event.merged
                self.bad_rows_by_reason.subtract(event.bad)
                self.bad_rows_by_reason = +self.bad_rows_by_reason
            case ObjectFailedEvent(obj=obj, reason=reason):
                self.failures[obj.key] = reason
            case ObjectListed(obj=obj):
                self.objects_total += 1
                self.bytes_total += obj.size
            case ListingDone():
                self.listing_done = True
            case RunsSelected(runs=runs):
                self.runs = len(runs)
            case TableReady(table=table):
                self.table = table.name
                self.table_created = table.created

    @property
    def started_work(self) -> bool:
        """Whether anything was listed yet (a summary then says something)."""
        return self.objects_total > 0 or self.runs > 0

    @property
    def bad_rows(self) -> int:
        return sum(self.bad_rows_by_reason.values())

    @property
    def duration_s(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    @property
    def items_per_s(self) -> float:
        items = self.items_planned if self.dry_run else self.items_written + self.already_present
        return items / self.duration_s if self.duration_s > 0 else 0.0

    def finish(self) -> None:
        self.finished = time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data (for --report and tests)."""
        return {
            "dry_run": self.dry_run,
            "table": self.table,
            "table_created": self.table_created,
            "runs": self.runs,
            "objects_total": self.objects_total,
            "objects_done": self.objects_done,
            "objects_skipped": self.objects_skipped,
            "object_restarts": self.object_restarts,
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
            "throttle_events": self.throttle_events,
            "rate_cuts": self.rate_cuts,
            "write_rate": round(self.write_rate, 1) if self.write_rate is not None else None,
            "write_ceiling": self.write_ceiling,
            "duration_s": round(self.duration_s, 3),
            "items_per_s": round(self.items_per_s, 1),
        }
