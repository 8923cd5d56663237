"""`--max-write-units`, `--max-cost`, `--max-duration`: a run that stops itself at a budget.

Reaching a limit stops the run the way SIGTERM does: no new object is started, batches in
flight finish, finished objects are recorded in the checkpoint, and the same command resumes.
It is not a failure: the exit code is 4 and the report's status says `limit_reached`.

The limit is checked as writes are acknowledged, so the run overshoots by what was in flight
when it was reached: at most the batches queued and being written (about `--writers` × 25
items) and the rest of the objects being read, whose items are still written so that each
can be recorded whole.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UsageError
from ..observe.hub import Event, ItemsAcknowledged
from ..observe.report import Tally
from ..sink.pricing import DEFAULT_PRICE_PER_MILLION_WRU

_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")


@dataclass(frozen=True)
class Limits:
    max_write_units: float | None = None
    max_cost_usd: float | None = None
    max_duration_s: float | None = None
    price_per_million: float = DEFAULT_PRICE_PER_MILLION_WRU

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_write_units, self.max_cost_usd, self.max_duration_s))

    def units_limit(self) -> tuple[float, str] | None:
        """The write units at which the run stops, and the limit that sets them."""
        candidates = []
        if self.max_write_units is not None:
            candidates.append((self.max_write_units, "max_write_units"))
        if self.max_cost_usd is not None:
            candidates.append((self.max_cost_usd / self.price_per_million * 1_000_000, "max_cost"))
        return min(candidates) if candidates else None


def parse_duration(raw: str, option: str = "--max-duration") -> float:
    """`90m`, `2h`, `1h30m`, `45s`, `3600` (seconds) → seconds; a UsageError naming `option`
    otherwise."""
    text = raw.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        match = _DURATION.fullmatch(text)
        if not text or match is None or not any(match.groups()):
            raise UsageError(
                f"{option} {raw!r}: use hours, minutes and seconds such as 90m, 2h, 1h30m or "
                "45s, or plain seconds (3600)."
            ) from None
        hours, minutes, secs = (float(group) if group else 0.0 for group in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not 0 < seconds < math.inf:
        raise UsageError(f"{option} {raw!r}: must be more than zero, and finite.")
    return seconds


def check_limits(limits: Limits) -> None:
    """Refuse limits that cannot mean anything, before any AWS call."""
    for name, value in (("--max-write-units", limits.max_write_units), ("--max-cost", limits.max_cost_usd)):
        if value is not None and not value > 0:
            raise UsageError(f"{name} {value:g}: must be more than zero.")
    if not limits.price_per_million > 0:
        raise UsageError(f"--price-per-million {limits.price_per_million:g}: must be more than zero.")


class LimitWatch:
    """A subscriber that asks the run to stop once the units consumed reach the limit.

    `stop` is called once, with the name of the limit; it must be safe to call from the
    thread that publishes (the event loop's, or the thread that relays a worker's events).
    """

    def __init__(self, limits: Limits, tally: Tally, stop: Callable[[str], None]) -> None:
        self._units = limits.units_limit()
        self._tally = tally
        self._stop = stop
        self._reached = False

    def __call__(self, event: Event) -> None:
        if self._reached or self._units is None or not isinstance(event, ItemsAcknowledged):
            return
        if event.dry_run:
            return
        allowed, name = self._units
        if self._tally.write_units_consumed >= allowed:
            self.reached(name)

    def reached(self, name: str) -> None:
        if not self._reached:
            self._reached = True
            self._tally.limit_reached = name
            self._stop(name)
