"""One process's share of a backfill: its AWS clients, the table, the writer, the pipeline.

`run_in_process` is the whole job when `--processes 1`, and each worker's part otherwise (see
workers.py). AWS errors a user can fix become `UsageError`s here (`guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .. import __version__
from ..config.storage import AwsSettings, identity_hint
from ..errors import ArchiveError, PopulatorError, UsageError
from ..observe.hub import Hub, RateChanged, TableReady, Throttled
from ..sink.writes import BATCH_SIZE, TableInfo
from ..source.archive import ArchiveObject
from .pipeline import run_pipeline
from .spec import BackfillJob

if TYPE_CHECKING:
    from ..config.aws import Endpoint
    from ..sink.manifest import BatchWriter, ConditionalWriter
    from ..sink.transport import Transport

# botocore, aiobotocore and aiohttp are imported where a client is made: a dry run over a local
# archive never needs them, and they cost half a second of start-up.


@dataclass(frozen=True)
class RateSharing:
    """One process's part in a rate controller shared by several."""

    state: Any  # a ratelimit.SharedControllerState
    share: float  # the fraction of the common rate this process paces at


class Sink(Protocol):
    """Somewhere else for a job's items than the table's writers (`populator import` stages them
    in S3): it makes each process's writer, with the process's clients and hub."""

    async def open_writer(
        self, job: BackfillJob, clients: Clients, hub: Hub, stack: contextlib.AsyncExitStack
    ) -> Any: ...


@dataclass
class Clients:
    """The AWS side of one process: a session, and the clients the job needs."""

    session: Any
    settings: AwsSettings
    s3: Any | None
    dynamodb: Any | None
    s3_identity: str
    table_identity: str
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # by service: "S3", "DynamoDB"

    def table_action(self, job: BackfillJob) -> str:
        return f"access to DynamoDB table {job.storage.table!r} in {job.storage.region}"

    def reach(self, *services: str) -> list[Endpoint]:
        """The endpoints of `services` this process has clients for, in that order (for `guard`)."""
        return [self.endpoints[name] for name in services if name in self.endpoints]


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
        from ..config.aws import Endpoint, dynamodb_client, new_session, s3_client
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
        clients.s3 = await guard(
            stack.enter_async_context(s3_client(session, settings)),
            action=f"reading {job.location}",
            permission="s3:ListBucket and s3:GetObject",
            identity=clients.s3_identity,
        )
        clients.endpoints["S3"] = Endpoint.of("S3", clients.s3)
    if not job.dry_run:
        clients.dynamodb = await guard(
            stack.enter_async_context(dynamodb_client(session, settings)),
            action=clients.table_action(job),
            permission="dynamodb:DescribeTable",
            identity=clients.table_identity,
        )
        clients.endpoints["DynamoDB"] = Endpoint.of("DynamoDB", clients.dynamodb)
    return clients


async def prepare_table(job: BackfillJob, clients: Clients, *, create: bool = True) -> TableInfo:
    """Describe the table; with `create`, make it (as Snowplow does) when it is missing."""
    from ..sink.manifest import describe_capacity, ensure_table

    if create:
        work = ensure_table(clients.dynamodb, job.storage.table, provisioned=job.provisioned)
    else:
        work = describe_capacity(clients.dynamodb, job.storage.table)
    return await guard(
        work,
        action=clients.table_action(job),
        permission="dynamodb:DescribeTable (and CreateTable, UpdateTimeToLive for a new table)",
        identity=clients.table_identity,
        endpoints=clients.reach("DynamoDB"),
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
    from ..sink.manifest import BatchWriter, ConditionalWriter
    from ..sink.ratelimit import AdaptiveRateLimiter
    from ..sink.throughput import start_rate, watch_rate, write_ceiling

    limiter = AdaptiveRateLimiter(
        initial=start_rate(table, job.throughput),
        ceiling=write_ceiling(table, job.throughput),
        state=rate.state if rate else None,
        share=rate.share if rate else 1.0,
    )
    transport = await guard(
        _transport(job, clients.session, clients.dynamodb, clients.settings),
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
    return await guard(
        work,
        action=f"the backfill from {job.location} into {job.storage.table!r}",
        permission=f"s3:ListBucket and s3:GetObject on the archive, and {write_permission} on the table",
        identity=f"S3: {clients.s3_identity}; DynamoDB: {clients.table_identity}",
        archive=str(job.location),
        endpoints=clients.reach("S3", "DynamoDB"),  # the listing, mostly: reads and writes fail objects
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
    table: TableInfo | None = None,
    sink: Sink | None = None,
) -> None:
    """The whole pipeline in this process; `source` replaces listing (a worker's share), `table`
    describing the table (a worker's, from its parent); `sink` makes the writer instead (the
    table is then neither described nor created)."""
    async with contextlib.AsyncExitStack() as stack:
        clients = await open_clients(job, stack)
        writer = None
        if sink is not None:
            writer = await sink.open_writer(job, clients, hub, stack)
        elif not job.dry_run:
            if table is None:
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
        endpoint_url=dynamodb.meta.endpoint_url,
        region=dynamodb.meta.region_name,
        credentials=credentials,
        connections=settings.pool_size,
        user_agent=f"populator/{__version__}",
        proxy=proxy_for(dynamodb.meta.endpoint_url, dynamodb.meta.config.proxies),
    )


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def guard(
    awaitable: Any,
    *,
    action: str,
    permission: str,
    identity: str,
    archive: str = "",
    endpoints: Sequence[Endpoint] = (),
) -> Any:
    """Await, turning AWS errors a user can fix into UsageErrors with a clear message.

    `endpoints` are the services the work talks to, the likeliest first: an endpoint this machine
    cannot reach (after botocore's retries) is named with what to check. Task groups wrap errors
    in ExceptionGroups; the first leaf a user can act on wins.
    """
    try:
        return await awaitable
    except Exception as exc:
        from botocore.exceptions import ClientError

        from ..config.aws import translate

        leaves = _leaves(exc)
        for leaf in leaves:
            if isinstance(leaf, PopulatorError):
                raise leaf from None
            usage = translate(
                leaf, action=action, permission=permission, identity=identity, endpoints=endpoints
            )
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
