"""`populator run`'s destination: the manifest table, written by BatchWriteItem or PutItem.

The parent describes the table (creating it as Snowplow does when it is missing) once; each
process then writes through its own transport and rate controller, sharing one rate budget.
An object is recorded in the checkpoint once every item from it is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config.storage import AwsSettings
from ..observe.hub import (
    ClockSkewed,
    Event,
    Hub,
    ObjectFinished,
    ObjectProgress,
    RateChanged,
    TableReady,
    Throttled,
)
from ..sink.writes import TableInfo
from ..source.archive import probe_read_access
from .checkpoint import FinishedObject, Journal
from .clients import Clients, guard, outage_watch
from .destination import WRITING, EarlierRun, PhaseDisplay, ProcessParts, RateSharing
from .spec import BackfillJob

if TYPE_CHECKING:
    from ..sink.manifest import BatchWriter, ConditionalWriter
    from ..sink.transport import Transport


class TableWriters:
    """Each process's writer to the table (none in a dry run)."""

    stores_on_acknowledge = True

    async def ready(self, job: BackfillJob, clients: Clients, hub: Hub) -> TableInfo | None:
        if job.dry_run:
            return None
        await guard(  # before a table is created for an archive this identity cannot read
            probe_read_access(job.location, clients.s3),
            action=f"reading {job.location}",
            permission="s3:ListBucket and s3:GetObject",
            identity=clients.s3_identity,
            archive=str(job.location),
            endpoints=clients.reach("S3"),
        )
        table = await prepare_table(job, clients)
        hub.publish(TableReady(table))
        return table

    async def open_writer(self, process: ProcessParts) -> BatchWriter | ConditionalWriter | None:
        if process.job.dry_run or process.table is None:
            return None
        return await make_writer(
            process.job,
            process.clients,
            process.table,
            process.hub,
            process.stack,
            process.rate,
            helpers=process.helpers,
        )


class TableDestination:
    """The parent's side: nothing to open or finish; finished objects go to the checkpoint."""

    phase = WRITING

    def __init__(self, job: BackfillJob) -> None:
        self.job = job
        self.writers = TableWriters()

    async def open(self, resources: contextlib.AsyncExitStack) -> None:
        return None

    def attach(
        self, checkpoint: Journal | None, hub: Hub, resources: contextlib.AsyncExitStack
    ) -> EarlierRun | None:
        if checkpoint is None:
            return None

        def record(event: Event) -> None:
            if isinstance(event, ObjectFinished):
                obj = event.obj
                checkpoint.record(
                    FinishedObject(obj.key, obj.etag, obj.size, event.lines, event.items, event.bad_rows)
                )
            elif isinstance(event, ObjectProgress):
                checkpoint.record_progress(event.obj, event.lines)

        hub.subscribe(record)
        return EarlierRun(checkpoint.is_finished, checkpoint.lines_done)

    async def prepare(self, resources: contextlib.AsyncExitStack) -> bool:
        return True

    async def finish(self, hub: Hub, stop: asyncio.Event, display: PhaseDisplay) -> None:
        return None


async def prepare_table(job: BackfillJob, clients: Clients, *, create: bool = True) -> TableInfo:
    """Describe the table; with `create`, make it (as Snowplow does) when it is missing."""
    from ..sink.manifest import describe_capacity, ensure_table

    if create:
        work = ensure_table(clients.dynamodb, job.storage.table, provisioned=job.provisioned)
    else:
        work = describe_capacity(clients.dynamodb, job.storage.table)
    table: TableInfo = await guard(
        work,
        action=clients.table_action(job),
        permission="dynamodb:DescribeTable (and CreateTable, UpdateTimeToLive for a new table)",
        identity=clients.table_identity,
        endpoints=clients.reach("DynamoDB"),
    )
    return table


async def make_writer(
    job: BackfillJob,
    clients: Clients,
    table: TableInfo,
    hub: Hub,
    stack: contextlib.AsyncExitStack,
    rate: RateSharing | None = None,
    *,
    helpers: list[asyncio.Task[None]] | None = None,
) -> BatchWriter | ConditionalWriter:
    """The writer, its transport and rate controller, and the task that keeps the rate current
    (added to `helpers`, whose failure the caller watches for).

    `rate` makes this process one of several sharing a rate controller (see workers.py).
    """
    from ..sink.manifest import BatchWriter, ConditionalWriter
    from ..sink.ratelimit import AdaptiveRateLimiter
    from ..sink.throughput import start_rate, watch_rate, write_ceiling

    limiter = AdaptiveRateLimiter(
        initial=start_rate(table, job.throughput),
        ceiling=write_ceiling(table, job.throughput),
        state=rate.state if rate else None,
        share=rate.share if rate else 1.0,
    )
    transport: Transport = await guard(
        _transport(job, clients.session, clients.dynamodb, clients.settings, hub),
        action=clients.table_action(job),
        permission="dynamodb:BatchWriteItem",
        identity=clients.table_identity,
        endpoints=clients.reach("DynamoDB"),
    )
    stack.push_async_callback(transport.close)
    writer_type = ConditionalWriter if job.conditional else BatchWriter
    writer = writer_type(
        transport,
        table.name,
        job.retry,
        on_throttle=lambda reason: hub.publish(Throttled(reason)),
        limiter=limiter,
        # The table answered its description (here, or in the parent): it is set up right.
        outage=outage_watch("DynamoDB", job, hub, proven=True),
    )
    watcher = asyncio.create_task(
        watch_rate(
            clients.dynamodb, table, job.throughput, limiter, lambda state: hub.publish(RateChanged(state))
        )
    )
    stack.push_async_callback(_cancel, watcher)
    if helpers is not None:
        helpers.append(watcher)
    return writer


async def _transport(
    job: BackfillJob, session: Any, dynamodb: Any, settings: AwsSettings, hub: Hub
) -> Transport:
    """The write path: botocore's own, or SigV4-signed posts (see transport.py for why)."""
    from aiobotocore.credentials import AioCredentials
    from botocore.exceptions import NoCredentialsError

    from ..config.aws import CONNECT_TIMEOUT, DYNAMODB_READ_TIMEOUT
    from ..sink.transport import BotocoreTransport, SignedHttpTransport, proxy_for

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
        on_clock_skew=lambda offset: hub.publish(ClockSkewed("DynamoDB", offset)),
        endpoint_url=dynamodb.meta.endpoint_url,
        region=dynamodb.meta.region_name,
        credentials=credentials,
        connections=settings.pool_size,
        read_timeout=settings.request_timeout or DYNAMODB_READ_TIMEOUT,
        connect_timeout=min(CONNECT_TIMEOUT, settings.request_timeout or CONNECT_TIMEOUT),
        user_agent=f"populator/{__version__}",
        proxy=proxy_for(dynamodb.meta.endpoint_url, dynamodb.meta.config.proxies),
    )


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
