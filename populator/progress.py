"""What the operator sees: a live progress bar on a terminal, and the end-of-run summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .observe import (
    BytesRead,
    Event,
    ItemsAcknowledged,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
)
from .report import Tally


class LiveProgress:
    """A rich progress bar over compressed bytes, with objects and items alongside.

    A subscriber: it redraws on rich's own refresh timer, never from the hot path.
    """

    def __init__(self, console: Console, tally: Tally) -> None:
        self._tally = tally
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[objects]} objects"),
            TextColumn("{task.fields[items]} items"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=4,
        )
        self._task: TaskID = self._progress.add_task("listing", total=None, objects="0/0", items="0")

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def __call__(self, event: Event) -> None:
        tally = self._tally
        match event:
            case BytesRead(count=count):
                self._progress.advance(self._task, count)
            case ObjectListed() | ListingDone():
                total = tally.bytes_total if tally.listing_done else None
                self._progress.update(
                    self._task,
                    total=total,
                    description="backfill" if tally.listing_done else "listing",
                    objects=f"{tally.objects_done}/{tally.objects_total}",
                )
            case ItemsAcknowledged() | ObjectFinished() | ObjectFailedEvent():
                items = tally.items_planned if tally.dry_run else tally.items_written + tally.already_present
                self._progress.update(
                    self._task, objects=f"{tally.objects_done}/{tally.objects_total}", items=f"{items:,}"
                )


def summary_rows(tally: Tally) -> list[tuple[str, str]]:
    """The end-of-run summary as label/value rows, shared by the table and the plain text."""
    rows = [
        (
            "table",
            f"{tally.table}{' (created)' if tally.table_created else ''}"
            if tally.table
            else "none (dry run)",
        ),
        ("runs", f"{tally.runs:,}"),
        (
            "objects",
            f"{tally.objects_done:,} done of {tally.objects_total:,}, {len(tally.failures):,} failed",
        ),
        ("objects skipped (already done)", f"{tally.objects_skipped:,}"),
        ("bytes read", f"{tally.bytes_read:,}"),
        ("lines read", f"{tally.lines_read:,} ({tally.blank_lines:,} blank)"),
    ]
    if tally.dry_run:
        rows.append(("items to write", f"{tally.items_planned:,}"))
    else:
        rows.append(("items written", f"{tally.items_written:,}"))
        rows.append(("already present", f"{tally.already_present:,}"))
    rows += [
        ("duplicates merged", f"{tally.merged_duplicates:,}"),
        ("bad rows", f"{tally.bad_rows:,}"),
    ]
    rows += [(f"  {reason}", f"{count:,}") for reason, count in sorted(tally.bad_rows_by_reason.items())]
    rows += [
        ("expired (skipped)", f"{tally.skipped_expired:,}"),
        ("throttled requests", f"{tally.throttle_events:,} ({tally.rate_cuts:,} rate cuts)"),
        ("write rate ceiling", f"{tally.write_ceiling:,.0f} items/s" if tally.write_ceiling else "none"),
        ("duration", f"{tally.duration_s:,.1f} s"),
        ("items/s", f"{tally.items_per_s:,.0f}"),
    ]
    return rows


def print_summary(console: Console, tally: Tally) -> None:
    """A table on a terminal, `label: value` lines elsewhere (no escape codes)."""
    rows = summary_rows(tally)
    if console.is_terminal:
        table = Table(title="populator summary", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        for label, value in rows:
            table.add_row(label, value)
        console.print(table)
    else:
        for label, value in rows:
            console.print(f"{label}: {value}", markup=False, highlight=False, soft_wrap=True)
    for key, reason in tally.failures.items():
        console.print(f"FAILED {key}: {reason}", markup=False, highlight=False, soft_wrap=True)
