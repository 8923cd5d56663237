"""`populator import`: a new manifest table made by DynamoDB's ImportTable from the archive.

The same job as `run` with another destination (job/staging_destination.py): the items are
staged in S3, then imported; TTL is enabled, a sample read back, the staged objects deleted.
Exit codes: 0 imported, TTL on and the sample found; 1 objects that could not be staged
(nothing imported: run again), an import that failed or had item errors, or a sample missing;
2 usage (an existing table, a staging prefix that is not usable, more than 50,000 staged
objects, --shard); 130/143 interrupted (while staging: the same command resumes; while
importing: the import goes on in AWS, and the same command reattaches).
"""

from ..job.limits import Limits
from ..job.pipeline import ReadRetryPolicy
from . import options as o
from .build import ImportArguments, build_job
from .execute import run_command

EXAMPLES = """
Examples:

  populator import s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --staging s3://acme/populator-staging/

  populator import ./archive dynamodb.json iglu_resolver.json --staging s3://acme/stage/ --provisioned 100/100
"""


def import_table(
    enriched_archive: o.Archive,
    storage_config: o.StorageConfig,
    resolver_config: o.ResolverConfig,
    staging: o.Staging = None,
    since: o.Since = None,
    include_expired: o.IncludeExpired = False,
    on_demand: o.OnDemand = False,
    provisioned: o.Provisioned = None,
    items_per_object: o.ItemsPerObject = o.DEFAULT_ITEMS_PER_OBJECT,
    keep_staging: o.KeepStaging = False,
    price_per_gb_import: o.PricePerGbImport = o.DEFAULT_PRICE_PER_GB_IMPORT,
    price_per_million: o.PricePerMillion = o.DEFAULT_PRICE_PER_MILLION,
    verify_sample: o.VerifySample = o.DEFAULT_VERIFY_SAMPLE,
    concurrency: o.Concurrency = o.DEFAULT_CONCURRENCY,
    processes: o.Processes = o.DEFAULT_PROCESSES,
    profile: o.Profile = None,
    checkpoint: o.Checkpoint = None,
    restart: o.Restart = False,
    bad_rows: o.BadRows = None,
    max_bad_rows: o.MaxBadRows = None,
    read_attempts: o.ReadAttempts = o.DEFAULT_READ_ATTEMPTS,
    retry_base_delay: o.RetryBaseDelay = o.DEFAULT_RETRY_BASE_DELAY,
    shard: o.Shard = None,
    poll_interval: o.PollInterval = o.DEFAULT_POLL_INTERVAL,
    part_mib: o.PartMib = None,
    quiet: o.Quiet = False,
    progress_interval: o.ProgressInterval = o.DEFAULT_PROGRESS_INTERVAL,
    log_level: o.LogLevel = None,
    json_logs: o.JsonLogs = False,
    report: o.Report = None,
    log_path: o.LogPath = None,
) -> None:
    """Create the manifest table with DynamoDB's ImportTable: stage the items in S3, import, enable TTL."""
    run_command(
        lambda: build_job(
            enriched_archive,
            storage_config,
            resolver_config,
            since=since,
            concurrency=concurrency,
            include_expired=include_expired,
            on_demand=on_demand,
            provisioned=provisioned,
            limits=Limits(price_per_million=price_per_million),
            profile=profile,
            read_retry=ReadRetryPolicy(attempts=read_attempts, base_delay=retry_base_delay * 10),
            checkpoint=checkpoint,
            restart=restart,
            bad_rows=bad_rows,
            max_bad_rows=max_bad_rows,
            processes=processes,
            shard=shard,
            imports=ImportArguments(
                staging=staging,
                items_per_object=items_per_object,
                keep_staging=keep_staging,
                part_bytes=part_mib * 1024 * 1024 if part_mib else None,
                verify_sample=verify_sample,
                poll_seconds=poll_interval,
                price_per_gb=price_per_gb_import,
            ),
        ),
        quiet=quiet,
        progress_interval=progress_interval,
        log_level=log_level,
        json_logs=json_logs,
        report=report,
        log_path=log_path,
    )
