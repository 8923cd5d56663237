"""`populator run`: back-fill the manifest table from the archive."""

from ..job.limits import Limits, parse_duration
from ..job.pipeline import ReadRetryPolicy
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from . import options as o
from .build import build_job
from .execute import run_command

EXAMPLES = """
Examples:

  populator run s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01

  populator run ./archive dynamodb.json iglu_resolver.json --dry-run
"""


def run(
    enriched_archive: o.Archive,
    storage_config: o.StorageConfig,
    resolver_config: o.ResolverConfig,
    since: o.Since = None,
    concurrency: o.Concurrency = o.DEFAULT_CONCURRENCY,
    writers: o.Writers = None,
    dry_run: o.DryRun = False,
    conditional: o.Conditional = False,
    include_expired: o.IncludeExpired = False,
    on_demand: o.OnDemand = False,
    provisioned: o.Provisioned = None,
    max_write_units: o.MaxWriteUnits = None,
    max_cost: o.MaxCost = None,
    max_duration: o.MaxDuration = None,
    price_per_million: o.PricePerMillion = o.DEFAULT_PRICE_PER_MILLION,
    profile: o.Profile = None,
    max_attempts: o.MaxAttempts = RetryPolicy.attempts,
    retry_base_delay: o.RetryBaseDelay = o.DEFAULT_RETRY_BASE_DELAY,
    max_write_rate: o.MaxWriteRate = None,
    write_capacity_percent: o.WriteCapacityPercent = o.DEFAULT_WRITE_CAPACITY_PERCENT,
    write_path: o.WritePath = ThroughputOptions.write_path,
    checkpoint: o.Checkpoint = None,
    restart: o.Restart = False,
    bad_rows: o.BadRows = None,
    max_bad_rows: o.MaxBadRows = None,
    processes: o.Processes = o.DEFAULT_PROCESSES,
    read_attempts: o.ReadAttempts = o.DEFAULT_READ_ATTEMPTS,
    shard: o.Shard = None,
    quiet: o.Quiet = False,
    progress_interval: o.ProgressInterval = o.DEFAULT_PROGRESS_INTERVAL,
    log_level: o.LogLevel = None,
    json_logs: o.JsonLogs = False,
    report: o.Report = None,
    log_path: o.LogPath = None,
) -> None:
    """Back-fill the manifest table from the archive (idempotent; safe to run again)."""
    run_command(
        lambda: build_job(
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
        ),
        quiet=quiet,
        progress_interval=progress_interval,
        log_level=log_level,
        json_logs=json_logs,
        report=report,
        log_path=log_path,
    )
