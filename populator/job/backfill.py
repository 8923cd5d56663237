"""One job, end to end, whatever its destination: the library entry points.

```
destination.open ─► checkpoint ─► destination.attach (recorders) ─► bad rows, limits
   ─► destination.prepare ─► the pipeline, in one process or many ─► destination.finish
```
`run_backfill` writes to the table (`populator run`); `run_import` stages the items and has
ImportTable create the table (`populator import`). Both are `run_job`, which raises
`PopulatorError`s for anything a user can fix and returns the tally of what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TypedDict, Unpack

from ..observe.hub import Hub, Subscriber
from ..observe.import_progress import ImportTally
from ..observe.report import Tally
from .badrows import BadRowFile, BadRowLimit
from .checkpoint import SEGMENTS_AT_ONCE, Journal, S3Checkpoint
from .destination import Destination, PhaseDisplay
from .faults import Faults
from .limits import LimitWatch
from .process import run_in_process
from .spec import BackfillJob

log = logging.getLogger("populator.run")


def new_tally(job: BackfillJob) -> Tally:
    """The tally a job counts into, priced as the job says."""
    tally = Tally(dry_run=job.dry_run)
    tally.price_per_million = job.limits.price_per_million
    return tally


def new_import_tally(job: BackfillJob) -> ImportTally:
    """What an import counts beyond the tally: staged objects, the import, TTL, the sample."""
    assert job.staging is not None
    return ImportTally(
        table=job.storage.table,
        staging=f"s3://{job.staging.bucket}/{job.staging_folder}",
        price_per_gb=job.staging.price_per_gb,
        price_per_million=job.limits.price_per_million,
        keep_staging=job.staging.keep,
    )


def destination_for(job: BackfillJob, imports: ImportTally | None = None) -> Destination:
    """Where the job's items go: the table, or staged objects and ImportTable."""
    if job.staging is None:
        from .table_destination import TableDestination

        return TableDestination(job)
    from .staging_destination import StagingDestination

    return StagingDestination(job, imports if imports is not None else new_import_tally(job))


class RunOptions(TypedDict, total=False):
    """What a caller may add to a job's run: subscribers after the tally, and a stop to set."""

    extra_subscribers: Sequence[Subscriber]
    stop: asyncio.Event | None


async def run_backfill(
    job: BackfillJob, hub: Hub, tally: Tally | None = None, **options: Unpack[RunOptions]
) -> Tally:
    """Back-fill the table from the archive (`populator run`). Returns the tally.

    `extra_subscribers` come after the tally, so they see its counts already updated. Setting
    `stop` asks for a graceful stop: objects finished by then are recorded, the rest resume later.
    A limit of `job.limits` reached sets it too, and names itself in `tally.limit_reached`.
    """
    if job.staging is not None:
        raise ValueError("run_backfill writes to the table: run a job with a staging prefix with run_import")
    return await run_job(job, hub, tally, **options)


async def run_import(
    job: BackfillJob,
    hub: Hub,
    tally: Tally | None = None,
    imports: ImportTally | None = None,
    **options: Unpack[RunOptions],
) -> tuple[Tally, ImportTally]:
    """Stage the archive's items in S3 and have ImportTable create the table from them
    (`populator import`; `job.staging` says where). Returns the tally and the import's own."""
    if job.staging is None:
        raise ValueError("run_import needs a job with a staging prefix (BackfillJob.staging)")
    imports = imports if imports is not None else new_import_tally(job)
    return await run_job(job, hub, tally, imports=imports, **options), imports


async def run_job(
    job: BackfillJob,
    hub: Hub,
    tally: Tally | None = None,
    *,
    imports: ImportTally | None = None,
    extra_subscribers: Sequence[Subscriber] = (),
    stop: asyncio.Event | None = None,
    display: PhaseDisplay | None = None,
) -> Tally:
    """The one orchestration of both destinations. `display(phase)` is entered around each
    phase (the pipeline's, then an import's wait) by a caller that shows progress."""
    tally = tally if tally is not None else new_tally(job)
    display = display or _no_display
    hub.subscribe(tally)
    if imports is not None:
        hub.subscribe(imports)
    stop = stop if stop is not None else asyncio.Event()
    limit = None
    if job.limits.any and not job.dry_run:
        loop = asyncio.get_running_loop()

        def stop_at_limit(_name: str) -> None:
            loop.call_soon_threadsafe(stop.set)

        limit = LimitWatch(job.limits, tally, stop_at_limit)
        hub.subscribe(limit)
    for subscriber in extra_subscribers:
        hub.subscribe(subscriber)
    faults = Faults()  # an error where nobody awaits it (the checkpoint's timer) ends the run
    await faults.run(_run(job, hub, tally, destination_for(job, imports), stop, display, limit, faults))
    return tally


async def _run(
    job: BackfillJob,
    hub: Hub,
    tally: Tally,
    destination: Destination,
    stop: asyncio.Event,
    display: PhaseDisplay,
    limit: LimitWatch | None,
    faults: Faults,
) -> None:
    async with contextlib.AsyncExitStack() as resources:
        await destination.open(resources)
        journal = None
        if job.checkpoint is not None and not job.dry_run:
            journal = await _open_journal(job, hub, resources)
            resources.push_async_callback(journal.aclose)
            journal.report_failures_to(faults.report)
            tally.checkpoint = journal.path
        earlier = destination.attach(journal, hub, resources)
        if journal is not None and (journal.finished_count or journal.partly_done):
            log.info(
                "resuming from %s: %s objects finished earlier, %s part-way (the lines of theirs "
                "already written are read, not written again)",
                journal.path,
                f"{journal.finished_count:,}",
                f"{journal.partly_done:,}",
                extra={"resumed_objects": journal.finished_count, "partly_done": journal.partly_done},
            )
        if job.bad_rows_path is not None:
            bad_rows = BadRowFile(job.bad_rows_path)
            resources.callback(bad_rows.close)
            hub.subscribe(bad_rows)
        if job.max_bad_rows is not None:
            hub.subscribe(BadRowLimit(job.max_bad_rows))
        if limit is not None and job.limits.max_duration_s is not None:
            deadline = asyncio.get_running_loop().call_later(
                job.limits.max_duration_s, limit.reached, "max_duration"
            )
            resources.callback(deadline.cancel)
        if await destination.prepare(resources) and not stop.is_set():
            with display(destination.phase):
                try:
                    if job.processes > 1:
                        from .workers import run_in_workers  # multiprocessing only when asked for

                        await run_in_workers(job, hub, stop, earlier, destination.writers)
                    else:
                        await run_in_process(job, hub, stop, earlier, destination.writers)
                finally:
                    tally.finish()
        if stop.is_set() or tally.failures:
            return
        await destination.finish(hub, stop, display)


@contextlib.contextmanager
def _no_display(_phase: str) -> Iterator[None]:
    yield


async def _open_journal(job: BackfillJob, hub: Hub, resources: contextlib.AsyncExitStack) -> Journal:
    """The job's checkpoint: a local file, or segments under an S3 prefix (its own S3 client)."""
    if not isinstance(job.checkpoint, S3Checkpoint):
        assert job.checkpoint is not None
        return Journal.open(job.checkpoint, job.identity, restart=job.restart)
    from ..config.aws import Endpoint, new_session, s3_client
    from ..config.storage import AwsSettings
    from .clients import guard, outage_watch

    location = job.checkpoint
    settings = AwsSettings(
        profile=job.profile,
        dynamodb_region=job.storage.region,
        dynamodb_keys=None,
        pool_size=SEGMENTS_AT_ONCE,
        request_timeout=job.request_timeout,
    )
    s3 = await resources.enter_async_context(s3_client(new_session(job.profile), settings))
    journal: Journal = await guard(
        Journal.open_s3(s3, location, job.identity, restart=job.restart, outage=outage_watch("S3", job, hub)),
        action=f"using the checkpoint {location}",
        permission="s3:ListBucket, s3:GetObject, s3:PutObject (and s3:DeleteObject for --restart) "
        "on the checkpoint prefix",
        identity="the default credential chain" if job.profile is None else f"profile {job.profile!r}",
        endpoints=(Endpoint.of("S3", s3),),
    )
    return journal
