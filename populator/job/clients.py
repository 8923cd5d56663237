"""The AWS side of one process: its session and clients, and AWS errors in the user's terms.

`open_clients` makes what a job needs (S3 for an S3 archive, DynamoDB unless a dry run);
`guard` turns an AWS error a user can fix into a `UsageError` that says what to fix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..config.outage import OutageWatch
from ..config.storage import AwsSettings, identity_hint
from ..errors import ArchiveError, PopulatorError, UsageError
from ..observe.hub import Hub, ServiceWaiting
from ..sink.writes import BATCH_SIZE
from .spec import BackfillJob

if TYPE_CHECKING:
    from ..config.aws import Endpoint

T = TypeVar("T")

# botocore, aiobotocore and aiohttp are imported where a client is made: a dry run over a local
# archive never needs them, and they cost half a second of start-up.


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

    @property
    def table_client(self) -> Any:
        """The DynamoDB client (a dry run has none)."""
        assert self.dynamodb is not None, "a dry run makes no DynamoDB call"
        return self.dynamodb

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
        request_timeout=job.request_timeout,
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


def outage_watch(service: str, job: BackfillJob, hub: Hub, *, proven: bool = False) -> OutageWatch:
    """This process's watch over `service` ("S3", "DynamoDB"), its outages shown as they begin
    and end. `proven`: the service answered the parent already (a worker process)."""

    def tell(since: float | None, why: str) -> None:
        hub.publish(ServiceWaiting(service, since, why))

    return OutageWatch(service, job.retry.max_outage, tell, answers=int(proven))


async def guard_pipeline(job: BackfillJob, clients: Clients, work: Awaitable[T]) -> T:
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


async def guard(
    awaitable: Awaitable[T],
    *,
    action: str,
    permission: str,
    identity: str,
    archive: str = "",
    endpoints: Sequence[Endpoint] = (),
) -> T:
    """Await, turning AWS errors a user can fix into UsageErrors with a clear message.

    `endpoints` are the services the work talks to, the likeliest first: an endpoint this machine
    cannot reach (after botocore's retries) is named with what to check. Task groups wrap errors
    in ExceptionGroups; the first leaf a user can act on wins.
    """
    try:
        return await awaitable
    except Exception as exc:
        from botocore.exceptions import ClientError

        from ..config.aws import refusal, translate

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
        for leaf in leaves:
            if isinstance(leaf, ClientError):  # AWS answered: never "a bug", whatever the code
                raise refusal(leaf, action) from None
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
