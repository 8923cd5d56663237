"""How fast to write: the user's limits, the table's capacity, and keeping the two in step.

`write_ceiling` turns `--max-write-rate`, `--write-capacity-percent` and an on-demand table's
maximum into the controller's hard ceiling (items/s; manifest items are far below 1 KB, so one
item is one write unit); `start_rate` starts it at the table's warm throughput.
`watch_rate` re-reads the table's provisioned capacity every minute, so auto-scaling moves the
ceiling (as emr-dynamodb-connector's `dynamodb.throughput.write.percent` does), and publishes
the controller's state every second for progress displays and reports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .ratelimit import AdaptiveRateLimiter, RateState
from .writes import TableInfo

# aiobotocore ships no annotations (pyproject's mypy overrides): its DynamoDB client is `Any` here.

CAPACITY_REFRESH_SECONDS = 60.0
STATE_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class ThroughputOptions:
    max_write_rate: float | None = None  # items/s, hard ceiling (per process / shard)
    write_capacity_percent: float = 50.0  # share of a PROVISIONED table's WCU we may use
    write_path: str = "signed"  # "signed" or "botocore" (see transport.py)


def write_ceiling(table: TableInfo, options: ThroughputOptions) -> float | None:
    """The controller's ceiling: the smallest of --max-write-rate, P% of provisioned WCU and an
    on-demand table's `MaxWriteRequestUnits` (a wall DynamoDB throttles at; never probed past)."""
    limits = []
    if options.max_write_rate is not None:
        limits.append(options.max_write_rate)
    if table.billing_mode == "PROVISIONED" and table.write_capacity:
        limits.append(max(table.write_capacity * options.write_capacity_percent / 100.0, 1.0))
    if table.max_write_units:
        limits.append(float(table.max_write_units))
    return min(limits) if limits else None


def start_rate(table: TableInfo, options: ThroughputOptions) -> float | None:
    """Where the controller starts: an on-demand table's warm throughput when it reports one
    (what it takes at once, instead of the 4,000/s a new table is known to); None: the default
    (the ceiling, or that 4,000/s)."""
    if table.billing_mode != "PAY_PER_REQUEST" or not table.warm_write_units:
        return None
    ceiling = write_ceiling(table, options)
    return float(table.warm_write_units) if ceiling is None else min(float(table.warm_write_units), ceiling)


async def watch_rate(
    client: Any,
    table: TableInfo,
    options: ThroughputOptions,
    limiter: AdaptiveRateLimiter,
    publish: Callable[[RateState], None],
    *,
    refresh: float = CAPACITY_REFRESH_SECONDS,
    interval: float = STATE_INTERVAL_SECONDS,
) -> None:
    """Runs until cancelled: publishes the state every `interval`, re-reads capacity every `refresh`."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .manifest import describe_capacity

    next_refresh = time.monotonic() + refresh
    while True:
        publish(limiter.state())
        await asyncio.sleep(interval)
        if time.monotonic() >= next_refresh:
            next_refresh = time.monotonic() + refresh
            try:
                current = await describe_capacity(client, table.name)
            except (ClientError, BotoCoreError):
                continue  # keep the last ceiling; the next refresh tries again
            limiter.set_ceiling(write_ceiling(current, options))
