"""`populator`: the command line. Parsing, wiring and exit codes only; no business logic.

Exit codes: 0 every selected object written; 1 some objects failed (each named); 2 usage or
configuration error; 3 an unexpected internal error; 4 stopped at a limit (--max-write-units,
--max-cost, --max-duration; run the same command to go on); 130/143 interrupted.

Unlike the other modules, no `from __future__ import annotations` here: typer reads every
command's annotations at each start, and string annotations made it compile and evaluate each
of them twice (callgrind: 48M instructions, 12-15 ms, of every start-up).
"""

import asyncio
import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console

from .. import __version__
from ..errors import PopulatorError, UsageError
from ..job import runtime
from ..job.checkpoint import parse_checkpoint
from ..job.cores import usable_cores
from ..job.limits import Limits, parse_duration
from ..job.pipeline import ReadRetryPolicy
from ..observe import logs
from ..observe.progress import DEFAULT_INTERVAL_SECONDS
from ..sink.pricing import DEFAULT_PRICE_PER_GB_IMPORT, DEFAULT_PRICE_PER_MILLION_WRU
from ..sink.staging import DEFAULT_ITEMS_PER_OBJECT
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from ..source.archive import SINCE_HELP
from .execute import (
    BATCH_WRITERS,
    CONDITIONAL_WRITERS,
    EXIT_FAILED_OBJECTS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    build_job,
    consoles,
    execute,
    log_bug,
    print_error,
)
from .watch import run_outputs

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


# The arguments and options that several commands share, defined once. An option whose help or
# default differs between commands (--include-expired, --processes, --checkpoint, --log-level...)
# stays declared in each, so that every command's --help says what it does there.
ArchiveArgument = Annotated[
    str, typer.Argument(help="s3://bucket/prefix/ (s3n://, s3a:// too) or a local directory.")
]
StorageConfigArgument = Annotated[
    Path, typer.Argument(help="The amazon_dynamodb_config self-describing JSON.")
]
ResolverConfigArgument = Annotated[Path, typer.Argument(help="The Iglu resolver config JSON.")]
SinceOption = Annotated[str | None, typer.Option(help=f"Only runs at or after this time: {SINCE_HELP}.")]
PriceOption = Annotated[
    float,
    typer.Option(
        "--price-per-million",
        min=0.0,
        help="USD per million on-demand write request units (default: us-east-1, standard table "
        "class, since November 2024: 0.625).",
    ),
]
ProvisionedOption = Annotated[
    str | None,
    typer.Option(
        "--provisioned",
        metavar="R/W",
        help="Create a missing table with R read and W write capacity units (100/100 is Snowplow's) "
        "instead of on demand.",
    ),
]
OnDemandOption = Annotated[
    bool,
    typer.Option("--on-demand", help="Create a missing table on demand (PAY_PER_REQUEST): the default."),
]
ProfileOption = Annotated[
    str | None, typer.Option(help="AWS profile (default: AWS_PROFILE or the default chain).")
]
# Options that run and import declare alike.
ConcurrencyOption = Annotated[int, typer.Option(min=1, max=1024, help="Objects read in parallel.")]
BadRowsOption = Annotated[
    Path | None,
    typer.Option(
        "--bad-rows", help="Append bad rows (object, line, reason, first KiB) to this JSON-lines file."
    ),
]
MaxBadRowsOption = Annotated[
    int | None, typer.Option("--max-bad-rows", min=0, help="Stop (exit 1) after more bad rows than this.")
]
ReadAttemptsOption = Annotated[
    int, typer.Option(min=1, max=100, help="Reads of an object (from its start) before it is failed.")
]
RetryBaseDelayOption = Annotated[
    float, typer.Option(min=0.0, hidden=True, help="First backoff step in seconds (tests).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary and errors.")]
ProgressIntervalOption = Annotated[
    float,
    typer.Option(
        "--progress-interval", min=0.1, help="Off a terminal: one progress line every this many seconds."
    ),
]


@app.command(epilog=RUN_EXAMPLES)
def run(
    enriched_archive: ArchiveArgument,
    storage_config: StorageConfigArgument,
    resolver_config: ResolverConfigArgument,
    since: SinceOption = None,
    concurrency: ConcurrencyOption = 32,
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
    on_demand: OnDemandOption = False,
    provisioned: ProvisionedOption = None,
    max_write_units: Annotated[
        float | None,
        typer.Option(
            "--max-write-units",
            help="Stop (exit 4, resumable) once this many write units are consumed.",
            show_default=False,
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            metavar="USD",
            help="Stop (exit 4, resumable) once the write units consumed cost this much "
            "(at --price-per-million).",
            show_default=False,
        ),
    ] = None,
    max_duration: Annotated[
        str | None,
        typer.Option(
            "--max-duration",
            help="Stop (exit 4, resumable) after this long: 90m, 2h, 1h30m, or seconds.",
            show_default=False,
        ),
    ] = None,
    price_per_million: PriceOption = DEFAULT_PRICE_PER_MILLION_WRU,
    profile: ProfileOption = None,
    max_attempts: Annotated[
        int, typer.Option(min=1, max=100, help="Attempts per write request before its object is failed.")
    ] = RetryPolicy.attempts,
    retry_base_delay: RetryBaseDelayOption = RetryPolicy.base_delay,
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
        str | None,
        typer.Option(
            help="Checkpoint journal: a file (default: .populator/<table>-<job hash>.jsonl here) or an "
            "s3://bucket/prefix/ that a retry on another machine resumes from.",
            show_default=False,
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore and replace the checkpoint: start the job over.")
    ] = False,
    bad_rows: BadRowsOption = None,
    max_bad_rows: MaxBadRowsOption = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="Worker processes, each with its own event loop (default: the CPUs this process may use, "
            "counting a container's CPU limit).",
        ),
    ] = usable_cores(),
    read_attempts: ReadAttemptsOption = ReadRetryPolicy.attempts,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="K/N",
            help="Only shard K of N of the archive's objects (0 ≤ K < N), for one machine of N; auto/N "
            "reads K from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX.",
        ),
    ] = None,
    quiet: QuietOption = False,
    progress_interval: ProgressIntervalOption = DEFAULT_INTERVAL_SECONDS,
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
            provisioned=provisioned,
            limits=Limits(
                max_write_units=max_write_units,
                max_cost_usd=max_cost,
                max_duration_s=parse_duration(max_duration) if max_duration is not None else None,
                price_per_million=price_per_million,
            ),
            profile=profile,
            retry=RetryPolicy(attempts=max_attempts, base_delay=retry_base_delay),
            read_retry=ReadRetryPolicy(attempts=read_attempts, base_delay=retry_base_delay * 10),
            checkpoint=parse_checkpoint(checkpoint) if checkpoint is not None else None,
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


def _fail(err: Console, exc: UsageError) -> None:
    print_error(err, exc)
    raise typer.Exit(exc.exit_code)


def _settle(err: Console, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`: a mistake a user can fix ends in one paragraph (exit 2), a bug in exit 3."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except PopulatorError as exc:
        print_error(err, exc)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if os.environ.get("POPULATOR_DEBUG"):
            raise
        log_bug(exc)
        raise typer.Exit(EXIT_INTERNAL) from None


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
    on_demand: OnDemandOption = False,
    provisioned: ProvisionedOption = None,
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
    price_per_million: PriceOption = DEFAULT_PRICE_PER_MILLION_WRU,
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
    items_per_object: Annotated[
        int, typer.Option("--items-per-object", min=1, help="For import: about this many items an object.")
    ] = DEFAULT_ITEMS_PER_OBJECT,
    price_per_gb_import: Annotated[
        float,
        typer.Option("--price-per-gb-import", min=0.0, help="For import: USD per GB (uncompressed)."),
    ] = DEFAULT_PRICE_PER_GB_IMPORT,
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
            provisioned=provisioned,
            profile=profile,
            throughput=ThroughputOptions(
                max_write_rate=max_write_rate, write_capacity_percent=write_capacity_percent
            ),
        )
        options = PlanOptions(
            sample_objects,
            sample_kib,
            price_per_million,
            shards=shards,
            items_per_object=items_per_object,
            price_per_gb_import=price_per_gb_import,
        )
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


IMPORT_EXAMPLES = """
Examples:

  populator import s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --staging s3://acme/populator-staging/

  populator import ./archive dynamodb.json iglu_resolver.json --staging s3://acme/stage/ --provisioned 100/100
"""


@app.command("import", epilog=IMPORT_EXAMPLES)
def import_(
    enriched_archive: ArchiveArgument,
    storage_config: StorageConfigArgument,
    resolver_config: ResolverConfigArgument,
    staging: Annotated[
        str | None,
        typer.Option(
            metavar="s3://BUCKET/PREFIX/",
            help="Where the staged objects go (required): an S3 prefix of its own; they are deleted after "
            "the import unless --keep-staging.",
            show_default=False,
        ),
    ] = None,
    since: SinceOption = None,
    include_expired: Annotated[
        bool,
        typer.Option("--include-expired", help="Also import items whose 180-day TTL has already passed."),
    ] = False,
    on_demand: OnDemandOption = False,
    provisioned: ProvisionedOption = None,
    items_per_object: Annotated[
        int,
        typer.Option(
            "--items-per-object",
            min=1,
            help="About this many items a staged object (archive objects are never split; ImportTable "
            "reads at most 50,000 objects).",
        ),
    ] = DEFAULT_ITEMS_PER_OBJECT,
    keep_staging: Annotated[
        bool, typer.Option("--keep-staging", help="Keep the staged objects after the import.")
    ] = False,
    price_per_gb_import: Annotated[
        float,
        typer.Option(
            "--price-per-gb-import",
            min=0.0,
            help="USD per GB (uncompressed) ImportTable processes (default: us-east-1's 0.15).",
        ),
    ] = DEFAULT_PRICE_PER_GB_IMPORT,
    price_per_million: PriceOption = DEFAULT_PRICE_PER_MILLION_WRU,
    verify_sample: Annotated[
        int,
        typer.Option(
            "--verify-sample",
            min=0,
            help="After the import, read back this many of the archive's events, as verify does (0: none).",
        ),
    ] = 100,
    concurrency: ConcurrencyOption = 32,
    processes: Annotated[
        int,
        typer.Option(min=1, max=256, help="Worker processes (default: the CPUs this process may use)."),
    ] = usable_cores(),
    profile: ProfileOption = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint journal, a local file (default: .populator/<table>-<job hash>.jsonl here); the "
            "import's own journal goes next to it (.staging.jsonl).",
            show_default=False,
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore the journals and the staged objects: stage anew.")
    ] = False,
    bad_rows: BadRowsOption = None,
    max_bad_rows: MaxBadRowsOption = None,
    read_attempts: ReadAttemptsOption = ReadRetryPolicy.attempts,
    retry_base_delay: RetryBaseDelayOption = RetryPolicy.base_delay,
    shard: Annotated[
        str | None,
        typer.Option(metavar="K/N", help="Not supported by import (exit 2): stage from one machine."),
    ] = None,
    poll_interval: Annotated[
        float,
        typer.Option("--poll-interval", min=0.05, hidden=True, help="Seconds between DescribeImport calls."),
    ] = 15.0,
    part_mib: Annotated[
        int | None, typer.Option("--part-mib", min=5, hidden=True, help="Multipart part size in MiB (tests).")
    ] = None,
    quiet: QuietOption = False,
    progress_interval: ProgressIntervalOption = DEFAULT_INTERVAL_SECONDS,
    log_level: Annotated[
        logs.LogLevel | None,
        typer.Option("--log-level", case_sensitive=False, help="Least severe log records on stderr."),
    ] = None,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="Logs and progress on stderr as one JSON object a line.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write a JSON report of the import to this file at the end."),
    ] = None,
    log_path: Annotated[
        str | None,
        typer.Option(
            "--log-path",
            help="Keep the report and log in a populator-<time>-<table>/ folder under this local directory "
            "or s3://bucket/prefix/.",
        ),
    ] = None,
) -> None:
    """Create the manifest table with DynamoDB's ImportTable: stage the items in S3, import, enable TTL."""
    from .importing import ImportOptions, build_import_job, execute_import

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
        job = build_import_job(
            enriched_archive,
            storage_config,
            resolver_config,
            staging=staging,
            since=since,
            concurrency=concurrency,
            include_expired=include_expired,
            on_demand=on_demand,
            provisioned=provisioned,
            profile=profile,
            read_retry=ReadRetryPolicy(attempts=read_attempts, base_delay=retry_base_delay * 10),
            checkpoint=checkpoint,
            restart=restart,
            bad_rows=bad_rows,
            max_bad_rows=max_bad_rows,
            processes=processes,
            shard=shard,
            items_per_object=items_per_object,
            keep_staging=keep_staging,
            part_bytes=part_mib * 1024 * 1024 if part_mib else None,
        )
    except UsageError as exc:
        _fail(err, exc)
    options = ImportOptions(
        verify_sample=verify_sample,
        poll_seconds=poll_interval,
        price_per_gb=price_per_gb_import,
        price_per_million=price_per_million,
    )
    resume = shlex.join(["populator", *(arg for arg in sys.argv[1:] if arg != "--restart")])
    runtime.keep_freed_memory()
    code = execute_import(job, out, err, options=options, outputs=outputs, resume_command=resume)
    raise typer.Exit(code)


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
