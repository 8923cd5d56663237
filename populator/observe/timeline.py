"""A run's story: its figures every few seconds, kept as it goes, bounded whatever its length.

Every `step` seconds the sampler reads the tally and keeps one point: items acknowledged,
requests throttled (by reason), the rate and its ceiling, write units and dollars, objects done
and failed, bad rows. At most `max_points` are kept: when they are all used, every two
neighbours are merged into one (the later figures: they are running totals, so nothing is lost
but resolution) and the step doubles. A 24-hour run at a 5-second step keeps 2,048 points or
fewer at a step of 80 s, in a few hundred KB. The points go into the JSON report, documented in
docs/operating.md ("The report's timeline").
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .report import Tally

DEFAULT_STEP_SECONDS = 5.0
MAX_POINTS = 2048


@dataclass(frozen=True, slots=True)
class Point:
    """The run's running totals at `t` seconds after it started (and the rate at that moment)."""

    t: float
    items: int  # acknowledged (written, or already there in conditional mode)
    throttled: int  # write requests that met a throttle
    throttled_by_reason: dict[str, int]
    write_rate: float | None  # the rate controller's items/s
    write_ceiling: float | None
    write_units: float
    cost_usd: float
    objects_done: int
    objects_failed: int
    bad_rows: int


class Timeline:
    """Points of one run; `sample()` adds one (the sampler thread calls it every `step`)."""

    def __init__(
        self, tally: Tally, step: float = DEFAULT_STEP_SECONDS, max_points: int = MAX_POINTS
    ) -> None:
        if max_points < 2 or max_points % 2:
            raise ValueError("max_points must be an even number of at least 2")
        self._tally = tally
        self.step = step
        self._max = max_points
        self._points: list[Point] = []
        self._lock = threading.Lock()
        self._next_at = 0.0  # seconds after the start when the next point is due

    def sample(self, now: float | None = None, *, force: bool = False) -> None:
        """Keep the tally's figures as of `now` (monotonic; default: the clock) when a point is
        due (`force`: whether due or not: the run's end)."""
        tally = self._tally
        elapsed = (now if now is not None else time.monotonic()) - tally.started
        with self._lock:
            if elapsed < self._next_at and self._points and not force:
                return
            point = Point(
                t=round(elapsed, 3),
                items=tally.items_done,
                throttled=tally.throttle_events,
                throttled_by_reason=dict(tally.throttled_by_reason),
                write_rate=round(tally.write_rate, 1) if tally.write_rate is not None else None,
                write_ceiling=tally.write_ceiling,
                write_units=round(tally.write_units_consumed, 1),
                cost_usd=round(tally.estimated_cost_usd, 6),
                objects_done=tally.objects_done,
                objects_failed=len(tally.failures),
                bad_rows=tally.bad_rows,
            )
            if len(self._points) == self._max:
                # Halve the resolution before the new point goes in: the later of each pair stays
                # (running totals), and the newest point is never the one dropped.
                self._points = self._points[1::2]
                self.step *= 2
            self._points.append(point)
            self._next_at = elapsed + self.step

    @property
    def points(self) -> list[Point]:
        with self._lock:
            return list(self._points)

    def as_dict(self) -> dict[str, Any]:
        """For the report: the step in seconds, and the points as columns (compact JSON)."""
        points = self.points
        columns = [name for name in Point.__dataclass_fields__]
        return {
            "step_s": self.step,
            "columns": columns,
            "points": [[asdict(point)[name] for name in columns] for point in points],
        }


class TimelineSampler:
    """Samples a timeline from a thread every second (a point is kept every `step`)."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="populator-timeline", daemon=True)

    def _loop(self) -> None:
        while not self._stopped.wait(1.0):
            self._timeline.sample()

    def __enter__(self) -> TimelineSampler:
        self._timeline.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stopped.is_set():
            return  # stopped already
        self._stopped.set()
        self._thread.join(timeout=5)
        self._timeline.sample(force=True)  # the end, always kept
