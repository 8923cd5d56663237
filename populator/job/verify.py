"""`populator verify`: are the archive's events in the table? Checked on a sample, read back.

The sample is N events spread over the selected objects: every object read gives its own
first pick (so a whole object missing from the table shows), the rest are the events with the
lowest hash of their key (a uniform sample, the same every time, whatever order the objects
are read in). When the objects hold N events or fewer, every one is checked. Events whose TTL
has passed are not checked: `run` skips them, and DynamoDB deletes them anyway. Nor are events
without a fingerprint: `run` skips them too (the shredder could never match them), so the table
is not expected to hold them; they are counted apart, never as bad rows.

Reading back is `BatchGetItem`, 100 keys a request, strongly consistent, retrying
`UnprocessedKeys` and throttling with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import math
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import PopulatorError, UsageError
from ..events import BLANK_LINES, NO_FINGERPRINT, TTL_SECONDS, ManifestItem, parse_line
from ..source.archive import ArchiveObject, list_archive
from ..source.estimate import spread
from ..source.reader import CorruptObject, decoded_chunks, file_chunks, iter_lines, s3_chunks
from .clients import guard, open_clients
from .plan import describe_table
from .spec import BackfillJob

DEFAULT_SAMPLE = 1000
BATCH_GET_KEYS = 100  # BatchGetItem's limit
MISSING_SHOWN = 5
READ_CONCURRENCY = 8
GET_CONCURRENCY = 4
_THROTTLES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


class ReadBackFailed(PopulatorError):
    """DynamoDB kept some keys unprocessed, or throttled, for the whole retry budget."""

    exit_code = 1


@dataclass(frozen=True, order=True)
class Picked:
    """One sampled event: its key, and where it was found."""

    priority: int
    key: tuple[str, str]
    obj: str = field(compare=False)
    line: int = field(compare=False)


class Selection:
    """Keeps N picks out of a stream of events, in memory bounded by N plus the objects read."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self._size = size
        self._salt = seed.to_bytes(8, "big", signed=True)
        self._heap: list[tuple[int, Picked]] = []  # max-heap of the lowest priorities (negated)
        self._held: set[tuple[str, str]] = set()
        self._first: dict[str, Picked] = {}  # each object's lowest-priority event

    def priority(self, key: tuple[str, str]) -> int:
        digest = hashlib.blake2b(f"{key[0]}\t{key[1]}".encode(), digest_size=8, salt=self._salt)
        return int.from_bytes(digest.digest(), "big")

    def offer(self, item: ManifestItem, obj: str, line: int) -> None:
        key = (item.event_id, item.fingerprint)
        picked = Picked(self.priority(key), key, obj, line)
        first = self._first.get(obj)
        if first is None or picked.priority < first.priority:
            self._first[obj] = picked
        if key in self._held or self._size <= 0:
            return
        if len(self._heap) < self._size:
            heapq.heappush(self._heap, (-picked.priority, picked))
            self._held.add(key)
        elif picked.priority < -self._heap[0][0]:
            _, dropped = heapq.heapreplace(self._heap, (-picked.priority, picked))
            self._held.discard(dropped.key)
            self._held.add(key)

    def chosen(self) -> list[Picked]:
        """Each object's first pick (lowest first, at most N), then the lowest of the rest."""
        result: dict[tuple[str, str], Picked] = {}
        for picked in sorted(self._first.values())[: self._size]:
            result.setdefault(picked.key, picked)
        for picked in sorted(p for _, p in self._heap):
            if len(result) >= self._size:
                break
            result.setdefault(picked.key, picked)
        return list(result.values())


@dataclass
class Verification:
    archive: str
    table: str
    region: str
    sample_size: int
    objects_selected: int = 0
    objects_read: int = 0
    events_seen: int = 0
    expired_seen: int = 0  # not checked: their TTL has passed
    no_fingerprint: int = 0  # not checked: run skips them, the table never holds them
    bad_rows: int = 0
    checked: int = 0
    missing: list[Picked] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # object → why
    ttl: str | None = None  # the table's time to live on `ttl`: "enabled", "off", or unknown (why)

    @property
    def present(self) -> int:
        return self.checked - len(self.missing)

    @property
    def coverage(self) -> float | None:
        """Percent of the checked events found in the table (None when nothing was checked)."""
        return 100.0 * self.present / self.checked if self.checked else None

    @property
    def ok(self) -> bool:
        return not self.missing

    def as_dict(self, missing_listed: int = 100) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "table": self.table,
            "region": self.region,
            "sample_size": self.sample_size,
            "objects_selected": self.objects_selected,
            "objects_read": self.objects_read,
            "events_seen": self.events_seen,
            "expired_not_checked": self.expired_seen,
            "no_fingerprint": self.no_fingerprint,
            "bad_rows": self.bad_rows,
            "checked": self.checked,
            "present": self.present,
            "missing": len(self.missing),
            "coverage_percent": round(self.coverage, 3) if self.coverage is not None else None,
            "missing_keys": [
                {"eventId": p.key[0], "fingerprint": p.key[1], "object": p.obj, "line": p.line}
                for p in self.missing[:missing_listed]
            ],
            "unreadable_objects": [{"object": key, "reason": why} for key, why in self.unreadable.items()],
            "ttl": self.ttl,
        }


async def verify(
    job: BackfillJob, sample: int = DEFAULT_SAMPLE, *, seed: int = 0, now: float | None = None
) -> Verification:
    """Sample the selected objects' events and read them back. Writes nothing."""
    cutoff = math.ceil(now if now is not None else time.time()) - TTL_SECONDS
    result = Verification(str(job.location), job.storage.table, job.storage.region, sample)
    selection = Selection(sample, seed)
    async with contextlib.AsyncExitStack() as stack:
        clients = await open_clients(job, stack)
        table = await describe_table(job, clients.dynamodb)
        if table.status == "missing":
            raise table_missing(job)  # before reading anything
        result.ttl = table.ttl
        read = _read_sample(job, clients.s3, selection, result, cutoff)
        await guard(
            read,
            action=f"reading {job.location}",
            permission="s3:ListBucket and s3:GetObject",
            identity=clients.s3_identity,
            archive=str(job.location),
            endpoints=clients.reach("S3"),
        )
        picks = selection.chosen()
        result.checked = len(picks)
        found = await guard(
            read_back(clients.dynamodb, job.storage.table, [p.key for p in picks]),
            action=clients.table_action(job),
            permission="dynamodb:BatchGetItem",
            identity=clients.table_identity,
            endpoints=clients.reach("DynamoDB"),
        )
    result.missing = sorted((p for p in picks if p.key not in found), key=lambda p: (p.obj, p.line))
    return result


async def _read_sample(
    job: BackfillJob, s3: Any, selection: Selection, result: Verification, cutoff: int
) -> None:
    shard = getattr(job.pipeline, "shard", None)
    extra = (shard,) if shard is not None else ()
    _runs, listed = await list_archive(job.location, job.pipeline.since, s3, *extra)
    objects = [obj async for obj in listed]
    # More objects than events to check: read N of them, evenly spread (one event each).
    chosen = spread(objects, result.sample_size) if len(objects) > result.sample_size else objects
    result.objects_selected = len(objects)
    limit = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(obj: ArchiveObject) -> None:
        async with limit:
            try:
                await _read_object(job, s3, obj, selection, result, cutoff)
            except CorruptObject as exc:
                result.unreadable[obj.key] = str(exc)
            else:
                result.objects_read += 1

    await asyncio.gather(*(one(obj) for obj in chosen))


async def _read_object(
    job: BackfillJob, s3: Any, obj: ArchiveObject, selection: Selection, result: Verification, cutoff: int
) -> None:
    location = job.location
    raw: AsyncIterator[bytes] = (
        s3_chunks(s3, location.bucket, obj.key) if location.is_s3 else file_chunks(obj.key)  # type: ignore[arg-type]
    )
    async for block in iter_lines(decoded_chunks(raw)):
        for offset, line in enumerate(block.lines):
            if line in BLANK_LINES:
                continue
            parsed = parse_line(line)
            if not isinstance(parsed, ManifestItem):
                if parsed is NO_FINGERPRINT:
                    result.no_fingerprint += 1
                else:
                    result.bad_rows += 1
                continue
            result.events_seen += 1
            if parsed.etl_time < cutoff:
                result.expired_seen += 1
                continue
            selection.offer(parsed, obj.key, block.first + offset)


async def read_back(
    dynamodb: Any,
    table: str,
    keys: Sequence[tuple[str, str]],
    *,
    attempts: int = 10,
    base_delay: float = 0.05,
) -> set[tuple[str, str]]:
    """The keys among `keys` that the table holds (BatchGetItem, 100 at a time, a few in flight)."""
    limit = asyncio.Semaphore(GET_CONCURRENCY)
    found: set[tuple[str, str]] = set()
    distinct = list(dict.fromkeys(keys))  # BatchGetItem refuses a request naming one key twice

    async def one(chunk: Sequence[tuple[str, str]]) -> None:
        async with limit:
            found.update(await _batch_get(dynamodb, table, chunk, attempts, base_delay))

    chunks = [distinct[i : i + BATCH_GET_KEYS] for i in range(0, len(distinct), BATCH_GET_KEYS)]
    await asyncio.gather(*(one(chunk) for chunk in chunks))
    return found


async def _batch_get(
    dynamodb: Any, table: str, keys: Sequence[tuple[str, str]], attempts: int, base_delay: float
) -> set[tuple[str, str]]:
    from botocore.exceptions import ClientError

    from ..errors import aws_error_code

    request: dict[str, Any] = {
        "Keys": [{"eventId": {"S": e}, "fingerprint": {"S": f}} for e, f in keys],
        "ProjectionExpression": "#e, #f",
        "ExpressionAttributeNames": {"#e": "eventId", "#f": "fingerprint"},
        "ConsistentRead": True,
    }
    found: set[tuple[str, str]] = set()
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(random.uniform(0, min(base_delay * 2**attempt, 5.0)))
        try:
            response = await dynamodb.batch_get_item(RequestItems={table: request})
        except ClientError as exc:
            if aws_error_code(exc) in _THROTTLES:
                continue
            raise
        for item in response.get("Responses", {}).get(table, []):
            found.add((item["eventId"]["S"], item["fingerprint"]["S"]))
        unprocessed = response.get("UnprocessedKeys", {}).get(table)
        if not unprocessed or not unprocessed.get("Keys"):
            return found
        request = {**request, "Keys": unprocessed["Keys"]}
    raise ReadBackFailed(
        f"DynamoDB kept {len(request['Keys'])} keys unprocessed (throttled) after {attempts} attempts; "
        "verify again later or on a smaller --sample."
    )


def table_missing(job: BackfillJob) -> UsageError:
    return UsageError(
        f"DynamoDB table {job.storage.table!r} does not exist in {job.storage.region}: there is nothing to "
        "verify against. Check the storage config's dynamodbTable and awsRegion, or run the backfill first."
    )
