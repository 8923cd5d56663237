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
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

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
        self._live = Live(
            console=console,
            refresh_per_second=4,
            transient=False,
            get_renderable=self.renderable,
        )

    def renderable(self) -> RenderableType:
        return render_snapshot(self._speed.snapshot(), self._title)

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.stop()

    def __call__(self, event: Any) -> None:
        """A subscriber that needs nothing: the display reads the tally when it redraws."""


def render_snapshot(snap: Snapshot, title: str = "populator run") -> RenderableType:
    """The live display of one moment: a bar line and a grid of counts and rates."""
    fraction = snap.fraction
    bar = ProgressBar(total=1.0 if fraction is not None else None, completed=fraction or 0.0, width=40)
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text(title, style="bold"),
        bar,
        Text(f"{fraction * 100:5.1f}%" if fraction is not None else "listing", style="bold"),
        Text(_bytes_progress(snap)),
        Text(f"elapsed {format_duration(snap.elapsed_s)}"),
        Text(f"ETA {format_duration(snap.eta_s)}", style="bold" if snap.eta_s is not None else ""),
    )
    grid = Table.grid(padding=(0, 1))
    for _ in range(4):
        grid.add_column(style="dim")
        grid.add_column(justify="right")
    items_label = "items to write" if snap.dry_run else "items written"
    rate = format_write_rate(snap) if snap.write_rate is not None else "none yet"
    ceiling = format_rate(snap.write_ceiling) if snap.write_ceiling else "none"
    grid.add_row(
        "runs",
        f"{snap.runs_done:,} of {snap.runs_total:,}",
        "  lines read",
        f"{snap.lines_read:,}",
        f"  {items_label}",
        f"{snap.items:,}",
        "  write rate",
        "dry run" if snap.dry_run else rate,
    )
    grid.add_row(
        "objects",
        f"{snap.objects_done:,} of {snap.objects_total:,}{'' if snap.listing_done else '+'}",
        "  bad rows",
        Text(f"{snap.bad_rows:,}", style="yellow" if snap.bad_rows else ""),
        "  now",
        format_rate(snap.items_per_s_now),
        "  ceiling",
        ceiling,
    )
    grid.add_row(
        "failed",
        Text(f"{snap.objects_failed:,}", style="bold red" if snap.objects_failed else ""),
        "  expired",
        f"{snap.skipped_expired:,}",
        "  average",
        format_rate(snap.items_per_s_avg),
        "  throttled",
        Text(
            f"{snap.throttle_events:,} ({snap.rate_cuts:,} cuts)",
            style="yellow" if snap.throttle_events else "",
        ),
    )
    if snap.objects_skipped:
        grid.add_row("skipped", f"{snap.objects_skipped:,}", *([""] * 6))
    return Group(head, grid)


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
    parts += [
        f"bad rows {snap.bad_rows:,}",
        f"expired {snap.skipped_expired:,}",
        f"elapsed {format_duration(snap.elapsed_s)}",
        f"ETA {format_duration(snap.eta_s)}",
    ]
    return "progress: " + ", ".join(parts)


class ProgressLog:
    """Logs a progress line every `interval` seconds from a timer thread, until stopped."""

    def __init__(
        self, tally: Tally, interval: float = DEFAULT_INTERVAL_SECONDS, logger: logging.Logger | None = None
    ) -> None:
        self._speed = Speedometer(tally)
        self._interval = interval
        self._logger = logger or logging.getLogger(PROGRESS_LOGGER)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="populator-progress", daemon=True)

    def log_now(self) -> None:
        snap = self._speed.snapshot()
        self._logger.info(progress_line(snap), extra={"progress": snap.as_dict()})

    def _loop(self) -> None:
        self._speed.snapshot()  # the first reading, so the first line has a current rate
        while not self._stopped.wait(self._interval):
            self.log_now()

    def __enter__(self) -> ProgressLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def __call__(self, event: Any) -> None:
        """A subscriber that needs nothing: the timer reads the tally."""
