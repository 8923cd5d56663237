"""The outage watch alone: when a service's silence is an outage, how long it is waited out,
and what the operator is told. End to end (a proxy that goes away) in test_unreachable.py."""

from __future__ import annotations

import asyncio

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from populator.config import outage
from populator.config.outage import MAX_WAIT, OutageTooLong, OutageWatch
from populator.errors import EXIT_OUTAGE
from populator.observe.hub import ServiceWaiting
from populator.observe.report import Tally


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(outage.time, "monotonic", fake)
    return fake


def refused() -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com/acme")


def test_an_outage_begins_at_the_first_failure_and_ends_at_the_first_answer(clock: Clock) -> None:
    told: list[tuple[float | None, str]] = []
    watch = OutageWatch("S3", 60, lambda since, why: told.append((since, why)))
    for _ in range(3):
        pause = watch.failed("could not connect")
        assert 0 < pause <= MAX_WAIT
        clock.now += pause
    assert len(told) == 1 and told[0][1] == "could not connect"  # told once, as it began
    watch.answered()
    watch.answered()
    assert told[1:] == [(None, "")] and watch.since is None and watch.answers == 2


def test_the_waits_grow_to_at_most_max_wait_and_the_budget_stops_the_run(clock: Clock) -> None:
    watch = OutageWatch("DynamoDB", 120)
    pauses = []
    with pytest.raises(OutageTooLong) as stopped:
        while True:
            pauses.append(watch.failed("the connection timed out"))
            clock.now += pauses[-1]
    assert max(pauses) <= MAX_WAIT and pauses[-1] > pauses[0]
    assert clock.now - 1000.0 > 120
    message = str(stopped.value)
    assert "DynamoDB did not answer for" in message and "longer than --max-outage 120 s" in message
    assert "the connection timed out" in message and "run the same command to go on" in message
    assert stopped.value.exit_code == EXIT_OUTAGE


def test_a_call_to_a_service_never_answered_is_not_waited_for() -> None:
    """Never answered: set up wrong (endpoint, region, proxy), said at once by the caller."""
    watch = OutageWatch("S3", 60)
    calls = 0

    async def request() -> str:
        nonlocal calls
        calls += 1
        raise refused()

    with pytest.raises(EndpointConnectionError):
        asyncio.run(watch.call(request))
    assert calls == 1 and watch.since is None


def test_a_call_waits_out_an_outage_of_a_proven_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "FIRST_WAIT", 0.001)
    told: list[float | None] = []
    watch = OutageWatch("S3", 60, lambda since, why: told.append(since), answers=1)
    failures = [refused(), ReadTimeoutError(endpoint_url="https://s3"), refused()]

    async def request() -> str:
        if failures:
            raise failures.pop(0)
        return "page"

    assert asyncio.run(watch.call(request)) == "page"
    assert len(told) == 2 and told[0] is not None and told[1] is None  # began, then ended
    assert watch.answers == 2


def test_an_error_the_service_answers_ends_an_outage_and_is_raised() -> None:
    watch = OutageWatch("S3", 60, answers=1)
    watch.failed("could not connect")
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    async def request() -> str:
        raise denied

    with pytest.raises(ClientError):
        asyncio.run(watch.call(request))
    assert watch.since is None and watch.answers == 2


def test_the_tally_tells_each_service_waited_for_and_counts_one_outage_for_many_processes() -> None:
    tally = Tally()
    tally(ServiceWaiting("S3", 1_800_000_000.0, "could not connect"))
    tally(ServiceWaiting("S3", 1_800_000_005.0, "could not connect"))  # a second worker meets it
    tally(ServiceWaiting("DynamoDB", 1_800_000_010.0, "the connection timed out"))
    assert tally.outages == 2
    shown = tally.waiting_for
    assert shown is not None and shown.startswith("S3 since ") and "; DynamoDB since " in shown
    tally(ServiceWaiting("S3", None))  # the first worker is answered: the other still waits
    assert tally.waiting_for is not None and "S3 since" in tally.waiting_for
    tally(ServiceWaiting("S3", None))
    assert tally.waiting_for is not None and tally.waiting_for.startswith("DynamoDB since ")
    tally(ServiceWaiting("DynamoDB", None))
    assert tally.waiting_for is None and tally.outages == 2
