"""An endpoint that stops answering: wait it out, up to a budget, instead of failing objects.

A network partition, a NAT gateway gone, a black hole: every request fails the same way, and
retrying each request on its own budget fails the objects one by one (measured: a 3-minute
outage failed 32 of 64 objects). Instead the process's writers share one `OutageWatch`: the
first failure to connect starts the outage, every writer then waits and tries again (each
attempt is a probe, spaced out with backoff), the first answer ends it. Only an outage longer
than the budget (`--max-outage`) stops the run, like a limit: what was acknowledged is kept,
and the same command goes on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import EXIT_OUTAGE, PopulatorError

FIRST_WAIT = 0.5  # seconds before a waiting writer tries again, doubling up to MAX_WAIT
MAX_WAIT = 10.0


class OutageTooLong(PopulatorError):
    """An endpoint did not answer for longer than the outage budget."""

    exit_code = EXIT_OUTAGE


@dataclass
class OutageWatch:
    """One service's outage, shared by the writers of a process."""

    service: str  # "DynamoDB"
    budget: float  # seconds an outage may last before the run stops
    #: told (when the outage began, wall clock; why) as it begins, and (None, "") as it ends
    on_change: Callable[[float | None, str], None] | None = None
    since: float | None = None  # monotonic, while an outage lasts
    reason: str = ""
    _failures: int = field(default=0, repr=False)

    def failed(self, why: str) -> float:
        """A request could not reach the service: the seconds to wait before trying again.
        Raises OutageTooLong once the outage has lasted longer than the budget."""
        now = time.monotonic()
        if self.since is None:
            self.since, self.reason, self._failures = now, why, 0
            if self.on_change is not None:
                self.on_change(time.time(), why)
        self._failures += 1
        waited = now - self.since
        if waited > self.budget:
            began = time.strftime("%H:%M:%S", time.localtime(time.time() - waited))
            raise OutageTooLong(
                f"{self.service} did not answer for {waited:.0f} s (since {began}: {self.reason}), "
                f"longer than --max-outage {self.budget:.0f} s. Everything it acknowledged is recorded: "
                "check the network (routes, NAT gateway or VPC endpoint, proxy, security groups) and "
                "run the same command to go on."
            )
        step = min(MAX_WAIT, FIRST_WAIT * 2 ** min(self._failures, 10))
        return random.uniform(step / 2, step)  # spread the probes of many writers

    def answered(self) -> None:
        """A request got an answer: the service is back."""
        if self.since is not None:
            self.since, self.reason = None, ""
            if self.on_change is not None:
                self.on_change(None, "")
