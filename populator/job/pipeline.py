"""The backfill: listing → readers → item batches → writers → DynamoDB, bounded everywhere.

```
list_archive ──► object queue ──► readers (concurrency) ──► batch queue ──► writers ──► table
  (skip done)     (bounded)        stream, inflate, parse     (bounded)     retry/backoff
```
An object counts as finished only when every batch cut from it has been acknowledged. A read
that breaks off (S3 reset, 5xx, short body) starts the object again from its first byte; a
batch that cannot be written fails its object (the rest of it is skipped, the others go on), and
so does any unexpected error while one object is read or parsed. An error no object can get past
(permissions, a deleted table, a `PopulatorError` such as the bad-row limit) cancels every task.

A graceful stop (`stop` set) takes no new object, abandons the ones being read (they will be
read again on resume) and lets writers finish what is queued for objects already fully read.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..errors import PopulatorError, aws_error_code
from ..events import TTL_SECONDS, ManifestItem, triage
from ..observe.hub import (
    BadRowFound,
    BytesRead,
    Hub,
    ItemsAcknowledged,
    LinesParsed,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
    ObjectRestarted,
    ObjectSkipped,
    RunsSelected,
)
from ..sink.batching import BatchCutter
from ..sink.writes import WriteFailed, WriteOutcome, describe_failure
from ..source.archive import ArchiveLocation, ArchiveObject, list_archive
from ..source.reader import CorruptObject, decoded_chunks, file_chunks, iter_lines, s3_chunks
from ..source.shard import Shard

_FATAL_READ_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket"})


class ItemWriter(Protocol):
    async def write(self, items: list[ManifestItem]) -> WriteOutcome: ...


@dataclass(frozen=True)
class ReadRetryPolicy:
    """How often an object whose read breaks off is read again from its start."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0


@dataclass(frozen=True)
class PipelineOptions:
    location: ArchiveLocation
    since: datetime | None = None
    concurrency: int = 32  # objects read at once
    writers: int = 16  # write requests in flight
    include_expired: bool = False
    now: float | None = None  # epoch seconds for TTL decisions; None: the clock at start
    read_retry: ReadRetryPolicy = ReadRetryPolicy()
    shard: Shard | None = None  # only this shard's objects (--shard K/N)


@dataclass(eq=False)
class _ObjectState:
    """One object in flight: its counts, and how many of its batches are unacknowledged."""

    obj: ArchiveObject
    pending_batches: int = 0
    reading_done: bool = False
    abandoned: bool = False  # stopped early: neither finished nor failed
    failure: str | None = None
    closed: bool = False
    lines: int = 0
    blank: int = 0
    expired: int = 0
    merged: int = 0
    items: int = 0
    no_fingerprint: int = 0
    bad: Counter[str] = field(default_factory=Counter)

    def restart(self) -> dict[str, Any]:
        counts = {
            "lines": self.lines,
            "blank": self.blank,
            "bad": self.bad,
            "expired": self.expired,
            "merged": self.merged,
            "no_fingerprint": self.no_fingerprint,
        }
        self.lines = self.blank = self.expired = self.merged = self.items = self.no_fingerprint = 0
        self.bad = Counter()
        return counts


@dataclass(slots=True)
class _Batch:
    state: _ObjectState
    items: list[ManifestItem]


class _ReadBrokeOff(Exception):
    """A read failed in a way that reading again from the start may fix."""


@dataclass
class _Stage:
    """Shared state of one pipeline run."""

    options: PipelineOptions
    hub: Hub
    writer: ItemWriter | None
    s3: Any | None
    now: float
    stop: asyncio.Event
    skip: Callable[[ArchiveObject], bool] | None
    objects: asyncio.Queue[ArchiveObject | None] = field(init=False)
    batches: asyncio.Queue[_Batch | None] = field(init=False)

    def __post_init__(self) -> None:
        self.objects = asyncio.Queue(maxsize=self.options.concurrency * 2)
        self.batches = asyncio.Queue(maxsize=max(self.options.writers * 4, 8))


async def run_pipeline(
    options: PipelineOptions,
    hub: Hub,
    *,
    writer: ItemWriter | None,
    s3: Any | None,
    stop: asyncio.Event | None = None,
    skip: Callable[[ArchiveObject], bool] | None = None,
    source: AsyncIterator[ArchiveObject] | None = None,
) -> None:
    """Back-fill every selected object. `writer=None` is a dry run: parse and count, write nothing.

    `skip(obj)` says an object is already done (from the checkpoint); `stop` asks for a graceful
    stop; `source`, when given, supplies the objects instead of listing the archive (a worker
    process's share, listed by its parent).
    """
    stage = _Stage(
        options,
        hub,
        writer,
        s3,
        options.now if options.now is not None else time.time(),
        stop or asyncio.Event(),
        skip,
    )
    if source is None:
        runs, objects = await list_archive(options.location, options.since, s3, options.shard)
        hub.publish(RunsSelected(runs))
    async with asyncio.TaskGroup() as group:
        group.create_task(_produce(stage, objects if source is None else source, announce=source is None))
        readers = [group.create_task(_read_objects(stage)) for _ in range(options.concurrency)]
        writers = [group.create_task(_write_batches(stage)) for _ in range(options.writers if writer else 0)]
        await asyncio.gather(*readers)
        for _ in writers:
            await stage.batches.put(None)


async def _produce(stage: _Stage, objects: AsyncIterator[ArchiveObject], *, announce: bool = True) -> None:
    """Feed the readers; `announce` publishes the listing (not for objects listed elsewhere)."""
    count = size = 0
    try:
        async for obj in objects:
            if stage.stop.is_set():
                break
            if announce:
                stage.hub.publish(ObjectListed(obj))
            count += 1
            size += obj.size
            if stage.skip is not None and stage.skip(obj):
                stage.hub.publish(ObjectSkipped(obj))
                continue
            await stage.objects.put(obj)
        else:
            if announce:
                stage.hub.publish(ListingDone(count, size))
    finally:
        if isinstance(objects, AsyncIterator) and hasattr(objects, "aclose"):
            await objects.aclose()
    for _ in range(stage.options.concurrency):
        await stage.objects.put(None)


async def _read_objects(stage: _Stage) -> None:
    while (obj := await stage.objects.get()) is not None:
        if stage.stop.is_set():
            continue  # drain the queue without reading: these objects are left for the resume
        state = _ObjectState(obj)
        try:
            await _read_with_retries(stage, state)
        except CorruptObject as exc:
            _fail(state, str(exc))
        except _ReadBrokeOff as exc:
            _fail(state, f"read failed after {stage.options.read_retry.attempts} attempts: {exc}")
        except Exception as exc:
            if _stops_the_job(exc):
                raise
            # Whatever else went wrong reading or parsing this object is its own failure: named,
            # not recorded as done (a rerun reads it again), and the other objects go on.
            why = describe_failure(exc)
            _fail(state, f"internal error while reading it: {why} (a bug in populator; please report it)")
        state.reading_done = True
        _maybe_finish(stage, state)


async def _read_with_retries(stage: _Stage, state: _ObjectState) -> None:
    policy = stage.options.read_retry
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay),
        retry=retry_if_exception(lambda exc: isinstance(exc, _ReadBrokeOff)),
        reraise=True,
    )
    last_failure = ""  # tenacity forgets the previous outcome when the next attempt starts
    async for attempt in retrying:
        with attempt:
            number = attempt.retry_state.attempt_number
            if number > 1:
                counts = state.restart()
                stage.hub.publish(ObjectRestarted(state.obj, last_failure, number, **counts))
            try:
                await _read_object(stage, state)
            except _transient_read_errors(stage.options.location.is_s3) as exc:
                if aws_error_code(exc) in _FATAL_READ_CODES:
                    raise
                last_failure = describe_failure(exc)
                raise _ReadBrokeOff(last_failure) from exc


def _stops_the_job(exc: Exception) -> bool:
    """An error no object can get past: ours on purpose (a bad-row limit, a usage error), or an
    S3 refusal that holds for every object (permissions, a deleted bucket)."""
    return isinstance(exc, PopulatorError) or aws_error_code(exc) in _FATAL_READ_CODES


def _transient_read_errors(s3: bool) -> tuple[type[BaseException], ...]:
    """What may break a read off and be cured by reading again. botocore and aiohttp are only
    imported for S3 archives: a local archive needs neither."""
    if not s3:
        return (TimeoutError, OSError)
    import aiohttp
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, aiohttp.ClientError, TimeoutError, OSError)


def _raw_chunks(stage: _Stage, obj: ArchiveObject) -> AsyncIterator[bytes]:
    location = stage.options.location
    if location.is_s3:
        return s3_chunks(stage.s3, location.bucket, obj.key)  # type: ignore[arg-type]
    return file_chunks(obj.key)


async def _counted(stage: _Stage, obj: ArchiveObject, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        stage.hub.publish(BytesRead(obj, len(chunk)))
        yield chunk


async def _read_object(stage: _Stage, state: _ObjectState) -> None:
    obj = state.obj
    hub = stage.hub
    # ttl < now  <=>  etlTime < now - TTL; etlTime is whole seconds, so compare with the ceiling.
    cutoff = None if stage.options.include_expired else math.ceil(stage.now) - TTL_SECONDS
    cutter = BatchCutter()
    chunks = decoded_chunks(_counted(stage, obj, _raw_chunks(stage, obj)))
    async for block in iter_lines(chunks):
        if state.failure is not None:
            return  # a batch of this object failed for good: the object will be retried whole
        if stage.stop.is_set():
            state.abandoned = True
            return
        sorted_out = triage(block.lines, cutoff)
        requests, merged = cutter.feed(sorted_out.items)
        for request in requests:
            await _submit(stage, state, request)
        bad: Counter[str] = Counter()
        for line in sorted_out.bad:
            bad[line.reason.value] += 1
            hub.publish(BadRowFound(obj, block.first + line.offset, line.reason.value, line.head))
        count = len(block.lines)
        state.lines += count
        state.blank += sorted_out.blank
        state.expired += sorted_out.expired
        state.no_fingerprint += sorted_out.no_fingerprint
        state.merged += merged
        if bad:
            state.bad.update(bad)
        skipped = sorted_out.no_fingerprint
        hub.publish(LinesParsed(obj, count, sorted_out.blank, bad, sorted_out.expired, merged, skipped))
    if rest := cutter.flush():
        await _submit(stage, state, rest)


async def _submit(stage: _Stage, state: _ObjectState, items: list[ManifestItem]) -> None:
    state.items += len(items)
    if stage.writer is None:
        stage.hub.publish(ItemsAcknowledged(state.obj, len(items), 0, dry_run=True))
        return
    state.pending_batches += 1
    await stage.batches.put(_Batch(state, items))


async def _write_batches(stage: _Stage) -> None:
    assert stage.writer is not None
    while (batch := await stage.batches.get()) is not None:
        state = batch.state
        if state.failure is None and not state.abandoned:
            try:
                outcome = await stage.writer.write(batch.items)
            except WriteFailed as exc:
                _fail(state, str(exc))
            else:
                stage.hub.publish(
                    ItemsAcknowledged(
                        state.obj,
                        outcome.written,
                        outcome.already_present,
                        units_reported=outcome.units_reported,
                        units_counted=outcome.units_counted,
                    )
                )
        state.pending_batches -= 1
        _maybe_finish(stage, state)


def _fail(state: _ObjectState, reason: str) -> None:
    if state.failure is None:
        state.failure = reason


def _maybe_finish(stage: _Stage, state: _ObjectState) -> None:
    if state.closed or not state.reading_done or state.pending_batches:
        return
    state.closed = True
    if state.failure is not None:
        stage.hub.publish(ObjectFailedEvent(state.obj, state.failure))
    elif not state.abandoned:
        bad_rows = sum(state.bad.values())
        stage.hub.publish(ObjectFinished(state.obj, state.lines, state.items, bad_rows, state.no_fingerprint))
