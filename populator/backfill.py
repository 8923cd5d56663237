"""One backfill job, end to end: AWS clients, the table, the writer, the pipeline.

This is the library entry point the CLI and the demo both call; it raises `UsageError` for
anything a user can fix and returns the tally of what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiobotocore.credentials import AioCredentials
from botocore.exceptions import ClientError, NoCredentialsError

from . import __version__
from .archive import ArchiveLocation, ArchiveObject
from .aws import AwsSettings, dynamodb_client, identity_hint, new_session, s3_client, translate
from .badrows import BadRowFile, BadRowLimit
from .checkpoint import FinishedObject, JobIdentity, Journal
from .config import StorageConfig
from .errors import ArchiveError, PopulatorError, UsageError
from .manifest import BATCH_SIZE, BatchWriter, ConditionalWriter, RetryPolicy, ensure_table
from .observe import Event, Hub, ObjectFinished, RateChanged, Subscriber, TableReady, Throttled
from .pipeline import PipelineOptions, run_pipeline
from .ratelimit import AdaptiveRateLimiter
from .report import Tally
from .throughput import ThroughputOptions, watch_rate, write_ceiling
from .transport import BotocoreTransport, SignedHttpTransport, Transport


@dataclass(frozen=True)
class BackfillJob:
    """Everything one `populator run` needs, already parsed and validated."""

    location: ArchiveLocation
    storage: StorageConfig
    pipeline: PipelineOptions
    profile: str | None = None
    dry_run: bool = False
    conditional: bool = False
    on_demand: bool = False
    retry: RetryPolicy = RetryPolicy()  # noqa: RUF009 - frozen, immutable default
    checkpoint: Path | None = None  # None: no journal (dry runs)
    restart: bool = False
    bad_rows_path: Path | None = None
    max_bad_rows: int | None = None
    shard: str | None = None
    throughput: ThroughputOptions = ThroughputOptions()  # noqa: RUF009 - frozen

    @property
    def identity(self) -> JobIdentity:
        since = self.pipeline.since.strftime("%Y-%m-%d-%H-%M-%S") if self.pipeline.since else None
        return JobIdentity(
            archive=str(self.location),
            table=self.storage.table,
            since=since,
            mode="conditional" if self.conditional else "batch",
            include_expired=self.pipeline.include_expired,
            shard=self.shard,
        )


async def run_backfill(
    job: BackfillJob,
    hub: Hub,
    tally: Tally | None = None,
    extra_subscribers: Sequence[Subscriber] = (),
    stop: asyncio.Event | None = None,
) -> Tally:
    """Run the job; every event goes to `hub`. Returns the tally, which it subscribes first.

    `extra_subscribers` come after the tally, so they see its counts already updated. Setting
    `stop` asks for a graceful stop: objects finished by then are recorded, the rest resume later.
    """
    tally = tally if tally is not None else Tally(dry_run=job.dry_run)
    hub.subscribe(tally)
    for subscriber in extra_subscribers:
        hub.subscribe(subscriber)
    with contextlib.ExitStack() as resources:
        journal = None
        if job.checkpoint is not None and not job.dry_run:
            journal = Journal.open(job.checkpoint, job.identity, restart=job.restart)
            resources.callback(journal.close)
            tally.checkpoint = str(job.checkpoint)
            hub.subscribe(_recorder(journal))
        if job.bad_rows_path is not None:
            bad_rows = BadRowFile(job.bad_rows_path)
            resources.callback(bad_rows.close)
            hub.subscribe(bad_rows)
        if job.max_bad_rows is not None:
            hub.subscribe(BadRowLimit(job.max_bad_rows))
        try:
            await _run(job, hub, stop, journal.is_finished if journal else None)
        finally:
            tally.finish()
    return tally


def _recorder(journal: Journal) -> Subscriber:
    def record(event: Event) -> None:
        if isinstance(event, ObjectFinished):
            obj = event.obj
            journal.record(
                FinishedObject(obj.key, obj.etag, obj.size, event.lines, event.items, event.bad_rows)
            )

    return record


async def _run(
    job: BackfillJob, hub: Hub, stop: asyncio.Event | None, skip: Callable[[ArchiveObject], bool] | None
) -> None:
    # Conditional mode sends one PutItem per item of a batch at once.
    per_writer = BATCH_SIZE if job.conditional else 1
    settings = AwsSettings(
        profile=job.profile,
        dynamodb_region=job.storage.region,
        dynamodb_keys=job.storage.keys,
        pool_size=max(job.pipeline.concurrency, job.pipeline.writers * per_writer) + 4,
    )
    session = new_session(job.profile)
    s3_identity = identity_hint(None, job.profile)
    table_identity = identity_hint(job.storage.keys, job.profile)
    table_action = f"access to DynamoDB table {job.storage.table!r} in {job.storage.region}"
    async with contextlib.AsyncExitStack() as stack:
        s3 = None
        if job.location.is_s3:
            s3 = await _guard(
                stack.enter_async_context(s3_client(session, settings)),
                action=f"reading {job.location}",
                permission="s3:ListBucket and s3:GetObject",
                identity=s3_identity,
            )
        writer = None
        if not job.dry_run:
            dynamodb = await _guard(
                stack.enter_async_context(dynamodb_client(session, settings)),
                action=table_action,
                permission="dynamodb:DescribeTable",
                identity=table_identity,
            )
            table = await _guard(
                ensure_table(dynamodb, job.storage.table, on_demand=job.on_demand),
                action=table_action,
                permission="dynamodb:DescribeTable (and CreateTable, UpdateTimeToLive for a new table)",
                identity=table_identity,
            )
            hub.publish(TableReady(table))
            limiter = AdaptiveRateLimiter(ceiling=write_ceiling(table, job.throughput))
            transport = await _guard(
                _transport(job, session, dynamodb, settings),
                action=table_action,
                permission="dynamodb:BatchWriteItem",
                identity=table_identity,
            )
            stack.push_async_callback(transport.close)
            writer_type = ConditionalWriter if job.conditional else BatchWriter
            writer = writer_type(
                transport,
                table.name,
                job.retry,
                on_throttle=lambda: hub.publish(Throttled()),
                limiter=limiter,
            )
            watcher = asyncio.create_task(
                watch_rate(
                    dynamodb, table, job.throughput, limiter, lambda state: hub.publish(RateChanged(state))
                )
            )
            stack.push_async_callback(_cancel, watcher)
        write_permission = "dynamodb:PutItem" if job.conditional else "dynamodb:BatchWriteItem"
        await _guard(
            run_pipeline(job.pipeline, hub, writer=writer, s3=s3, stop=stop, skip=skip),
            action=f"the backfill from {job.location} into {job.storage.table!r}",
            permission=f"s3:ListBucket and s3:GetObject on the archive, and {write_permission} on the table",
            identity=f"S3: {s3_identity}; DynamoDB: {table_identity}",
            archive=str(job.location),
        )


async def _transport(job: BackfillJob, session: Any, dynamodb: Any, settings: AwsSettings) -> Transport:
    """The write path: botocore's own, or SigV4-signed posts (see transport.py for why)."""
    if job.throughput.write_path == "botocore":
        return BotocoreTransport(dynamodb)
    keys = job.storage.keys
    if keys is not None:
        credentials: Any = AioCredentials(
            keys.access_key_id, keys.secret_access_key.reveal(), method="config"
        )
    else:
        credentials = await session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
    return SignedHttpTransport(
        endpoint_url=dynamodb.meta.endpoint_url,
        region=dynamodb.meta.region_name,
        credentials=credentials,
        connections=settings.pool_size,
        user_agent=f"populator/{__version__}",
    )


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _guard(awaitable: Any, *, action: str, permission: str, identity: str, archive: str = "") -> Any:
    """Await, turning AWS errors a user can fix into UsageErrors with a clear message.

    Task groups wrap errors in ExceptionGroups; the first leaf a user can act on wins.
    """
    try:
        return await awaitable
    except Exception as exc:
        leaves = _leaves(exc)
        for leaf in leaves:
            if isinstance(leaf, PopulatorError):
                raise leaf from None
            usage = translate(leaf, action=action, permission=permission, identity=identity)
            if usage is not None:
                raise usage from None
            if isinstance(leaf, ClientError):
                code = leaf.response.get("Error", {}).get("Code")
                message = leaf.response.get("Error", {}).get("Message") or code
                if code == "NoSuchBucket":
                    raise ArchiveError(
                        f"ENRICHED_ARCHIVE {archive}: the bucket does not exist ({message}). "
                        "Check the bucket name, and the account your credentials belong to."
                    ) from None
                if code == "ResourceNotFoundException":
                    raise UsageError(f"{action} failed: the table is gone ({message}).") from None
        if len(leaves) == 1 and leaves[0] is not exc:
            raise leaves[0] from None
        raise


def _leaves(exc: BaseException) -> list[BaseException]:
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    found: list[BaseException] = []
    for inner in exc.exceptions:
        found.extend(_leaves(inner))
    return found
