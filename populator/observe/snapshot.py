"""One moment of a run as the operator sees it: counts, rates over the last seconds, time left.

`Speedometer` reads a `Tally` whenever a display asks (a terminal refresh, a progress log
line) and turns it into a `Snapshot`. Each display owns its speedometer: rates are measured
between that display's own readings, so two displays never disturb each other.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .report import Tally

WINDOW_SECONDS = 10.0  # "current" rates are measured over about this long
_MIN_SPAN_SECONDS = 1.0  # below this, a current rate says nothing yet


@dataclass(frozen=True)
class Snapshot:
    elapsed_s: float
    dry_run: bool
    listing_done: bool
    runs_total: int
    runs_done: int
    objects_total: int
    objects_done: int
    objects_failed: int
    objects_skipped: int
    bytes_total: int  # to read: listed minus skipped (a lower bound while listing)
    bytes_done: int  # compressed bytes read, at most bytes_total once listing is done
    lines_read: int
    bad_rows: int
    skipped_expired: int
    items: int  # written or already present; planned in a dry run
    items_per_s_now: float | None
    items_per_s_avg: float
    write_rate: float | None  # the rate controller's current items/s
    write_ceiling: float | None
    throttle_events: int
    rate_cuts: int
    eta_s: float | None
    write_units: float = 0.0  # consumed so far
    cost_usd: float = 0.0  # what they cost at the run's price per million
    no_fingerprint: int = 0  # valid events skipped for want of a fingerprint
    waiting_for: str | None = None  # a service that does not answer, since when, and why

    @property
    def fraction(self) -> float | None:
        """Share of the bytes read, once the listing's total is known."""
        if not self.listing_done:
            return None
        return min(self.bytes_done / self.bytes_total, 1.0) if self.bytes_total else 1.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("elapsed_s", "items_per_s_now", "items_per_s_avg", "write_rate", "eta_s"):
            if data[key] is not None:
                data[key] = round(data[key], 1)
        data["percent"] = round(self.fraction * 100, 1) if self.fraction is not None else None
        return data


class Speedometer:
    """Snapshots of a tally, with rates over the last `window` seconds of readings."""

    def __init__(
        self, tally: Tally, *, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tally = tally
        self._window = window
        self._clock = clock
        self._readings: deque[tuple[float, int, int]] = deque()  # (time, items, bytes)

    def snapshot(self) -> Snapshot:
        tally = self._tally
        now = self._clock()
        items = tally.items_done
        to_read = max(tally.bytes_total - tally.bytes_skipped, 0)
        done = min(tally.bytes_read, to_read) if tally.listing_done else tally.bytes_read
        self._readings.append((now, items, done))
        # Keep one reading older than the window, so the rate spans the whole window.
        while len(self._readings) > 2 and now - self._readings[1][0] >= self._window:
            self._readings.popleft()
        first_time, first_items, first_bytes = self._readings[0]
        span = now - first_time
        items_now = (items - first_items) / span if span >= _MIN_SPAN_SECONDS else None
        bytes_now = (done - first_bytes) / span if span >= _MIN_SPAN_SECONDS else None
        elapsed = tally.duration_s
        return Snapshot(
            elapsed_s=elapsed,
            dry_run=tally.dry_run,
            listing_done=tally.listing_done,
            runs_total=tally.runs,
            runs_done=tally.runs_done,
            objects_total=tally.objects_total,
            objects_done=tally.objects_done,
            objects_failed=len(tally.failures),
            objects_skipped=tally.objects_skipped,
            bytes_total=to_read,
            bytes_done=done,
            lines_read=tally.lines_read,
            bad_rows=tally.bad_rows,
            skipped_expired=tally.skipped_expired,
            items=items,
            items_per_s_now=items_now,
            items_per_s_avg=items / elapsed if elapsed > 0 else 0.0,
            write_rate=tally.write_rate,
            write_ceiling=tally.write_ceiling,
            throttle_events=tally.throttle_events,
            rate_cuts=tally.rate_cuts,
            eta_s=_eta(tally.listing_done, to_read - done, bytes_now, done / elapsed if elapsed > 0 else 0.0),
            write_units=tally.write_units_consumed,
            cost_usd=tally.estimated_cost_usd,
            no_fingerprint=tally.no_fingerprint,
            waiting_for=tally.waiting_for,
        )


def _eta(listing_done: bool, remaining: int, current: float | None, average: float) -> float | None:
    """Seconds left at the current byte rate (the average until there is one)."""
    if not listing_done:
        return None
    if remaining <= 0:
        return 0.0
    rate = current if current else average
    return remaining / rate if rate > 0 else None


def format_duration(seconds: float | None) -> str:
    """`0:00:07`, `1:02:03`, `2d 3:04:05`; `?` when unknown."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def format_bytes(count: float) -> str:
    """Decimal units, as S3 and the AWS console show sizes."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def format_rate(rate: float | None) -> str:
    return "?" if rate is None else f"{rate:,.0f}/s"


def format_write_rate(snap: Snapshot) -> str:
    """The rate controller's pace; "not limiting" when it is far above what is written."""
    if snap.write_rate is None:
        return "?"
    actual = snap.items_per_s_now if snap.items_per_s_now is not None else snap.items_per_s_avg
    if actual > 0 and snap.write_rate > 10 * actual:
        return "not limiting"
    return format_rate(snap.write_rate)
