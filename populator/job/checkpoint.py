"""The resumable journal: which archive objects are completely in the table already.

JSON lines: a header holding the job's identity, then one record per finished object (all its
items acknowledged by DynamoDB), and, for objects being written, `progress` records: how many of
its first lines have every item acknowledged (its prefix), so that a resume reads the object
again but writes nothing of that prefix. Records are committed in groups (`GROUP_RECORDS` records or
`GROUP_SECONDS`, whichever comes first): one write and one fsync a group instead of one an
object, which cost a millisecond each. A crash loses at most the group not yet committed, whose
objects are read and written again (writes are idempotent). A group that cannot be committed (a
full disk) stays pending, so no record is lost while the journal is open, and the failure ends
the run: raised to whoever records next, and told to `on_failure` when it happens on the timer.

Two places keep it:

* a local file (the default, `.populator/<table>-<digest>.jsonl`), appended to; after a crash
  it is valid up to, at most, a torn last line, which loading ignores;
* an S3 prefix (`--checkpoint s3://bucket/prefix/`), so a retry on another machine (AWS Batch,
  Kubernetes) resumes. S3 has no append: each group is a segment object of its own, a header
  line then the group's records, written whole by one PutObject (so it is never torn) under a
  name no other process uses, with `If-None-Match: *` where the endpoint supports it (so it is
  never overwritten). Every segment of the job is loaded on start. A job's segments live under
  `<prefix>/<table>-<digest>/`, so shards (whose identity differs) keep theirs apart.

What an earlier run finished is held compactly (see finished.py); the records themselves stay
on disk: the journal file, or a local spool of the S3 segments.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from ..config.outage import OutageTooLong, OutageWatch, ask
from ..errors import LocalWriteError, PopulatorError, UsageError, describe_failure
from ..source.archive import ArchiveObject, split_s3_url
from .finished import FinishedSet

# 2: `progress` records (an object's acknowledged prefix) beside `object` records. A version 1
# journal has none and resumes as it always did; version 1 code ignores `progress` records.
JOURNAL_VERSION = 2
DEFAULT_DIRECTORY = ".populator"
GROUP_RECORDS = 256  # records committed together at most
GROUP_SECONDS = 0.1  # and at most this long after the first of them
SEGMENT_SUFFIX = ".jsonl"
SEGMENTS_AT_ONCE = 16  # segments fetched concurrently when an S3 journal is loaded
log = logging.getLogger("populator.run")


@dataclass(frozen=True)
class JobIdentity:
    """What makes two invocations the same job: resuming one with the other is safe."""

    archive: str
    table: str
    since: str | None
    mode: str  # "batch", "conditional" or "import"
    include_expired: bool = False  # changes which items an object yields
    shard: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "table": self.table,
            "since": self.since,
            "mode": self.mode,
            "include_expired": self.include_expired,
            "shard": self.shard,
        }

    def digest(self) -> str:
        return hashlib.sha256(orjson.dumps(self.as_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]

    def name(self) -> str:
        """`<table>-<digest>`, safe in a file name or an S3 key: the checkpoint's file name, and
        the import's folder under --staging."""
        safe_table = re.sub(r"[^A-Za-z0-9_.-]", "_", self.table)
        return f"{safe_table}-{self.digest()}"


def default_path(identity: JobIdentity, directory: Path | None = None) -> Path:
    """`.populator/<table>-<digest>.jsonl` in the working directory: one file per job."""
    return (directory or Path(DEFAULT_DIRECTORY)) / f"{identity.name()}.jsonl"


@dataclass(frozen=True)
class FinishedObject:
    key: str
    etag: str
    size: int
    lines: int
    items: int
    bad_rows: int


@dataclass(frozen=True)
class S3Checkpoint:
    """`--checkpoint s3://bucket/prefix/`: where a job's segments go (a folder per job below it)."""

    bucket: str
    prefix: str  # "" or ending in "/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def job_prefix(self, identity: JobIdentity) -> str:
        return f"{self.prefix}{default_path(identity).stem}/"


def parse_checkpoint(raw: str) -> Path | S3Checkpoint:
    """A local path, or an `s3://bucket/prefix/` URL."""
    split = split_s3_url(raw)
    if split is None:
        return Path(raw)
    bucket, prefix = split
    if not bucket:
        raise UsageError(f"--checkpoint {raw!r}: name a bucket, e.g. s3://acme/populator/checkpoints/.")
    return S3Checkpoint(bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/")


class _Store(Protocol):
    on_failure: Callable[[BaseException], None] | None  # a background commit that failed

    def write_group(self, records: list[bytes]) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...


class Journal:
    """An open checkpoint journal. Use `Journal.open` (a local file) or `Journal.open_s3`; call
    `record` for each finished object, and `aclose` (or `close`, for a local file) at the end."""

    def __init__(
        self,
        store: _Store,
        where: str,
        identity: JobIdentity,
        finished: FinishedSet,
        progress: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.path = where
        # (key, ETag) → lines acknowledged, for objects an earlier run left part-way: only those
        # (finished ones are dropped at load), so it holds what was in flight at the end, no more.
        self._progress = progress or {}
        self.identity = identity
        self._store = store
        self._finished = finished
        self._loaded = len(finished)
        self._recorded = 0
        self._pending: list[bytes] = []
        self._failing = False  # the last commit failed: each record tries again at once
        self._timer: asyncio.TimerHandle | None = None
        self.resumed = bool(self._loaded)
        # Told of a group commit that failed on the timer, where no caller would see it raised
        # (`run_job` ends the run with it); without one, it is logged and raised by the next record.
        self.on_failure: Callable[[BaseException], None] | None = None

    def report_failures_to(self, callback: Callable[[BaseException], None]) -> None:
        """Whom to tell of a commit that fails where no caller would see it raised: a group on
        the timer, or an S3 segment written in the background."""
        self.on_failure = callback
        self._store.on_failure = callback

    # --------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: Path, identity: JobIdentity, *, restart: bool = False) -> Journal:
        """Load the journal at `path` (or start one), checking it belongs to this job."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if restart and path.exists():
                path.unlink()
            if path.exists() and path.stat().st_size > 0:
                spool = open(path, "rb")  # noqa: SIM115 - read back on a digest match, closed with the journal
                finished, progress = _load_records(spool, _count_lines(path), path, identity)
                # Unbuffered: a group is one write of ours, undone whole when it fails (see commit_lines).
                handle = open(path, "ab", buffering=0)  # noqa: SIM115 - held open for the whole run
                terminate_torn_line(path, handle)
            else:
                finished, progress = FinishedSet(None, 0), {}
                handle = open(path, "wb", buffering=0)  # noqa: SIM115
                commit_lines(handle, [_header_line(identity)])
        except OSError as exc:
            raise UsageError(f"checkpoint {path} cannot be used: {exc.strerror or exc}.") from None
        return cls(_FileStore(handle, path), str(path), identity, finished, progress)

    @classmethod
    async def open_s3(
        cls,
        s3: Any,
        location: S3Checkpoint,
        identity: JobIdentity,
        *,
        restart: bool = False,
        outage: OutageWatch | None = None,
    ) -> Journal:
        """Load every segment of this job under `location` (or none yet), checking each header.
        With `outage`, a segment S3 does not answer waits for it (up to the outage budget)."""
        prefix = location.job_prefix(identity)
        where = f"s3://{location.bucket}/{prefix}"
        keys = [key async for key in _segment_keys(s3, location.bucket, prefix)]
        if outage is not None:
            outage.answered()  # the checkpoint's S3 is set up right: from now on, no answer is an outage
        if restart and keys:
            await _delete(s3, location.bucket, keys)
            keys = []
        spool = tempfile.TemporaryFile(prefix="populator-checkpoint-")  # noqa: SIM115 - closed with the journal
        records = 0

        async def fetch(key: str) -> bytes:
            return await (await s3.get_object(Bucket=location.bucket, Key=key))["Body"].read()  # type: ignore[no-any-return]

        # A few segments at a time: a million finished objects are about 4,000 of them, and one
        # GET after the other would spend minutes on S3's latency alone.
        for start in range(0, len(keys), SEGMENTS_AT_ONCE):
            batch = keys[start : start + SEGMENTS_AT_ONCE]
            for key, body in zip(batch, await asyncio.gather(*map(fetch, batch)), strict=True):
                lines = body.split(b"\n")
                _check_header(lines[0], f"{where} ({key.rpartition('/')[2]})", identity)
                group = [line for line in lines[1:] if line.strip()]
                spool.write(b"".join(line + b"\n" for line in group))
                records += len(group)
        spool.flush()
        spool.seek(0)
        finished, progress = _load_records(spool, records, None, identity)
        store = _S3Store(s3, location.bucket, prefix, _header_line(identity), outage)
        return cls(store, where, identity, finished, progress)

    # --------------------------------------------------------------- using

    def is_finished(self, obj: ArchiveObject) -> bool:
        """Finished in an earlier run, and not changed since (same ETag)."""
        return self._finished.holds(obj.key, obj.etag)

    def lines_done(self, obj: ArchiveObject) -> int:
        """How many of the object's first lines an earlier run wrote every item of (0: none)."""
        if not self._progress:
            return 0
        return self._progress.get((obj.key, obj.etag), 0)

    @property
    def partly_done(self) -> int:
        """Objects an earlier run left part-way, with a prefix recorded."""
        return len(self._progress)

    def record_progress(self, obj: ArchiveObject, lines: int) -> None:
        """Commit the object's acknowledged prefix with the next group."""
        record = {"type": "progress", "key": obj.key, "etag": obj.etag, "lines": lines}
        self._add(orjson.dumps(record) + b"\n")

    @property
    def finished_count(self) -> int:
        return self._loaded + self._recorded

    def record(self, done: FinishedObject) -> None:
        """Commit `done` with its group: at once when the group is full, else within GROUP_SECONDS.
        Without a running event loop (a caller recording by hand) each record is committed at once."""
        self._recorded += 1
        self._add(orjson.dumps({"type": "object", **done.__dict__}) + b"\n")

    def _add(self, record: bytes) -> None:
        self._pending.append(record)
        if len(self._pending) >= GROUP_RECORDS or self._failing:
            self.flush()
            return
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(GROUP_SECONDS, self._flush_on_timer)

    def flush(self) -> None:
        """Commit the records waiting for their group. When that fails they stay waiting (the
        next record, or `close`, tries again) and the error is raised: a `LocalWriteError` that
        names the file and the space left on its disk."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            self._failing = True
            self._store.write_group(self._pending)
            self._pending = []
            self._failing = False

    def _flush_on_timer(self) -> None:
        self._timer = None
        try:
            self.flush()
        except Exception as exc:  # nobody awaits a timer: the run hears of it through on_failure
            if self.on_failure is None:
                log.error("%s", exc)
            else:
                self.on_failure(exc)

    def close(self) -> None:
        """Commit what waits and close (a local file; an S3 journal needs `aclose`)."""
        try:
            self.flush()
        finally:
            self._store.close()
            self._finished.close()

    async def aclose(self) -> None:
        try:
            self.flush()
            await self._store.drain()
        finally:
            self._store.close()
            self._finished.close()


_RESUMES = "run the same command: it resumes (objects finished since the last record written are read again)."


class _FileStore:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle = handle
        self._path = path
        self.on_failure: Callable[[BaseException], None] | None = None  # a file commits in line

    def write_group(self, records: list[bytes]) -> None:
        try:
            commit_lines(self._handle, records)
        except OSError as exc:
            raise LocalWriteError.of("the checkpoint", self._path, exc, _RESUMES) from None

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._handle.close()


class _S3Store:
    """Segments put one after the other by a background task, in the order they were made."""

    def __init__(
        self, s3: Any, bucket: str, prefix: str, header: bytes, outage: OutageWatch | None = None
    ) -> None:
        self._s3 = s3
        self._outage = outage
        self._bucket = bucket
        self._prefix = prefix
        self._header = header
        # Unique to this process and start: two processes (or a retry) never pick the same name.
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._name = f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        self._sequence = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._conditional = True  # If-None-Match, until the endpoint says it does not know it
        self.failure: BaseException | None = None
        # Told at once when a segment cannot be written (`run_job` ends the run with it): the
        # run stops instead of writing on with nothing recorded, each later segment failing too.
        self.on_failure: Callable[[BaseException], None] | None = None

    def write_group(self, records: list[bytes]) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_segments())
        self._queue.put_nowait(self._header + b"".join(records))

    async def _write_segments(self) -> None:
        while (body := await self._queue.get()) is not None:
            if self.failure is not None:
                continue  # one failure is enough: each later segment would wait out its retries too
            self._sequence += 1
            key = f"{self._prefix}{self._name}-{self._sequence:06d}{SEGMENT_SUFFIX}"
            try:
                await self._put(key, body)
            except Exception as exc:  # the objects are read again next time; the run stops now
                self.failure = exc
                if self.on_failure is not None:
                    self.on_failure(self._failure_error())

    def _failure_error(self) -> PopulatorError:
        assert self.failure is not None
        if isinstance(self.failure, OutageTooLong):
            return self.failure  # its own words and exit code: the same command goes on
        return UsageError(
            f"the checkpoint under s3://{self._bucket}/{self._prefix} could not be written "
            f"({describe_failure(self.failure)}): the run stopped, so as not to go on with nothing "
            "recorded. What was written since the last segment is read (and written) again by the next "
            "run. Check s3:PutObject on the checkpoint prefix, then run the same command."
        )

    async def _put(self, key: str, body: bytes) -> None:
        from botocore.exceptions import ClientError

        if self._conditional:
            try:
                await ask(
                    self._outage,
                    lambda: self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, IfNoneMatch="*"),
                )
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ("NotImplemented", "InvalidArgument", "InvalidRequest"):
                    raise
                self._conditional = False  # an endpoint without conditional writes: names are unique
        # While S3 does not answer, the put waits (the next segments queue up behind it).
        await ask(self._outage, lambda: self._s3.put_object(Bucket=self._bucket, Key=key, Body=body))

    async def drain(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
        if self.failure is not None:
            raise self._failure_error()

    def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()


def _header_line(identity: JobIdentity) -> bytes:
    header = {"type": "header", "version": JOURNAL_VERSION, "identity": identity.as_dict()}
    return orjson.dumps(header) + b"\n"


def commit_lines(handle: Any, records: list[bytes]) -> None:
    """Append `records` to the unbuffered `handle` and fsync; when that fails, cut the file back to
    where it ended (a short write leaves no torn record for the next group to follow) and raise."""
    fd = handle.fileno()
    end = os.lseek(fd, 0, os.SEEK_END)
    try:
        data = memoryview(b"".join(records))
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
        raise


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as reader:
        while chunk := reader.read(1 << 20):
            count += chunk.count(b"\n")
    return count + 1


def terminate_torn_line(path: Path, handle: Any) -> None:
    """After a crash mid-write the file may not end in a newline: end the torn line."""
    with open(path, "rb") as reader:
        reader.seek(-1, os.SEEK_END)
        if reader.read(1) != b"\n":
            handle.write(b"\n")
            handle.flush()


def _check_header(raw: bytes, where: str, identity: JobIdentity) -> None:
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise UsageError(
            f"checkpoint {where} is not a populator journal. Pass --checkpoint with another path, or "
            "--restart to replace it."
        )
    recorded = header.get("identity", {})
    differences = [
        f"{name}: journal has {recorded.get(name)!r}, this command has {value!r}"
        for name, value in identity.as_dict().items()
        if recorded.get(name) != value
    ]
    if differences:
        raise UsageError(
            f"checkpoint {where} belongs to another job ({'; '.join(differences)}). Run the command that "
            "started it to resume, or add --restart to start this job over from the beginning."
        )


def _lines_with_offsets(spool: BinaryIO) -> Iterator[tuple[int, bytes]]:
    offset = 0
    for line in spool:
        yield offset, line
        offset += len(line)


def _load_records(
    spool: BinaryIO, expected: int, path: Path | None, identity: JobIdentity
) -> tuple[FinishedSet, dict[tuple[str, str], int]]:
    """The finished set of a journal's records (a file starting with its header when `path`),
    and the prefixes of objects left part-way: (key, ETag) → lines acknowledged."""
    finished = FinishedSet(spool, expected)
    progress: dict[tuple[str, str], int] = {}
    lines = _lines_with_offsets(spool)
    if path is not None:
        first = next(lines, (0, b""))[1]
        _check_header(first, str(path), identity)
    for offset, raw in lines:
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # a torn line from a crash mid-write: that object is simply not finished
        if not isinstance(record, dict):
            continue
        key, etag = record.get("key"), record.get("etag")
        if not (isinstance(key, str) and isinstance(etag, str)):
            continue
        kind = record.get("type")
        if kind == "object":
            finished.add(key, offset)
            progress.pop((key, etag), None)
        elif kind == "progress" and isinstance(lines_done := record.get("lines"), int) and lines_done > 0:
            # Segments of several processes may come in any order: a prefix only ever grows.
            progress[(key, etag)] = max(lines_done, progress.get((key, etag), 0))
    spool.seek(0)
    return finished, {place: done for place, done in progress.items() if not finished.holds(*place)}


async def _segment_keys(s3: Any, bucket: str, prefix: str) -> Any:
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", ()):
            if entry["Key"].endswith(SEGMENT_SUFFIX):
                yield entry["Key"]


async def _delete(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys a request
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        await s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
