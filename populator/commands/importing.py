"""`populator import`: a new manifest table filled by DynamoDB's ImportTable, from the archive.

`build_import_job` validates the arguments as `run` does, plus `--staging`; `execute_import`
runs the job (job/importing.py) with what an operator sees: the staging progress (the same
display as `run`), the import's progress while DynamoDB imports, signals, the summary, logs and
the report. Exit codes: 0 imported, TTL enabled and the sample found; 1 objects that could not
be staged (nothing imported: run again), an import that failed or had item errors, or a sample
missing from the table; 2 usage (an existing table, a staging prefix that is not usable, more
than 50,000 staged objects, --shard); 3 a bug; 130/143 interrupted (while staging: the same
command resumes; while importing: the import goes on in AWS, and the same command reattaches).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import PopulatorError, UsageError
from ..job.checkpoint import default_path
from ..job.importing import (
    DEFAULT_POLL_SECONDS,
    ImportFailed,
    ImportJob,
    delete_staging,
    enable_table_ttl,
    open_import_clients,
    open_journals,
    preflight,
    refuse_an_existing_table,
    request_import,
    seed_tally,
    stage,
    wait_for_import,
)
from ..job.interrupts import GRACE_SECONDS, run_interruptible
from ..job.pipeline import ReadRetryPolicy
from ..job.spec import BackfillJob
from ..observe.hub import Hub
from ..observe.imports import ImportLive, ImportProgressLog, ImportTally, print_import_summary
from ..observe.progress import PROGRESS_LOGGER
from ..observe.report import Tally
from ..sink.pricing import DEFAULT_PRICE_PER_GB_IMPORT, DEFAULT_PRICE_PER_MILLION_WRU
from ..sink.staging import DEFAULT_ITEMS_PER_OBJECT
from ..source.archive import split_s3_url
from .execute import (
    EXIT_FAILED_OBJECTS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    build_job,
    log_bug,
    print_error,
)
from .watch import RunOutputs, RunWatch

log = logging.getLogger("populator.run")
DEFAULT_VERIFY_SAMPLE = 100
IMPORT_WRITERS = 8  # the stager's writes are CPU work between a few S3 uploads: few are needed
STAGING_GC_THRESHOLDS = (50_000, 20, 100)  # gc.set_threshold while staging (the default is 700, 10, 10)


def build_import_job(
    enriched_archive: str,
    storage_config: Path,
    resolver_config: Path,
    *,
    staging: str | None,
    since: str | None = None,
    concurrency: int = 32,
    include_expired: bool = False,
    on_demand: bool = False,
    provisioned: str | None = None,
    profile: str | None = None,
    read_retry: ReadRetryPolicy = ReadRetryPolicy(),  # noqa: B008 - frozen
    checkpoint: Path | None = None,
    restart: bool = False,
    bad_rows: Path | None = None,
    max_bad_rows: int | None = None,
    processes: int = 1,
    shard: str | None = None,
    items_per_object: int = DEFAULT_ITEMS_PER_OBJECT,
    keep_staging: bool = False,
    part_bytes: int | None = None,
    now: float | None = None,
) -> ImportJob:
    """The command line's arguments → a validated import job; UsageError before any AWS call."""
    if shard is not None:
        raise UsageError(
            "--shard: import stages the whole archive from one machine (staging from many machines is not "
            "supported); drop --shard, and use --processes to use this machine's cores."
        )
    if staging is None:
        raise UsageError("--staging is required: an s3://bucket/prefix/ where the staged objects go.")
    where = split_s3_url(staging)
    if where is None or not where[0]:
        raise UsageError(
            f"--staging {staging!r} is not an S3 URL with a bucket: ImportTable reads from S3. Give "
            "s3://bucket/prefix/ (a prefix of its own, empty: the staged objects are deleted after the "
            "import)."
        )
    if items_per_object < 1:
        raise UsageError(f"--items-per-object {items_per_object}: give a number of items of at least 1.")
    if checkpoint is not None and split_s3_url(str(checkpoint).replace(":/", "://", 1)) is not None:
        raise UsageError(
            f"--checkpoint {checkpoint}: import keeps its checkpoint and staging journal on this machine; "
            "give a local file."
        )
    base = build_job(
        enriched_archive,
        storage_config,
        resolver_config,
        since=since,
        concurrency=concurrency,
        writers=IMPORT_WRITERS,
        include_expired=include_expired,
        on_demand=on_demand,
        provisioned=provisioned,
        profile=profile,
        read_retry=read_retry,
        restart=restart,
        bad_rows=bad_rows,
        max_bad_rows=max_bad_rows,
        processes=processes,
        now=now,
    )
    job = ImportJob(
        **{field.name: getattr(base, field.name) for field in fields(BackfillJob)},
        staging_bucket=where[0],
        staging_prefix=where[1],
        items_per_object=items_per_object,
        keep_staging=keep_staging,
        part_bytes=part_bytes,
    )
    return dataclasses.replace(job, checkpoint=checkpoint or default_path(job.identity))


class ImportWatch(RunWatch):
    """`RunWatch` for an import: its report adds the import's fields, and it has a second display
    for the wait on DynamoDB."""

    command_name = "import"
    title = "populator import: staging"

    def __init__(
        self, job: ImportJob, tally: Tally, imports: ImportTally, err: Console, outputs: RunOutputs
    ) -> None:
        super().__init__(job, tally, err, outputs)
        self.imports = imports

    def _job_fields(self) -> dict[str, Any]:
        return {**super()._job_fields(), **self.imports.as_dict()}

    @contextlib.contextmanager
    def import_displays(self) -> Iterator[None]:
        setup = self._setup
        with contextlib.ExitStack() as stack:
            if self.live and setup is not None:
                setup.hide_from_stderr(PROGRESS_LOGGER)
                stack.callback(setup.show_on_stderr, PROGRESS_LOGGER)
                stack.enter_context(ImportLive(self._err, self.imports))
            if not self._outputs.quiet or self._log_file is not None:
                stack.enter_context(ImportProgressLog(self.imports, self._outputs.progress_interval))
            yield


@dataclasses.dataclass(frozen=True)
class ImportOptions:
    verify_sample: int = DEFAULT_VERIFY_SAMPLE
    poll_seconds: float = DEFAULT_POLL_SECONDS
    price_per_gb: float = DEFAULT_PRICE_PER_GB_IMPORT
    price_per_million: float = DEFAULT_PRICE_PER_MILLION_WRU


def execute_import(
    job: ImportJob,
    out: Console,
    err: Console,
    *,
    options: ImportOptions = ImportOptions(),
    outputs: RunOutputs | None = None,
    resume_command: str | None = None,
) -> int:
    """Stage, import, check and clean up, with displays, signals, summary and report; the exit code."""
    tally = Tally()
    tally.price_per_million = options.price_per_million
    imports = ImportTally(
        table=job.storage.table,
        staging=f"s3://{job.staging_bucket}/{job.job_prefix}",
        price_per_gb=options.price_per_gb,
        price_per_million=options.price_per_million,
        keep_staging=job.keep_staging,
    )
    with ImportWatch(job, tally, imports, err, outputs or RunOutputs()) as watch:
        code = _Run(job, tally, imports, watch, out, options, resume_command).execute()
        watch.finish(code)
    return code


class _Run:
    def __init__(
        self,
        job: ImportJob,
        tally: Tally,
        imports: ImportTally,
        watch: ImportWatch,
        out: Console,
        options: ImportOptions,
        resume_command: str | None,
    ) -> None:
        self.job, self.tally, self.imports, self.watch, self.out = job, tally, imports, watch, out
        self.options = options
        self.resume = resume_command
        self.phase = "preparing"  # then "staging", "importing", "finishing"
        self.staged_here = False

    def execute(self) -> int:
        try:
            interruption = asyncio.run(run_interruptible(self.main, on_signal=self.on_signal))
        except KeyboardInterrupt:  # before the event loop took over the signals
            self.watch.error = "interrupted before the import started"
            log.warning("interrupted before anything was staged.")
            return EXIT_INTERRUPTED
        except ImportFailed as exc:
            self.watch.error = str(exc)
            self.summary()
            print_error(None, exc)
            return exc.exit_code
        except PopulatorError as exc:
            self.watch.error = str(exc)
            if self.tally.started_work:
                self.summary()
            print_error(None, exc)
            return exc.exit_code
        except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
            if os.environ.get("POPULATOR_DEBUG"):
                raise
            self.watch.error = log_bug(exc)
            return EXIT_INTERNAL
        self.summary()
        if interruption.first is not None:
            if self.phase == "importing":
                log.warning(
                    "interrupted by %s: the import %s goes on in AWS. Reattach to it (and finish: TTL, "
                    "the sample, the staged objects) with:\n  %s",
                    interruption.first.name,
                    self.imports.import_arn,
                    self.resume or "the same command",
                )
            else:
                log.warning(
                    "interrupted by %s; objects staged are recorded in %s. Resume with:\n  %s",
                    interruption.first.name,
                    self.job.checkpoint,
                    self.resume or "the same command",
                )
            return interruption.exit_code
        if self.tally.failures:
            log.error(
                "%d objects could not be staged (named above); nothing was imported. Run the same command "
                "again: it stages what is missing, then imports.",
                len(self.tally.failures),
            )
            return EXIT_FAILED_OBJECTS
        return EXIT_OK

    def summary(self) -> None:
        print_import_summary(self.out, self.tally, self.imports, staged=self.staged_here)

    def on_signal(self, sig: signal.Signals, first: bool) -> None:
        self.tally.interrupted_by = self.tally.interrupted_by or sig.name
        if first and self.phase == "staging":
            log.warning(
                "%s: stopping: no new object is started, staged objects being written are completed "
                "(at most %.0f s). Send it again to stop at once.",
                sig.name,
                GRACE_SECONDS,
            )

    async def main(self, stop: asyncio.Event) -> None:
        job, hub = self.job, Hub()
        for subscriber in (self.tally, self.imports, *self.watch.subscribers):
            hub.subscribe(subscriber)
        async with contextlib.AsyncExitStack() as stack:
            clients = await open_import_clients(job, stack)
            if job.restart or not job.journal_path.exists():
                await refuse_an_existing_table(job, clients)  # before any file is written
            journals = open_journals(job)
            stack.callback(journals.close)
            seed_tally(self.imports, journals)
            if await preflight(job, journals, clients):
                if stop.is_set():
                    return
                self.phase, self.staged_here = "staging", True
                # Staging keeps many more items alive than a dry run (batches of STAGING_BATCH
                # waiting for the stager), and the cyclic GC kept collecting them: a quarter of
                # staging's CPU on the benchmark archive. Everything alive now (modules, botocore's
                # models, the configs) lives as long as the process and is frozen out of its sight,
                # and it runs less often (forked workers inherit both).
                gc.freeze()
                gc.set_threshold(*STAGING_GC_THRESHOLDS)
                with self.watch.displays():
                    await stage(job, hub, self.tally, journals, stop)
                seed_tally(self.imports, journals)
                if stop.is_set() or self.tally.failures:
                    return
            if stop.is_set():
                return
            state = journals.staging.state
            if not state.staged and state.import_arn is None and state.client_token is None:
                raise UsageError(
                    f"nothing to import: the selected runs of {job.location} hold no item to stage (see the "
                    "summary: bad rows, events without a fingerprint, expired runs?). No table was created."
                )
            self.phase = "importing"
            description = await request_import(job, journals, clients, hub)
            log.info(
                "import %s: %s", description.arn, description.status, extra={"import_arn": description.arn}
            )
            self.imports.waiting_since = time.monotonic()
            with self.watch.import_displays():
                final = await wait_for_import(job, clients, hub, description, stop, self.options.poll_seconds)
            if final is None:
                return
            self.phase = "finishing"
            outcome = {"status": final.status, "imported_items": final.imported_items, "errors": final.errors}
            if not final.succeeded:
                journals.staging.import_finished(outcome)
                raise ImportFailed(
                    f"{final.failure()} The staged objects are kept in {self.imports.staging}."
                )
            await enable_table_ttl(job, clients)
            self.imports.ttl_enabled = True
            await self.check_sample()
            if not job.keep_staging and not journals.staging.state.cleaned:
                deleted = await delete_staging(job, journals, clients)
                log.info("deleted %d staged objects under %s", deleted, self.imports.staging)
            self.imports.staging_deleted = journals.staging.state.cleaned
            journals.staging.import_finished(outcome)

    async def check_sample(self) -> None:
        """A sample of the archive's events read back from the new table, as `verify` does."""
        if self.options.verify_sample <= 0:
            return
        from .verify import verify

        result = await verify(self.job, self.options.verify_sample, now=self.job.pipeline.now)
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


__all__ = ["ImportOptions", "build_import_job", "execute_import", "print_error"]
