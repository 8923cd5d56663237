"""What `populator import` shows and keeps: staged objects, the import's progress, its summary.

`ImportTally` counts the import's own events (`ObjectStaged`, `ImportDescribed`) beside the run's
`Tally`, which counts the archive as for `run`. Staging may span several invocations (a crash, a
Ctrl-C): the job seeds the tally with what its journal holds, so the totals are the import's,
not this invocation's alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..sink.import_requests import ImportDescription
from ..sink.pricing import (
    DEFAULT_PRICE_PER_GB_IMPORT,
    DEFAULT_PRICE_PER_MILLION_WRU,
    import_cost_usd,
    write_cost_usd,
)
from .hub import Event, ImportDescribed, ObjectStaged
from .progress import PeriodicLog
from .report import Tally
from .snapshot import format_bytes, format_duration
from .summary import print_rows, summary_rows

IMPORT_PROGRESS_LOGGER = "populator.progress"


@dataclass
class ImportTally:
    """The import's counts; subscribe it to the hub next to the run's `Tally`."""

    table: str = ""
    staging: str = ""  # s3://bucket/prefix/<job id>/
    price_per_gb: float = DEFAULT_PRICE_PER_GB_IMPORT
    price_per_million: float = DEFAULT_PRICE_PER_MILLION_WRU
    staged_objects: int = 0
    items_staged: int = 0
    staged_bytes: int = 0  # uncompressed
    staged_compressed_bytes: int = 0
    duplicates: int = 0  # items dropped: their key was already in the same staged object
    staged_this_run: int = 0
    import_arn: str | None = None
    description: ImportDescription | None = None
    waiting_since: float | None = None  # monotonic, when this invocation began waiting
    ttl_enabled: bool = False
    sample_checked: int | None = None
    sample_missing: int | None = None
    staging_deleted: bool = False
    keep_staging: bool = False
    staging_ran: bool = False  # this invocation staged (an earlier one may have, and asked for the import)
    notes: list[str] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        match event:
            case ObjectStaged(staged=staged):
                self.staged_objects += 1
                self.staged_this_run += 1
                self.items_staged += staged.items
                self.staged_bytes += staged.bytes
                self.staged_compressed_bytes += staged.size
                self.duplicates += staged.duplicates
            case ImportDescribed(description=description):
                self.description = description
                self.import_arn = description.arn or self.import_arn

    def seed(self, *, objects: int, items: int, raw: int, compressed: int, duplicates: int) -> None:
        """Start from what earlier invocations of the same import staged."""
        self.staged_objects, self.items_staged = objects, items
        self.staged_bytes, self.staged_compressed_bytes, self.duplicates = raw, compressed, duplicates

    @property
    def status(self) -> str | None:
        return self.description.status if self.description else None

    @property
    def import_cost_usd(self) -> float:
        return import_cost_usd(self.staged_bytes, self.price_per_gb)

    @property
    def run_cost_usd(self) -> float:
        """What `run` would pay on demand for the same items: one write request unit each."""
        return write_cost_usd(self.items_staged, self.price_per_million)

    @property
    def waited_s(self) -> float:
        return time.monotonic() - self.waiting_since if self.waiting_since is not None else 0.0

    def as_dict(self) -> dict[str, Any]:
        described = self.description
        return {
            "staging": self.staging,
            "items_staged": self.items_staged,
            "staged_objects": self.staged_objects,
            "staged_bytes": self.staged_bytes,
            "staged_compressed_bytes": self.staged_compressed_bytes,
            "duplicates_in_staged_objects": self.duplicates,
            "import_arn": self.import_arn,
            "import_status": self.status,
            "import_processed_items": described.processed_items if described else None,
            "imported_items": described.imported_items if described else None,
            "import_errors": described.errors if described else None,
            "import_failure": described.failure()
            if described and described.done and not described.succeeded
            else None,
            "price_per_gb_import": self.price_per_gb,
            "estimated_import_cost_usd": round(self.import_cost_usd, 6),
            "run_on_demand_cost_usd": round(self.run_cost_usd, 6),
            "ttl_enabled": self.ttl_enabled,
            "sample_checked": self.sample_checked,
            "sample_missing": self.sample_missing,
            "staging_deleted": self.staging_deleted,
        }


def dollars(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def import_rows(imports: ImportTally) -> list[tuple[str, str]]:
    """The import's part of the summary."""
    described = imports.description
    rows = [
        ("staging", imports.staging),
        (
            "staged objects",
            f"{imports.staged_objects:,} ({imports.staged_this_run:,} by this run; "
            + ("deleted after the import)" if imports.staging_deleted else "kept)"),
        ),
        ("items staged", f"{imports.items_staged:,}"),
        (
            "staged bytes",
            f"{imports.staged_bytes:,} uncompressed ({format_bytes(imports.staged_compressed_bytes)} gzip)",
        ),
        ("duplicates in a staged object", f"{imports.duplicates:,}"),
    ]
    if described is not None:
        rows += [
            ("import", f"{described.status} ({described.arn})"),
            (
                "items imported",
                f"{described.imported_items:,} of {described.processed_items:,} processed, "
                f"{described.errors:,} errors",
            ),
        ]
    rows += [
        ("TTL on ttl", "enabled" if imports.ttl_enabled else "not enabled"),
        (
            "sample read back",
            f"{imports.sample_checked - (imports.sample_missing or 0):,} of {imports.sample_checked:,} found"
            if imports.sample_checked is not None
            else "not checked",
        ),
        (
            "import cost",
            f"≈ {dollars(imports.import_cost_usd)} at ${imports.price_per_gb:g} per GB; `run` on demand: "
            f"≈ {dollars(imports.run_cost_usd)} at ${imports.price_per_million:g} per million writes",
        ),
    ]
    return rows


# The run's rows that say nothing about staging (no table is written to).
_NOT_FOR_IMPORT = {
    "table",
    "write units consumed",
    "throttled requests",
    "write rate ceiling",
    "already present",
}
_RENAMED = {"items written": "items staged by this run"}


def staging_rows(tally: Tally) -> list[tuple[str, str]]:
    rows = []
    skip_reasons = False
    for label, value in summary_rows(tally):
        if label == "throttled requests":
            skip_reasons = True
            continue
        if skip_reasons and label.startswith("  "):
            continue
        skip_reasons = False
        if label in _NOT_FOR_IMPORT:
            continue
        rows.append((_RENAMED.get(label, label), value))
    return rows


def print_import_summary(
    console: Console, tally: Tally, imports: ImportTally, *, staged: bool = True
) -> None:
    """One table: the table imported into, the archive as staged (`staged`), the import."""
    rows = [("table", f"{imports.table} (import)")]
    if staged:
        rows += staging_rows(tally)
    rows += import_rows(imports)
    print_rows(console, "populator import summary", rows)
    for note in imports.notes:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    for key, reason in tally.failures.items():
        console.print(f"FAILED {key}: {reason}", markup=False, highlight=False, soft_wrap=True)


def import_progress_line(imports: ImportTally) -> str:
    described = imports.description
    status = described.status if described else "starting"
    processed = described.processed_items if described else 0
    imported = described.imported_items if described else 0
    errors = described.errors if described else 0
    done = described.processed_bytes if described else 0
    return (
        f"import: {status}, items processed {processed:,} of {imports.items_staged:,} staged "
        f"(imported {imported:,}, errors {errors:,}), bytes {format_bytes(done)} of "
        f"{format_bytes(imports.staged_bytes)}, waiting {format_duration(imports.waited_s)}"
    )


def render_import(imports: ImportTally) -> RenderableType:
    described = imports.description
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_row(Text("populator import", style="bold"), Text(described.status if described else "starting"))
    grid.add_row(
        "items processed", f"{described.processed_items if described else 0:,} of {imports.items_staged:,}"
    )
    grid.add_row("items imported", f"{described.imported_items if described else 0:,}")
    errors = described.errors if described else 0
    grid.add_row("errors", Text(f"{errors:,}", style="bold red" if errors else ""))
    done = format_bytes(described.processed_bytes if described else 0)
    grid.add_row("bytes", f"{done} of {format_bytes(imports.staged_bytes)}")
    grid.add_row("waiting", format_duration(imports.waited_s))
    return grid


class ImportLive:
    """The live display while the import runs (a terminal), redrawn twice a second."""

    def __init__(self, console: Console, imports: ImportTally) -> None:
        self._live = Live(
            console=console,
            refresh_per_second=2,
            transient=False,
            get_renderable=lambda: render_import(imports),
        )

    def __enter__(self) -> ImportLive:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()


class ImportProgressLog(PeriodicLog):
    """One `import: …` line every `interval` seconds (off a terminal, and in the run's log)."""

    def __init__(self, imports: ImportTally, interval: float, logger: logging.Logger | None = None) -> None:
        super().__init__(
            lambda: (import_progress_line(imports), imports.as_dict()),
            interval,
            logger or logging.getLogger(IMPORT_PROGRESS_LOGGER),
            "populator-import-progress",
        )
