"""The backfill: listing → readers → item batches → writers → DynamoDB, bounded everywhere.

```
list_archive ──► object queue ──► readers (concurrency) ──► batch queue ──► writers ──► table
                  (bounded)        stream, inflate, parse     (bounded)     retry/backoff
```
An object counts as finished only when every batch cut from it has been acknowledged. A batch
that cannot be written fails its object (the rest of the object is skipped, other objects go
on). An error no object can get past (permissions, a deleted table) cancels every task.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from .archive import ArchiveLocation, ArchiveObject, list_archive
from .events import BadRowReason, ManifestItem, parse_line
from .manifest import BATCH_SIZE, WriteFailed, WriteOutcome, describe_failure
from .observe import (
    BytesRead,
    Hub,
    ItemsAcknowledged,
    LinesParsed,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
    RunsSelected,
)
from .reader import CorruptObject, decoded_chunks, file_chunks, iter_lines, s3_chunks


class ItemWriter(Protocol):
    async def write(self, items: list[ManifestItem]) -> WriteOutcome: ...


@dataclass(frozen=True)
class PipelineOptions:
    location: ArchiveLocation
    since: datetime | None = None
    concurrency: int = 32  # objects read at once
    writers: int = 16  # write requests in flight
    include_expired: bool = False
    now: float | None = None  # epoch seconds for TTL decisions; None: the clock at start


@dataclass(eq=False)
class _ObjectState:
    """One object in flight: how many of its batches are still unacknowledged."""

    obj: ArchiveObject
    pending_batches: int = 0
    reading_done: bool = False
    failure: str | None = None
    closed: bool = False


@dataclass(slots=True)
class _Batch:
    state: _ObjectState
    items: list[ManifestItem]


@dataclass
class _Stage:
    """Shared state of one pipeline run."""

    options: PipelineOptions
    hub: Hub
    writer: ItemWriter | None
    s3: Any | None
    now: float
    objects: asyncio.Queue[ArchiveObject | None] = field(init=False)
    batches: asyncio.Queue[_Batch | None] = field(init=False)

    def __post_init__(self) -> None:
        self.objects = asyncio.Queue(maxsize=self.options.concurrency * 2)
        self.batches = asyncio.Queue(maxsize=max(self.options.writers * 4, 8))


async def run_pipeline(
    options: PipelineOptions, hub: Hub, *, writer: ItemWriter | None, s3: Any | None
) -> None:
    """Back-fill every selected object. `writer=None` is a dry run: parse and count, write nothing."""
    stage = _Stage(options, hub, writer, s3, options.now if options.now is not None else time.time())
    runs, objects = await list_archive(options.location, options.since, s3)
    hub.publish(RunsSelected(runs))
    async with asyncio.TaskGroup() as group:
        group.create_task(_produce(stage, objects))
        readers = [group.create_task(_read_objects(stage)) for _ in range(options.concurrency)]
        writers = [group.create_task(_write_batches(stage)) for _ in range(options.writers if writer else 0)]
        await asyncio.gather(*readers)
        for _ in writers:
            await stage.batches.put(None)


async def _produce(stage: _Stage, objects: AsyncIterator[ArchiveObject]) -> None:
    count = size = 0
    async for obj in objects:
        stage.hub.publish(ObjectListed(obj))
        count += 1
        size += obj.size
        await stage.objects.put(obj)
    stage.hub.publish(ListingDone(count, size))
    for _ in range(stage.options.concurrency):
        await stage.objects.put(None)


async def _read_objects(stage: _Stage) -> None:
    while (obj := await stage.objects.get()) is not None:
        state = _ObjectState(obj)
        try:
            await _read_object(stage, state)
        except CorruptObject as exc:
            _fail(stage, state, str(exc))
        except (ClientError, BotoCoreError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            if _is_fatal_read_error(exc):
                raise
            _fail(stage, state, f"read failed: {describe_failure(exc)}")
        state.reading_done = True
        _maybe_finish(stage, state)


def _is_fatal_read_error(exc: BaseException) -> bool:
    from .aws import error_code

    return isinstance(exc, ClientError) and error_code(exc) in {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    }


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
    include_expired = stage.options.include_expired
    now = stage.now
    batch: dict[tuple[str, str], ManifestItem] = {}
    chunks = decoded_chunks(_counted(stage, obj, _raw_chunks(stage, obj)))
    async for block in iter_lines(chunks):
        if state.failure is not None:
            return  # a batch of this object failed for good: the object will be retried whole
        blank = expired = merged = 0
        bad: Counter[str] = Counter()
        for line in block.lines:
            if line is None:
                bad[BadRowReason.LINE_TOO_LONG.value] += 1
                continue
            if not line:
                blank += 1
                continue
            parsed = parse_line(line)
            if type(parsed) is not ManifestItem:
                bad[parsed.value] += 1  # type: ignore[union-attr]
                continue
            if not include_expired and parsed.ttl < now:
                expired += 1
                continue
            key = (parsed.event_id, parsed.fingerprint)
            known = batch.get(key)
            if known is not None:
                # DynamoDB refuses a request holding one key twice; keep the first shredding.
                merged += 1
                if parsed.etl_time < known.etl_time:
                    batch[key] = parsed
                continue
            batch[key] = parsed
            if len(batch) == BATCH_SIZE:
                await _submit(stage, state, list(batch.values()))
                batch = {}
        stage.hub.publish(LinesParsed(obj, len(block.lines), blank, bad, expired, merged))
    if batch:
        await _submit(stage, state, list(batch.values()))


async def _submit(stage: _Stage, state: _ObjectState, items: list[ManifestItem]) -> None:
    if stage.writer is None:
        stage.hub.publish(ItemsAcknowledged(state.obj, len(items), 0, dry_run=True))
        return
    state.pending_batches += 1
    await stage.batches.put(_Batch(state, items))


async def _write_batches(stage: _Stage) -> None:
    assert stage.writer is not None
    while (batch := await stage.batches.get()) is not None:
        state = batch.state
        if state.failure is None:
            try:
                outcome = await stage.writer.write(batch.items)
            except WriteFailed as exc:
                _fail(stage, state, str(exc))
            else:
                stage.hub.publish(ItemsAcknowledged(state.obj, outcome.written, outcome.already_present))
        state.pending_batches -= 1
        _maybe_finish(stage, state)


def _fail(stage: _Stage, state: _ObjectState, reason: str) -> None:
    if state.failure is None:
        state.failure = reason


def _maybe_finish(stage: _Stage, state: _ObjectState) -> None:
    if state.closed or not state.reading_done or state.pending_batches:
        return
    state.closed = True
    if state.failure is None:
        stage.hub.publish(ObjectFinished(state.obj))
    else:
        stage.hub.publish(ObjectFailedEvent(state.obj, state.failure))
