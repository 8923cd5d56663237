"""`--processes P`: one parent, P worker processes, each with its own event loop.

Parsing and request signing are CPU-bound, and one Python process uses one core. The parent
lists the archive, creates the table, and hands objects one at a time to whichever worker asks
next (a shared queue, so a few big objects still spread evenly). Each worker runs the ordinary
pipeline on what it is handed, with 1/P of the write-rate budget, and sends its events back in
small batches. The parent republishes them on its own hub, so the progress display, the summary,
the bad-row file and the one checkpoint journal see a single job.

```
parent: list ──► object queue (bounded) ──► worker 1..P: read, parse, write ──► event queue ──► hub
```

Workers are forked, so they start in milliseconds with everything already imported. They ignore
SIGINT (the parent owns signals and tells them to stop), and exit on their own if the parent
dies, so `kill -9` of the parent leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import multiprocessing.queues
import multiprocessing.synchronize
import os
import queue
import signal
import time
from collections.abc import AsyncIterator, Callable
from multiprocessing.sharedctypes import Synchronized
from typing import Any, TypeVar

from ..errors import EXIT_INTERNAL, PopulatorError, WorkerFailed
from ..observe.hub import (
    BytesRead,
    Event,
    Hub,
    ItemsAcknowledged,
    LinesParsed,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
    ObjectSkipped,
    RunsSelected,
)
from ..sink.ratelimit import SharedControllerState
from ..sink.writes import TableInfo
from ..source.archive import ArchiveObject, list_archive
from .clients import guard_pipeline, open_clients, outage_watch
from .destination import EarlierRun, RateSharing, WorkerShare, WriterFactory
from .process import run_in_process
from .spec import BackfillJob

FLUSH_SECONDS = 0.1
FLUSH_EVENTS = 256
# Settled objects a worker reports together (or within SETTLED_SECONDS): the parent frees their
# slots and records them; one message an object was a third of a small object's cost.
FLUSH_SETTLED = 8
SETTLED_SECONDS = 0.005
POLL_SECONDS = 0.1
DRAIN_MESSAGES = 256  # taken from a queue in one trip to a thread, when that many wait


# ----------------------------------------------------------------------------- messages
# What goes through the queues, pickled. Parent to worker, on its object queue: `TableKnown`
# first, then the objects, then None (also where `TableKnown` would be, for a worker given no
# work). Worker to parent, on its events queue: `WorkerEvents`, then `WorkerDone` or `WorkerFatal`.


@dataclasses.dataclass(frozen=True, slots=True)
class TableKnown:
    """Work is coming, and this is the table (None: a dry run, or a sink other than the table)."""

    table: TableInfo | None


@dataclasses.dataclass(frozen=True, slots=True)
class ResumeFrom:
    """An object to read whose first `lines` lines an earlier run wrote every item of."""

    obj: ArchiveObject
    lines: int


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerEvents:
    """A batch of a worker's events, for the parent's hub."""

    index: int
    events: list[Event]


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerDone:
    """The worker finished its share (its last message)."""

    index: int


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerFatal:
    """The worker hit an error that stops the job, and the exit code it carries (its last message)."""

    index: int
    exit_code: int
    message: str


ObjectMessage = TableKnown | ArchiveObject | ResumeFrom | None
WorkerMessage = WorkerEvents | WorkerDone | WorkerFatal
_T = TypeVar("_T")


def _get_any(channels: list[multiprocessing.queues.Queue[_T]], timeout: float) -> list[_T]:
    """What waits in any of `channels` (waiting up to `timeout` for one); raises queue.Empty.
    `_reader` is the queue's pipe end: multiprocessing's Queue offers no public way to wait on
    several, and `connection.wait` is how its own Pool does it."""
    # typeshed does not declare the private `_reader`; there is no public alternative (see above)
    readers = [channel._reader for channel in channels]  # type: ignore[attr-defined]
    ready = multiprocessing.connection.wait(readers, timeout)
    messages: list[_T] = []
    for channel, reader in zip(channels, readers, strict=True):
        if reader in ready:
            with contextlib.suppress(queue.Empty):
                messages += _get_many(channel, 0.0)
    if not messages:
        raise queue.Empty
    return messages


def _get_many(
    channel: multiprocessing.queues.Queue[_T], timeout: float, limit: int = DRAIN_MESSAGES
) -> list[_T]:
    """The next message (waiting up to `timeout`), and those already behind it: one hop to a
    thread for a bunch instead of one a message. Raises queue.Empty when none came."""
    messages = [channel.get(True, timeout)]
    while len(messages) < limit and messages[-1] is not None:
        try:
            messages.append(channel.get_nowait())
        except queue.Empty:
            break
    return messages


async def run_in_workers(
    job: BackfillJob,
    hub: Hub,
    stop: asyncio.Event | None,
    earlier: EarlierRun | None,
    writers: WriterFactory,
) -> None:
    """The parent's side, for a job with `processes > 1`; each worker opens a writer of `writers`."""
    stop = stop or asyncio.Event()
    pool = _Pool(job, writers)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = await open_clients(job, stack)
            pool.release(await writers.ready(job, clients, hub))
            await guard_pipeline(job, clients, _list_and_dispatch(job, clients.s3, pool, hub, stop, earlier))
    finally:
        pool.shutdown()


async def _list_and_dispatch(
    job: BackfillJob,
    s3: Any,
    pool: _Pool,
    hub: Hub,
    stop: asyncio.Event,
    earlier: EarlierRun | None,
) -> None:
    outage = outage_watch("S3", job, hub) if s3 is not None else None
    runs, objects = await list_archive(
        job.pipeline.location, job.pipeline.since, s3, job.pipeline.shard, outage=outage
    )
    hub.publish(RunsSelected(runs))
    # One group: the collector republishes the workers' events on this hub, so a subscriber that
    # raises (--max-bad-rows reached, the checkpoint or --bad-rows on a full disk) ends it; then
    # the dispatcher, which may be waiting for a slot only the collector frees, is cancelled
    # instead of waiting forever, and the error ends the run.
    async with asyncio.TaskGroup() as group:
        collector = group.create_task(pool.collect(hub, stop))
        group.create_task(_dispatch(objects, pool, hub, stop, earlier, collector))


async def _dispatch(
    objects: AsyncIterator[ArchiveObject],
    pool: _Pool,
    hub: Hub,
    stop: asyncio.Event,
    earlier: EarlierRun | None,
    collector: asyncio.Task[None],
) -> None:
    """Hand the listed objects to the workers, then tell them there are no more."""
    skip = earlier.finished if earlier is not None else None
    lines_done = earlier.lines_done if earlier is not None else None
    count = size = 0
    async for obj in objects:
        if stop.is_set() or collector.done():
            break
        count += 1
        size += obj.size
        if skip is not None and skip(obj):
            hub.publish(ObjectSkipped(obj))  # listed and done before: one event for both
            continue
        hub.publish(ObjectListed(obj))
        await pool.dispatch(obj, stop, lines_done(obj) if lines_done is not None else 0)
    else:
        hub.publish(ListingDone(count, size))
    if stop.is_set():
        pool.stop()
    pool.close_queues()


class _Pool:
    """P forked workers, one object queue each, and the queue of their events.

    The parent pushes each object to the worker with the fewest bytes outstanding, keeping each
    worker at most `--concurrency / P` objects ahead: a shared queue let the first worker to ask
    take every object of a small archive while the other idled (measured).
    """

    def __init__(self, job: BackfillJob, destination: WriterFactory) -> None:
        context = multiprocessing.get_context("fork")
        self.size = job.processes
        self._slots = max(1, -(-job.pipeline.concurrency // self.size))
        writers = max(1, -(-job.pipeline.writers // self.size))
        self._queues: list[multiprocessing.queues.Queue[ObjectMessage]] = [
            context.Queue() for _ in range(self.size)
        ]
        # One events queue a worker, never one shared: a queue's writers share a lock, and a worker
        # killed while its feeder thread held it left every other worker blocked on it for good
        # (seen: a run that never ended after one worker was SIGKILLed).
        self._events: list[multiprocessing.queues.Queue[WorkerMessage]] = [
            context.Queue() for _ in range(self.size)
        ]
        self._ready = context.Event()
        self._stop = context.Event()
        self._owner: dict[str, tuple[int, ArchiveObject]] = {}
        self._load = [0] * self.size  # bytes outstanding per worker
        self._count = [0] * self.size  # objects outstanding per worker
        self._table: TableInfo | None = None
        self._working = False
        self._freed: asyncio.Event | None = None
        # One rate controller for the whole job, in shared memory: each worker paces 1/P of it.
        self._rate = RateSharing(SharedControllerState(context), 1.0 / self.size)
        # The write units every worker consumed, summed as they are acknowledged: each worker
        # stops itself at a units budget, instead of waiting for the parent to hear of it (its
        # events come in batches, and a worker looks at the stop flag ten times a second).
        budget = job.limits.units_limit() if not job.dry_run else None
        self._budget = SharedBudget(context.Value("d", 0.0), budget[0]) if budget is not None else None
        worker_job = dataclasses.replace(
            job,
            processes=1,
            checkpoint=None,
            bad_rows_path=None,
            max_bad_rows=None,
            pipeline=dataclasses.replace(job.pipeline, concurrency=self._slots, writers=writers),
        )
        parent = os.getpid()
        self._processes = [
            context.Process(
                target=_worker_main,
                args=(
                    WorkerSetup(
                        worker_job,
                        index,
                        parent,
                        self._queues[index],
                        self._events[index],
                        self._ready,
                        self._stop,
                        self._rate,
                        destination,
                        self._budget,
                    ),
                ),
                name=f"populator-worker-{index}",
                daemon=True,
            )
            for index in range(self.size)
        ]
        for process in self._processes:
            process.start()

    def release(self, table: TableInfo | None) -> None:
        """The table exists: workers may open their clients and start, once there is work. Each is
        told what the table is, so that none describes it again: a worker that could not would
        stop the job."""
        self._table = table

    def _start_work(self) -> None:
        # Workers open their AWS clients only when the first object comes: a resume that skips
        # every object never pays for P sets of clients (a third of a second, measured).
        if not self._working:
            self._working = True
            for channel in self._queues:
                channel.put(TableKnown(self._table))
            self._ready.set()

    def stop(self) -> None:
        self._stop.set()

    async def dispatch(self, obj: ArchiveObject, stop: asyncio.Event, lines_done: int = 0) -> None:
        """Hand `obj` to the least loaded worker with a free slot (waiting for one), with the
        lines of it an earlier run wrote."""
        if self._freed is None:
            self._freed = asyncio.Event()
        while True:
            if stop.is_set() or self._stop.is_set():
                return
            alive = [i for i in range(self.size) if self._processes[i].is_alive()]
            if not alive:
                return  # nobody left to take it; the collector reports what did not finish
            free = [i for i in alive if self._count[i] < self._slots]
            if free:
                break
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), POLL_SECONDS)
        index = min(free, key=lambda i: self._load[i])
        self._start_work()
        self._owner[obj.key] = (index, obj)
        self._load[index] += obj.size
        self._count[index] += 1
        self._queues[index].put(ResumeFrom(obj, lines_done) if lines_done else obj)

    def close_queues(self) -> None:
        # A worker never given work reads this None where the table would be, and ends at once.
        for channel in self._queues:
            channel.put(None)
        self._ready.set()

    def _settled(self, key: str) -> None:
        owned = self._owner.pop(key, None)
        if owned is None:
            return
        index, obj = owned
        self._load[index] -= obj.size
        self._count[index] -= 1
        if self._freed is not None:
            self._freed.set()

    async def collect(self, hub: Hub, stop: asyncio.Event) -> None:
        """Republish worker events until every worker has said it is done (or died)."""
        loop = asyncio.get_running_loop()
        running = set(range(self.size))
        while running:
            if stop.is_set():
                self._stop.set()
            try:
                messages = await loop.run_in_executor(None, _get_any, self._events, POLL_SECONDS)
            except queue.Empty:
                for index in list(running):
                    if not self._processes[index].is_alive():
                        running.discard(index)
                        self._worker_vanished(index, hub)
                continue
            for message in messages:
                match message:
                    case WorkerEvents(index, events):
                        for event in events:
                            self._republish(index, event, hub)
                    case WorkerDone(index):
                        running.discard(index)
                    case WorkerFatal(_, exit_code, text):
                        self._stop.set()
                        raise WorkerFailed(text, exit_code)

    def _republish(self, index: int, event: Event, hub: Hub) -> None:
        hub.publish(event)  # RateChanged included: every worker reports the one shared controller
        if isinstance(event, ObjectFinished | ObjectFailedEvent):
            self._settled(event.obj.key)

    def _worker_vanished(self, index: int, hub: Hub) -> None:
        """Killed, out of memory...: the objects it held did not finish."""
        if self._stop.is_set():
            return
        code = self._processes[index].exitcode
        for key, (owner, obj) in list(self._owner.items()):
            if owner == index:
                hub.publish(
                    ObjectFailedEvent(obj, f"worker process {index} exited unexpectedly (code {code})")
                )
                self._settled(key)

    def shutdown(self) -> None:
        self._stop.set()
        self._ready.set()
        deadline = time.monotonic() + 5
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.kill()
                process.join(1)
        channels: list[multiprocessing.queues.Queue[Any]] = [*self._queues, *self._events]
        for channel in channels:
            channel.cancel_join_thread()
            channel.close()


_Counting = BytesRead | LinesParsed | ItemsAcknowledged  # summed per object by a worker


def _merge(known: _Counting, event: _Counting) -> _Counting:
    """Two counting events of one object as one (of one type: the forwarder's key holds it)."""
    if isinstance(event, BytesRead) and isinstance(known, BytesRead):
        return BytesRead(event.obj, known.count + event.count)
    if isinstance(event, LinesParsed) and isinstance(known, LinesParsed):
        return LinesParsed(
            event.obj,
            known.lines + event.lines,
            known.blank + event.blank,
            known.bad + event.bad,
            known.expired + event.expired,
            known.merged + event.merged,
            known.no_fingerprint + event.no_fingerprint,
        )
    if isinstance(event, ItemsAcknowledged) and isinstance(known, ItemsAcknowledged):
        return ItemsAcknowledged(
            event.obj,
            known.written + event.written,
            known.already_present + event.already_present,
            event.dry_run,
            known.units_reported + event.units_reported,
            known.units_counted + event.units_counted,
        )
    raise TypeError(f"cannot merge {type(known).__name__} with {type(event).__name__}")


# ----------------------------------------------------------------------------- worker side


@dataclasses.dataclass(frozen=True)
class SharedBudget:
    """A write-unit budget (`--max-write-units`, `--max-cost`) shared by every worker: the units
    consumed, in shared memory, and the most they may reach."""

    consumed: Synchronized[float]
    allowed: float

    def watch(self, stopping: asyncio.Event) -> Callable[[Event], None]:
        """A worker's subscriber: adds the units of each acknowledgement, stops at the budget."""

        def count(event: Event) -> None:
            if isinstance(event, ItemsAcknowledged) and not event.dry_run:
                with self.consumed.get_lock():
                    self.consumed.value += event.units_reported + event.units_counted
                    spent = self.consumed.value
                if spent >= self.allowed:
                    stopping.set()

        return count


@dataclasses.dataclass(frozen=True)
class WorkerSetup:
    """What one worker process is started with: its job, who it is, and its ends of the parent's
    queues, events and rate controller.

    A plain module-level dataclass of picklable fields: handed over as it is to a forked worker,
    and it would pickle for a spawned one (multiprocessing's queues and events pickle while a
    process is being started).
    """

    job: BackfillJob  # the job as a worker runs it: one process, its share of the slots, no journal
    index: int  # the worker's number, 0 to P-1, on every message it sends
    parent: int  # the parent's pid: a worker whose parent is gone exits
    objects: multiprocessing.queues.Queue[ObjectMessage]  # from the parent: TableKnown, objects, None
    events: multiprocessing.queues.Queue[WorkerMessage]  # to the parent: WorkerEvents, then Done or Fatal
    ready: multiprocessing.synchronize.Event  # the table exists and there is work
    stop: multiprocessing.synchronize.Event  # the parent says stop
    rate: RateSharing  # this worker's share of the one shared rate controller
    writers: WriterFactory  # the destination's part in each process
    budget: SharedBudget | None = None  # the write units all workers may consume together


def _worker_main(setup: WorkerSetup) -> None:
    signal.set_wakeup_fd(-1)  # the parent's event loop owned it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    events, index = setup.events, setup.index
    try:
        asyncio.run(_worker(setup))
    except PopulatorError as exc:
        events.put(WorkerFatal(index, exc.exit_code, str(exc)))
    except BaseException as exc:  # reported, not raised: the parent turns it into the exit code
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        message = f"worker {index}: internal error: {type(exc).__name__}: {exc}"
        events.put(WorkerFatal(index, EXIT_INTERNAL, message))
    else:
        events.put(WorkerDone(index))
    finally:
        events.close()
        events.join_thread()


async def _worker(setup: WorkerSetup) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    watcher = asyncio.create_task(_watch_parent(setup.parent, setup.stop, stopping))
    try:
        while not setup.ready.is_set():
            if stopping.is_set():
                return
            await asyncio.sleep(POLL_SECONDS / 10)
        told = await _next_message(setup.objects, loop, stopping)  # TableKnown
        if told is None:
            return
        assert isinstance(told, TableKnown), told
        hub = Hub()
        forward = _Forwarder(setup.events, setup.index)
        hub.subscribe(forward)
        if setup.budget is not None:
            hub.subscribe(setup.budget.watch(stopping))
        flusher = asyncio.create_task(forward.run())
        try:
            resume_points: dict[str, int] = {}
            source = _objects_from(setup.objects, loop, stopping, resume_points)
            # The parent skipped what earlier runs finished; it tells each object's prefix with it.
            earlier = EarlierRun(lambda _obj: False, lambda obj: resume_points.pop(obj.key, 0))
            await run_in_process(
                setup.job,
                hub,
                stopping,
                earlier,
                setup.writers,
                source,
                worker=WorkerShare(told.table, setup.rate),
            )
        finally:
            flusher.cancel()
            forward.flush()
    finally:
        watcher.cancel()


async def _watch_parent(
    parent: int, stop: multiprocessing.synchronize.Event, stopping: asyncio.Event
) -> None:
    """Stop when the parent says so; exit at once if the parent is gone (kill -9)."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        if stop.is_set():
            stopping.set()
        await asyncio.sleep(POLL_SECONDS)


async def _next_message(
    objects: multiprocessing.queues.Queue[ObjectMessage],
    loop: asyncio.AbstractEventLoop,
    stopping: asyncio.Event,
) -> ObjectMessage:
    """The next message from the parent; None when told to stop first."""
    while not stopping.is_set():
        try:
            return await loop.run_in_executor(None, objects.get, True, POLL_SECONDS)
        except queue.Empty:
            continue
    return None


async def _objects_from(
    objects: multiprocessing.queues.Queue[ObjectMessage],
    loop: asyncio.AbstractEventLoop,
    stopping: asyncio.Event,
    resume_points: dict[str, int],
) -> AsyncIterator[ArchiveObject]:
    """The objects the parent hands this worker; their prefixes go into `resume_points`."""
    while not stopping.is_set():
        try:
            batch = await loop.run_in_executor(None, _get_many, objects, POLL_SECONDS)
        except queue.Empty:
            continue
        for obj in batch:
            if obj is None:
                return
            if isinstance(obj, ResumeFrom):
                resume_points[obj.obj.key] = obj.lines
                obj = obj.obj
            assert isinstance(obj, ArchiveObject), obj  # TableKnown comes only first
            yield obj


class _Forwarder:
    """Sends a worker's events to the parent in batches (pickling one by one costs too much).

    The frequent counting events (bytes read, lines parsed, items acknowledged) are summed per
    object between flushes; every other event goes as it is, in order.
    """

    def __init__(self, events: multiprocessing.queues.Queue[WorkerMessage], index: int) -> None:
        self._events = events
        self._index = index
        self._buffer: list[Event] = []
        self._sums: dict[tuple[type[_Counting], str], _Counting] = {}
        self._settled = 0
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, BytesRead | LinesParsed | ItemsAcknowledged):
            key = (type(event), event.obj.key)
            known = self._sums.get(key)
            self._sums[key] = event if known is None else _merge(known, event)
            return
        self._flush_sums()  # keep counts ahead of the events that depend on them
        self._buffer.append(event)
        if isinstance(event, ObjectFinished | ObjectFailedEvent):
            self._settled += 1
            if self._settled < FLUSH_SETTLED and len(self._buffer) < FLUSH_EVENTS:
                if self._timer is None:  # soon, not at once: the parent waits for it to free a slot
                    self._timer = asyncio.get_running_loop().call_later(SETTLED_SECONDS, self.flush)
                return
        if len(self._buffer) >= FLUSH_EVENTS or self._settled >= FLUSH_SETTLED:
            self.flush()

    def _flush_sums(self) -> None:
        if self._sums:
            self._buffer.extend(self._sums.values())
            self._sums = {}

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._settled = 0
        self._flush_sums()
        if self._buffer:
            self._events.put(WorkerEvents(self._index, self._buffer))
            self._buffer = []

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()
