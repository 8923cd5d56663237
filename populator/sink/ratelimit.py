"""The adaptive rate controller shared by all writers: AIMD on items/s, token-bucket pacing.

DynamoDB tells a writer it is going too fast in three ways (`UnprocessedItems`,
`ProvisionedThroughputExceededException`, `ThrottlingException`). The controller turns those
into one rate for the whole process:

- it starts at the ceiling when there is one (pacing alone keeps it there), otherwise at
  4,000 items/s (what a new on-demand table serves at once);
- while requests succeed, the rate grows: doubling every quarter second until the first
  throttle ("slow start"), then additively, by a small share of the rate at which it last
  throttled; after `probe_after` seconds without any throttle it grows by 10% a second
  instead, so capacity given back (auto-scaling, the shredder going quiet) is found again
  within seconds, not minutes;
- on a throttle it is cut multiplicatively (halved when leaving slow start, which overshoots
  by up to 2x), and further, to just under the share of our items the table took since the
  last cut, when that is lower; at most once per `cooldown` (every request in flight
  tends to be throttled at once; that is one congestion event, not twenty);
- it never exceeds `ceiling` (`--max-write-rate`, a share of provisioned capacity, an on-demand
  table's maximum) and never drops below `floor`;
- a throttle whose reason names a ceiling outside the table's capacity (the account's per-table
  quota, an on-demand maximum) holds the rate at what was being admitted: probing above it
  would only meet the same wall again, one throttled request after another. The hold lasts
  `HOLD_SECONDS` after the last such throttle (a quota can be raised mid-run), or until the
  configured ceiling changes (a table re-read with another maximum);
- writers `acquire(n)` tokens from a bucket refilled at the current rate before each request,
  so the rate is a pace, not a burst allowance.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .writes import CEILING_REASONS

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.sharedctypes import SynchronizedArray

DEFAULT_TABLE_WRITE_QUOTA = 40_000.0  # items/s: DynamoDB's default per-table write throughput quota
UNKNOWN_CAPACITY_START = 4000.0  # items/s: a new on-demand table's initial write throughput
SLOW_START_DOUBLING_SECONDS = 0.25
SLOW_START_EXIT_DECREASE = 0.5
PROBE_GROWTH = 1.1  # per second, once no throttle has been seen for a while
DELIVERY_MARGIN = 0.95  # a cut goes to this share of the rate the table took
MAX_CUT = 0.25  # a cut never goes below this share of the rate it cuts
HOLD_SECONDS = 60.0  # how long a ceiling learned from a throttle's reason holds without another
ADMITTED_WINDOW_SECONDS = 0.5  # the admitted rate is measured over windows this long,
ADMITTED_WINDOWS = 4  # and the wall is the best of the last few


@dataclass(frozen=True)
class RateState:
    """What progress displays and reports show of the controller."""

    rate: float  # items/s currently allowed
    ceiling: float | None
    throttle_events: int  # congestion events (rate cuts)
    throttled_requests: int  # every request that met a throttle signal
    held: float | None = None  # a ceiling learned from throttles that name one (see above)


class ControllerState:
    """The controller's numbers, kept in this process."""

    def __init__(self) -> None:
        self.initialized = False
        self.rate = 0.0
        self.ceiling: float | None = None
        self.slow_start = True
        self.rate_at_last_cut = 0.0
        self.last_cut = 0.0
        self.last_growth = 0.0
        self.cuts = 0
        self.throttled = 0
        self.offered = 0.0  # items sent since the last cut
        self.admitted = 0.0  # of those, items the table took
        self.held: float | None = None
        self.held_until = 0.0

    def lock(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()


_FIELDS = (
    "initialized",
    "rate",
    "ceiling",
    "slow_start",
    "rate_at_last_cut",
    "last_cut",
    "last_growth",
    "cuts",
    "throttled",
    "offered",
    "admitted",
    "held",
    "held_until",
)


class SharedControllerState:
    """The same numbers in shared memory, so P worker processes throttle and grow as one writer.

    Two independent controllers against one table both cut when it pushes back and leave it
    under-used (measured: 84% of capacity with two, 99.9% with one); sharing the state makes
    them one controller, each process pacing its share of the common rate.
    """

    _values: SynchronizedArray[float]  # the fields below, in `_FIELDS`' order
    # ControllerState's fields, read and written through `__getattr__` and `__setattr__` below.
    initialized: bool
    rate: float
    ceiling: float | None
    slow_start: bool
    rate_at_last_cut: float
    last_cut: float
    last_growth: float
    cuts: int
    throttled: int
    offered: float
    admitted: float
    held: float | None
    held_until: float

    def __init__(self, context: BaseContext) -> None:
        # Zeroed; guarded by its own lock. Set past `__setattr__`, which is for the fields.
        object.__setattr__(self, "_values", context.Array("d", len(_FIELDS)))

    def lock(self) -> contextlib.AbstractContextManager[object]:
        return self._values.get_lock()

    def __getattr__(self, name: str) -> float | None:  # bool and int are floats to the type checker
        if name not in _FIELDS:
            raise AttributeError(name)
        value = self._values[_FIELDS.index(name)]
        if name in ("ceiling", "held"):
            return None if math.isnan(value) else value
        if name in ("initialized", "slow_start"):
            return bool(value)
        if name in ("cuts", "throttled"):
            return int(value)
        return value

    def __setattr__(self, name: str, value: float | None) -> None:
        if name not in _FIELDS:
            object.__setattr__(self, name, value)
            return
        if value is None:
            if name not in ("ceiling", "held"):
                raise TypeError(f"{name} is a number, never None")
            value = math.nan
        self._values[_FIELDS.index(name)] = float(value)


class AdaptiveRateLimiter:
    """AIMD rate control with token-bucket pacing, shared by a process's writers.

    With a `SharedControllerState`, the rate is the whole job's and this process paces at
    `share` of it.
    """

    def __init__(
        self,
        *,
        initial: float | None = None,
        ceiling: float | None = None,
        floor: float = 25.0,
        decrease: float = 0.8,
        increase_share: float = 0.02,
        cooldown: float = 0.25,
        probe_after: float = 10.0,
        burst_seconds: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        state: ControllerState | SharedControllerState | None = None,
        share: float = 1.0,
    ) -> None:
        self._clock = clock
        self._floor = floor
        self._decrease = decrease
        self._increase_share = increase_share
        self._cooldown = cooldown
        self._probe_after = probe_after
        self._burst_seconds = burst_seconds
        self._share = share
        self._state = state if state is not None else ControllerState()
        now = clock()
        with self._state.lock():
            if not self._state.initialized:  # the first process to get here sets the start
                state_ = self._state
                state_.ceiling = ceiling
                state_.held = None
                state_.rate = self._clamp(
                    initial if initial is not None else (ceiling or UNKNOWN_CAPACITY_START)
                )
                state_.slow_start = True
                state_.rate_at_last_cut = state_.rate
                state_.last_cut = now - cooldown
                state_.last_growth = now
                state_.initialized = True
        self._tokens = 0.0
        self._refilled = now
        self._lock = asyncio.Lock()
        # Items the table took in the current window, and the job's rate over the last whole one
        # (this process's items over its share). Kept per process: only a hold reads it.
        self._window_start = now
        self._window_items = 0.0
        self._admitted_rates: deque[float] = deque(maxlen=ADMITTED_WINDOWS)

    # -------------------------------------------------------------------- state

    @property
    def rate(self) -> float:
        """The rate this process paces at (its share of the job's rate)."""
        return self._state.rate * self._share

    @property
    def ceiling(self) -> float | None:
        return self._state.ceiling

    @property
    def throttle_events(self) -> int:
        return self._state.cuts

    @property
    def throttled_requests(self) -> int:
        return self._state.throttled

    def state(self) -> RateState:
        """The job's controller, whole (not this process's share)."""
        state = self._state
        return RateState(state.rate, state.ceiling, state.cuts, state.throttled, state.held)

    def set_ceiling(self, ceiling: float | None) -> None:
        """A new hard ceiling (e.g. provisioned capacity changed by auto-scaling)."""
        with self._state.lock():
            if ceiling != self._state.ceiling:
                self._state.held = None  # the wall may have moved: find it again
            self._state.ceiling = ceiling
            self._state.rate = self._clamp(self._state.rate)

    def _clamp(self, rate: float) -> float:
        # Without a ceiling, growth stops at DynamoDB's default per-table write quota: a table
        # that never pushes back (or a writer that never fills its budget) must not send the
        # rate to infinity, from where no number of cuts brings it back. --max-write-rate lifts it.
        state = self._state
        ceiling = state.ceiling
        if state.held is not None and self._clock() >= state.held_until:
            state.held = None  # no throttle named the wall for a while: look for it again
        if state.held is not None:
            ceiling = state.held if ceiling is None else min(ceiling, state.held)
        rate = min(rate, ceiling if ceiling is not None else DEFAULT_TABLE_WRITE_QUOTA)
        return max(rate, min(self._floor, ceiling or self._floor))

    # ------------------------------------------------------------------ signals

    def on_success(self, items: int = 0) -> None:
        """A request of `items` went through without any throttle signal: grow with elapsed time."""
        now = self._clock()
        self._count_admitted(now, items)
        with self._state.lock():
            state = self._state
            state.offered += items
            state.admitted += items
            elapsed = now - state.last_growth
            if elapsed <= 0:
                return
            state.last_growth = now
            rate = state.rate
            if state.slow_start:
                grown = rate * (2.0 ** (elapsed / SLOW_START_DOUBLING_SECONDS))
            elif now - state.last_cut >= self._probe_after:
                grown = rate * (PROBE_GROWTH**elapsed)
            else:
                grown = rate + self._increase_share * state.rate_at_last_cut * elapsed
            state.rate = self._clamp(grown)

    def on_throttle(self, admitted: int = 0, offered: int = 0, reason: str | None = None) -> bool:
        """A request of `offered` items met a throttle signal; `admitted` of them got in.
        `reason` is DynamoDB's throttling reason when it gave one. Returns True when this cut
        the rate."""
        now = self._clock()
        self._count_admitted(now, admitted)
        with self._state.lock():
            state = self._state
            state.throttled += 1
            state.offered += offered
            state.admitted += admitted
            if reason in CEILING_REASONS:
                # The wall is the most the table took in the last few windows, measured, not
                # since the last cut (slow start's doublings inflate that). Before a first
                # window there is no measure: a cut's worth is held until a throttle has one.
                if self._admitted_rates:
                    state.held = max(max(self._admitted_rates), self._floor)
                elif state.held is None:
                    decrease = SLOW_START_EXIT_DECREASE if state.slow_start else self._decrease
                    state.held = max(state.rate * decrease, self._floor)
                state.held_until = now + HOLD_SECONDS
            if now - state.last_cut < self._cooldown:
                return False
            decrease = SLOW_START_EXIT_DECREASE if state.slow_start else self._decrease
            cut = state.rate * decrease
            if state.offered > 0:
                # The share of what we sent that the table took since the last cut says what it
                # takes now. A table with a deep burst bucket hides an overshoot until the bucket
                # is empty, and by then slow start has doubled several times; a fixed-share cut
                # alone walks down over many throttled quarter-seconds (measured: 55 throttled
                # requests a cut). Never more than 4x at once: one window can be unlucky.
                taken = state.rate * state.admitted / state.offered
                cut = min(cut, max(DELIVERY_MARGIN * taken, MAX_CUT * state.rate))
            state.last_cut = now
            state.last_growth = now
            state.slow_start = False
            state.rate_at_last_cut = state.rate
            state.rate = self._clamp(cut)
            state.offered = state.admitted = 0.0
            state.cuts += 1
            return True

    def _count_admitted(self, now: float, items: float) -> None:
        self._window_items += items
        elapsed = now - self._window_start
        if elapsed >= ADMITTED_WINDOW_SECONDS:
            self._admitted_rates.append(self._window_items / elapsed / self._share)
            self._window_start = now
            self._window_items = 0.0

    # ------------------------------------------------------------------- pacing

    def _refill(self, now: float, rate: float) -> None:
        depth = max(rate * self._burst_seconds, 25.0)
        self._tokens = min(depth, self._tokens + (now - self._refilled) * rate)
        self._refilled = now

    async def acquire(self, items: int) -> None:
        """Wait until `items` may be sent at this process's rate."""
        async with self._lock:  # first come, first served: no writer starves
            while True:
                now = self._clock()
                rate = self.rate
                self._refill(now, rate)
                if self._tokens >= items or self._tokens >= max(rate * self._burst_seconds, 25.0):
                    self._tokens -= items
                    return
                await asyncio.sleep((items - self._tokens) / rate)
