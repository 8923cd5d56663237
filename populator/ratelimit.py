"""The adaptive rate controller shared by all writers: AIMD on items/s, token-bucket pacing.

DynamoDB tells a writer it is going too fast in three ways (`UnprocessedItems`,
`ProvisionedThroughputExceededException`, `ThrottlingException`). The controller turns those
into one rate for the whole process:

- it starts at the ceiling when there is one (pacing alone keeps it there), otherwise at
  4,000 items/s (what a new on-demand table serves at once);
- while requests succeed, the rate grows: doubling every quarter second until the first
  throttle ("slow start"), then additively, by a small share of the rate at which it last
  throttled;
- on a throttle it is cut multiplicatively, at most once per `cooldown` (every request in
  flight tends to be throttled at once; that is one congestion event, not twenty);
- it never exceeds `ceiling` (`--max-write-rate`, or a share of provisioned capacity) and
  never drops below `floor`;
- writers `acquire(n)` tokens from a bucket refilled at the current rate before each request,
  so the rate is a pace, not a burst allowance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

UNKNOWN_CAPACITY_START = 4000.0  # items/s: a new on-demand table's initial write throughput
SLOW_START_DOUBLING_SECONDS = 0.25


@dataclass(frozen=True)
class RateState:
    """What progress displays and reports show of the controller."""

    rate: float  # items/s currently allowed
    ceiling: float | None
    throttle_events: int  # congestion events (rate cuts)
    throttled_requests: int  # every request that met a throttle signal


class AdaptiveRateLimiter:
    """AIMD rate control with token-bucket pacing. One instance per process, shared by writers."""

    def __init__(
        self,
        *,
        initial: float | None = None,
        ceiling: float | None = None,
        floor: float = 25.0,
        decrease: float = 0.8,
        increase_share: float = 0.02,
        cooldown: float = 1.0,
        burst_seconds: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._floor = floor
        self._ceiling = ceiling
        self._rate = self._clamp(initial if initial is not None else (ceiling or UNKNOWN_CAPACITY_START))
        self._decrease = decrease
        self._increase_share = increase_share
        self._cooldown = cooldown
        self._burst_seconds = burst_seconds
        self._slow_start = True
        self._rate_at_last_cut = self._rate
        now = clock()
        self._last_cut = now - cooldown
        self._last_growth = now
        self._tokens = 0.0
        self._refilled = now
        self._lock = asyncio.Lock()
        self.throttle_events = 0
        self.throttled_requests = 0

    # -------------------------------------------------------------------- state

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def ceiling(self) -> float | None:
        return self._ceiling

    def state(self) -> RateState:
        return RateState(self._rate, self._ceiling, self.throttle_events, self.throttled_requests)

    def set_ceiling(self, ceiling: float | None) -> None:
        """A new hard ceiling (e.g. provisioned capacity changed by auto-scaling)."""
        self._ceiling = ceiling
        self._rate = self._clamp(self._rate)

    def _clamp(self, rate: float) -> float:
        if self._ceiling is not None:
            rate = min(rate, self._ceiling)
        return max(rate, min(self._floor, self._ceiling or self._floor))

    # ------------------------------------------------------------------ signals

    def on_success(self) -> None:
        """A request went through without any throttle signal: grow with elapsed time."""
        now = self._clock()
        elapsed = now - self._last_growth
        if elapsed <= 0:
            return
        self._last_growth = now
        if self._slow_start:
            grown = self._rate * (2.0 ** (elapsed / SLOW_START_DOUBLING_SECONDS))
        else:
            grown = self._rate + self._increase_share * self._rate_at_last_cut * elapsed
        self._rate = self._clamp(grown)

    def on_throttle(self) -> bool:
        """A request met a throttle signal. Returns True when this cut the rate."""
        self.throttled_requests += 1
        now = self._clock()
        if now - self._last_cut < self._cooldown:
            return False
        self._last_cut = now
        self._last_growth = now
        self._slow_start = False
        self._rate_at_last_cut = self._rate
        self._rate = self._clamp(self._rate * self._decrease)
        self.throttle_events += 1
        return True

    # ------------------------------------------------------------------- pacing

    def _refill(self, now: float) -> None:
        depth = max(self._rate * self._burst_seconds, 25.0)
        self._tokens = min(depth, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now

    async def acquire(self, items: int) -> None:
        """Wait until `items` may be sent at the current rate."""
        async with self._lock:  # first come, first served: no writer starves
            while True:
                now = self._clock()
                self._refill(now)
                if self._tokens >= items or self._tokens >= max(self._rate * self._burst_seconds, 25.0):
                    self._tokens -= items
                    return
                await asyncio.sleep((items - self._tokens) / self._rate)
