"""One process's share of a job: its clients, its destination's writer, the pipeline.

`run_in_process` is the whole job when `--processes 1`, and each worker's part otherwise (see
workers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence

from ..observe.hub import Hub
from ..source.archive import ArchiveObject
from .clients import guard_pipeline, open_clients, outage_watch
from .destination import EarlierRun, ProcessParts, WorkerShare, WriterFactory
from .pipeline import run_pipeline
from .spec import BackfillJob


async def run_in_process(
    job: BackfillJob,
    hub: Hub,
    stop: asyncio.Event | None,
    earlier: EarlierRun | None,
    writers: WriterFactory,
    source: AsyncIterator[ArchiveObject] | None = None,
    *,
    worker: WorkerShare | None = None,
) -> None:
    """The whole pipeline in this process: the destination made ready, then its writer fed.

    A worker process (`worker` given) reads what its parent hands it (`source`), writes to the
    table its parent made ready, and paces itself at its share of one rate controller.
    """
    async with contextlib.AsyncExitStack() as stack:
        clients = await open_clients(job, stack)
        if worker is None:
            table = await writers.ready(job, clients, hub)
        else:
            table = worker.table
        rate = worker.rate if worker is not None else None
        # A worker's S3 answered its parent's listing: an S3 that then stops answering is an outage.
        s3_outage = (
            outage_watch("S3", job, hub, proven=worker is not None) if clients.s3 is not None else None
        )
        parts = ProcessParts(job, clients, hub, stack, table, rate)
        writer = await writers.open_writer(parts)
        await guard_pipeline(
            job,
            clients,
            until_a_helper_fails(
                parts.helpers,
                run_pipeline(
                    job.pipeline,
                    hub,
                    writer=writer,
                    s3=clients.s3,
                    stop=stop,
                    skip=earlier.finished if earlier is not None else None,
                    resume=earlier.lines_done if earlier is not None else None,
                    source=source,
                    keep_prefixes=writers.stores_on_acknowledge,
                    s3_outage=s3_outage,
                ),
            ),
        )


async def until_a_helper_fails(helpers: Sequence[asyncio.Task[None]], work: Awaitable[None]) -> None:
    """Await `work`; a helper task (one that runs until cancelled) that fails first cancels it and
    its error is raised instead: a task nobody awaits must not die unseen."""
    main = asyncio.ensure_future(work)
    watched: set[asyncio.Future[None]] = {main, *helpers}
    try:
        while True:
            done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if main in done:
                return main.result()
            for helper in done:
                failure = None if helper.cancelled() else helper.exception()
                if failure is not None:
                    raise failure
    finally:
        if not main.done():
            main.cancel()
            await asyncio.wait((main,))
