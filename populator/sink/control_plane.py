"""Control-plane calls (DescribeTable, CreateTable, UpdateTimeToLive, ImportTable...) retried as
the AWS SDKs retry them: throttling, limits AWS says to retry later, and 5xx, with backoff.

The DynamoDB client itself retries nothing (the writers own their retries, so that every
throttle reaches the rate controller); these few calls are not on that path.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..errors import aws_error_code, retry_later

ATTEMPTS = 8
BASE_DELAY = 0.2  # seconds; full jitter over BASE_DELAY * 2**attempt
MAX_DELAY = 10.0


async def retrying(
    call: Callable[..., Awaitable[Mapping[str, Any]]], attempts: int = ATTEMPTS, **parameters: object
) -> dict[str, Any]:
    """`call(**parameters)`, again after an answer that says to try later; other answers raise."""
    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            return dict(await call(**parameters))
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if attempt + 1 >= attempts or not retry_later(aws_error_code(exc), status):
                raise
        await asyncio.sleep(random.uniform(0, min(BASE_DELAY * 2**attempt, MAX_DELAY)))
    raise AssertionError("unreachable")
