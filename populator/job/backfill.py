"""One backfill job, end to end: the checkpoint, bad rows, and the work in one process or many.

This is the library entry point the CLI and the demo both call; it raises `UsageError` for
anything a user can fix and returns the tally of what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from ..observe.hub import Event, Hub, ObjectFinished, Subscriber
from ..observe.report import Tally
from .badrows import BadRowFile, BadRowLimit
from .checkpoint import FinishedObject, Journal
from .limits import LimitWatch
from .process import run_in_process
from .spec import BackfillJob


async def run_backfill(
    job: BackfillJob,
    hub: Hub,
    tally: Tally | None = None,
    extra_subscribers: Sequence[Subscriber] = (),
    stop: asyncio.Event | None = None,
) -> Tally:
    """Run the job; every event goes to `hub`. Returns the tally, which it subscribes first.

    `extra_subscribers` come after the tally, so they see its counts already updated. Setting
    `stop` asks for a graceful stop: objects finished by then are recorded, the rest resume later.
    A limit of `job.limits` reached sets it too, and names itself in `tally.limit_reached`.
    """
    tally = tally if tally is not None else Tally(dry_run=job.dry_run)
    tally.price_per_million = job.limits.price_per_million
    hub.subscribe(tally)
    stop = stop if stop is not None else asyncio.Event()
    limit = None
    if job.limits.any and not job.dry_run:
        loop = asyncio.get_running_loop()
        limit = LimitWatch(job.limits, tally, lambda _name: loop.call_soon_threadsafe(stop.set))
        hub.subscribe(limit)
    for subscriber in extra_subscribers:
        hub.subscribe(subscriber)
    with contextlib.ExitStack() as resources:
        journal = None
        if job.checkpoint is not None and not job.dry_run:
            journal = Journal.open(job.checkpoint, job.identity, restart=job.restart)
            resources.callback(journal.close)
            tally.checkpoint = str(job.checkpoint)
            hub.subscribe(_recorder(journal))
        if job.bad_rows_path is not None:
            bad_rows = BadRowFile(job.bad_rows_path)
            resources.callback(bad_rows.close)
            hub.subscribe(bad_rows)
        if job.max_bad_rows is not None:
            hub.subscribe(BadRowLimit(job.max_bad_rows))
        skip = journal.is_finished if journal else None
        deadline = None
        if limit is not None and job.limits.max_duration_s is not None:
            deadline = asyncio.get_running_loop().call_later(
                job.limits.max_duration_s, limit.reached, "max_duration"
            )
            resources.callback(deadline.cancel)
        try:
            if job.processes > 1:
                from .workers import run_in_workers  # multiprocessing is imported only when asked for

                await run_in_workers(job, hub, stop, skip)
            else:
                await run_in_process(job, hub, stop, skip)
        finally:
            tally.finish()
    return tally


def _recorder(journal: Journal) -> Subscriber:
    def record(event: Event) -> None:
        if isinstance(event, ObjectFinished):
            obj = event.obj
            journal.record(
                FinishedObject(obj.key, obj.etag, obj.size, event.lines, event.items, event.bad_rows)
            )

    return record
