"""An endpoint that stops answering: wait it out, up to a budget, instead of failing objects.

A network partition, a NAT gateway gone, a black hole: every request fails the same way, and
retrying each request on its own budget fails the objects one by one (measured: a 3-minute
outage failed 32 of 64 objects). Instead the requests of a process to one service share one
`OutageWatch`: the first request that gets no answer starts the outage, every request then waits
and tries again (each attempt is a probe, spaced out with backoff), the first answer ends it.
Only an outage longer than the budget (`--max-outage`) stops the run, like a limit: what was
acknowledged is kept, and the same command goes on.

An endpoint that has never answered this process is not in an outage: it is set up wrong (a
wrong endpoint, region or proxy), and the caller says so at once (`proven`).
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import EXIT_OUTAGE, PopulatorError, describe_failure

FIRST_WAIT = 0.5  # seconds before a waiting request tries again, doubling up to MAX_WAIT
MAX_WAIT = 10.0

T = TypeVar("T")


class OutageTooLong(PopulatorError):
    """An endpoint did not answer for longer than the outage budget."""

    exit_code = EXIT_OUTAGE


@functools.cache
def unreachable_errors() -> tuple[type[BaseException], ...]:
    """What a request that got no answer at all raises: the service (or the way to it) is down,
    not this request. botocore and aiohttp are imported here, when a client exists: a dry run over
    a local archive needs neither."""
    import aiohttp
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return (BotoConnectionError, HTTPClientError, aiohttp.ClientConnectionError, TimeoutError)


@dataclass
class OutageWatch:
    """One service's outage, shared by the requests of a process to that service."""

    service: str  # "DynamoDB", "S3"
    budget: float  # seconds an outage may last before the run stops
    #: told (when the outage began, wall clock; why) as it begins, and (None, "") as it ends
    on_change: Callable[[float | None, str], None] | None = None
    since: float | None = None  # monotonic, while an outage lasts
    reason: str = ""
    answers: int = 0  # answers seen: a request that failed may compare it to tell who got through
    _failures: int = field(default=0, repr=False)

    @property
    def proven(self) -> bool:
        """The service has answered this process (or its parent, which said so): set up right."""
        return self.answers > 0

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
        return random.uniform(step / 2, step)  # spread the probes of many requests

    def answered(self) -> None:
        """A request got an answer (an error from the service is an answer too): it is back."""
        self.answers += 1
        if self.since is not None:
            self.since, self.reason = None, ""
            if self.on_change is not None:
                self.on_change(None, "")

    async def call(self, request: Callable[[], Awaitable[T]]) -> T:
        """`request()` until the service answers it, waiting out an outage. An endpoint never
        proven gets no patience: its error is raised at once, for the caller to explain."""
        unreachable = unreachable_errors()
        while True:
            try:
                answer = await request()
            except unreachable as exc:
                if not self.proven:
                    raise
                await asyncio.sleep(self.failed(describe_failure(exc)))
                continue
            except Exception as exc:
                if getattr(exc, "response", None) is not None:
                    self.answered()  # refused, throttled: the service is there
                raise
            self.answered()
            return answer


async def ask(outage: OutageWatch | None, request: Callable[[], Awaitable[T]]) -> T:
    """`request()`, waiting out an outage of its service when there is a watch over it."""
    return await (request() if outage is None else outage.call(request))
