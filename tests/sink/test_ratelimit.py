"""ratelimit: the AIMD controller against a simulated table, on a simulated clock."""

from __future__ import annotations

import asyncio

import pytest

from populator.sink.ratelimit import AdaptiveRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(limiter: AdaptiveRateLimiter, clock: Clock, capacity, seconds: float, step: float = 0.01):
    """A table admitting `capacity(t)` items/s; the writer offers `limiter.rate` items/s.

    Returns (admitted items per second over the last half, share of requests throttled).
    Each step sends one request of rate*step items; the table admits what its token bucket
    (one second deep) holds and throttles the rest, as DynamoDB does.
    """
    tokens = capacity(0.0)
    admitted_late = 0.0
    requests = throttled = 0
    start = clock.now  # simulations chain: the clock never goes back
    t = 0.0
    while t < seconds:
        cap = capacity(t)
        tokens = min(cap, tokens + cap * step)
        offered = limiter.rate * step
        requests += 1
        if offered <= tokens:
            tokens -= offered
            limiter.on_success(round(offered))
            got = offered
        else:
            got = tokens
            tokens = 0.0
            throttled += 1
            limiter.on_throttle(round(got), round(offered))
        if t >= seconds / 2:
            admitted_late += got
        t += step
        clock.now = start + t
    return admitted_late / (seconds / 2), throttled / requests


def test_converges_near_a_fixed_capacity_with_few_throttles():
    clock = Clock()
    limiter = AdaptiveRateLimiter(clock=clock)
    rate, throttled_share = simulate(limiter, clock, lambda t: 5000.0, seconds=120)
    assert 0.9 * 5000 <= rate <= 1.05 * 5000  # a full bucket at the window start lets a little more in
    assert throttled_share <= 0.05
    assert limiter.throttle_events >= 1


def test_never_exceeds_its_ceiling():
    clock = Clock()
    limiter = AdaptiveRateLimiter(ceiling=800.0, clock=clock)
    peak = 0.0
    for _ in range(1000):
        clock.now += 0.1
        limiter.on_success()
        peak = max(peak, limiter.rate)
    assert peak == 800.0
    limiter.set_ceiling(300.0)  # auto-scaling took capacity away
    assert limiter.rate == 300.0


def test_backs_off_on_throttling_and_recovers_when_it_stops():
    clock = Clock()
    limiter = AdaptiveRateLimiter(clock=clock)
    simulate(limiter, clock, lambda t: 8000.0, seconds=30)
    before = limiter.rate
    # The live shredder takes most of the table for a while, then gives it back.
    squeezed, _ = simulate(limiter, clock, lambda t: 1000.0, seconds=30)
    assert squeezed <= 1.02 * 1000.0 and limiter.rate < before / 2
    recovered, throttled_share = simulate(limiter, clock, lambda t: 8000.0, seconds=120)
    assert recovered >= 0.85 * 8000
    assert throttled_share <= 0.05


def test_a_burst_of_throttles_is_one_cut():
    clock = Clock()
    limiter = AdaptiveRateLimiter(initial=4000.0, clock=clock)
    cuts = [limiter.on_throttle() for _ in range(20)]  # every request in flight, at once
    assert cuts.count(True) == 1
    assert limiter.rate == 4000.0 * 0.5  # leaving slow start, which overshoots by up to 2x
    assert limiter.throttled_requests == 20


def test_never_drops_below_its_floor():
    clock = Clock()
    limiter = AdaptiveRateLimiter(initial=100.0, floor=25.0, clock=clock)
    for _ in range(50):
        clock.now += 2
        limiter.on_throttle()
    assert limiter.rate == 25.0


async def test_acquire_paces_requests_at_the_rate():
    limiter = AdaptiveRateLimiter(initial=2000.0, ceiling=2000.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(40):
        await limiter.acquire(25)  # 1000 items at 2000 items/s
    elapsed = loop.time() - start
    assert 0.4 <= elapsed <= 1.5


def test_without_a_ceiling_growth_stops_at_the_default_table_quota():
    from populator.sink.ratelimit import DEFAULT_TABLE_WRITE_QUOTA

    clock = Clock()
    limiter = AdaptiveRateLimiter(clock=clock)
    for _ in range(10_000):  # hours of requests that never meet a throttle
        clock.now += 1
        limiter.on_success()
    assert limiter.rate == DEFAULT_TABLE_WRITE_QUOTA
    limiter.on_throttle()
    assert limiter.rate < DEFAULT_TABLE_WRITE_QUOTA  # and a throttle still slows it down


def test_slow_start_overshoot_hidden_by_a_deep_bucket_is_undone_in_few_cuts():
    # A table with a second of burst capacity lets slow start double several times before the
    # first throttle; cutting to what the table actually took since the last cut brings the
    # rate under capacity at once, instead of a quarter-second of throttles per 20% cut.
    clock = Clock()
    limiter = AdaptiveRateLimiter(clock=clock)
    rate, throttled_share = simulate(limiter, clock, lambda t: 5000.0, seconds=10)
    assert throttled_share <= 0.05
    assert rate >= 0.85 * 5000
    assert limiter.throttle_events <= 4


def test_a_cut_goes_under_the_share_the_table_took():
    clock = Clock()
    limiter = AdaptiveRateLimiter(initial=10_000.0, clock=clock)
    limiter.on_throttle()  # leaves slow start, nothing known about what got in: halved
    assert limiter.rate == 5000.0
    limiter.on_success(300)  # at the same instant: no growth to account for
    clock.now += 1.0
    assert limiter.on_throttle(0, 700)  # the table took 30% of what we sent
    assert limiter.rate == pytest.approx(0.95 * 0.3 * 5000)
    clock.now += 1.0
    limiter.on_throttle(0, 500)  # nothing got in at all: at most a 4x cut in one step
    assert limiter.rate == pytest.approx(0.25 * 0.95 * 0.3 * 5000)
