"""A job from the command line's arguments, and a job run with everything an operator sees.

`build_job` and `execute` are what `run` and `demo` share: parsing into a validated
`BackfillJob`, then progress, signals, summary, logs and report around `run_backfill`, and the
exit code. Exit codes: 0 every selected object written; 1 some objects failed (each named);
2 usage or configuration error; 3 an unexpected internal error; 4 stopped at a limit;
130/143 interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import signal
from pathlib import Path

from rich.console import Console

from ..config.storage import load_resolver_config, load_storage_config
from ..errors import PopulatorError, UsageError
from ..job.backfill import run_backfill
from ..job.checkpoint import S3Checkpoint, default_path
from ..job.interrupts import GRACE_SECONDS, run_interruptible
from ..job.limits import EXIT_LIMIT_REACHED, Limits, check_limits
from ..job.pipeline import PipelineOptions, ReadRetryPolicy
from ..job.spec import BackfillJob
from ..observe import logs
from ..observe.hub import Hub
from ..observe.progress import print_summary
from ..observe.report import Tally
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from ..source.archive import parse_location, parse_since
from ..source.shard import parse_shard
from .watch import RunOutputs, RunWatch

log = logging.getLogger("populator.run")
LIMIT_FLAGS = {
    "max_write_units": "--max-write-units",
    "max_cost": "--max-cost",
    "max_duration": "--max-duration",
}
_CAPACITY = re.compile(r"(\d+)/(\d+)")

EXIT_OK, EXIT_FAILED_OBJECTS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# Requests in flight. 16 left two worker processes half idle against a 5 ms endpoint; 64 wrote
# 1.4x as many items/s (benchmarks/, null endpoint). The rate controller, not this, paces writes.
BATCH_WRITERS = 64
CONDITIONAL_WRITERS = 16


def build_job(
    enriched_archive: str,
    storage_config: Path,
    resolver_config: Path,
    *,
    since: str | None = None,
    concurrency: int = 32,
    writers: int | None = None,
    dry_run: bool = False,
    conditional: bool = False,
    include_expired: bool = False,
    on_demand: bool = False,
    provisioned: str | None = None,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    profile: str | None = None,
    retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
    read_retry: ReadRetryPolicy = ReadRetryPolicy(),  # noqa: B008 - frozen
    checkpoint: Path | S3Checkpoint | None = None,
    restart: bool = False,
    bad_rows: Path | None = None,
    max_bad_rows: int | None = None,
    throughput: ThroughputOptions = ThroughputOptions(),  # noqa: B008 - frozen
    processes: int = 1,
    shard: str | None = None,
    now: float | None = None,
) -> BackfillJob:
    """The command line's arguments → a validated job. Raises UsageError before any AWS call."""
    if throughput.write_path not in ("signed", "botocore"):
        raise UsageError(f"--write-path {throughput.write_path!r}: use signed or botocore.")
    if on_demand and provisioned is not None:
        raise UsageError("--on-demand and --provisioned: choose one (a new table is on demand by default).")
    capacity = parse_provisioned(provisioned) if provisioned is not None else None
    check_limits(limits)
    location = parse_location(enriched_archive)
    since_at = parse_since(since) if since is not None else None
    shard_of_archive = parse_shard(shard) if shard is not None else None
    resolver = load_resolver_config(resolver_config)
    storage = load_storage_config(storage_config, resolver)
    job = BackfillJob(
        location=location,
        storage=storage,
        pipeline=PipelineOptions(
            location=location,
            since=since_at,
            concurrency=concurrency,
            writers=writers or (CONDITIONAL_WRITERS if conditional else BATCH_WRITERS),
            include_expired=include_expired,
            now=now,
            read_retry=read_retry,
            shard=shard_of_archive,
        ),
        profile=profile or None,
        dry_run=dry_run,
        conditional=conditional,
        provisioned=capacity,
        limits=limits,
        retry=retry,
        restart=restart,
        bad_rows_path=bad_rows,
        max_bad_rows=max_bad_rows,
        throughput=throughput,
        processes=processes,
    )
    if not dry_run:
        job = dataclasses.replace(job, checkpoint=checkpoint or default_path(job.identity))
    return job


def execute(
    job: BackfillJob,
    out: Console,
    err: Console,
    *,
    quiet: bool = False,
    resume_command: str | None = None,
    outputs: RunOutputs | None = None,
) -> int:
    """Run a job with progress, signals, summary, logs and report; returns the exit code.

    Shared by `run` and `demo`.
    """
    tally = Tally(dry_run=job.dry_run)
    with RunWatch(job, tally, err, outputs or RunOutputs(quiet=quiet)) as watch:
        code = _execute(job, tally, watch, out, resume_command)
        watch.finish(code)
    return code


def _execute(
    job: BackfillJob, tally: Tally, watch: RunWatch, out: Console, resume_command: str | None
) -> int:
    hub = Hub()

    def on_signal(sig: signal.Signals, first: bool) -> None:
        tally.interrupted_by = tally.interrupted_by or sig.name
        if first:
            log.warning(
                "%s: stopping: no new object is started, writes in flight finish (at most %.0f s). "
                "Send it again to stop at once.",
                sig.name,
                GRACE_SECONDS,
            )

    async def main(stop: asyncio.Event) -> None:
        await run_backfill(job, hub, tally, extra_subscribers=watch.subscribers, stop=stop)

    try:
        with watch.displays():
            interruption = asyncio.run(run_interruptible(main, on_signal=on_signal))
    except KeyboardInterrupt:  # before the event loop took over the signals
        watch.error = "interrupted before the backfill started"
        log.warning("interrupted before the backfill started; nothing was written.")
        return EXIT_INTERRUPTED
    except PopulatorError as exc:
        watch.error = str(exc)
        if tally.started_work:
            print_summary(out, tally)
        print_error(None, exc)
        return exc.exit_code
    except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
        if os.environ.get("POPULATOR_DEBUG"):
            raise
        watch.error = log_bug(exc)
        return EXIT_INTERNAL
    print_summary(out, tally)
    if tally.limit_reached is not None and interruption.first is None:
        saved = f"; finished objects are recorded in {tally.checkpoint}" if tally.checkpoint else ""
        resume = f"\nrun the same command to go on:\n  {resume_command}" if resume_command else ""
        log.warning(
            "stopped at a limit (%s)%s.%s", LIMIT_FLAGS[tally.limit_reached], saved, resume
        )
        return EXIT_LIMIT_REACHED
    if interruption.first is not None:
        saved = f"; finished objects are recorded in {tally.checkpoint}" if tally.checkpoint else ""
        resume = f"\nresume with:\n  {resume_command}" if resume_command else ""
        log.warning("interrupted by %s%s.%s", interruption.first.name, saved, resume)
        return interruption.exit_code
    return EXIT_FAILED_OBJECTS if tally.failures else EXIT_OK


def parse_provisioned(raw: str) -> tuple[int, int]:
    """`--provisioned R/W` → (read, write) capacity units of a table to create."""
    match = _CAPACITY.fullmatch(raw.strip())
    if match is None or not all(0 < int(units) <= 1_000_000 for units in match.groups()):
        raise UsageError(
            f"--provisioned {raw!r}: give read and write capacity units as R/W, e.g. 100/100 "
            "(what Snowplow's library creates), each from 1 to 1,000,000."
        )
    return int(match.group(1)), int(match.group(2))


def consoles() -> tuple[Console, Console]:
    """stdout and stderr as every command prints them: no highlighting, and no emoji codes
    (an object key like `:smile:` is printed as it is)."""
    return Console(highlight=False, emoji=False), Console(stderr=True, highlight=False, emoji=False)


def print_error(err: Console | None, exc: PopulatorError) -> None:
    """Through logging once it is set up (JSON with --json-logs), else straight to `err`."""
    if logs.active() is not None or err is None:
        log.error("%s", exc)
    else:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)


def log_bug(exc: BaseException) -> str:
    """Say plainly that an unexpected error is a bug (the traceback only with POPULATOR_DEBUG)."""
    while isinstance(exc, BaseExceptionGroup):  # the task group's wrapper says nothing useful
        exc = exc.exceptions[0]
    message = f"internal error: {type(exc).__name__}: {exc}"
    log.error(
        "%s. This is a bug in populator; rerun with POPULATOR_DEBUG=1 for the traceback and report it.",
        message,
    )
    return message
