"""What one job is: the archive, the destination of its items and every option, validated.

Made by the command line (`commands/`) or by a library caller, read by every part of `job/`.
A job writes to the table (`populator run`) unless it has a `staging`: then its items are
staged in S3 and DynamoDB's ImportTable creates the table from them (`populator import`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.storage import StorageConfig
from ..sink.pricing import DEFAULT_PRICE_PER_GB_IMPORT
from ..sink.staging import DATA_FOLDER, DEFAULT_ITEMS_PER_OBJECT
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from ..source.archive import ArchiveLocation
from ..source.shard import Shard
from .checkpoint import JobIdentity, S3Checkpoint
from .limits import Limits
from .pipeline import PipelineOptions

DEFAULT_POLL_SECONDS = 15.0  # between DescribeImport calls
DEFAULT_VERIFY_SAMPLE = 100  # events read back from an imported table


@dataclass(frozen=True)
class Staging:
    """`populator import`'s destination: where the items are staged, and how the import ends."""

    bucket: str
    prefix: str = ""  # ends in "/" (or is "": the bucket's root)
    items_per_object: int = DEFAULT_ITEMS_PER_OBJECT
    keep: bool = False  # keep the staged objects after the import
    part_bytes: int | None = None  # None: the stager's default (tests and benchmarks set it)
    verify_sample: int = DEFAULT_VERIFY_SAMPLE  # events read back after the import (0: none)
    poll_seconds: float = DEFAULT_POLL_SECONDS
    price_per_gb: float = DEFAULT_PRICE_PER_GB_IMPORT

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class BackfillJob:
    """Everything one `populator run` or `populator import` needs, already parsed and validated."""

    location: ArchiveLocation
    storage: StorageConfig
    pipeline: PipelineOptions
    profile: str | None = None
    dry_run: bool = False
    conditional: bool = False
    provisioned: tuple[int, int] | None = None  # (RCU, WCU) of a table created; None: on demand
    retry: RetryPolicy = RetryPolicy()  # noqa: RUF009 - frozen, immutable default
    request_timeout: float | None = None  # --request-timeout (None: each service's default)
    checkpoint: Path | S3Checkpoint | None = None  # None: no journal (dry runs)
    restart: bool = False
    bad_rows_path: Path | None = None
    max_bad_rows: int | None = None
    throughput: ThroughputOptions = ThroughputOptions()  # noqa: RUF009 - frozen
    processes: int = 1  # worker processes (see workers.py); 1 runs everything in this one
    limits: Limits = Limits()  # noqa: RUF009 - frozen
    staging: Staging | None = None  # None: write to the table; else stage, then ImportTable

    @property
    def imports(self) -> bool:
        """Whether the items go to staged objects and ImportTable instead of the table."""
        return self.staging is not None

    @property
    def on_demand(self) -> bool:
        """Whether a table this job creates is PAY_PER_REQUEST."""
        return self.provisioned is None

    @property
    def shard(self) -> Shard | None:
        """This machine's share of the archive (`--shard`), or None for all of it."""
        return self.pipeline.shard

    @property
    def mode(self) -> str:
        """How items reach the table: "batch", "conditional" or "import"."""
        if self.staging is not None:
            return "import"
        return "conditional" if self.conditional else "batch"

    @property
    def identity(self) -> JobIdentity:
        since = self.pipeline.since.strftime("%Y-%m-%d-%H-%M-%S") if self.pipeline.since else None
        return JobIdentity(
            archive=str(self.location),
            table=self.storage.table,
            since=since,
            mode=self.mode,
            include_expired=self.pipeline.include_expired,
            shard=str(self.shard) if self.shard is not None else None,
        )

    @property
    def job_id(self) -> str:
        """`<table>-<digest of the identity>`: the checkpoint's name, the import's staging folder."""
        return self.identity.name()

    @property
    def staging_folder(self) -> str:
        """The key prefix of this job's folder under --staging (import jobs only)."""
        assert self.staging is not None
        return f"{self.staging.prefix}{self.job_id}/"

    @property
    def staged_data_prefix(self) -> str:
        """Where the staged objects go, which ImportTable reads."""
        return self.staging_folder + DATA_FOLDER
