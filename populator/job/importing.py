"""`populator import`, the job: stage the archive's items in S3, then have DynamoDB import them.

The same pipeline as `run` (listing, readers, parser, TTL rule, batching, checkpoint, hub),
with a different sink: each process's writer is a `Stager` (sink/staging.py) that streams the
items into gzip DynamoDB-JSON objects under `<staging>/<job id>/data/`. An archive object is
finished for the checkpoint only once the staged object holding it is completely uploaded. Then
one `ImportTable` (sink/importer.py) creates the table from them.

```
pre-flight (table must not exist, staging writable and ours, ≤ 50,000 staged objects)
  └► stage (resumable: the checkpoint + the staging journal) ─► ImportTable (ClientToken) ─► wait
       └► TTL on `ttl` ─► (the command checks a sample) ─► delete the staged objects
```

Everything before `ImportTable` may be interrupted and resumed; once the import is asked for,
the staging journal holds its token and ARN, and a rerun reattaches to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import PopulatorError, UsageError, aws_error_code
from ..observe.hub import (
    Event,
    Hub,
    ImportDescribed,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectStaged,
    StagedUploadAborted,
    StagedUploadStarted,
)
from ..observe.imports import ImportTally
from ..observe.report import Tally
from ..sink.importer import (
    ImportDescription,
    client_token,
    describe_import,
    enable_ttl,
    import_request,
    start_import,
)
from ..sink.staging import (
    DATA_FOLDER,
    DEFAULT_ITEMS_PER_OBJECT,
    MAX_STAGED_OBJECTS,
    HeldObject,
    Stager,
)
from ..source.archive import ArchiveObject, list_archive
from ..source.estimate import estimate, kind_of, sample_heads
from .badrows import BadRowFile, BadRowLimit
from .checkpoint import FinishedObject, JobIdentity, Journal
from .process import Clients, guard, open_clients, run_in_process
from .spec import BackfillJob
from .staging_journal import StagingJournal, finished, journal_path

MARKER = "populator-import.json"  # under <staging>/<job id>/: whose objects these are
DEFAULT_POLL_SECONDS = 15.0
_SAMPLES_PER_KIND = 4
_ACCESS = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "InvalidAccessKeyId"}


class ImportFailed(PopulatorError):
    """The import ended FAILED or CANCELLED, with item errors, or its sample is missing items."""

    exit_code = 1


@dataclass(frozen=True)
class ImportJob(BackfillJob):
    """A `BackfillJob` whose items go to staged objects and ImportTable instead of the table."""

    staging_bucket: str = ""
    staging_prefix: str = ""  # ends in "/" (or is "": the bucket's root)
    items_per_object: int = DEFAULT_ITEMS_PER_OBJECT
    keep_staging: bool = False
    part_bytes: int | None = None  # None: the stager's default (tests and benchmarks set it)

    @property
    def identity(self) -> JobIdentity:
        since = self.pipeline.since.strftime("%Y-%m-%d-%H-%M-%S") if self.pipeline.since else None
        return JobIdentity(
            archive=str(self.location),
            table=self.storage.table,
            since=since,
            mode="import",
            include_expired=self.pipeline.include_expired,
            shard=None,
        )

    @property
    def job_id(self) -> str:
        """The job's folder under --staging: the table and the job's digest, as the checkpoint's name."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.storage.table)
        return f"{safe}-{self.identity.digest()}"

    @property
    def staging(self) -> str:
        return f"s3://{self.staging_bucket}/{self.staging_prefix}"

    @property
    def job_prefix(self) -> str:
        return f"{self.staging_prefix}{self.job_id}/"

    @property
    def data_prefix(self) -> str:
        return self.job_prefix + DATA_FOLDER

    @property
    def journal_path(self) -> Path:
        assert isinstance(self.checkpoint, Path)
        return journal_path(self.checkpoint)

    def journal_header(self) -> dict[str, Any]:
        return {"identity": self.identity.as_dict(), "staging": self.staging, "job_id": self.job_id}


# --------------------------------------------------------------------------- the journals


@dataclass
class Journals:
    checkpoint: Journal
    staging: StagingJournal
    reconciled: frozenset[tuple[str, str]] = frozenset()  # (key, ETag) finished from the staging journal

    def is_done(self, obj: ArchiveObject) -> bool:
        """Finished (staged, or with no item to stage) in an earlier run, with the same ETag."""
        return self.checkpoint.is_finished(obj) or (obj.key, obj.etag) in self.reconciled

    def close(self) -> None:
        self.staging.close()
        self.checkpoint.close()


def open_journals(job: ImportJob) -> Journals:
    """The checkpoint and the staging journal (both local files, next to each other)."""
    assert isinstance(job.checkpoint, Path)
    checkpoint = Journal.open(job.checkpoint, job.identity, restart=job.restart)
    try:
        staging = StagingJournal.open(job.journal_path, job.journal_header(), restart=job.restart)
    except BaseException:
        checkpoint.close()
        raise
    return Journals(checkpoint, staging)


class Recorder:
    """The parent's subscriber: staged objects into the staging journal, then their archive
    objects into the checkpoint. An object that gave no item is finished at once."""

    def __init__(self, journals: Journals) -> None:
        self._journals = journals

    def __call__(self, event: Event) -> None:
        journal = self._journals.staging
        match event:
            case ObjectFinished(obj=obj, items=0):
                self._journals.checkpoint.record(
                    FinishedObject(obj.key, obj.etag, obj.size, event.lines, 0, event.bad_rows)
                )
            case StagedUploadStarted(key=key, upload_id=upload_id):
                if len(journal.state.staged) + len(journal.state.uploads) >= MAX_STAGED_OBJECTS:
                    raise UsageError(
                        f"this import would need more than {MAX_STAGED_OBJECTS:,} staged objects, "
                        "ImportTable's limit: run it again with a larger --items-per-object."
                    )
                journal.upload_started(key, upload_id)
            case StagedUploadAborted(key=key, upload_id=upload_id):
                journal.aborted(key, upload_id)
            case ObjectStaged(staged=staged):
                journal.staged(staged)
                for held in staged.held:
                    self._journals.checkpoint.record(finished(held))


# --------------------------------------------------------------------------- the sink


class StagingSink:
    """Each process's writer: a `Stager` on the process's S3 client, told by the process's hub
    when an archive object settles, closed (or aborted, after an error) with the process."""

    def __init__(self, job: ImportJob) -> None:
        self._job = job

    async def open_writer(
        self, job: BackfillJob, clients: Clients, hub: Hub, stack: contextlib.AsyncExitStack
    ) -> Stager:
        s3 = clients.s3
        if s3 is None:  # a local archive: staging still needs S3
            from ..config.aws import s3_client

            s3 = await stack.enter_async_context(s3_client(clients.session, clients.settings))
        options: dict[str, Any] = {"items_per_object": self._job.items_per_object}
        if self._job.part_bytes is not None:
            options["part_bytes"] = self._job.part_bytes
        stager = Stager(
            s3,
            self._job.staging_bucket,
            self._job.data_prefix,
            on_upload_started=lambda key, upload_id: hub.publish(StagedUploadStarted(key, upload_id)),
            on_staged=lambda staged: hub.publish(ObjectStaged(staged)),
            on_aborted=lambda key, upload_id: hub.publish(StagedUploadAborted(key, upload_id)),
            **options,
        )

        def settle(event: Event) -> None:
            if isinstance(event, ObjectFinished) and event.items:
                obj = event.obj
                stager.object_finished(
                    HeldObject(obj.key, obj.etag, obj.size, event.lines, event.items, event.bad_rows)
                )
            elif isinstance(event, ObjectFailedEvent):
                stager.object_failed(event.obj.key)

        hub.subscribe(settle)

        async def end(kind: type[BaseException] | None, *_: Any) -> bool:
            if kind is None:
                await stager.close()
            else:
                await stager.abort()
            return False

        stack.push_async_exit(end)
        return stager


# --------------------------------------------------------------------------- the steps


async def open_import_clients(job: ImportJob, stack: contextlib.AsyncExitStack) -> Clients:
    """S3 (for the archive and the staging) and DynamoDB, closed with `stack`."""
    clients = await open_clients(job, stack)
    if clients.s3 is None:
        from ..config.aws import Endpoint, s3_client

        clients.s3 = await stack.enter_async_context(s3_client(clients.session, clients.settings))
        clients.endpoints["S3"] = Endpoint.of("S3", clients.s3)
    return clients


def table_exists_error(job: ImportJob) -> UsageError:
    return UsageError(
        f"DynamoDB table {job.storage.table!r} already exists in {job.storage.region}, and ImportTable only "
        "creates new tables; nothing was staged. Either back-fill that table with `populator run` (same "
        "arguments), or import into a new table: name one that does not exist in the storage config's "
        "dynamodbTable, import, then point the shredder's storage config at it."
    )


async def preflight(job: ImportJob, journals: Journals, clients: Clients) -> bool:
    """Everything checked before the first byte is staged. Returns False when the import was
    already asked for (a rerun reattaches to it: nothing to check or stage)."""
    state = journals.staging.state
    if state.import_arn is not None or state.client_token is not None:
        return False
    await refuse_an_existing_table(job, clients)
    s3 = clients.s3
    await _staging_call(job, _check_staging_prefix(job, s3), "s3:ListBucket")
    journals.reconciled = journals.staging.reconcile(journals.checkpoint)
    await _check_object_count(job, journals, clients)
    await _staging_call(job, _write_marker(job, s3), "s3:PutObject")
    await _staging_call(
        job, _clean_up(job, journals.staging, s3), "s3:AbortMultipartUpload and s3:DeleteObject"
    )
    return True


async def refuse_an_existing_table(job: ImportJob, clients: Clients) -> None:
    """ImportTable creates its table: an existing one is refused before anything is staged."""
    from botocore.exceptions import ClientError

    async def describe() -> bool:
        try:
            await clients.dynamodb.describe_table(TableName=job.storage.table)
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


async def _staging_call(job: ImportJob, work: Any, permission: str) -> Any:
    """S3 errors on the staging prefix in the user's terms (the archive's are guard's)."""
    from botocore.exceptions import ClientError

    try:
        return await work
    except ClientError as exc:
        code = aws_error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        if code == "NoSuchBucket":
            raise UsageError(
                f"--staging {job.staging}: the bucket does not exist ({message}). Create it (in any region) "
                "or name another one."
            ) from None
        if code in _ACCESS:
            raise UsageError(
                f"--staging {job.staging}: S3 refused {exc.operation_name} ({code}). The identity that runs "
                f"the import needs {permission} on the staging prefix (see the README's IAM section); "
                "nothing was staged."
            ) from None
        raise


async def _check_staging_prefix(job: ImportJob, s3: Any) -> None:
    """The prefix holds nothing but this job's folder: ImportTable would not read another job's
    objects (it reads our data/ folder only), but deleting and reattaching must not be confused."""
    answer = await s3.list_objects_v2(
        Bucket=job.staging_bucket, Prefix=job.staging_prefix, Delimiter="/", MaxKeys=20
    )
    others = [
        entry["Prefix"] for entry in answer.get("CommonPrefixes", []) if entry["Prefix"] != job.job_prefix
    ]
    others += [entry["Key"] for entry in answer.get("Contents", [])]
    if others:
        shown = ", ".join(f"s3://{job.staging_bucket}/{key}" for key in others[:3])
        raise UsageError(
            f"--staging {job.staging} already holds objects that are not this import's ({shown}"
            f"{', …' if len(others) > 3 else ''}): staging objects of another job, or other data. Give a "
            "prefix of its own to each import (for example s3://bucket/populator-staging/<table>/); "
            "nothing was staged."
        )


async def _write_marker(job: ImportJob, s3: Any) -> None:
    """Who these objects belong to; also the proof that the staging prefix can be written."""
    body = orjson.dumps(job.journal_header(), option=orjson.OPT_INDENT_2)
    await s3.put_object(
        Bucket=job.staging_bucket, Key=job.job_prefix + MARKER, Body=body, ContentType="application/json"
    )


async def _clean_up(job: ImportJob, journal: StagingJournal, s3: Any) -> None:
    """Abort the uploads a crash left open; delete staged objects no staged record names (their
    upload completed just before a crash: their archive objects are staged again)."""
    state = journal.state
    for key, upload_id in list(state.uploads.items()):
        try:
            await s3.abort_multipart_upload(Bucket=job.staging_bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            if aws_error_code(exc) != "NoSuchUpload":
                raise
        journal.aborted(key, upload_id)
    async for key in _keys(s3, job.staging_bucket, job.data_prefix):
        if key not in state.staged:
            await s3.delete_object(Bucket=job.staging_bucket, Key=key)
            journal.orphan_deleted(key)
    # Uploads no journal line names (a worker's record lost in a crash, or --restart): found by
    # listing when the identity may (s3:ListBucketMultipartUploads), else left to a lifecycle rule.
    with contextlib.suppress(Exception):
        answer = await s3.list_multipart_uploads(Bucket=job.staging_bucket, Prefix=job.data_prefix)
        for upload in answer.get("Uploads", []):
            await s3.abort_multipart_upload(
                Bucket=job.staging_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )


async def _keys(s3: Any, bucket: str, prefix: str) -> Any:
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            yield entry["Key"]


async def _check_object_count(job: ImportJob, journals: Journals, clients: Clients) -> None:
    """Stop before staging when the archive needs more staged objects than ImportTable reads.

    A staged object holds at least one archive object, so only an archive of more objects than
    that can need too many; then its items are estimated as `plan` does, from object heads (a
    few per kind of object, picked while listing: the listing itself is not kept)."""
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
    needed = math.ceil(items / job.items_per_object)
    if needed > room:
        raise UsageError(
            f"this archive would need about {needed + already:,} staged objects of {job.items_per_object:,} "
            f"items (≈ {items:,.0f} items to stage), more than the {MAX_STAGED_OBJECTS:,} objects "
            f"ImportTable reads; nothing was staged. Pass --items-per-object {math.ceil(items / room):,} "
            "or more."
        )


async def stage(
    job: ImportJob,
    hub: Hub,
    tally: Tally,
    journals: Journals,
    stop: asyncio.Event,
) -> None:
    """The pipeline, in one process or many, with the stager as its writer."""
    hub.subscribe(Recorder(journals))
    tally.checkpoint = str(job.checkpoint)
    with contextlib.ExitStack() as resources:
        if job.bad_rows_path is not None:
            bad_rows = BadRowFile(job.bad_rows_path)
            resources.callback(bad_rows.close)
            hub.subscribe(bad_rows)
        if job.max_bad_rows is not None:
            hub.subscribe(BadRowLimit(job.max_bad_rows))
        sink = StagingSink(job)
        skip = journals.is_done
        try:
            if job.processes > 1:
                from .workers import run_in_workers

                await run_in_workers(job, hub, stop, skip, sink)
            else:
                await run_in_process(job, hub, stop, skip, create_table=False, sink=sink)
        finally:
            tally.finish()


async def request_import(job: ImportJob, journals: Journals, clients: Clients, hub: Hub) -> ImportDescription:
    """The import: reattached to by its ARN, or asked for with the job's token (a repeat of a
    request whose answer was lost returns the same import)."""
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
        bucket=job.staging_bucket,
        prefix=job.data_prefix,
        token=state.client_token,
        provisioned=job.provisioned,
    )
    try:
        description = await guard(
            start_import(clients.dynamodb, request),
            action=action,
            permission="dynamodb:ImportTable (and s3:GetObject, s3:ListBucket on the staging prefix, and the "
            "CloudWatch Logs actions of the README's IAM section)",
            identity=clients.table_identity,
            endpoints=clients.reach("DynamoDB"),
        )
    except ClientError as exc:
        code = aws_error_code(exc)
        if code == "ResourceInUseException":
            raise UsageError(
                f"ImportTable refused: table {job.storage.table!r} exists now. If an earlier run of this "
                "command started its import more than 8 hours ago (its token is no longer recognised), "
                "find it with `aws dynamodb list-imports --table-arn <the table's ARN>`; otherwise import "
                "into a table name that does not exist."
            ) from None
        if code in ("ImportConflictException", "IdempotentParameterMismatchException"):
            raise UsageError(
                f"ImportTable refused ({code}): an import with this job's token but other parameters exists. "
                "Run the command that started it, or add --restart to stage and import anew."
            ) from None
        raise
    journal.import_started(description.arn)
    hub.publish(ImportDescribed(description))
    return description


async def wait_for_import(
    job: ImportJob,
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


async def enable_table_ttl(job: ImportJob, clients: Clients) -> None:
    await guard(
        enable_ttl(clients.dynamodb, job.storage.table),
        action=f"enabling TTL on {job.storage.table!r}",
        permission="dynamodb:UpdateTimeToLive (and DescribeTimeToLive)",
        identity=clients.table_identity,
        endpoints=clients.reach("DynamoDB"),
    )


async def delete_staging(job: ImportJob, journals: Journals, clients: Clients) -> int:
    """Delete every object under this job's staging folder (DeleteObjects, 1,000 a request)."""

    async def work() -> int:
        count = 0
        batch: list[dict[str, str]] = []
        async for key in _keys(clients.s3, job.staging_bucket, job.job_prefix):
            batch.append({"Key": key})
            if len(batch) == 1000:
                count += await _delete(clients.s3, job.staging_bucket, batch)
                batch = []
        if batch:
            count += await _delete(clients.s3, job.staging_bucket, batch)
        return count

    deleted = await _staging_call(job, work(), "s3:DeleteObject")
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


def seed_tally(imports: ImportTally, journals: Journals) -> None:
    state = journals.staging.state
    imports.seed(
        objects=len(state.staged),
        items=state.items,
        raw=state.bytes,
        compressed=state.compressed_bytes,
        duplicates=state.duplicates,
    )
    imports.import_arn = state.import_arn
    imports.staging_deleted = state.cleaned
