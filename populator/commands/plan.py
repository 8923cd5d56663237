"""`populator plan`: what `run` (and `import`) would do, read from the archive and the table."""

from typing import Annotated

import typer

from ..sink.throughput import ThroughputOptions
from . import groups as g
from . import import_options
from . import options as o
from .build import build_from
from .execute import show

EXAMPLES = """
Examples:

  populator plan s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01

  populator plan ./archive dynamodb.json iglu_resolver.json --max-write-rate 2000 --json

  populator plan s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --shards 8
"""


@g.grouped
def plan(
    source: g.SourceArguments,
    include_expired: o.IncludeExpired = False,
    on_demand: o.OnDemand = False,
    provisioned: o.Provisioned = None,
    max_write_rate: o.MaxWriteRate = None,
    write_capacity_percent: o.WriteCapacityPercent = o.DEFAULT_WRITE_CAPACITY_PERCENT,
    price_per_million: o.PricePerMillion = o.DEFAULT_PRICE_PER_MILLION,
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
    items_per_object: import_options.ItemsPerObject = import_options.DEFAULT_ITEMS_PER_OBJECT,
    price_per_gb_import: import_options.PricePerGbImport = import_options.DEFAULT_PRICE_PER_GB_IMPORT,
    json_output: o.Json = False,
) -> None:
    """Show what `run` would do: runs, events, write units, cost and duration. Writes nothing."""
    from ..job.plan import Plan, PlanOptions, make_plan
    from .plan_view import render_plan

    async def work() -> Plan:
        job = build_from(
            source,
            include_expired=include_expired,
            on_demand=on_demand,
            provisioned=provisioned,
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

    show(work, render_plan, json_output)
