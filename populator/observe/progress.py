"""What the operator sees while a run goes: a live display on a terminal, log lines elsewhere.

Both read the run's `Tally` on their own clock (rich's refresh thread, a timer thread), never
from the hot path: stages publish events, the tally counts them, displays look now and then.

* `LiveProgress`: a bar over the compressed bytes of the listing, and a grid of counts and rates.
* `ProgressLog`: one `progress: ...` record every `interval` seconds on the `populator.progress`
  logger, with the snapshot as data (so `--json-logs` ships it as fields). Off a terminal it is
  what stderr shows; on a terminal it only reaches the run's log file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.constrain import Constrain
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .hub import Event
from .report import Tally
from .snapshot import Snapshot, Speedometer, format_bytes, format_duration, format_rate, format_write_rate
from .summary import print_summary, summary_rows

__all__ = ["LiveProgress", "ProgressLog", "print_summary", "progress_line", "render_snapshot", "summary_rows"]

PROGRESS_LOGGER = "populator.progress"
DEFAULT_INTERVAL_SECONDS = 30.0


class LiveProgress:
    """A rich live display of a run, redrawn 4 times a second from the tally."""

    def __init__(self, console: Console, tally: Tally, title: str = "populator run") -> None:
        self._speed = Speedometer(tally)
        self._title = title
        self._console = console
        self._live = Live(
            console=console,
            refresh_per_second=4,
            transient=False,
            get_renderable=self.renderable,
        )

    def renderable(self) -> RenderableType:
        # The width is read at every redraw: a terminal resized mid-run gets a layout that fits.
        return render_snapshot(self._speed.snapshot(), self._title, width=self._console.width)

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def __call__(self, event: Event) -> None:
        """A subscriber that needs nothing: the display reads the tally when it redraws."""


#: The bar's width when the terminal has room; it shrinks to `MIN_BAR` before anything is dropped.
BAR_WIDTH = 40
MIN_BAR = 10


def render_snapshot(snap: Snapshot, title: str = "populator run", width: int = 200) -> RenderableType:
    """The live display of one moment, laid out in fewer than `width` columns: never a wrapped line.

    A line that wraps breaks the display twice: the labels split in two, and rich's live
    redraw moves the cursor up by the lines it printed, not by the rows the terminal used,
    so every wrapped frame leaves a stale copy above the next one. Each line is therefore
    built to fit, and to leave the last column free (a character there makes some terminals
    wrap at once): the bar shrinks first, then the least useful parts of the head line go,
    and the grid of figures folds from four groups a row to two, then one.
    """
    # Constrain: even when nothing fits (a 20-column terminal), cells are cut short, never wrapped.
    parts: list[RenderableType] = [_head(snap, title, width), _grid(snap, width)]
    if snap.waiting_for is not None:
        waiting = Text(
            f"waiting for {snap.waiting_for}", style="bold yellow", no_wrap=True, overflow="ellipsis"
        )
        parts.insert(1, waiting)
    return Constrain(Group(*parts), max(width - 1, 1))


def _head(snap: Snapshot, title: str, width: int) -> Table:
    fraction = snap.fraction
    cells: list[tuple[str, Text]] = [  # (name, cell), in the order they are shown
        ("title", Text(title, style="bold")),
        ("percent", Text(f"{fraction * 100:5.1f}%" if fraction is not None else "listing", style="bold")),
        ("bytes", Text(_bytes_progress(snap))),
        ("elapsed", Text(f"elapsed {format_duration(snap.elapsed_s)}")),
        ("eta", Text(f"ETA {format_duration(snap.eta_s)}", style="bold" if snap.eta_s is not None else "")),
    ]
    # What goes first when even the smallest bar does not fit: elapsed, then title, then bytes.
    for drop in (None, "elapsed", "title", "bytes"):
        cells = [cell for cell in cells if cell[0] != drop]
        used = sum(cell.cell_len for _, cell in cells) + len(cells)  # one space after each cell
        bar_width = min(BAR_WIDTH, width - used - 1)
        if bar_width >= MIN_BAR:
            break
    bar = ProgressBar(
        total=1.0 if fraction is not None else None, completed=fraction or 0.0, width=max(bar_width, 1)
    )
    row: list[RenderableType] = [cell for name, cell in cells if name == "title"]
    row.append(bar)
    row += [cell for name, cell in cells if name != "title"]
    return _fitted_grid(row, [1])


def _grid(snap: Snapshot, width: int) -> Table:
    items_label = "items to write" if snap.dry_run else "items written"
    rate = format_write_rate(snap) if snap.write_rate is not None else "none yet"
    ceiling = format_rate(snap.write_ceiling) if snap.write_ceiling else "none"
    objects = f"{snap.objects_done:,} of {snap.objects_total:,}{'' if snap.listing_done else '+'}"
    throttled = Text(
        f"{snap.throttle_events:,} ({snap.rate_cuts:,} cuts)", style="yellow" if snap.throttle_events else ""
    )
    runs_group: list[tuple[str, str | Text]] = [
        ("runs", f"{snap.runs_done:,} of {snap.runs_total:,}"),
        ("objects", objects),
        ("failed", Text(f"{snap.objects_failed:,}", style="bold red" if snap.objects_failed else "")),
    ]
    if snap.objects_skipped:
        runs_group.append(("skipped", f"{snap.objects_skipped:,}"))
    groups: list[list[tuple[str, str | Text]]] = [
        runs_group,
        [
            ("lines read", f"{snap.lines_read:,}"),
            ("bad rows", Text(f"{snap.bad_rows:,}", style="yellow" if snap.bad_rows else "")),
            ("expired", f"{snap.skipped_expired:,}"),
        ],
        [
            (items_label, f"{snap.items:,}"),
            ("now", format_rate(snap.items_per_s_now)),
            ("average", format_rate(snap.items_per_s_avg)),
        ],
        [
            ("write rate", "dry run" if snap.dry_run else rate),
            ("ceiling", ceiling),
            ("throttled", throttled),
            ("spent", "dry run" if snap.dry_run else format_spend(snap)),
        ],
    ]
    per_row = next((n for n in (4, 2) if _grid_width(groups, n) < width), 1)
    table = Table.grid(padding=(0, 1))
    for column in range(per_row * 2):
        is_label = column % 2 == 0
        table.add_column(
            style="dim" if is_label else None,
            justify="left" if is_label else "right",
            no_wrap=True,
            overflow="ellipsis",
        )
    for first in range(0, 4, per_row):
        band = groups[first : first + per_row]
        for line in range(max(len(group) for group in band)):
            cells: list[str | Text] = []
            for index, group in enumerate(band):
                label, value = group[line] if line < len(group) else ("", "")
                cells += [("  " if index else "") + label, value]
            table.add_row(*cells)
    return table


def _grid_width(groups: list[list[tuple[str, str | Text]]], per_row: int) -> int:
    """How wide the grid is with `per_row` groups a row: its columns are shared by every row, so
    each is as wide as its widest cell in any band."""
    total = 0
    for position in range(per_row):
        column = [pair for group in groups[position::per_row] for pair in group]
        labels = max(len(label) for label, _ in column) + (2 if position else 0)  # "  " before a group
        values = max(Text(v).cell_len if isinstance(v, str) else v.cell_len for _, v in column)
        total += labels + 1 + values  # the grid's one space between two columns
    return total + (per_row - 1)


def _fitted_grid(row: list[RenderableType], fixed: list[int]) -> Table:
    """One row of cells that never wrap; the columns in `fixed` (the bar) keep their width."""
    table = Table.grid(padding=(0, 1))
    for index in range(len(row)):
        table.add_column(no_wrap=True, overflow="ellipsis" if index not in fixed else "crop")
    table.add_row(*row)
    return table


def format_spend(snap: Snapshot) -> str:
    """Write units consumed so far and what they cost: `12,345 WU ≈ $0.01`."""
    return f"{snap.write_units:,.0f} WU ≈ ${snap.cost_usd:,.2f}"


def _bytes_progress(snap: Snapshot) -> str:
    if snap.listing_done:
        return f"{format_bytes(snap.bytes_done)} of {format_bytes(snap.bytes_total)}"
    return f"{format_bytes(snap.bytes_done)} of {format_bytes(snap.bytes_total)}+ (listing)"


def progress_line(snap: Snapshot) -> str:
    """The snapshot as one plain line (no markup, no escape codes)."""
    fraction = snap.fraction
    read = (
        f"{fraction * 100:.1f}% read ({_bytes_progress(snap)})"
        if fraction is not None
        else f"read {_bytes_progress(snap)}"
    )
    items = "items to write" if snap.dry_run else "items written"
    parts = [
        read,
        f"runs {snap.runs_done:,}/{snap.runs_total:,}",
        f"objects {snap.objects_done:,}/{snap.objects_total:,} ({snap.objects_failed:,} failed, "
        f"{snap.objects_skipped:,} skipped)",
        f"lines {snap.lines_read:,}",
        f"{items} {snap.items:,} ({format_rate(snap.items_per_s_now)} now, "
        f"{format_rate(snap.items_per_s_avg)} avg)",
    ]
    if not snap.dry_run:
        parts.append(f"write rate {format_write_rate(snap)}")
        parts.append(f"throttled {snap.throttle_events:,} ({snap.rate_cuts:,} cuts)")
        parts.append(f"spent {format_spend(snap)}")
    parts += [
        f"bad rows {snap.bad_rows:,}",
        f"no fingerprint {snap.no_fingerprint:,}",
        f"expired {snap.skipped_expired:,}",
        f"elapsed {format_duration(snap.elapsed_s)}",
        f"ETA {format_duration(snap.eta_s)}",
    ]
    if snap.waiting_for is not None:
        parts.insert(0, f"waiting for {snap.waiting_for}")
    return "progress: " + ", ".join(parts)


class PeriodicLog:
    """Logs the record `line()` gives every `interval` seconds from a timer thread, until stopped:
    the progress of a run, or of an import's wait, off a terminal and in the run's log."""

    def __init__(
        self,
        line: Callable[[], tuple[str, dict[str, Any]]],
        interval: float,
        logger: logging.Logger,
        name: str,
    ) -> None:
        self._line = line
        self._interval = interval
        self._logger = logger
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def log_now(self) -> None:
        message, fields = self._line()
        self._logger.info(message, extra={"progress": fields})

    def _start(self) -> None:
        """Before the first interval."""

    def _loop(self) -> None:
        self._start()
        while not self._stopped.wait(self._interval):
            self.log_now()

    def __enter__(self) -> PeriodicLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


class ProgressLog(PeriodicLog):
    """A run's progress line every `interval` seconds."""

    def __init__(
        self, tally: Tally, interval: float = DEFAULT_INTERVAL_SECONDS, logger: logging.Logger | None = None
    ) -> None:
        super().__init__(
            self._snapshot_line, interval, logger or logging.getLogger(PROGRESS_LOGGER), "populator-progress"
        )
        self._speed = Speedometer(tally)

    def _snapshot_line(self) -> tuple[str, dict[str, Any]]:
        snap = self._speed.snapshot()
        return progress_line(snap), snap.as_dict()

    def _start(self) -> None:
        self._speed.snapshot()  # the first reading, so the first line has a current rate

    def __call__(self, event: Event) -> None:
        """A subscriber that needs nothing: the timer reads the tally."""
