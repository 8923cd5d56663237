"""The checks made before the first byte is staged, and the staging folder's housekeeping.

Before staging, an import proves that its table does not exist yet (ImportTable only creates
tables), that the staging prefix is writable and holds nothing but this job's folder, and that
the archive fits in ImportTable's 50,000 objects; it then aborts what a crash left half
uploaded. S3's answers about the staging prefix are put in the user's terms here.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..errors import ACCESS_DENIED_CODES, UsageError, aws_error_code
from ..sink.staging import MAX_STAGED_OBJECTS
from ..source.archive import ArchiveObject, list_archive
from ..source.estimate import estimate, kind_of, sample_heads
from .clients import Clients, guard
from .spec import BackfillJob, Staging
from .staging_journal import StagingJournal
from .staging_records import Journals

MARKER = "populator-import.json"  # under <staging>/<job id>/: whose objects these are
_SAMPLES_PER_KIND = 4


def staging_of(job: BackfillJob) -> Staging:
    """The job's staging options; only an import job has them."""
    assert job.staging is not None, "an import job has a staging prefix"
    return job.staging


def journal_header(job: BackfillJob) -> dict[str, Any]:
    """The staging journal's and the marker's first record: whose objects these are."""
    return {"identity": job.identity.as_dict(), "staging": staging_of(job).url, "job_id": job.job_id}


async def preflight(job: BackfillJob, journals: Journals, clients: Clients) -> bool:
    """Everything checked before the first byte is staged. Returns False when the import was
    already asked for (a rerun reattaches to it: nothing to check or stage)."""
    state = journals.staging.state
    if state.import_arn is not None or state.client_token is not None:
        return False
    await refuse_an_existing_table(job, clients)
    s3 = clients.s3
    await staging_call(job, _check_staging_prefix(job, s3), "s3:ListBucket")
    journals.reconciled = journals.staging.reconcile(journals.checkpoint)
    await _check_object_count(job, journals, clients)
    await staging_call(job, _write_marker(job, s3), "s3:PutObject")
    await staging_call(
        job, _clean_up(job, journals.staging, s3), "s3:AbortMultipartUpload and s3:DeleteObject"
    )
    return True


def table_exists_error(job: BackfillJob) -> UsageError:
    return UsageError(
        f"DynamoDB table {job.storage.table!r} already exists in {job.storage.region}, and ImportTable only "
        "creates new tables; nothing was staged. Either back-fill that table with `populator run` (same "
        "arguments), or import into a new table: name one that does not exist in the storage config's "
        "dynamodbTable, import, then point the shredder's storage config at it."
    )


async def refuse_an_existing_table(job: BackfillJob, clients: Clients) -> None:
    """ImportTable creates its table: an existing one is refused before anything is staged."""
    from botocore.exceptions import ClientError

    async def describe() -> bool:
        try:
            await clients.table_client.describe_table(TableName=job.storage.table)
        except ClientError as exc:
            if aws_error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    exists = await guard(
        describe(),
        action=clients.table_action(job),
        permission="dynamodb:DescribeTable",
        identity=clients.table_identity,
        endpoints=clients.reach("DynamoDB"),
    )
    if exists:
        raise table_exists_error(job)


async def staging_call(job: BackfillJob, work: Any, permission: str) -> Any:
    """S3 errors on the staging prefix in the user's terms (the archive's are guard's)."""
    staging = staging_of(job)
    from botocore.exceptions import ClientError

    try:
        return await work
    except ClientError as exc:
        code = aws_error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        if code == "NoSuchBucket":
            raise UsageError(
                f"--staging {staging.url}: the bucket does not exist ({message}). Create it (in any region) "
                "or name another one."
            ) from None
        if code in ACCESS_DENIED_CODES:
            raise UsageError(
                f"--staging {staging.url}: S3 refused {exc.operation_name} ({code}). The identity that runs "
                f"the import needs {permission} on the staging prefix (see the README's IAM section); "
                "nothing was staged."
            ) from None
        from ..config.aws import refusal

        raise refusal(exc, f"using --staging {staging.url}") from None


async def _check_staging_prefix(job: BackfillJob, s3: Any) -> None:
    """The prefix holds nothing but this job's folder: ImportTable would not read another job's
    objects (it reads our data/ folder only), but deleting and reattaching must not be confused."""
    staging = staging_of(job)
    answer = await s3.list_objects_v2(Bucket=staging.bucket, Prefix=staging.prefix, Delimiter="/", MaxKeys=20)
    others = [
        entry["Prefix"] for entry in answer.get("CommonPrefixes", []) if entry["Prefix"] != job.staging_folder
    ]
    others += [entry["Key"] for entry in answer.get("Contents", [])]
    if others:
        shown = ", ".join(f"s3://{staging.bucket}/{key}" for key in others[:3])
        raise UsageError(
            f"--staging {staging.url} already holds objects that are not this import's ({shown}"
            f"{', …' if len(others) > 3 else ''}): staging objects of another job, or other data. Give a "
            "prefix of its own to each import (for example s3://bucket/populator-staging/<table>/); "
            "nothing was staged."
        )


async def _write_marker(job: BackfillJob, s3: Any) -> None:
    """Who these objects belong to; also the proof that the staging prefix can be written."""
    staging = staging_of(job)
    body = orjson.dumps(journal_header(job), option=orjson.OPT_INDENT_2)
    await s3.put_object(
        Bucket=staging.bucket, Key=job.staging_folder + MARKER, Body=body, ContentType="application/json"
    )


async def _clean_up(job: BackfillJob, journal: StagingJournal, s3: Any) -> None:
    """Abort the uploads a crash left open; delete staged objects no staged record names (their
    upload completed just before a crash: their archive objects are staged again)."""
    staging = staging_of(job)
    state = journal.state
    for key, upload_id in list(state.uploads.items()):
        try:
            await s3.abort_multipart_upload(Bucket=staging.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            if aws_error_code(exc) != "NoSuchUpload":
                raise
        journal.aborted(key, upload_id)
    async for key in keys_under(s3, staging.bucket, job.staged_data_prefix):
        if key not in state.staged:
            await s3.delete_object(Bucket=staging.bucket, Key=key)
            journal.orphan_deleted(key)
    # Uploads no journal line names (a worker's record lost in a crash, or --restart): found by
    # listing when the identity may (s3:ListBucketMultipartUploads), else left to a lifecycle rule.
    with contextlib.suppress(Exception):
        answer = await s3.list_multipart_uploads(Bucket=staging.bucket, Prefix=job.staged_data_prefix)
        for upload in answer.get("Uploads", []):
            await s3.abort_multipart_upload(
                Bucket=staging.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )


async def keys_under(s3: Any, bucket: str, prefix: str) -> AsyncIterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            yield entry["Key"]


async def _check_object_count(job: BackfillJob, journals: Journals, clients: Clients) -> None:
    """Stop before staging when the archive needs more staged objects than ImportTable reads.

    A staged object holds at least one archive object, so only an archive of more objects than
    that can need too many; then its items are estimated as `plan` does, from object heads (a
    few per kind of object, picked while listing: the listing itself is not kept)."""
    staging = staging_of(job)
    already = len(journals.staging.state.staged)
    room = MAX_STAGED_OBJECTS - already
    picker = random.Random(0)
    sizes: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    picked: dict[str, list[ArchiveObject]] = {}

    async def remaining() -> int:
        _runs, listed = await list_archive(job.location, job.pipeline.since, clients.s3)
        count = 0
        async for obj in listed:
            if journals.is_done(obj):
                continue
            count += 1
            kind = kind_of(obj)
            sizes[kind] += obj.size
            seen[kind] += 1
            chosen = picked.setdefault(kind, [])
            if len(chosen) < _SAMPLES_PER_KIND:
                chosen.append(obj)
            elif (slot := picker.randrange(seen[kind])) < _SAMPLES_PER_KIND:
                chosen[slot] = obj  # a uniform sample of each kind (reservoir sampling)
        return count

    left = await guard(
        remaining(),
        action=f"listing {job.location}",
        permission="s3:ListBucket",
        identity=clients.s3_identity,
        archive=str(job.location),
        endpoints=clients.reach("S3"),
    )
    if left <= room:
        return
    heads = [obj for chosen in picked.values() for obj in chosen]
    lines = estimate(await sample_heads(job.location, heads, 256 * 1024, clients.s3))
    fallback = lines.ratios.get("*", 0.0)
    items = sum(size * lines.ratios.get(kind, fallback) for kind, size in sizes.items()) * lines.event_share
    needed = math.ceil(items / staging.items_per_object)
    if needed > room:
        raise UsageError(
            f"this archive would need about {needed + already:,} staged objects of "
            f"{staging.items_per_object:,} items (≈ {items:,.0f} items to stage), more than the "
            f"{MAX_STAGED_OBJECTS:,} objects ImportTable reads; nothing was staged. Pass "
            f"--items-per-object {math.ceil(items / room):,} or more."
        )
