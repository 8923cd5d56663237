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
import contextlib
import math
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..config.outage import OutageWatch, unreachable_errors
from ..errors import ACCESS_DENIED_CODES, PopulatorError, aws_error_code, describe_failure, retry_later
from ..events import TTL_SECONDS, ManifestItem, Triage, triage
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
    ObjectProgress,
    ObjectRestarted,
    ObjectSkipped,
    PrefixCarried,
    RunsSelected,
)
from ..sink.batching import BatchCutter
from ..sink.writes import BATCH_SIZE, ItemWriter, WriteFailed, WriteOutcome
from ..source.archive import ArchiveLocation, ArchiveObject, list_archive
from ..source.reader import CorruptObject, decoded_chunks, file_chunks, iter_lines, s3_chunks
from ..source.shard import Shard
from .prefix import AcknowledgedPrefix

# A read refused for these is refused for every object: it stops the run instead of failing each.
_FATAL_READ_CODES = ACCESS_DENIED_CODES | {"NoSuchBucket"}


# How often the prefixes of the objects in flight are published (for the checkpoint), together.
PROGRESS_SECONDS = 1.0
SETTLE_POLL_SECONDS = 0.01  # how often a broken read looks whether its batches are written
PREFIX_SLICE_LINES = 25  # lines between two marks of an object's prefix (see prefix.py)
# How long the end of an object waits for the ends of others to fill a request with.
TAIL_SECONDS = 0.01


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
    # Where writes are stored for good (the table): how far every item is acknowledged, and what
    # a read skipped because it was (by an earlier run, or an earlier read of this one).
    prefix: AcknowledgedPrefix | None = None
    carried_lines: int = 0
    carried_items: int = 0
    published_lines: int = 0  # the prefix last published as ObjectProgress

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
        self.carried_lines = self.carried_items = 0
        self.bad = Counter()
        if self.prefix is not None:
            self.prefix.read_broke_off()
        return counts


@dataclass(slots=True)
class _Batch:
    """One write request's items, and the objects they come from (one, or several small ends)."""

    parts: list[tuple[_ObjectState, list[ManifestItem], int]]  # (object, its items, its batch number)

    @property
    def items(self) -> list[ManifestItem]:
        if len(self.parts) == 1:
            return self.parts[0][1]
        return [item for _, items, _ in self.parts for item in items]


class _Tails:
    """The last, short request of each object, gathered with others' into full requests.

    An archive of small objects (a Stream Enrich file can hold a handful of events) would
    otherwise send one short BatchWriteItem an object: with 2-event objects that is 12 times the
    requests (cProfile, 2,000 objects: one request an object was half of all the time). Keys
    stay unique within a request: a key already gathered sends what is gathered first. An end
    waits at most TAIL_SECONDS for company. Each object still finishes only when the request
    holding its end is acknowledged.
    """

    def __init__(self, stage: _Stage) -> None:
        self._stage = stage
        self._parts: list[tuple[_ObjectState, list[ManifestItem], int]] = []
        self._keys: set[tuple[str, str]] = set()
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def add(self, state: _ObjectState, items: list[ManifestItem]) -> None:
        if self._count + len(items) > BATCH_SIZE or any(item.key in self._keys for item in items):
            await self.flush()
        state.pending_batches += 1
        self._parts.append((state, items, state.prefix.submit() if state.prefix is not None else 0))
        self._keys.update(item.key for item in items)
        self._count += len(items)
        if self._count >= BATCH_SIZE:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(TAIL_SECONDS, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._parts:
            return
        parts, self._parts, self._keys, self._count = self._parts, [], set(), 0
        await self._stage.batches.put(_Batch(parts))

    async def close(self) -> None:
        """Send what is gathered (before the writers are told to stop)."""
        while self._flushes:
            await asyncio.gather(*self._flushes)
        await self.flush()

    async def abandon(self) -> None:
        """The pipeline ends short (an error, a cancellation): what is gathered is dropped with it
        (its objects are not finished), and no flush is left waiting on a queue nobody empties,
        to be destroyed pending once the loop is gone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._flushes:
            task.cancel()
        await asyncio.gather(*self._flushes, return_exceptions=True)


class _ReadBrokeOff(Exception):
    """A read failed in a way that reading again from the start may fix."""


class _ReadUnanswered(Exception):
    """S3 gave no answer to the read at all (no connection, no byte): while S3 answers nobody, the
    read waits for it with the others (see config/outage.py) instead of spending its attempts."""


class _ReadRefused(Exception):
    """S3 answered the read with an error that reading again would only repeat (a 4xx other than
    throttling): the object fails at once, named with S3's answer."""


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
    resume: Callable[[ArchiveObject], int] | None = None  # lines an earlier run wrote every item of
    keep_prefixes: bool = False  # track each object's acknowledged prefix (see prefix.py)
    s3_outage: OutageWatch | None = None  # reads that S3 does not answer wait on it
    in_flight: dict[str, _ObjectState] = field(default_factory=dict)
    objects: asyncio.Queue[ArchiveObject | None] = field(init=False)
    batches: asyncio.Queue[_Batch | None] = field(init=False)
    tails: _Tails | None = field(init=False)
    unanswered: tuple[type[BaseException], ...] = field(init=False)  # what "no answer" raises

    def __post_init__(self) -> None:
        self.unanswered = unreachable_errors() if self.s3_outage is not None else ()
        self.objects = asyncio.Queue(maxsize=self.options.concurrency * 2)
        self.batches = asyncio.Queue(maxsize=max(self.options.writers * 4, 8))
        # Ends are gathered across objects only where a request's outcome is the same for every
        # item (BatchWriteItem): a conditional write says per item which were already there.
        self.tails = _Tails(self) if self.writer is not None and self.writer.combines_objects else None


async def run_pipeline(
    options: PipelineOptions,
    hub: Hub,
    *,
    writer: ItemWriter | None,
    s3: Any | None,
    stop: asyncio.Event | None = None,
    skip: Callable[[ArchiveObject], bool] | None = None,
    source: AsyncIterator[ArchiveObject] | None = None,
    resume: Callable[[ArchiveObject], int] | None = None,
    keep_prefixes: bool = False,
    s3_outage: OutageWatch | None = None,
) -> None:
    """Back-fill every selected object. `writer=None` is a dry run: parse and count, write nothing.

    `skip(obj)` says an object is already done (from the checkpoint), `resume(obj)` how many of
    its first lines are (their items are not written again); `stop` asks for a graceful stop;
    `source`, when given, supplies the objects instead of listing the archive (a worker
    process's share, listed by its parent). With `keep_prefixes` (a writer whose
    acknowledgements are for good) each object's acknowledged prefix is published as it grows
    and, for every object in flight, when the pipeline ends however it ends. With `s3_outage`,
    the listing and the reads wait out an S3 that stops answering, up to its budget.
    """
    stage = _Stage(
        options,
        hub,
        writer,
        s3,
        options.now if options.now is not None else time.time(),
        stop or asyncio.Event(),
        skip,
        resume,
        keep_prefixes and writer is not None,
        s3_outage if options.location.is_s3 else None,
    )
    try:
        await _run_stages(stage, source)
    finally:
        _publish_prefixes(stage)


async def _run_stages(stage: _Stage, source: AsyncIterator[ArchiveObject] | None) -> None:
    options = stage.options
    if source is None:
        runs, objects = await list_archive(
            options.location, options.since, stage.s3, options.shard, outage=stage.s3_outage
        )
        stage.hub.publish(RunsSelected(runs))
    else:
        objects = source
    try:
        await _stages_in_group(stage, objects, announce=source is None)
    finally:
        if stage.tails is not None:
            await stage.tails.abandon()  # nothing left after a normal end: close() sent it all


async def _stages_in_group(stage: _Stage, objects: AsyncIterator[ArchiveObject], *, announce: bool) -> None:
    options, writer = stage.options, stage.writer
    async with asyncio.TaskGroup() as group:
        # In the group, so that a subscriber raising as prefixes are published (the checkpoint on
        # a full disk) ends the run like any other stage, instead of the sweeper alone, silently.
        sweeper = group.create_task(_sweep_prefixes(stage)) if stage.keep_prefixes else None
        group.create_task(_produce(stage, objects, announce=announce))
        readers = [group.create_task(_read_objects(stage)) for _ in range(options.concurrency)]
        writers = [group.create_task(_write_batches(stage)) for _ in range(options.writers if writer else 0)]
        await asyncio.gather(*readers)
        if stage.tails is not None:
            await stage.tails.close()
        for _ in writers:
            await stage.batches.put(None)
        await asyncio.gather(*writers)
        if sweeper is not None:
            sweeper.cancel()


async def _produce(stage: _Stage, objects: AsyncIterator[ArchiveObject], *, announce: bool = True) -> None:
    """Feed the readers; `announce` publishes the listing (not for objects listed elsewhere)."""
    count = size = 0
    try:
        async for obj in objects:
            if stage.stop.is_set():
                break
            count += 1
            size += obj.size
            if stage.skip is not None and stage.skip(obj):
                stage.hub.publish(ObjectSkipped(obj))  # listed and done before: one event for both
                continue
            if announce:
                stage.hub.publish(ObjectListed(obj))
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
        if stage.keep_prefixes:
            state.prefix = AcknowledgedPrefix(stage.resume(obj) if stage.resume is not None else 0)
            stage.in_flight[obj.key] = state
        try:
            await _read_with_retries(stage, state)
        except CorruptObject as exc:
            _fail(state, str(exc))
        except _ReadBrokeOff as exc:
            _fail(state, f"read failed after {stage.options.read_retry.attempts} attempts: {exc}")
        except _ReadRefused as exc:
            _fail(state, f"read refused (not retried): {exc}")
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
    # The first attempt goes without tenacity: setting up its attempt loop costs about 0.2 ms,
    # a fifth of what a 2-event object costs in all (cProfile, 2,000 objects), and nearly every
    # object is read whole at the first attempt. Retries, with their backoff, are tenacity's.
    try:
        await _read_attempt(stage, state)
        return
    except _ReadBrokeOff as exc:
        last_failure = str(exc)  # tenacity forgets the previous outcome when the next attempt starts
    policy = stage.options.read_retry
    if policy.attempts <= 1:
        raise _ReadBrokeOff(last_failure)
    # The pause tenacity would have made after the first attempt: full jitter over base_delay.
    await asyncio.sleep(random.uniform(0, min(policy.max_delay, policy.base_delay)))
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts - 1),
        wait=wait_random_exponential(multiplier=policy.base_delay * 2, max=policy.max_delay),
        retry=retry_if_exception(lambda exc: isinstance(exc, _ReadBrokeOff)),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            number = attempt.retry_state.attempt_number + 1
            await _settled_batches(state)
            counts = state.restart()
            stage.hub.publish(ObjectRestarted(state.obj, last_failure, number, **counts))
            try:
                await _read_attempt(stage, state)
            except _ReadBrokeOff as exc:
                last_failure = str(exc)
                raise


async def _settled_batches(state: _ObjectState) -> None:
    """Before a read starts again: wait until every batch of the broken read is written, so that
    the new read skips all of them (its prefix), instead of writing what was queued again."""
    if state.prefix is None:
        return
    while state.pending_batches and state.failure is None and not state.abandoned:
        await asyncio.sleep(SETTLE_POLL_SECONDS)


async def _read_attempt(stage: _Stage, state: _ObjectState) -> None:
    """One read of the object. What may be cured by reading again is raised as `_ReadBrokeOff`
    where the bytes are read (`_counted`), and there only: an OSError of anything else (a
    subscriber, such as a file of ours on a full disk) is never taken for a broken read.

    A read S3 did not answer at all waits out the outage and starts again, without spending an
    attempt: while S3 answers nobody (else), that is the network's doing, not this object's. When
    others were answered between two such failures of this read, the second is its own.
    """
    watch = stage.s3_outage
    answers_then: int | None = None  # what S3 had answered when this read last went unanswered
    while True:
        try:
            await _read_object(stage, state)
            return
        except _ReadUnanswered as exc:
            if (
                watch is None
                or not watch.proven
                or (answers_then is not None and watch.answers != answers_then)
            ):
                raise _ReadBrokeOff(str(exc)) from exc
            answers_then = watch.answers
            pause = watch.failed(str(exc))  # raises OutageTooLong once the budget is spent
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stage.stop.wait(), pause)
            if stage.stop.is_set():
                state.abandoned = True
                return


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
    return file_chunks(obj.key, obj.size)


async def _counted(stage: _Stage, obj: ArchiveObject, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The object's raw bytes, counted; a read that breaks off becomes `_ReadBrokeOff`, one that
    got no answer at all `_ReadUnanswered` (when S3 outages are waited out)."""
    transient = _transient_read_errors(stage.options.location.is_s3)
    watch = stage.s3_outage
    answered = False
    while True:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except transient as exc:
            code = aws_error_code(exc)
            if code and watch is not None:
                watch.answered()  # an error from S3 is an answer: S3 is there
            if code in _FATAL_READ_CODES:
                raise
            if not code:  # no answer: a connection broken off, a timeout
                if not answered and isinstance(exc, stage.unanswered):
                    raise _ReadUnanswered(describe_failure(exc)) from exc
                raise _ReadBrokeOff(describe_failure(exc)) from exc
            why = f"{getattr(exc, 'operation_name', '') or 'GetObject'} answered {describe_failure(exc)}"
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if retry_later(code, int(status or 0)):
                raise _ReadBrokeOff(why) from exc
            raise _ReadRefused(why) from exc  # reading again would only get the same answer
        if not answered:
            answered = True
            if watch is not None:
                watch.answered()
        stage.hub.publish(BytesRead(obj, len(chunk)))
        yield chunk


async def _read_object(stage: _Stage, state: _ObjectState) -> None:
    obj = state.obj
    # ttl < now  <=>  etlTime < now - TTL; etlTime is whole seconds, so compare with the ceiling.
    cutoff = None if stage.options.include_expired else math.ceil(stage.now) - TTL_SECONDS
    cutter = BatchCutter(BATCH_SIZE if stage.writer is None else stage.writer.batch_size)  # staging: bigger
    prefix = state.prefix
    carried_through = prefix.lines if prefix is not None else 0  # lines whose items are stored
    chunks = decoded_chunks(_counted(stage, obj, _raw_chunks(stage, obj)))
    async for block in iter_lines(chunks):
        if state.failure is not None:
            return  # a batch of this object failed for good: the object will be retried whole
        if stage.stop.is_set():
            state.abandoned = True
            return
        lines, first = block.lines, block.first
        if first <= carried_through:
            covered = min(len(lines), carried_through - first + 1)
            _carry(stage, state, lines[:covered], cutoff)
            lines, first = lines[covered:], first + covered
            if not lines:
                continue
        if prefix is None:
            await _sort_out(stage, state, cutter, lines, first, cutoff)
            continue
        # Marked a slice at a time: the prefix then never lags a whole block behind what is
        # acknowledged (one block can hold hundreds of lines). Slicing costs nothing measurable.
        for start in range(0, len(lines), PREFIX_SLICE_LINES):
            part = lines[start : start + PREFIX_SLICE_LINES]
            await _sort_out(stage, state, cutter, part, first + start, cutoff)
            prefix.mark(first + start + len(part) - 1, cutter.buffered)
    if rest := cutter.flush():
        if stage.tails is not None and stage.writer is not None:
            state.items += len(rest)
            await stage.tails.add(state, rest)
        else:
            await _submit(stage, state, rest)


async def _sort_out(
    stage: _Stage,
    state: _ObjectState,
    cutter: BatchCutter,
    lines: list[bytes],
    first: int,
    cutoff: int | None,
) -> None:
    """Lines `first`.. of the object: their items submitted (or buffered), the rest counted."""
    obj, hub = state.obj, stage.hub
    sorted_out = triage(lines, cutoff)
    requests, merged = cutter.feed(sorted_out.items)
    for request in requests:
        await _submit(stage, state, request)
    bad: Counter[str] = Counter()
    for line in sorted_out.bad:
        bad[line.reason.value] += 1
        hub.publish(BadRowFound(obj, first + line.offset, line.reason.value, line.head))
    count = len(lines)
    _count_lines(state, count, sorted_out, bad)
    state.merged += merged
    skipped = sorted_out.no_fingerprint
    hub.publish(LinesParsed(obj, count, sorted_out.blank, bad, sorted_out.expired, merged, skipped))


def _carry(stage: _Stage, state: _ObjectState, lines: list[bytes], cutoff: int | None) -> None:
    """Lines whose items are stored already: counted as read, their items not written again
    (nor their bad rows reported again)."""
    sorted_out = triage(lines, cutoff)
    bad = Counter(line.reason.value for line in sorted_out.bad)
    count = len(lines)
    _count_lines(state, count, sorted_out, bad)
    state.carried_lines += count
    state.carried_items += len(sorted_out.items)
    stage.hub.publish(
        LinesParsed(state.obj, count, sorted_out.blank, bad, sorted_out.expired, 0, sorted_out.no_fingerprint)
    )


def _count_lines(state: _ObjectState, count: int, sorted_out: Triage, bad: Counter[str]) -> None:
    """What `count` lines of the object were, added to its counts (written or carried alike)."""
    state.lines += count
    state.blank += sorted_out.blank
    state.expired += sorted_out.expired
    state.no_fingerprint += sorted_out.no_fingerprint
    if bad:
        state.bad.update(bad)


async def _submit(stage: _Stage, state: _ObjectState, items: list[ManifestItem]) -> None:
    state.items += len(items)
    if stage.writer is None:
        stage.hub.publish(ItemsAcknowledged(state.obj, len(items), 0, dry_run=True))
        return
    state.pending_batches += 1
    number = state.prefix.submit() if state.prefix is not None else 0
    await stage.batches.put(_Batch([(state, items, number)]))


async def _write_batches(stage: _Stage) -> None:
    writer = stage.writer
    assert writer is not None
    while (batch := await stage.batches.get()) is not None:
        if stage.stop.is_set():
            # Stopping: what is queued for an object whose prefix is kept is left for the resume
            # (only the requests being written finish); an object recorded whole is written whole.
            for state, _, _ in batch.parts:
                if state.prefix is not None:
                    state.abandoned = True
        live = _Batch([part for part in batch.parts if part[0].failure is None and not part[0].abandoned])
        if live.parts:
            try:
                if writer.combines_objects:
                    outcome = await writer.write(live.items)
                else:  # never gathered with others: the batch is one object's
                    outcome = await writer.write_from(live.parts[0][0].obj, live.items)
            except WriteFailed as exc:
                for state, _, _ in live.parts:
                    _fail(state, str(exc))
            else:
                _acknowledge(stage, live, outcome)
        for state, _, _ in batch.parts:
            state.pending_batches -= 1
            _maybe_finish(stage, state)


def _acknowledge(stage: _Stage, batch: _Batch, outcome: WriteOutcome) -> None:
    """Each object's share of a request's outcome (several only in batch mode, where every item
    of an acknowledged request was written: units are shared out by items)."""
    if len(batch.parts) == 1:
        state = batch.parts[0][0]
        shares = [(state, outcome.written, outcome.already_present, 1.0)]
    else:
        total = sum(len(items) for _, items, _ in batch.parts)
        shares = [(state, len(items), 0, len(items) / total) for state, items, _ in batch.parts]
    for state, written, present, share in shares:
        stage.hub.publish(
            ItemsAcknowledged(
                state.obj,
                written,
                present,
                units_reported=outcome.units_reported * share,
                units_counted=outcome.units_counted * share,
            )
        )
    for state, _, number in batch.parts:
        if state.prefix is not None:
            state.prefix.acknowledge(number)


def _publish_prefix(stage: _Stage, state: _ObjectState) -> None:
    """The object's prefix for the checkpoint, when it grew since it was last published."""
    if state.prefix is not None and state.prefix.lines > state.published_lines:
        state.published_lines = state.prefix.lines
        stage.hub.publish(ObjectProgress(state.obj, state.prefix.lines))


async def _sweep_prefixes(stage: _Stage) -> None:
    """Every PROGRESS_SECONDS, the prefixes that grew, all at once: one group for the checkpoint
    (one S3 segment) a second, however many objects are in flight."""
    while True:
        await asyncio.sleep(PROGRESS_SECONDS)
        for state in list(stage.in_flight.values()):
            _publish_prefix(stage, state)


def _publish_prefixes(stage: _Stage) -> None:
    """Every object still in flight as the pipeline ends (a stop, a limit, an error): its prefix."""
    for state in stage.in_flight.values():
        _publish_prefix(stage, state)
    stage.in_flight.clear()


def _fail(state: _ObjectState, reason: str) -> None:
    if state.failure is None:
        state.failure = reason


def _maybe_finish(stage: _Stage, state: _ObjectState) -> None:
    if state.closed or not state.reading_done or state.pending_batches:
        return
    state.closed = True
    if state.carried_lines:
        stage.hub.publish(PrefixCarried(state.obj, state.carried_lines, state.carried_items))
    if state.prefix is not None:
        stage.in_flight.pop(state.obj.key, None)
    if state.failure is not None:
        _publish_prefix(stage, state)  # what is stored of it: the rerun goes on from there
        stage.hub.publish(ObjectFailedEvent(state.obj, state.failure))
    elif state.abandoned:
        _publish_prefix(stage, state)
    else:
        bad_rows = sum(state.bad.values())
        items = state.items + state.carried_items
        stage.hub.publish(ObjectFinished(state.obj, state.lines, items, bad_rows, state.no_fingerprint))
