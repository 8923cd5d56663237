"""The event manifest table: make sure it exists and is shaped right, and write items to it.

Two writers share one retry policy: `BatchWriter` (BatchWriteItem, 25 items a request, the
default) and `ConditionalWriter` (the shredder's own conditional PutItem, first writer wins).
Both retry throttling, 5xx and dropped connections with exponential backoff and full jitter,
and raise `WriteFailed` when the budget is spent: an item is never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import aiohttp
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..config.outage import OutageTooLong, OutageWatch, unreachable_errors
from ..errors import TableSchemaError, aws_error_code, describe_failure
from ..events import ManifestItem
from .control_plane import retrying
from .ratelimit import AdaptiveRateLimiter
from .table_shape import MANIFEST_KEYS, table_definition
from .transport import Transport
from .writes import (
    BATCH_SIZE,
    UNPROCESSED_REASON,
    KeyedObject,
    RetryPolicy,
    TableInfo,
    WriteFailed,
    WriteOutcome,
    consumed_units,
    throttle_reason,
)

# aiobotocore ships no annotations (pyproject's mypy overrides): its DynamoDB client is `Any` here,
# and requests and answers are DynamoDB's JSON, `dict[str, Any]`.

CONDITION = "(attribute_not_exists(eventId) AND attribute_not_exists(fingerprint)) OR etlTime = :tst"
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
    }
)
_RETRYABLE_CODES = THROTTLE_CODES | {"InternalServerError", "ServiceUnavailable", "InternalFailure"}
#: A request that got no answer at all: the table (or the way to it) is down, not this request.
UNREACHABLE = unreachable_errors()


class _Unprocessed(Exception):
    """Some items came back in UnprocessedItems; raised to make tenacity retry them."""

    failure_reason = "DynamoDB kept returning UnprocessedItems (throttled)"


def wire_item(item: ManifestItem) -> dict[str, dict[str, str]]:
    """A manifest item in DynamoDB's attribute-value JSON, as Snowplow's manifest stores it."""
    return {
        "eventId": {"S": item.event_id},
        "fingerprint": {"S": item.fingerprint},
        "etlTime": {"N": str(item.etl_time)},
        "ttl": {"N": str(item.ttl)},
    }


def is_throttle(exc: BaseException) -> bool:
    return isinstance(exc, _Unprocessed) or (
        isinstance(exc, ClientError) and aws_error_code(exc) in THROTTLE_CODES
    )


def is_retryable(exc: BaseException) -> bool:
    if isinstance(
        exc, _Unprocessed | BotoConnectionError | HTTPClientError | aiohttp.ClientError | TimeoutError
    ):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return aws_error_code(exc) in _RETRYABLE_CODES or status >= 500
    return False


def key_schema_problem(table: dict[str, Any]) -> str | None:
    """None when a DescribeTable result has the manifest's keys; otherwise what differs."""
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", ())}
    keys = {
        (k["AttributeName"], k["KeyType"], types.get(k["AttributeName"], "?"))
        for k in table.get("KeySchema", ())
    }
    if keys == MANIFEST_KEYS:
        return None
    found = ", ".join(
        f"{name} {kind} ({kind_type})" for name, kind, kind_type in sorted(keys, key=lambda k: k[1])
    )
    return f"it has keys {found}; an event manifest needs eventId HASH (S), fingerprint RANGE (S)"


async def ensure_table(client: Any, name: str, *, provisioned: tuple[int, int] | None = None) -> TableInfo:
    """Describe the table, creating it with the manifest's keys when it is missing; check that
    time to live is on for `ttl`, and enable it when it is not (`TableInfo.ttl_problem` says why
    it could not be).

    A new table is on demand unless `provisioned` gives its (read, write) capacity units:
    Snowplow's library creates 100/100, which paces a backfill at about 100 items/s, where an
    on-demand table takes 4,000 writes/s at once and doubles its peak every 30 minutes.
    """
    created = False
    try:
        table = (await retrying(client.describe_table, TableName=name))["Table"]
    except ClientError as exc:
        if aws_error_code(exc) != "ResourceNotFoundException":
            raise
        table = await _create_table(client, name, provisioned=provisioned)
        created = True
    problem = key_schema_problem(table)
    if problem:
        raise TableSchemaError(
            f"DynamoDB table {name!r} is not an event manifest: {problem}. Point the storage "
            "config at another table, or let the tool create a new one by naming a table that does not exist."
        )
    if table.get("TableStatus") not in (None, "ACTIVE", "UPDATING"):
        await client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
        )
    return dataclasses.replace(table_info(name, table, created), ttl_problem=await ensure_ttl(client, name))


def table_info(name: str, table: dict[str, Any], created: bool = False) -> TableInfo:
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    wcu = (
        table.get("ProvisionedThroughput", {}).get("WriteCapacityUnits") if billing == "PROVISIONED" else None
    )
    maximum = table.get("OnDemandThroughput", {}).get("MaxWriteRequestUnits")
    warm = table.get("WarmThroughput", {}).get("WriteUnitsPerSecond")
    return TableInfo(
        name=name,
        created=created,
        billing_mode=billing,
        write_capacity=wcu,
        # -1 (or nothing) is "no maximum"; a provisioned table's capacity already bounds it.
        max_write_units=(
            maximum if billing == "PAY_PER_REQUEST" and isinstance(maximum, int) and maximum > 0 else None
        ),
        warm_write_units=warm if isinstance(warm, int) and warm > 0 else None,
    )


async def describe_capacity(client: Any, name: str) -> TableInfo:
    """The table's billing mode and provisioned write capacity, as of now."""
    return table_info(name, (await client.describe_table(TableName=name))["Table"])


async def _create_table(client: Any, name: str, *, provisioned: tuple[int, int] | None) -> dict[str, Any]:
    try:
        await retrying(client.create_table, **table_definition(name, provisioned))
    except ClientError as exc:
        if aws_error_code(exc) != "ResourceInUseException":  # created meanwhile by someone else
            raise
    await client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    table: dict[str, Any] = (await retrying(client.describe_table, TableName=name))["Table"]
    return table


async def ensure_ttl(client: Any, name: str) -> str | None:
    """Time to live on `ttl`, as Snowplow's manifest has it: checked, and enabled when it is not.
    None when it is on; else why not, in AWS's words (an answer, never an exception: a table
    without TTL still takes the backfill, and the run says plainly what that means)."""
    try:
        if await _ttl_enabled(client, name):
            return None
    except ClientError:
        pass  # not allowed to look (dynamodb:DescribeTimeToLive): enabling says more
    try:
        await retrying(
            client.update_time_to_live,
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )
        return None
    except ClientError as exc:
        # Not idempotent: "TimeToLive is already enabled" when another process creating the same
        # table at the same time (a shard of the same backfill) enabled it first.
        with contextlib.suppress(ClientError):
            if aws_error_code(exc) == "ValidationException" and await _ttl_enabled(client, name):
                return None
        message = exc.response.get("Error", {}).get("Message", "")
        return f"UpdateTimeToLive answered {aws_error_code(exc) or 'an error'}: {message}".rstrip(": ")


async def _ttl_enabled(client: Any, name: str) -> bool:
    ttl = (await client.describe_time_to_live(TableName=name)).get("TimeToLiveDescription", {})
    return ttl.get("AttributeName") == "ttl" and ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")


class _Writer:
    """Retry, throttle accounting and pacing shared by both write modes."""

    batch_size = BATCH_SIZE  # BatchWriteItem's limit; conditional mode sends as many PutItems at once
    combines_objects = False

    def __init__(
        self,
        transport: Transport,
        table: str,
        policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, never mutated
        on_throttle: Callable[[str], None] | None = None,
        limiter: AdaptiveRateLimiter | None = None,
        outage: OutageWatch | None = None,
    ) -> None:
        self._outage = outage
        self._transport = transport
        self._table = table
        self._policy = policy
        self._on_throttle = on_throttle
        self._limiter = limiter

    def _retrying(self) -> AsyncRetrying:
        policy = self._policy
        return AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay),
            retry=retry_if_exception(is_retryable),
            reraise=True,
        )

    async def _call(self, operation: str, params: dict[str, Any], items: int) -> dict[str, Any]:
        """One paced request; throttle signals in its answer reach the controller."""
        if self._limiter is not None:
            await self._limiter.acquire(items)
        while True:
            try:
                response = await self._transport.call(operation, params)
            except UNREACHABLE as exc:
                if self._outage is None:
                    raise
                # The table did not answer at all: wait with the other writers until it does
                # (or the outage budget is spent), instead of spending this request's attempts.
                await asyncio.sleep(self._outage.failed(describe_failure(exc)))
                continue
            except Exception as exc:
                if is_throttle(exc):
                    self._throttled(0, items, throttle_reason(exc))
                raise
            if self._outage is not None:
                self._outage.answered()
            return response

    def _throttled(self, admitted: int, offered: int, reason: str) -> None:
        if self._limiter is not None:
            self._limiter.on_throttle(admitted, offered, reason=reason)
        if self._on_throttle is not None:
            self._on_throttle(reason)

    def _succeeded(self, items: int) -> None:
        if self._limiter is not None:
            self._limiter.on_success(items)

    async def write(self, items: Sequence[ManifestItem]) -> WriteOutcome:
        """One request's worth of items (each mode writes its own way)."""
        raise NotImplementedError

    async def write_from(self, obj: KeyedObject, items: Sequence[ManifestItem]) -> WriteOutcome:
        """A batch of one object: which object makes no difference to the table."""
        return await self.write(items)


class BatchWriter(_Writer):
    """Writes up to 25 items with BatchWriteItem, retrying UnprocessedItems until all are stored."""

    combines_objects = True  # every item of an acknowledged request is stored: no per-item outcome

    async def write(self, items: Sequence[ManifestItem]) -> WriteOutcome:
        pending = [{"PutRequest": {"Item": wire_item(item)}} for item in items]
        total = len(pending)
        reported = counted = 0.0
        made = 0
        try:
            async for attempt in self._retrying():
                with attempt:
                    made += 1
                    params = {"RequestItems": {self._table: pending}, "ReturnConsumedCapacity": "TOTAL"}
                    response = await self._call("BatchWriteItem", params, len(pending))
                    sent = len(pending)
                    pending = response.get("UnprocessedItems", {}).get(self._table, [])
                    units = consumed_units(response, self._table)
                    if units is None:
                        counted += sent - len(pending)
                    else:
                        reported += units
                    if pending:
                        self._throttled(sent - len(pending), sent, UNPROCESSED_REASON)
                        raise _Unprocessed(len(pending))
                    self._succeeded(sent)
        except Exception as exc:
            if isinstance(exc, OutageTooLong):
                raise  # stops the run, not this object
            if isinstance(exc, ClientError) and not is_retryable(exc) and _is_fatal(exc):
                raise
            tries = f"after {made} attempts" if made > 1 else "at the first attempt (not retried)"
            raise WriteFailed(
                f"{len(pending)} of {total} items not written: BatchWriteItem {tries}: "
                f"{describe_failure(exc)}"
            ) from exc
        return WriteOutcome(total, 0, reported, counted)


class ConditionalWriter(_Writer):
    """Writes each item with the shredder's conditional PutItem; an existing item wins."""

    combines_objects = False  # each item's outcome (written or already present) is its object's

    async def write(self, items: Sequence[ManifestItem]) -> WriteOutcome:
        results = await asyncio.gather(*(self._put(item) for item in items), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if isinstance(failure, OutageTooLong):
                raise failure
            if isinstance(failure, ClientError) and _is_fatal(failure):
                raise failure
        if failures:
            raise WriteFailed(
                f"{len(failures)} of {len(items)} items not written: PutItem (up to "
                f"{self._policy.attempts} attempts each): {describe_failure(failures[0])}"
            )
        puts = [r for r in results if isinstance(r, _Put)]
        written = sum(1 for put in puts if put.written)
        reported = sum(put.units for put in puts if put.reported)
        counted = sum(put.units for put in puts if not put.reported)
        return WriteOutcome(written, len(items) - written, reported, counted)

    async def _put(self, item: ManifestItem) -> _Put:
        """Written, or not when an item with another etlTime was already there."""
        params = {
            "TableName": self._table,
            "Item": wire_item(item),
            "ConditionExpression": CONDITION,
            "ExpressionAttributeValues": {":tst": {"N": str(item.etl_time)}},
            "ReturnConsumedCapacity": "TOTAL",
        }
        response: dict[str, Any] = {}
        async for attempt in self._retrying():
            with attempt:
                try:
                    response = await self._call("PutItem", params, 1)
                except ClientError as exc:
                    if aws_error_code(exc) == "ConditionalCheckFailedException":
                        self._succeeded(1)
                        # A failed condition still consumes a write unit, and its error
                        # response carries no ConsumedCapacity: counted.
                        return _Put(False, 1.0, False)
                    raise
                self._succeeded(1)
        units = consumed_units(response, self._table)
        return _Put(True, 1.0 if units is None else units, units is not None)


class _Put(NamedTuple):
    written: bool
    units: float
    reported: bool  # units read from DynamoDB's ConsumedCapacity, not counted


def _is_fatal(exc: ClientError) -> bool:
    """Errors that no object can get past (permissions, a deleted table): stop the whole run."""
    return aws_error_code(exc) in {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
        "ResourceNotFoundException",
    }
