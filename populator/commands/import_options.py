"""The options only `populator import` (and `plan`, which prices an import) takes, declared once.

As in `options`, no `from __future__ import annotations`: typer reads these at each start.
"""

from typing import Annotated

import typer

from ..job.spec import DEFAULT_POLL_SECONDS
from ..job.spec import DEFAULT_VERIFY_SAMPLE as DEFAULT_VERIFY_SAMPLE
from ..sink.pricing import DEFAULT_PRICE_PER_GB_IMPORT as DEFAULT_PRICE_PER_GB_IMPORT
from ..sink.staging import DEFAULT_ITEMS_PER_OBJECT as DEFAULT_ITEMS_PER_OBJECT

DEFAULT_POLL_INTERVAL = DEFAULT_POLL_SECONDS

Staging = Annotated[
    str | None,
    typer.Option(
        metavar="s3://BUCKET/PREFIX/",
        help="Where the staged objects go (required): an S3 prefix of its own; they are deleted after "
        "the import unless --keep-staging.",
        show_default=False,
    ),
]
ItemsPerObject = Annotated[
    int,
    typer.Option(
        "--items-per-object",
        min=1,
        help="Import: about this many items a staged object (archive objects are never split; "
        "ImportTable reads at most 50,000 objects).",
    ),
]
KeepStaging = Annotated[
    bool, typer.Option("--keep-staging", help="Keep the staged objects after the import.")
]
PricePerGbImport = Annotated[
    float,
    typer.Option(
        "--price-per-gb-import",
        min=0.0,
        help="Import: USD per GB (uncompressed) ImportTable processes (default: us-east-1's 0.15).",
    ),
]
VerifySample = Annotated[
    int,
    typer.Option(
        "--verify-sample",
        min=0,
        help="After the import, read back this many of the archive's events, as verify does (0: none).",
    ),
]
PollInterval = Annotated[
    float,
    typer.Option("--poll-interval", min=0.05, hidden=True, help="Seconds between DescribeImport calls."),
]
PartMib = Annotated[
    int | None, typer.Option("--part-mib", min=5, hidden=True, help="Multipart part size in MiB (tests).")
]
