"""Every option and argument of the command line, declared once (as pip's `cmdoptions`).

A command takes what it needs from here, so an option means the same and reads the same
wherever it appears. Options only one command has are declared here too, next to their kin.

Unlike the other modules, no `from __future__ import annotations` here or in the command
modules: typer reads every command's annotations at each start, and string annotations made it
compile and evaluate each of them twice (callgrind: 48M instructions, 12-15 ms a start-up).
"""

from pathlib import Path
from typing import Annotated

import typer

from ..job.cores import usable_cores
from ..job.pipeline import ReadRetryPolicy
from ..observe import logs
from ..observe.progress import DEFAULT_INTERVAL_SECONDS
from ..observe.status_feed import DEFAULT_STATUS_INTERVAL as DEFAULT_STATUS_INTERVAL
from ..sink.pricing import DEFAULT_PRICE_PER_MILLION_WRU
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from ..source.archive import SINCE_HELP

# Requests in flight. 16 left two worker processes half idle against a 5 ms endpoint; 64 wrote
# 1.4x as many items/s (benchmarks/, null endpoint). The rate controller, not this, paces writes.
BATCH_WRITERS = 64
CONDITIONAL_WRITERS = 16
IMPORT_WRITERS = 8  # the stager's writes are CPU work between a few S3 uploads: few are needed
# The defaults of options whose value comes from elsewhere in the package.
DEFAULT_CONCURRENCY = 32
DEFAULT_PROCESSES = usable_cores()
DEFAULT_READ_ATTEMPTS = ReadRetryPolicy.attempts
DEFAULT_RETRY_BASE_DELAY = RetryPolicy.base_delay
DEFAULT_PRICE_PER_MILLION = DEFAULT_PRICE_PER_MILLION_WRU
DEFAULT_PROGRESS_INTERVAL = DEFAULT_INTERVAL_SECONDS
DEFAULT_WRITE_CAPACITY_PERCENT = ThroughputOptions.write_capacity_percent

# ----------------------------------------------------------------------------- what to read

Archive = Annotated[
    str, typer.Argument(help="s3://bucket/prefix/ (s3n://, s3a:// too) or a local directory.")
]
StorageConfig = Annotated[Path, typer.Argument(help="The amazon_dynamodb_config self-describing JSON.")]
ResolverConfig = Annotated[Path, typer.Argument(help="The Iglu resolver config JSON.")]
Since = Annotated[str | None, typer.Option(help=f"Only runs at or after this time: {SINCE_HELP}.")]
IncludeExpired = Annotated[
    bool,
    typer.Option(
        "--include-expired",
        help="Also back-fill items whose 180-day TTL has already passed (plan: count them as written).",
    ),
]
Shard = Annotated[
    str | None,
    typer.Option(
        metavar="K/N",
        help="Only shard K of N of the archive's objects (0 ≤ K < N), for one machine of N; auto/N reads "
        "K from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX. Not with import (exit 2).",
    ),
]
Profile = Annotated[str | None, typer.Option(help="AWS profile (default: AWS_PROFILE or the default chain).")]

# ----------------------------------------------------------------------------- how to read

Concurrency = Annotated[int, typer.Option(min=1, max=1024, help="Objects read in parallel.")]
Processes = Annotated[
    int,
    typer.Option(
        min=1,
        max=256,
        help="Worker processes, each with its own event loop (default: the CPUs this process may use, "
        "counting a container's CPU limit).",
    ),
]
ReadAttempts = Annotated[
    int, typer.Option(min=1, max=100, help="Reads of an object (from its start) before it is failed.")
]
RetryBaseDelay = Annotated[
    float, typer.Option(min=0.0, hidden=True, help="First backoff step in seconds (tests).")
]
BadRows = Annotated[
    Path | None,
    typer.Option(
        "--bad-rows", help="Append bad rows (object, line, reason, first KiB) to this JSON-lines file."
    ),
]
MaxBadRows = Annotated[
    int | None, typer.Option("--max-bad-rows", min=0, help="Stop (exit 1) after more bad rows than this.")
]
Checkpoint = Annotated[
    str | None,
    typer.Option(
        help="Checkpoint journal: a file (default: .populator/<table>-<job hash>.jsonl here) or, for run, "
        "an s3://bucket/prefix/ that a retry on another machine resumes from. Import keeps its staging "
        "journal next to the file (.staging.jsonl).",
        show_default=False,
    ),
]
Restart = Annotated[
    bool,
    typer.Option(
        "--restart", help="Ignore and replace the checkpoint (and an import's staged objects): start over."
    ),
]

# ----------------------------------------------------------------------------- the table

OnDemand = Annotated[
    bool, typer.Option("--on-demand", help="Create a missing table on demand (PAY_PER_REQUEST): the default.")
]
Provisioned = Annotated[
    str | None,
    typer.Option(
        "--provisioned",
        metavar="R/W",
        help="Create a missing table with R read and W write capacity units (100/100 is Snowplow's) "
        "instead of on demand.",
    ),
]
PricePerMillion = Annotated[
    float,
    typer.Option(
        "--price-per-million",
        min=0.0,
        help="USD per million on-demand write request units (default: us-east-1, standard table "
        "class, since November 2024: 0.625).",
    ),
]
Writers = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=512,
        help=f"DynamoDB write requests in flight, in all processes together (default: {BATCH_WRITERS}; "
        f"{CONDITIONAL_WRITERS} with --conditional, where each sends 25 PutItem at once).",
        show_default=False,
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="List, read, parse and count; make no DynamoDB call.")
]
Conditional = Annotated[
    bool,
    typer.Option(
        "--conditional", help="Write with the shredder's conditional PutItem: an existing item wins."
    ),
]
MaxWriteUnits = Annotated[
    float | None,
    typer.Option(
        "--max-write-units",
        help="Stop (exit 4, resumable) once this many write units are consumed.",
        show_default=False,
    ),
]
MaxCost = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        metavar="USD",
        help="Stop (exit 4, resumable) once the write units consumed cost this much "
        "(at --price-per-million).",
        show_default=False,
    ),
]
MaxDuration = Annotated[
    str | None,
    typer.Option(
        "--max-duration",
        help="Stop (exit 4, resumable) after this long: 90m, 2h, 1h30m, or seconds.",
        show_default=False,
    ),
]
MaxOutage = Annotated[
    str,
    typer.Option(
        "--max-outage",
        help="How long S3 or DynamoDB may not answer at all (a network partition, a NAT gateway down) "
        "while the run waits for it, before it stops (exit 5, resumable): 5m, 30m, 1h, or seconds.",
    ),
]
RequestTimeout = Annotated[
    str | None,
    typer.Option(
        "--request-timeout",
        help="How long a request may wait for the next byte of its answer before it is given up and "
        "tried again (a connection that hangs): 20s, 1m... [default: 1m for S3, 20s for DynamoDB]",
        show_default=False,
    ),
]
MaxAttempts = Annotated[
    int, typer.Option(min=1, max=100, help="Attempts per write request before its object is failed.")
]
MaxWriteRate = Annotated[
    float | None,
    typer.Option(
        "--max-write-rate",
        min=1.0,
        help="Hard ceiling on items written per second, by this run and all its processes (per shard; "
        "plan: plan for it).",
    ),
]
WriteCapacityPercent = Annotated[
    float,
    typer.Option(
        "--write-capacity-percent",
        min=1.0,
        max=100.0,
        help="At most this share of a provisioned table's write capacity (re-read every minute; per "
        "shard: P/N for N shards).",
    ),
]
WritePath = Annotated[
    str, typer.Option("--write-path", hidden=True, help="signed (default) or botocore (for comparison).")
]

# ----------------------------------------------------------------------------- what the operator sees

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary and errors.")]
ProgressInterval = Annotated[
    float,
    typer.Option(
        "--progress-interval", min=0.1, help="Off a terminal: one progress line every this many seconds."
    ),
]
LogLevel = Annotated[
    logs.LogLevel | None,
    typer.Option(
        "--log-level",
        case_sensitive=False,
        help="Least severe log records on stderr (default: info off a terminal, warning on one, error "
        "with --quiet).",
    ),
]
JsonLogs = Annotated[
    bool,
    typer.Option("--json-logs", help="Logs and progress on stderr as one JSON object a line (log shippers)."),
]
Report = Annotated[Path | None, typer.Option("--report", help="The run's report: JSON, or HTML for *.html.")]
ReportSource = Annotated[str, typer.Argument(help="A JSON report, a run folder or a --log-path.")]
HtmlOutput = Annotated[Path | None, typer.Option("--output", "-o", help="The HTML file to write.")]
LogPath = Annotated[
    str | None,
    typer.Option(
        "--log-path",
        help="Keep the report and log of the run in a populator-<time>-<table>/ folder under this local "
        "directory or s3://bucket/prefix/.",
    ),
]
StatusInterval = Annotated[
    float, typer.Option("--status-interval", min=0.5, help="Seconds between status snapshots (--log-path).")
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
