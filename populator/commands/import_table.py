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
from . import groups as g
from . import import_options
from .build import ImportArguments, build_from
from .execute import run_command

EXAMPLES = """
Examples:

  populator import s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --staging s3://acme/populator-staging/

  populator import ./archive dynamodb.json iglu_resolver.json --staging s3://acme/stage/ --provisioned 100/100
"""


@g.grouped
def import_table(
    source: g.SourceArguments,
    job: g.JobArguments,
    outputs: g.OutputArguments,
    staging: import_options.Staging = None,
    items_per_object: import_options.ItemsPerObject = import_options.DEFAULT_ITEMS_PER_OBJECT,
    keep_staging: import_options.KeepStaging = False,
    price_per_gb_import: import_options.PricePerGbImport = import_options.DEFAULT_PRICE_PER_GB_IMPORT,
    verify_sample: import_options.VerifySample = import_options.DEFAULT_VERIFY_SAMPLE,
    poll_interval: import_options.PollInterval = import_options.DEFAULT_POLL_INTERVAL,
    part_mib: import_options.PartMib = None,
) -> None:
    """Create the manifest table with DynamoDB's ImportTable: stage the items in S3, import, enable TTL."""
    imports = ImportArguments(
        staging=staging,
        items_per_object=items_per_object,
        keep_staging=keep_staging,
        part_bytes=part_mib * 1024 * 1024 if part_mib else None,
        verify_sample=verify_sample,
        poll_seconds=poll_interval,
        price_per_gb=price_per_gb_import,
    )
    limits = Limits(price_per_million=job.price_per_million)
    run_command(lambda: build_from(source, job, limits=limits, imports=imports), outputs)
