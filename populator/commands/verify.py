"""`populator verify`: a sample of the archive's events read back from the table."""

from typing import Annotated

import typer

from ..errors import EXIT_FAILED, EXIT_OK
from . import groups as g
from . import options as o
from .build import build_from
from .execute import show

EXAMPLES = """
Examples:

  populator verify s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01

  populator verify ./archive dynamodb.json iglu_resolver.json --sample 100000 --json
"""


@g.grouped
def verify(
    source: g.SourceArguments,
    sample: Annotated[
        int,
        typer.Option(min=1, help="Events to check, spread over the selected objects (all when fewer)."),
    ] = 1000,
    seed: Annotated[int, typer.Option(hidden=True, help="Another seed picks another sample.")] = 0,
    json_output: o.Json = False,
) -> None:
    """Check that the archive's events are in the table, on a sample read back (exit 1: some missing)."""
    from ..job.verify import Verification
    from ..job.verify import verify as verify_table
    from .verify_view import render_verification

    async def work() -> Verification:
        job = build_from(source)
        return await verify_table(job, sample, seed=seed)

    result = show(work, render_verification, json_output)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
