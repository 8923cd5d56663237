"""A validated job from the command line's arguments, for every command.

`build_job` checks everything it can before any AWS call and raises `UsageError` with what to
fix. An `ImportArguments` makes the job an import (`populator import`): its items are staged
under `--staging` and ImportTable creates the table.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.storage import load_resolver_config, load_storage_config
from ..errors import UsageError
from ..job.checkpoint import S3Checkpoint, default_path, parse_checkpoint
from ..job.limits import Limits, check_limits, parse_duration
from ..job.pipeline import PipelineOptions, ReadRetryPolicy
from ..job.spec import DEFAULT_POLL_SECONDS, DEFAULT_VERIFY_SAMPLE, BackfillJob, Staging
from ..sink.pricing import DEFAULT_PRICE_PER_GB_IMPORT
from ..sink.staging import DEFAULT_ITEMS_PER_OBJECT
from ..sink.throughput import ThroughputOptions
from ..sink.writes import RetryPolicy
from ..source.archive import parse_location, parse_since, split_s3_url
from ..source.shard import parse_shard
from .groups import JobArguments, SourceArguments
from .options import BATCH_WRITERS, CONDITIONAL_WRITERS, IMPORT_WRITERS

_CAPACITY = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class ImportArguments:
    """What `populator import` adds to a job's arguments."""

    staging: str | None  # --staging, required
    items_per_object: int = DEFAULT_ITEMS_PER_OBJECT
    keep_staging: bool = False
    part_bytes: int | None = None
    verify_sample: int = DEFAULT_VERIFY_SAMPLE
    poll_seconds: float = DEFAULT_POLL_SECONDS
    price_per_gb: float = DEFAULT_PRICE_PER_GB_IMPORT


def build_job(
    enriched_archive: str,
    storage_config: Path,
    resolver_config: Path,
    *,
    since: str | None = None,
    concurrency: int = 32,
    writers: int | None = None,
    dry_run: bool = False,
    conditional: bool = False,
    include_expired: bool = False,
    on_demand: bool = False,
    provisioned: str | None = None,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    profile: str | None = None,
    retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
    read_retry: ReadRetryPolicy = ReadRetryPolicy(),  # noqa: B008 - frozen
    checkpoint: Path | S3Checkpoint | str | None = None,
    restart: bool = False,
    bad_rows: Path | None = None,
    max_bad_rows: int | None = None,
    throughput: ThroughputOptions = ThroughputOptions(),  # noqa: B008 - frozen
    processes: int = 1,
    shard: str | None = None,
    imports: ImportArguments | None = None,
    request_timeout: float | None = None,
    now: float | None = None,
) -> BackfillJob:
    """The command line's arguments → a validated job. Raises UsageError before any AWS call."""
    where = _staging(imports, shard, checkpoint) if imports is not None else None
    if throughput.write_path not in ("signed", "botocore"):
        raise UsageError(f"--write-path {throughput.write_path!r}: use signed or botocore.")
    if on_demand and provisioned is not None:
        raise UsageError("--on-demand and --provisioned: choose one (a new table is on demand by default).")
    capacity = parse_provisioned(provisioned) if provisioned is not None else None
    check_limits(limits)
    if isinstance(checkpoint, str):
        checkpoint = parse_checkpoint(checkpoint)
    location = parse_location(enriched_archive)
    since_at = parse_since(since) if since is not None else None
    shard_of_archive = parse_shard(shard) if shard is not None else None
    resolver = load_resolver_config(resolver_config)
    storage = load_storage_config(storage_config, resolver)
    if writers is None:
        writers = IMPORT_WRITERS if imports else CONDITIONAL_WRITERS if conditional else BATCH_WRITERS
    job = BackfillJob(
        location=location,
        storage=storage,
        pipeline=PipelineOptions(
            location=location,
            since=since_at,
            concurrency=concurrency,
            writers=writers,
            include_expired=include_expired,
            now=now,
            read_retry=read_retry,
            shard=shard_of_archive,
        ),
        profile=profile or None,
        dry_run=dry_run,
        conditional=conditional,
        provisioned=capacity,
        limits=limits,
        retry=retry,
        request_timeout=request_timeout,
        restart=restart,
        bad_rows_path=bad_rows,
        max_bad_rows=max_bad_rows,
        throughput=throughput,
        processes=processes,
        staging=where,
    )
    if not dry_run:
        job = dataclasses.replace(job, checkpoint=checkpoint or default_path(job.identity))
    return job


def _staging(
    imports: ImportArguments, shard: str | None, checkpoint: Path | S3Checkpoint | str | None
) -> Staging:
    """`populator import`'s own arguments, checked."""
    if shard is not None:
        raise UsageError(
            "--shard: import stages the whole archive from one machine (staging from many machines is not "
            "supported); drop --shard, and use --processes to use this machine's cores."
        )
    if imports.staging is None:
        raise UsageError("--staging is required: an s3://bucket/prefix/ where the staged objects go.")
    where = split_s3_url(imports.staging)
    if where is None or not where[0]:
        raise UsageError(
            f"--staging {imports.staging!r} is not an S3 URL with a bucket: ImportTable reads from S3. Give "
            "s3://bucket/prefix/ (a prefix of its own, empty: the staged objects are deleted after the "
            "import)."
        )
    if imports.items_per_object < 1:
        raise UsageError(
            f"--items-per-object {imports.items_per_object}: give a number of items of at least 1."
        )
    if isinstance(checkpoint, S3Checkpoint) or (isinstance(checkpoint, str) and split_s3_url(checkpoint)):
        raise UsageError(
            f"--checkpoint {checkpoint}: import keeps its checkpoint and staging journal on this machine; "
            "give a local file."
        )
    return Staging(
        bucket=where[0],
        prefix=where[1],
        items_per_object=imports.items_per_object,
        keep=imports.keep_staging,
        part_bytes=imports.part_bytes,
        verify_sample=imports.verify_sample,
        poll_seconds=imports.poll_seconds,
        price_per_gb=imports.price_per_gb,
    )


def parse_provisioned(raw: str) -> tuple[int, int]:
    """`--provisioned R/W` → (read, write) capacity units of a table to create."""
    match = _CAPACITY.fullmatch(raw.strip())
    if match is None or not all(0 < int(units) <= 1_000_000 for units in match.groups()):
        raise UsageError(
            f"--provisioned {raw!r}: give read and write capacity units as R/W, e.g. 100/100 "
            "(what Snowplow's library creates), each from 1 to 1,000,000."
        )
    return int(match.group(1)), int(match.group(2))


def build_from(source: SourceArguments, job: JobArguments | None = None, **options: Any) -> BackfillJob:
    """`build_job` from the commands' groups of options, and `options` of the command's own."""
    if job is not None:
        options |= {
            "include_expired": job.include_expired,
            "on_demand": job.on_demand,
            "provisioned": job.provisioned,
            "concurrency": job.concurrency,
            "processes": job.processes,
            "checkpoint": job.checkpoint,
            "restart": job.restart,
            "bad_rows": job.bad_rows,
            "max_bad_rows": job.max_bad_rows,
            "read_retry": job.read_retry(),
            "shard": job.shard,
            "retry": dataclasses.replace(
                options.get("retry", RetryPolicy()), max_outage=parse_duration(job.max_outage, "--max-outage")
            ),
            "request_timeout": parse_duration(job.request_timeout, "--request-timeout")
            if job.request_timeout
            else None,
        }
    return build_job(
        source.enriched_archive,
        source.storage_config,
        source.resolver_config,
        since=source.since,
        profile=source.profile,
        **options,
    )
