"""`populator import`'s last steps, once every item is staged: ImportTable, the wait, TTL on
`ttl`, a sample read back, and the staged objects deleted.

```
ImportTable (ClientToken) ─► DescribeImport until it ends ─► TTL ─► sample check ─► delete staging
```
Once the import is asked for, the staging journal holds its token and ARN: a rerun reattaches
to it instead of importing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from ..errors import PopulatorError, UsageError, aws_error_code
from ..observe.hub import Hub, ImportDescribed
from ..sink.import_requests import (
    ImportDescription,
    client_token,
    describe_import,
    enable_ttl,
    import_request,
    start_import,
)
from .clients import Clients, guard
from .spec import DEFAULT_POLL_SECONDS, BackfillJob
from .staging_checks import keys_under, staging_call, staging_of
from .staging_records import Journals


class ImportFailed(PopulatorError):
    """The import ended FAILED or CANCELLED, with item errors, or its sample is missing items."""


async def request_import(
    job: BackfillJob, journals: Journals, clients: Clients, hub: Hub
) -> ImportDescription:
    """The import: reattached to by its ARN, or asked for with the job's token (a repeat of a
    request whose answer was lost returns the same import)."""
    staging = staging_of(job)
    from botocore.exceptions import ClientError

    journal = journals.staging
    state = journal.state
    action = f"importing into DynamoDB table {job.storage.table!r} in {job.storage.region}"
    if state.import_arn is not None:
        description = await guard(
            describe_import(clients.dynamodb, state.import_arn),
            action=action,
            permission="dynamodb:DescribeImport",
            identity=clients.table_identity,
            endpoints=clients.reach("DynamoDB"),
        )
        hub.publish(ImportDescribed(description))
        return description
    if state.client_token is None:
        journal.import_requested(client_token(job.job_id, state.nonce))
    assert state.client_token is not None
    request = import_request(
        table=job.storage.table,
        bucket=staging.bucket,
        prefix=job.staged_data_prefix,
        token=state.client_token,
        provisioned=job.provisioned,
    )

    async def start() -> ImportDescription:

        try:
            return await start_import(clients.dynamodb, request)
        except ClientError as exc:
            code = aws_error_code(exc)
            if code == "ResourceInUseException":
                raise UsageError(
                    f"ImportTable refused: table {job.storage.table!r} exists now. If an earlier run of "
                    "this command started its import more than 8 hours ago (its token is no longer "
                    "recognised), find it with `aws dynamodb list-imports --table-arn <the table's ARN>`; "
                    "otherwise import into a table name that does not exist."
                ) from None
            if code in ("ImportConflictException", "IdempotentParameterMismatchException"):
                raise UsageError(
                    f"ImportTable refused ({code}): an import with this job's token but other parameters "
                    "exists. Run the command that started it, or add --restart to stage and import anew."
                ) from None
            raise

    description = await guard(
        start(),
        action=action,
        permission="dynamodb:ImportTable (and s3:GetObject, s3:ListBucket on the staging prefix, and the "
        "CloudWatch Logs actions of the README's IAM section)",
        identity=clients.table_identity,
        endpoints=clients.reach("DynamoDB"),
    )
    journal.import_started(description.arn)
    hub.publish(ImportDescribed(description))
    return description


async def wait_for_import(
    job: BackfillJob,
    clients: Clients,
    hub: Hub,
    description: ImportDescription,
    stop: asyncio.Event,
    interval: float = DEFAULT_POLL_SECONDS,
) -> ImportDescription | None:
    """Poll `DescribeImport` until the import ends; None when `stop` is set first (the import
    goes on in AWS)."""
    while not description.done:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return None
        description = await guard(
            describe_import(clients.dynamodb, description.arn),
            action=f"watching the import into {job.storage.table!r}",
            permission="dynamodb:DescribeImport",
            identity=clients.table_identity,
            endpoints=clients.reach("DynamoDB"),
        )
        hub.publish(ImportDescribed(description))
    return description


async def enable_table_ttl(job: BackfillJob, clients: Clients) -> None:
    await guard(
        enable_ttl(clients.dynamodb, job.storage.table),
        action=f"enabling TTL on {job.storage.table!r}",
        permission="dynamodb:UpdateTimeToLive (and DescribeTimeToLive)",
        identity=clients.table_identity,
        endpoints=clients.reach("DynamoDB"),
    )


async def delete_staging(job: BackfillJob, journals: Journals, clients: Clients) -> int:
    """Delete every object under this job's staging folder (DeleteObjects, 1,000 a request)."""
    staging = staging_of(job)

    async def work() -> int:
        count = 0
        batch: list[dict[str, str]] = []
        async for key in keys_under(clients.s3, staging.bucket, job.staging_folder):
            batch.append({"Key": key})
            if len(batch) == 1000:
                count += await _delete(clients.s3, staging.bucket, batch)
                batch = []
        if batch:
            count += await _delete(clients.s3, staging.bucket, batch)
        return count

    deleted = await staging_call(job, work(), "s3:DeleteObject")
    journals.staging.staging_deleted()
    return int(deleted)


async def _delete(s3: Any, bucket: str, batch: Sequence[dict[str, str]]) -> int:
    answer = await s3.delete_objects(Bucket=bucket, Delete={"Objects": list(batch), "Quiet": True})
    errors = answer.get("Errors", [])
    if errors:
        first = errors[0]
        raise UsageError(
            f"cannot delete s3://{bucket}/{first.get('Key')}: {first.get('Code')} "
            f"{first.get('Message', '')}. The import itself is done; delete the staging folder by hand "
            "or rerun to try again."
        )
    return len(batch)
