"""`populator run`: back-fill the manifest table from the archive."""

from ..job.limits import Limits, parse_duration
from ..job.spec import BackfillJob
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from . import groups as g
from . import options as o
from .build import build_from
from .execute import run_command

EXAMPLES = """
Examples:

  populator run s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01

  populator run ./archive dynamodb.json iglu_resolver.json --dry-run
"""


@g.grouped
def run(
    source: g.SourceArguments,
    job: g.JobArguments,
    outputs: g.OutputArguments,
    writers: o.Writers = None,
    dry_run: o.DryRun = False,
    conditional: o.Conditional = False,
    max_write_units: o.MaxWriteUnits = None,
    max_cost: o.MaxCost = None,
    max_duration: o.MaxDuration = None,
    max_attempts: o.MaxAttempts = RetryPolicy.attempts,
    max_write_rate: o.MaxWriteRate = None,
    write_capacity_percent: o.WriteCapacityPercent = o.DEFAULT_WRITE_CAPACITY_PERCENT,
    write_path: o.WritePath = ThroughputOptions.write_path,
) -> None:
    """Back-fill the manifest table from the archive (idempotent; safe to run again)."""

    def make_job() -> BackfillJob:
        limits = Limits(
            max_write_units=max_write_units,
            max_cost_usd=max_cost,
            max_duration_s=parse_duration(max_duration) if max_duration is not None else None,
            price_per_million=job.price_per_million,
        )
        throughput = ThroughputOptions(
            max_write_rate=max_write_rate,
            write_capacity_percent=write_capacity_percent,
            write_path=write_path,
        )
        return build_from(
            source,
            job,
            writers=writers,
            dry_run=dry_run,
            conditional=conditional,
            limits=limits,
            retry=RetryPolicy(attempts=max_attempts, base_delay=job.retry_base_delay),
            throughput=throughput,
        )

    run_command(make_job, outputs)
