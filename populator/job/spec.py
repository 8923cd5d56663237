"""What one backfill is: the archive, the table and every option, parsed and validated.

Made by the command line (`commands/`) or by a library caller, read by every part of `job/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.storage import StorageConfig
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from ..source.archive import ArchiveLocation
from ..source.shard import Shard
from .checkpoint import JobIdentity, S3Checkpoint
from .limits import Limits
from .pipeline import PipelineOptions


@dataclass(frozen=True)
class BackfillJob:
    """Everything one `populator run` needs, already parsed and validated."""

    location: ArchiveLocation
    storage: StorageConfig
    pipeline: PipelineOptions
    profile: str | None = None
    dry_run: bool = False
    conditional: bool = False
    provisioned: tuple[int, int] | None = None  # (RCU, WCU) of a table created; None: on demand
    retry: RetryPolicy = RetryPolicy()  # noqa: RUF009 - frozen, immutable default
    checkpoint: Path | S3Checkpoint | None = None  # None: no journal (dry runs)
    restart: bool = False
    bad_rows_path: Path | None = None
    max_bad_rows: int | None = None
    throughput: ThroughputOptions = ThroughputOptions()  # noqa: RUF009 - frozen
    processes: int = 1  # worker processes (see workers.py); 1 runs everything in this one

    limits: Limits = Limits()  # noqa: RUF009 - frozen

    @property
    def on_demand(self) -> bool:
        """Whether a table this job creates is PAY_PER_REQUEST."""
        return self.provisioned is None

    @property
    def shard(self) -> Shard | None:
        """This machine's share of the archive (`--shard`), or None for all of it."""
        return self.pipeline.shard

    @property
    def identity(self) -> JobIdentity:
        since = self.pipeline.since.strftime("%Y-%m-%d-%H-%M-%S") if self.pipeline.since else None
        return JobIdentity(
            archive=str(self.location),
            table=self.storage.table,
            since=since,
            mode="conditional" if self.conditional else "batch",
            include_expired=self.pipeline.include_expired,
            shard=str(self.shard) if self.shard is not None else None,
        )
