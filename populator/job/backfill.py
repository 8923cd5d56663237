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
from .checkpoint import SEGMENTS_AT_ONCE, FinishedObject, Journal, S3Checkpoint
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
    async with contextlib.AsyncExitStack() as resources:
        journal = None
        if job.checkpoint is not None and not job.dry_run:
            journal = await _open_journal(job, resources)
            resources.push_async_callback(journal.aclose)
            tally.checkpoint = journal.path
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


async def _open_journal(job: BackfillJob, resources: contextlib.AsyncExitStack) -> Journal:
    """The job's checkpoint: a local file, or segments under an S3 prefix (its own S3 client)."""
    if not isinstance(job.checkpoint, S3Checkpoint):
        assert job.checkpoint is not None
        return Journal.open(job.checkpoint, job.identity, restart=job.restart)
    from ..config.aws import Endpoint, new_session, s3_client
    from ..config.storage import AwsSettings
    from .process import guard

    location = job.checkpoint
    settings = AwsSettings(
        profile=job.profile,
        dynamodb_region=job.storage.region,
        dynamodb_keys=None,
        pool_size=SEGMENTS_AT_ONCE,
    )
    s3 = await resources.enter_async_context(s3_client(new_session(job.profile), settings))
    return await guard(
        Journal.open_s3(s3, location, job.identity, restart=job.restart),
        action=f"using the checkpoint {location}",
        permission="s3:ListBucket, s3:GetObject, s3:PutObject (and s3:DeleteObject for --restart) "
        "on the checkpoint prefix",
        identity="the default credential chain" if job.profile is None else f"profile {job.profile!r}",
        endpoints=(Endpoint.of("S3", s3),),
    )


def _recorder(journal: Journal) -> Subscriber:
    def record(event: Event) -> None:
        if isinstance(event, ObjectFinished):
            obj = event.obj
            journal.record(
                FinishedObject(obj.key, obj.etag, obj.size, event.lines, event.items, event.bad_rows)
            )

    return record
