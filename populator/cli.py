"""`populator`: the command line. Parsing, wiring and exit codes only; no business logic.

Exit codes: 0 every selected object written; 1 some objects failed (each named); 2 usage or
configuration error; 3 an unexpected internal error; 130 interrupted (Ctrl-C).

Unlike the other modules, no `from __future__ import annotations` here: typer reads every
command's annotations at each start, and string annotations made it compile and evaluate each
of them twice (callgrind: 48M instructions, 12-15 ms, of every start-up).
"""

import asyncio
import contextlib
import dataclasses
import logging
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console

from . import __version__, logs, runtime
from .archive import SINCE_HELP, parse_location, parse_since
from .backfill import BackfillJob, run_backfill
from .checkpoint import default_path
from .config import load_resolver_config, load_storage_config
from .cores import usable_cores
from .errors import PopulatorError, UsageError
from .interrupts import GRACE_SECONDS, run_interruptible
from .observe import Hub
from .pipeline import PipelineOptions, ReadRetryPolicy
from .progress import DEFAULT_INTERVAL_SECONDS, print_summary
from .report import Tally
from .shard import parse_shard
from .throughput import ThroughputOptions
from .watch import RunOutputs, RunWatch, run_outputs
from .writes import RetryPolicy

EXIT_OK, EXIT_FAILED_OBJECTS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# Requests in flight. 16 left two worker processes half idle against a 5 ms endpoint; 64 wrote
# 1.4x as many items/s (benchmarks/, null endpoint). The rate controller, not this, paces writes.
BATCH_WRITERS = 64
CONDITIONAL_WRITERS = 16
log = logging.getLogger("populator.run")
T = TypeVar("T")

app = typer.Typer(
    name="populator",
    help="Back-fill the Snowplow event manifest (DynamoDB) from an enriched-event archive.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    epilog="Before, during and after a backfill:\n\n"
    "  populator plan s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01\n\n"
    "  populator run s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01 "
    "--report report.json\n\n"
    "  populator verify s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01\n\n"
    "Try it without AWS: populator demo. Shell completion: populator --install-completion.",
)

RUN_EXAMPLES = """
Examples:

  populator run s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01

  populator run ./archive dynamodb.json iglu_resolver.json --dry-run
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"populator {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Back-fill the Snowplow event manifest (DynamoDB) from an enriched-event archive."""


# The arguments and options that run, plan and verify share, defined once.
ArchiveArgument = Annotated[
    str, typer.Argument(help="s3://bucket/prefix/ (s3n://, s3a:// too) or a local directory.")
]
StorageConfigArgument = Annotated[
    Path, typer.Argument(help="The amazon_dynamodb_config self-describing JSON.")
]
ResolverConfigArgument = Annotated[Path, typer.Argument(help="The Iglu resolver config JSON.")]
SinceOption = Annotated[str | None, typer.Option(help=f"Only runs at or after this time: {SINCE_HELP}.")]
ProfileOption = Annotated[
    str | None, typer.Option(help="AWS profile (default: AWS_PROFILE or the default chain).")
]


@app.command(epilog=RUN_EXAMPLES)
def run(
    enriched_archive: ArchiveArgument,
    storage_config: StorageConfigArgument,
    resolver_config: ResolverConfigArgument,
    since: SinceOption = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Objects read in parallel.")] = 32,
    writers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=512,
            help=f"DynamoDB write requests in flight, in all processes together (default: {BATCH_WRITERS}; "
            f"{CONDITIONAL_WRITERS} with --conditional, where each sends 25 PutItem at once).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List, read, parse and count; make no DynamoDB call.")
    ] = False,
    conditional: Annotated[
        bool,
        typer.Option(
            "--conditional", help="Write with the shredder's conditional PutItem: an existing item wins."
        ),
    ] = False,
    include_expired: Annotated[
        bool, typer.Option("--include-expired", help="Also write items whose 180-day TTL has already passed.")
    ] = False,
    on_demand: Annotated[
        bool,
        typer.Option("--on-demand", help="Create a missing table PAY_PER_REQUEST instead of 100 WCU/RCU."),
    ] = False,
    profile: ProfileOption = None,
    max_attempts: Annotated[
        int, typer.Option(min=1, max=100, help="Attempts per write request before its object is failed.")
    ] = RetryPolicy.attempts,
    retry_base_delay: Annotated[
        float, typer.Option(min=0.0, hidden=True, help="First backoff step in seconds (tests).")
    ] = RetryPolicy.base_delay,
    max_write_rate: Annotated[
        float | None,
        typer.Option(
            "--max-write-rate",
            min=1.0,
            help="Hard ceiling on items written per second, by this run and all its processes (per shard).",
        ),
    ] = None,
    write_capacity_percent: Annotated[
        float,
        typer.Option(
            "--write-capacity-percent",
            min=1.0,
            max=100.0,
            help="At most this share of a provisioned table's write capacity (re-read every minute; "
            "per shard: P/N for N shards).",
        ),
    ] = ThroughputOptions.write_capacity_percent,
    write_path: Annotated[
        str, typer.Option("--write-path", hidden=True, help="signed (default) or botocore (for comparison).")
    ] = ThroughputOptions.write_path,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Checkpoint journal (default: .populator/<table>-<job hash>.jsonl here)."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore and replace the checkpoint: start the job over.")
    ] = False,
    bad_rows: Annotated[
        Path | None,
        typer.Option(
            "--bad-rows", help="Append bad rows (object, line, reason, first KiB) to this JSON-lines file."
        ),
    ] = None,
    max_bad_rows: Annotated[
        int | None, typer.Option("--max-bad-rows", min=0, help="Stop (exit 1) after more bad rows than this.")
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="Worker processes, each with its own event loop (default: the CPUs this process may use, "
            "counting a container's CPU limit).",
        ),
    ] = usable_cores(),
    read_attempts: Annotated[
        int, typer.Option(min=1, max=100, help="Reads of an object (from its start) before it is failed.")
    ] = ReadRetryPolicy.attempts,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="K/N",
            help="Only shard K of N of the archive's objects (0 ≤ K < N), for one machine of N; auto/N "
            "reads K from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary and errors.")] = False,
    progress_interval: Annotated[
        float,
        typer.Option(
            "--progress-interval", min=0.1, help="Off a terminal: one progress line every this many seconds."
        ),
    ] = DEFAULT_INTERVAL_SECONDS,
    log_level: Annotated[
        logs.LogLevel | None,
        typer.Option(
            "--log-level",
            case_sensitive=False,
            help="Least severe log records on stderr (default: info off a terminal, warning on one, "
            "error with --quiet).",
        ),
    ] = None,
    json_logs: Annotated[
        bool,
        typer.Option(
            "--json-logs", help="Logs and progress on stderr as one JSON object a line (log shippers)."
        ),
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a JSON report of the run to this file at the end.")
    ] = None,
    log_path: Annotated[
        str | None,
        typer.Option(
            "--log-path",
            help="Keep the report and log of the run in a populator-<time>-<table>/ folder under this "
            "local directory or s3://bucket/prefix/.",
        ),
    ] = None,
) -> None:
    """Back-fill the manifest table from the archive (idempotent; safe to run again)."""
    out, err = consoles()
    logs.configure_logging(level=log_level, json_logs=json_logs, quiet=quiet, terminal=err.is_terminal)
    try:
        outputs = run_outputs(
            quiet=quiet,
            progress_interval=progress_interval,
            log_level=log_level,
            json_logs=json_logs,
            report=report,
            log_path=log_path,
            command=shlex.join(["populator", *sys.argv[1:]]),
        )
        job = build_job(
            enriched_archive,
            storage_config,
            resolver_config,
            since=since,
            concurrency=concurrency,
            writers=writers,
            dry_run=dry_run,
            conditional=conditional,
            include_expired=include_expired,
            on_demand=on_demand,
            profile=profile,
            retry=RetryPolicy(attempts=max_attempts, base_delay=retry_base_delay),
            read_retry=ReadRetryPolicy(attempts=read_attempts, base_delay=retry_base_delay * 10),
            checkpoint=checkpoint,
            restart=restart,
            bad_rows=bad_rows,
            max_bad_rows=max_bad_rows,
            processes=processes,
            shard=shard,
            throughput=ThroughputOptions(
                max_write_rate=max_write_rate,
                write_capacity_percent=write_capacity_percent,
                write_path=write_path,
            ),
        )
    except UsageError as exc:
        _fail(err, exc)
    resume = shlex.join(["populator", *(arg for arg in sys.argv[1:] if arg != "--restart")])
    runtime.keep_freed_memory()
    code = execute(job, out, err, resume_command=resume, outputs=outputs)
    raise typer.Exit(code)


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
    profile: str | None = None,
    retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
    read_retry: ReadRetryPolicy = ReadRetryPolicy(),  # noqa: B008 - frozen
    checkpoint: Path | None = None,
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
        on_demand=on_demand,
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
        _print_error(None, exc)
        return exc.exit_code
    except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
        if os.environ.get("POPULATOR_DEBUG"):
            raise
        watch.error = _log_bug(exc)
        return EXIT_INTERNAL
    print_summary(out, tally)
    if interruption.first is not None:
        saved = f"; finished objects are recorded in {tally.checkpoint}" if tally.checkpoint else ""
        resume = f"\nresume with:\n  {resume_command}" if resume_command else ""
        log.warning("interrupted by %s%s.%s", interruption.first.name, saved, resume)
        return interruption.exit_code
    return EXIT_FAILED_OBJECTS if tally.failures else EXIT_OK


def consoles() -> tuple[Console, Console]:
    """stdout and stderr as every command prints them: no highlighting, and no emoji codes
    (an object key like `:smile:` is printed as it is)."""
    return Console(highlight=False, emoji=False), Console(stderr=True, highlight=False, emoji=False)


def _print_error(err: Console | None, exc: PopulatorError) -> None:
    """Through logging once it is set up (JSON with --json-logs), else straight to `err`."""
    if logs.active() is not None or err is None:
        log.error("%s", exc)
    else:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)


def _fail(err: Console, exc: UsageError) -> None:
    _print_error(err, exc)
    raise typer.Exit(exc.exit_code)


def _settle(err: Console, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`: a mistake a user can fix ends in one paragraph (exit 2), a bug in exit 3."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except PopulatorError as exc:
        _print_error(err, exc)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if os.environ.get("POPULATOR_DEBUG"):
            raise
        _log_bug(exc)
        raise typer.Exit(EXIT_INTERNAL) from None


def _log_bug(exc: BaseException) -> str:
    """Say plainly that an unexpected error is a bug (the traceback only with POPULATOR_DEBUG)."""
    while isinstance(exc, BaseExceptionGroup):  # the task group's wrapper says nothing useful
        exc = exc.exceptions[0]
    message = f"internal error: {type(exc).__name__}: {exc}"
    log.error(
        "%s. This is a bug in populator; rerun with POPULATOR_DEBUG=1 for the traceback and report it.",
        message,
    )
    return message


def _settle_and_show(
    work: Callable[[], Awaitable[T]], render: Callable[[Console, T], None], as_json: bool
) -> T:
    """`plan` and `verify`: run `work`, then print its result rendered, or as JSON."""
    out, err = consoles()
    logs.configure_logging(terminal=err.is_terminal)
    result = _settle(err, work)
    if as_json:
        typer.echo(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())  # type: ignore[attr-defined]
    else:
        render(out, result)
    return result


PLAN_EXAMPLES = """
Examples:

  populator plan s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01

  populator plan ./archive dynamodb.json iglu_resolver.json --max-write-rate 2000 --json

  populator plan s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --shards 8
"""


@app.command(epilog=PLAN_EXAMPLES)
def plan(
    enriched_archive: ArchiveArgument,
    storage_config: StorageConfigArgument,
    resolver_config: ResolverConfigArgument,
    since: SinceOption = None,
    profile: ProfileOption = None,
    include_expired: Annotated[
        bool, typer.Option("--include-expired", help="Count items whose 180-day TTL has passed as written.")
    ] = False,
    on_demand: Annotated[
        bool, typer.Option("--on-demand", help="A missing table would be created on demand.")
    ] = False,
    max_write_rate: Annotated[
        float | None,
        typer.Option("--max-write-rate", min=1.0, help="Plan for at most this many items written a second."),
    ] = None,
    write_capacity_percent: Annotated[
        float,
        typer.Option(
            "--write-capacity-percent",
            min=1.0,
            max=100.0,
            help="Plan for this share of a provisioned table's write capacity, as run would use.",
        ),
    ] = ThroughputOptions.write_capacity_percent,
    price_per_million: Annotated[
        float,
        typer.Option(
            "--price-per-million",
            min=0.0,
            help="USD per million on-demand write request units (default: us-east-1, standard table "
            "class, since November 2024: 0.625).",
        ),
    ] = 0.625,
    sample_objects: Annotated[
        int, typer.Option("--sample-objects", min=1, max=10_000, help="Objects sampled to estimate events.")
    ] = 8,
    sample_kib: Annotated[
        int, typer.Option("--sample-kib", min=1, max=1_048_576, help="KiB read from the start of each one.")
    ] = 256,
    shards: Annotated[
        int | None,
        typer.Option(min=1, max=10_000, help="Show how objects and bytes fall across this many shards."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show what `run` would do: runs, events, write units, cost and duration. Writes nothing."""
    from .plan import PlanOptions, make_plan
    from .plan_view import render_plan

    async def work() -> Any:
        job = build_job(
            enriched_archive,
            storage_config,
            resolver_config,
            since=since,
            include_expired=include_expired,
            on_demand=on_demand,
            profile=profile,
            throughput=ThroughputOptions(
                max_write_rate=max_write_rate, write_capacity_percent=write_capacity_percent
            ),
        )
        options = PlanOptions(sample_objects, sample_kib, price_per_million, shards=shards)
        return await make_plan(job, options)

    _settle_and_show(work, render_plan, json_output)


VERIFY_EXAMPLES = """
Examples:

  populator verify s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01

  populator verify ./archive dynamodb.json iglu_resolver.json --sample 100000 --json
"""


@app.command(epilog=VERIFY_EXAMPLES)
def verify(
    enriched_archive: ArchiveArgument,
    storage_config: StorageConfigArgument,
    resolver_config: ResolverConfigArgument,
    since: SinceOption = None,
    sample: Annotated[
        int,
        typer.Option(min=1, help="Events to check, spread over the selected objects (all when fewer)."),
    ] = 1000,
    profile: ProfileOption = None,
    seed: Annotated[int, typer.Option(hidden=True, help="Another seed picks another sample.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check that the archive's events are in the table, on a sample read back (exit 1: some missing)."""
    from .verify import verify as verify_table
    from .verify_view import render_verification

    async def work() -> Any:
        job = build_job(enriched_archive, storage_config, resolver_config, since=since, profile=profile)
        return await verify_table(job, sample, seed=seed)

    result = _settle_and_show(work, render_verification, json_output)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED_OBJECTS)


@app.command(epilog="Example:\n\n  populator demo --events 20000")
def demo(
    events: Annotated[int, typer.Option(min=100, help="Events to generate in the sample archive.")] = 20_000,
    keep: Annotated[Path | None, typer.Option(help="Write the sample archive here and keep it.")] = None,
) -> None:
    """Generate a sample archive, start moto (S3 + DynamoDB) on loopback, and back-fill it."""
    from .demo import run_demo

    try:
        import moto.server  # noqa: F401  (the `demo` extra; a plain install lacks it)
    except ImportError:
        _fail(
            consoles()[1],
            UsageError(
                "`populator demo` runs an embedded moto server, and moto is not installed here. "
                "Install it with: pip install 'populator[demo]'"
            ),
        )
    raise typer.Exit(run_demo(events=events, keep=keep))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        code: Any = EXIT_INTERRUPTED
    except SystemExit as exc:
        code = exc.code
    else:
        code = EXIT_OK
    exit_now(code)


def exit_now(code: Any) -> NoReturn:
    """End the process without tearing the interpreter down.

    Every command has closed its files, joined its workers and printed its result by now. What
    is left, freeing a few hundred imported modules (jsonschema's Rust-backed objects among
    them) object by object, took 60-90 ms: a tenth of a short run. `code` is a SystemExit code.
    """
    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) or stream
            stream.flush()
    os._exit(code)
