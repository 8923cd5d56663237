"""The vocabulary of writing to the manifest, without the AWS client libraries.

Kept apart from `manifest.py` so that the pipeline, the reports and a dry run over a local
archive never import botocore, aiobotocore or aiohttp (about half a second of start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from ..errors import aws_error_code
from ..events import ManifestItem

BATCH_SIZE = 25  # BatchWriteItem's limit


class WriteFailed(Exception):
    """Items could not be written within the retry budget (or were refused for good)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long a writer keeps trying one request before its object is failed."""

    attempts: int = 12
    base_delay: float = 0.05  # seconds; full jitter over base * 2**attempt
    max_delay: float = 20.0
    max_outage: float = 300.0  # seconds the table may not answer at all before the run stops


@dataclass(frozen=True)
class TableInfo:
    name: str
    created: bool
    billing_mode: str  # "PROVISIONED" or "PAY_PER_REQUEST"
    write_capacity: int | None
    #: on demand: the table's `OnDemandThroughput.MaxWriteRequestUnits` (None: no maximum set)
    max_write_units: int | None = None
    #: `WarmThroughput.WriteUnitsPerSecond`: what the table takes at once (None: not reported)
    warm_write_units: int | None = None
    #: why time to live is not on for `ttl` (None: it is): the manifest would never expire
    ttl_problem: str | None = None


class WriteOutcome(NamedTuple):
    written: int  # items DynamoDB acknowledged as stored by us
    already_present: int  # conditional mode: items kept as they were (first writer won)
    units_reported: float = 0.0  # write units DynamoDB said the requests consumed
    units_counted: float = 0.0  # write units counted where a response said nothing (one an item)


class KeyedObject(Protocol):
    """What a writer may know of the archive object a batch comes from (a source's
    `ArchiveObject`): its key."""

    @property
    def key(self) -> str: ...


class ItemWriter(Protocol):
    """What the pipeline asks of a writer: the table's (`manifest`) or the import's (`staging`)."""

    #: items a batch (BatchWriteItem takes BATCH_SIZE; staging has no request limit, only a cost
    #: per batch)
    batch_size: int
    #: whether one request may carry items of several objects: then the pipeline gathers the short
    #: ends of objects into full requests and calls `write`; otherwise it calls `write_from`
    combines_objects: bool

    async def write(self, items: list[ManifestItem]) -> WriteOutcome:
        """Write a batch (of one object, or of several if the writer combines objects)."""
        ...

    async def write_from(self, obj: KeyedObject, items: list[ManifestItem]) -> WriteOutcome:
        """Write a batch of the one object `obj`; a writer that does not care calls `write`."""
        ...


#: DynamoDB's throttling reasons that name a ceiling outside the table's own capacity: probing
#: above the rate that was being admitted only finds the same wall again.
CEILING_REASONS = frozenset(
    {
        "TableWriteAccountLimitExceeded",
        "TableWriteMaxOnDemandThroughputExceeded",
        "IndexWriteAccountLimitExceeded",
        "IndexWriteMaxOnDemandThroughputExceeded",
    }
)
#: The reason a throttle without `ThrottlingReasons` is counted under: only UnprocessedItems
#: (which never says why) and endpoints older than the field.
UNPROCESSED_REASON = "UnprocessedItems"


def throttle_reason(exc: BaseException) -> str:
    """Why DynamoDB throttled a request: its first `ThrottlingReasons` entry, else the error code."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        reasons = response.get("ThrottlingReasons")
        if isinstance(reasons, list):
            for entry in reasons:
                if isinstance(entry, dict) and isinstance(entry.get("reason"), str) and entry["reason"]:
                    return str(entry["reason"])
    return aws_error_code(exc) or type(exc).__name__


def consumed_units(response: dict[str, Any], table: str) -> float | None:
    """The write units a response says it consumed on `table` (None when it says nothing).

    BatchWriteItem answers a list, one entry a table; PutItem a single entry.
    """
    consumed = response.get("ConsumedCapacity")
    entries = consumed if isinstance(consumed, list) else [consumed] if isinstance(consumed, dict) else []
    units = [
        float(entry["CapacityUnits"])
        for entry in entries
        if isinstance(entry, dict)
        and entry.get("TableName", table) == table
        and isinstance(entry.get("CapacityUnits"), int | float)
    ]
    return sum(units) if units else None
