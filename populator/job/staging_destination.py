"""`populator import`'s destination: the items staged in S3, then ImportTable.

Each process's writer is a `Stager` (sink/staging.py) that streams the items into gzip
DynamoDB-JSON objects under `<staging>/<job id>/data/`; the parent refuses an existing table
and checks the staging prefix before anything is staged (`staging_checks`), records staged
objects (`staging_records`), and finishes with the import itself (`table_import`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..observe.hub import (
    Event,
    Hub,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectStaged,
    StagedUploadAborted,
    StagedUploadStarted,
)
from ..observe.import_progress import ImportTally
from ..sink.staging import HeldObject, Stager
from ..sink.writes import TableInfo
from .checkpoint import Journal
from .clients import Clients, open_clients, outage_watch
from .destination import IMPORTING, STAGING, EarlierRun, PhaseDisplay, ProcessParts
from .spec import BackfillJob
from .staging_checks import journal_header, preflight, refuse_an_existing_table, staging_of
from .staging_journal import journal_path
from .staging_records import Journals, Recorder, open_journals, seed_tally
from .table_import import ImportFailed, delete_staging, enable_table_ttl, request_import, wait_for_import

log = logging.getLogger("populator.run")
# gc.set_threshold while staging (the default is 700, 10, 10); see StagingDestination.prepare.
STAGING_GC_THRESHOLDS = (50_000, 20, 100)


class StagingWriters:
    """Each process's writer: a `Stager` on the process's S3 client, told by the process's hub
    when an archive object settles, closed (or aborted, after an error) with the process."""

    stores_on_acknowledge = False  # staged items are stored once their staged object is uploaded

    async def ready(self, job: BackfillJob, clients: Clients, hub: Hub) -> TableInfo | None:
        return None  # ImportTable creates the table at the end

    async def open_writer(self, process: ProcessParts) -> Stager:
        job, clients, hub, stack = process.job, process.clients, process.hub, process.stack
        staging = staging_of(job)
        s3 = clients.s3
        if s3 is None:  # a local archive: staging still needs S3
            from ..config.aws import s3_client

            s3 = await stack.enter_async_context(s3_client(clients.session, clients.settings))
        options: dict[str, Any] = {"items_per_object": staging.items_per_object}
        if staging.part_bytes is not None:
            options["part_bytes"] = staging.part_bytes
        stager = Stager(
            s3,
            staging.bucket,
            job.staged_data_prefix,
            on_upload_started=lambda key, upload_id: hub.publish(StagedUploadStarted(key, upload_id)),
            on_staged=lambda staged: hub.publish(ObjectStaged(staged)),
            on_aborted=lambda key, upload_id: hub.publish(StagedUploadAborted(key, upload_id)),
            # The staging prefix answered the parent's checks before anything was staged.
            outage=outage_watch("S3", job, hub, proven=True),
            **options,
        )

        def settle(event: Event) -> None:
            if isinstance(event, ObjectFinished) and event.items:
                obj = event.obj
                stager.object_finished(
                    HeldObject(obj.key, obj.etag, obj.size, event.lines, event.items, event.bad_rows)
                )
            elif isinstance(event, ObjectFailedEvent):
                stager.object_failed(event.obj.key)

        hub.subscribe(settle)

        async def end(kind: type[BaseException] | None, *_: object) -> bool:
            if kind is None:
                await stager.close()
            else:
                await stager.abort()
            return False

        stack.push_async_exit(end)
        return stager


class StagingDestination:
    """The parent's side of an import, from the refusal of an existing table to the clean-up."""

    phase = STAGING

    def __init__(self, job: BackfillJob, imports: ImportTally) -> None:
        self.job = job
        self.imports = imports
        self.writers = StagingWriters()
        self._clients: Clients | None = None
        self._journals: Journals | None = None

    @property
    def _checkpoint_path(self) -> Path:
        checkpoint = self.job.checkpoint
        assert isinstance(checkpoint, Path), "an import keeps its checkpoint on this machine"
        return checkpoint

    @property
    def clients(self) -> Clients:
        assert self._clients is not None, "open() first"
        return self._clients

    @property
    def journals(self) -> Journals:
        assert self._journals is not None, "attach() first"
        return self._journals

    async def open(self, resources: contextlib.AsyncExitStack) -> None:
        """S3 (for the archive and the staging) and DynamoDB; an existing table is refused
        before any file is written, unless a journal says this job already began."""
        job = self.job
        clients = await open_clients(job, resources)
        if clients.s3 is None:
            from ..config.aws import Endpoint, s3_client

            clients.s3 = await resources.enter_async_context(s3_client(clients.session, clients.settings))
            clients.endpoints["S3"] = Endpoint.of("S3", clients.s3)
        self._clients = clients
        if job.restart or not journal_path(self._checkpoint_path).exists():
            await refuse_an_existing_table(job, clients)

    def attach(
        self, checkpoint: Journal | None, hub: Hub, resources: contextlib.AsyncExitStack
    ) -> EarlierRun | None:
        """The staging journal, next to the checkpoint: staged objects go to both."""
        assert checkpoint is not None, "an import always keeps a checkpoint"
        job = self.job
        path = journal_path(self._checkpoint_path)
        journals = open_journals(checkpoint, path, journal_header(job), job.restart)
        resources.callback(journals.staging.close)
        self._journals = journals
        seed_tally(self.imports, journals)
        resources.callback(seed_tally, self.imports, journals)  # what this run staged, however it ends
        hub.subscribe(Recorder(journals))
        return EarlierRun(journals.is_done)

    async def prepare(self, resources: contextlib.AsyncExitStack) -> bool:
        """The checks before staging; False when the import was already asked for."""
        if not await preflight(self.job, self.journals, self.clients):
            return False
        self.imports.staging_ran = True
        # Staging keeps many more items alive than a dry run (batches of STAGING_BATCH waiting
        # for the stager), and the cyclic GC kept collecting them: a quarter of staging's CPU on
        # the benchmark archive. Everything alive now (modules, botocore's models, the configs)
        # lives as long as the process and is frozen out of its sight, and it runs less often
        # (forked workers inherit both).
        gc.freeze()
        gc.set_threshold(*STAGING_GC_THRESHOLDS)
        return True

    async def finish(self, hub: Hub, stop: asyncio.Event, display: PhaseDisplay) -> None:
        job, journals, clients, imports = self.job, self.journals, self.clients, self.imports
        seed_tally(imports, journals)  # what this run staged
        state = journals.staging.state
        if not state.staged and state.import_arn is None and state.client_token is None:
            raise UsageError(
                f"nothing to import: the selected runs of {job.location} hold no item to stage (see the "
                "summary: bad rows, events without a fingerprint, expired runs?). No table was created."
            )
        description = await request_import(job, journals, clients, hub)
        log.info("import %s: %s", description.arn, description.status, extra={"import_arn": description.arn})
        imports.waiting_since = time.monotonic()
        with display(IMPORTING):
            final = await wait_for_import(job, clients, hub, description, stop, staging_of(job).poll_seconds)
        if final is None:
            return
        outcome = {"status": final.status, "imported_items": final.imported_items, "errors": final.errors}
        if not final.succeeded:
            journals.staging.import_finished(outcome)
            raise ImportFailed(f"{final.failure()} The staged objects are kept in {imports.staging}.")
        await enable_table_ttl(job, clients)
        imports.ttl_enabled = True
        await self._check_sample()
        if not staging_of(job).keep and not journals.staging.state.cleaned:
            deleted = await delete_staging(job, journals, clients)
            log.info("deleted %d staged objects under %s", deleted, imports.staging)
        imports.staging_deleted = journals.staging.state.cleaned
        journals.staging.import_finished(outcome)

    async def _check_sample(self) -> None:
        """A sample of the archive's events read back from the new table, as `verify` does."""
        sample = staging_of(self.job).verify_sample
        if sample <= 0:
            return
        from .verify import verify

        result = await verify(self.job, sample, now=self.job.pipeline.now)
        self.imports.sample_checked = result.checked
        self.imports.sample_missing = len(result.missing)
        if result.missing:
            first = result.missing[0]
            raise ImportFailed(
                f"{len(result.missing):,} of {result.checked:,} sampled events are missing from the imported "
                f"table (the first: eventId {first.key[0]}, fingerprint {first.key[1]}, {first.obj} line "
                f"{first.line}). The staged objects are kept in {self.imports.staging}; `populator run` into "
                "the table adds what is missing."
            )
