"""One backfill job, end to end: AWS clients, the table, the writer, the pipeline.

This is the library entry point the CLI and the demo both call; it raises `UsageError` for
anything a user can fix and returns the tally of what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .archive import ArchiveLocation, ArchiveObject
from .badrows import BadRowFile, BadRowLimit
from .checkpoint import FinishedObject, JobIdentity, Journal
from .config import AwsSettings, StorageConfig, identity_hint
from .errors import ArchiveError, PopulatorError, UsageError
from .observe import Event, Hub, ObjectFinished, RateChanged, Subscriber, TableReady, Throttled
from .pipeline import PipelineOptions, run_pipeline
from .report import Tally
from .shard import Shard
from .throughput import ThroughputOptions
from .writes import BATCH_SIZE, RetryPolicy, TableInfo

if TYPE_CHECKING:
    from .manifest import BatchWriter, ConditionalWriter
    from .transport import Transport

# botocore, aiobotocore and aiohttp are imported where a client is made: a dry run over a local
# archive never needs them, and they cost half a second of start-up.


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
    throughput: ThroughputOptions = ThroughputOptions()  # noqa: RUF009 - frozen
    processes: int = 1  # worker processes (see workers.py); 1 runs everything in this one

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
        skip = journal.is_finished if journal else None
        try:
            if job.processes > 1:
                from .workers import run_in_workers  # the worker module imports this one

                await run_in_workers(job, hub, stop, skip)
            else:
                await run_in_process(job, hub, stop, skip)
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


@dataclass(frozen=True)
class RateSharing:
    """One process's part in a rate controller shared by several."""

    state: Any  # a ratelimit.SharedControllerState
    share: float  # the fraction of the common rate this process paces at


@dataclass
class Clients:
    """The AWS side of one process: a session, and the clients the job needs."""

    session: Any
    settings: AwsSettings
    s3: Any | None
    dynamodb: Any | None
    s3_identity: str
    table_identity: str

    def table_action(self, job: BackfillJob) -> str:
        return f"access to DynamoDB table {job.storage.table!r} in {job.storage.region}"


async def open_clients(job: BackfillJob, stack: contextlib.AsyncExitStack) -> Clients:
    """S3 for an S3 archive, DynamoDB unless this is a dry run; closed with `stack`."""
    # Conditional mode sends one PutItem per item of a batch at once.
    per_writer = BATCH_SIZE if job.conditional else 1
    settings = AwsSettings(
        profile=job.profile,
        dynamodb_region=job.storage.region,
        dynamodb_keys=job.storage.keys,
        pool_size=max(job.pipeline.concurrency, job.pipeline.writers * per_writer) + 4,
    )
    needs_aws = job.location.is_s3 or not job.dry_run
    if needs_aws:
        from .aws import dynamodb_client, new_session, s3_client
    session = new_session(job.profile) if needs_aws else None
    clients = Clients(
        session,
        settings,
        None,
        None,
        identity_hint(None, job.profile),
        identity_hint(job.storage.keys, job.profile),
    )
    if job.location.is_s3:
        clients.s3 = await _guard(
            stack.enter_async_context(s3_client(session, settings)),
            action=f"reading {job.location}",
            permission="s3:ListBucket and s3:GetObject",
            identity=clients.s3_identity,
        )
    if not job.dry_run:
        clients.dynamodb = await _guard(
            stack.enter_async_context(dynamodb_client(session, settings)),
            action=clients.table_action(job),
            permission="dynamodb:DescribeTable",
            identity=clients.table_identity,
        )
    return clients


async def prepare_table(job: BackfillJob, clients: Clients, *, create: bool = True) -> TableInfo:
    """Describe the table; with `create`, make it (as Snowplow does) when it is missing."""
    from .manifest import describe_capacity, ensure_table

    if create:
        work = ensure_table(clients.dynamodb, job.storage.table, on_demand=job.on_demand)
    else:
        work = describe_capacity(clients.dynamodb, job.storage.table)
    return await _guard(
        work,
        action=clients.table_action(job),
        permission="dynamodb:DescribeTable (and CreateTable, UpdateTimeToLive for a new table)",
        identity=clients.table_identity,
    )


async def make_writer(
    job: BackfillJob,
    clients: Clients,
    table: TableInfo,
    hub: Hub,
    stack: contextlib.AsyncExitStack,
    rate: RateSharing | None = None,
) -> BatchWriter | ConditionalWriter:
    """The writer, its transport and rate controller, and the task that keeps the rate current.

    `rate` makes this process one of several sharing a rate controller (see workers.py).
    """
    from .manifest import BatchWriter, ConditionalWriter
    from .ratelimit import AdaptiveRateLimiter
    from .throughput import watch_rate, write_ceiling

    limiter = AdaptiveRateLimiter(
        ceiling=write_ceiling(table, job.throughput),
        state=rate.state if rate else None,
        share=rate.share if rate else 1.0,
    )
    transport = await _guard(
        _transport(job, clients.session, clients.dynamodb, clients.settings),
        action=clients.table_action(job),
        permission="dynamodb:BatchWriteItem",
        identity=clients.table_identity,
    )
    stack.push_async_callback(transport.close)
    writer_type = ConditionalWriter if job.conditional else BatchWriter
    writer = writer_type(
        transport, table.name, job.retry, on_throttle=lambda: hub.publish(Throttled()), limiter=limiter
    )
    watcher = asyncio.create_task(
        watch_rate(
            clients.dynamodb, table, job.throughput, limiter, lambda state: hub.publish(RateChanged(state))
        )
    )
    stack.push_async_callback(_cancel, watcher)
    return writer


async def guard_pipeline(job: BackfillJob, clients: Clients, work: Any) -> Any:
    """Await the pipeline (or a share of it), explaining errors a user can fix."""
    write_permission = "dynamodb:PutItem" if job.conditional else "dynamodb:BatchWriteItem"
    return await _guard(
        work,
        action=f"the backfill from {job.location} into {job.storage.table!r}",
        permission=f"s3:ListBucket and s3:GetObject on the archive, and {write_permission} on the table",
        identity=f"S3: {clients.s3_identity}; DynamoDB: {clients.table_identity}",
        archive=str(job.location),
    )


async def run_in_process(
    job: BackfillJob,
    hub: Hub,
    stop: asyncio.Event | None,
    skip: Callable[[ArchiveObject], bool] | None,
    source: AsyncIterator[ArchiveObject] | None = None,
    *,
    create_table: bool = True,
    rate: RateSharing | None = None,
) -> None:
    """The whole pipeline in this process; `source` replaces listing (a worker's share)."""
    async with contextlib.AsyncExitStack() as stack:
        clients = await open_clients(job, stack)
        writer = None
        if not job.dry_run:
            table = await prepare_table(job, clients, create=create_table)
            if create_table:
                hub.publish(TableReady(table))
            writer = await make_writer(job, clients, table, hub, stack, rate)
        await guard_pipeline(
            job,
            clients,
            run_pipeline(
                job.pipeline, hub, writer=writer, s3=clients.s3, stop=stop, skip=skip, source=source
            ),
        )


async def _transport(job: BackfillJob, session: Any, dynamodb: Any, settings: AwsSettings) -> Transport:
    """The write path: botocore's own, or SigV4-signed posts (see transport.py for why)."""
    from aiobotocore.credentials import AioCredentials
    from botocore.exceptions import NoCredentialsError

    from .transport import BotocoreTransport, SignedHttpTransport

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
        from botocore.exceptions import ClientError

        from .aws import translate

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
