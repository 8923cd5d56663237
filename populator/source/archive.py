"""Where the enriched archive is, which run folders it holds, and which objects to read.

An archive is `<prefix>/run=YYYY-MM-DD-HH-MM-SS/<data files>`, on S3 or on a local disk. Listing
yields `ArchiveObject` descriptors in chronological run order.

Which objects are data files is Hadoop's rule, the one every Snowplow job that read the archive
applied (FileInputFormat's hidden-file filter): every non-empty object inside a run folder, at
any depth, except those with a path component below the run folder that starts with `_` or `.`
(`_SUCCESS`, `_temporary/...`, `.part-00000.gz.crc`) and the `*_$folder$` placeholders Hadoop's
S3 file systems leave for folders. The name is not otherwise looked at: the batch pipeline writes `part-*`
files, Stream Enrich's S3 Loader writes `2019-03-04-04-50-29-<sequence numbers>.gz`, and the
content (gzip or not) is told by its first bytes when it is read. Anything outside a run folder
is left out.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from ..config.outage import OutageWatch, ask
from ..errors import ArchiveError, UsageError
from .shard import Shard

# aiobotocore ships no annotations (pyproject's mypy overrides): its S3 client is `Any` here.

S3_SCHEMES = ("s3://", "s3n://", "s3a://")
_RUN_ID = re.compile(r"run=(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})")
SINCE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d-%H-%M-%S")
SINCE_HELP = "YYYY-MM-dd (e.g. 2026-06-01) or YYYY-MM-dd-HH-mm-ss (e.g. 2026-06-01-13-45-00)"
# Run folders listed ahead of the readers, concurrently: enough to hide S3's latency (each listing
# pages through a run's keys) and a thread hop on disk, few enough that memory holds a handful of
# runs' objects, not the archive's (a year of hourly runs is 8,760 folders and 10^5-10^6 objects).
RUN_LOOKAHEAD_S3 = 8
LISTING_SLICE = 1000  # directory entries listed on disk between two chances for the readers to run


@dataclass(frozen=True, slots=True)
class ArchiveLocation:
    """An archive root: an S3 bucket and prefix, or a local directory."""

    bucket: str | None  # None for a local directory
    prefix: str  # S3: key prefix ending in "/" (or ""); local: the directory path

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.is_s3 else self.prefix

    def relative_key(self, key: str) -> str:
        """An object's key below this root, "/"-separated: the same for S3 and a local copy."""
        if self.is_s3:
            return key.removeprefix(self.prefix)
        return PurePath(key).relative_to(self.prefix).as_posix()


@dataclass(frozen=True, slots=True, order=True)
class RunFolder:
    """One `run=` folder: the output of one batch-pipeline run."""

    started: datetime
    name: str  # "run=YYYY-MM-DD-HH-MM-SS"


@dataclass(frozen=True, slots=True)
class ArchiveObject:
    """One data file to read: where it is, how big it is, and its version tag."""

    key: str  # S3 key, or the local file path
    size: int
    etag: str  # S3 ETag, or "<mtime_ns>-<size>" for local files
    run: str  # the run folder name


def split_s3_url(raw: str) -> tuple[str, str] | None:
    """`s3://bucket/prefix` (also s3n://, s3a://) → (bucket, prefix ending in "/" or ""); None
    when `raw` is not an S3 URL. The bucket is "" when the URL names none."""
    for scheme in S3_SCHEMES:
        if raw.startswith(scheme):
            bucket, _, prefix = raw[len(scheme) :].partition("/")
            prefix = prefix.strip("/")
            return bucket, prefix + "/" if prefix else ""
    return None


def parse_location(raw: str) -> ArchiveLocation:
    """`s3://bucket/prefix/` (also s3n://, s3a://) or a local directory → ArchiveLocation."""
    if (s3 := split_s3_url(raw)) is not None:
        if not s3[0]:
            raise UsageError(
                f"ENRICHED_ARCHIVE {raw!r} names no bucket. Use s3://bucket/path/to/archive/ "
                "or a local directory."
            )
        return ArchiveLocation(*s3)
    if "://" in raw:
        raise UsageError(
            f"ENRICHED_ARCHIVE {raw!r} is neither an s3:// (s3n://, s3a://) URL nor a local directory."
        )
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ArchiveError(
            f"ENRICHED_ARCHIVE {raw!r} is not a directory on this machine. Pass the archive root "
            "that holds the run=YYYY-MM-DD-HH-MM-SS folders, locally or as s3://bucket/prefix/."
        )
    return ArchiveLocation(None, str(path))


def parse_since(raw: str) -> datetime:
    """The `--since` value → an aware UTC datetime. Raises UsageError naming the formats."""
    for fmt in SINCE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise UsageError(f"--since {raw!r} is not a date this tool understands. Use {SINCE_HELP}.")


def parse_run_folder(name: str) -> RunFolder | None:
    """`run=2026-06-01-13-45-00` → RunFolder; anything else → None."""
    match = _RUN_ID.fullmatch(name)
    if match is None:
        return None
    try:
        started = datetime.strptime(match.group(1), "%Y-%m-%d-%H-%M-%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return RunFolder(started, name)


def select_runs(names: Iterable[str], since: datetime | None) -> list[RunFolder]:
    """Run folders among `names`, at or after `since`, oldest first."""
    runs = [run for run in map(parse_run_folder, names) if run is not None]
    if since is not None:
        runs = [run for run in runs if run.started >= since]
    return sorted(set(runs))


FOLDER_PLACEHOLDER = "_$folder$"


def is_data_path(relative: str) -> bool:
    """Whether a key below its run folder (`part-00000.gz`, `sub/x.gz`, "/"-separated) is a data
    file: no component is hidden from Hadoop (starts with `_` or `.`), and it is not a
    `_$folder$` placeholder."""
    if relative.endswith(FOLDER_PLACEHOLDER):
        return False
    return all(part and part[0] not in "_." for part in relative.split("/"))


async def list_archive(
    location: ArchiveLocation,
    since: datetime | None,
    s3: Any | None = None,
    shard: Shard | None = None,
    *,
    outage: OutageWatch | None = None,
) -> tuple[list[RunFolder], AsyncIterator[ArchiveObject]]:
    """The selected runs, and an iterator over their objects in chronological order.

    With `shard`, only the objects of that shard (see shard.py); the runs are all those selected.
    With `outage`, a listing S3 stops answering waits for it (up to the outage budget).
    """
    if location.is_s3:
        if s3 is None:
            raise ValueError("an S3 client is needed to list an S3 archive")
        runs, objects = await _list_s3(location, since, s3, outage)
    else:
        runs, objects = _list_local(location, since)
    if shard is not None:
        objects = _in_shard(location, objects, shard)
    return runs, objects


async def _in_shard(
    location: ArchiveLocation, objects: AsyncIterator[ArchiveObject], shard: Shard
) -> AsyncIterator[ArchiveObject]:
    try:
        async for obj in objects:
            if shard.holds(location.relative_key(obj.key)):
                yield obj
    finally:
        if hasattr(objects, "aclose"):
            await objects.aclose()


def _list_local(
    location: ArchiveLocation, since: datetime | None
) -> tuple[list[RunFolder], AsyncIterator[ArchiveObject]]:
    root = Path(location.prefix)
    try:
        names = [entry.name for entry in os.scandir(root) if entry.is_dir()]
    except OSError as exc:
        raise ArchiveError(f"cannot list {root}: {exc.strerror or exc}") from None
    runs = select_runs(names, since)

    async def objects() -> AsyncIterator[ArchiveObject]:
        # On this thread, not a worker thread: a run folder lists in microseconds an object, and
        # handing each one to a thread and back cost more than the listing (the GIL's switch
        # interval), half of a resume's time. Control is given back every LISTING_SLICE entries.
        for run in runs:
            for obj in await _local_run_objects(root / run.name, run.name):
                yield obj

    return runs, objects()


async def _in_run_order(
    runs: list[RunFolder], list_run: Callable[[RunFolder], Awaitable[list[ArchiveObject]]], ahead: int
) -> AsyncIterator[ArchiveObject]:
    """Every run's objects, runs in chronological order, with at most `ahead` runs being listed
    (or listed and waiting) at any time."""
    pending: deque[asyncio.Task[list[ArchiveObject]]] = deque()
    upcoming = iter(runs)

    def refill() -> None:
        while len(pending) < ahead and (run := next(upcoming, None)) is not None:
            pending.append(asyncio.ensure_future(list_run(run)))

    try:
        refill()
        while pending:
            found = await pending.popleft()
            refill()
            for obj in found:
                yield obj
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _local_run_objects(folder: Path, run: str) -> list[ArchiveObject]:
    # scandir, not os.walk and a stat per Path: a directory entry knows its type and stats its
    # file without a path being built twice (a resume of small objects is mostly listing).
    found: list[ArchiveObject] = []
    folders = [str(folder)]
    seen = 0
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                seen += 1
                if seen % LISTING_SLICE == 0:
                    await asyncio.sleep(0)
                if not is_data_path(entry.name):
                    continue  # never into _temporary/ or .x/; no _SUCCESS, .crc, _$folder$
                if entry.is_dir(follow_symlinks=True):
                    folders.append(entry.path)
                    continue
                stat = entry.stat()
                if stat.st_size == 0:
                    continue
                etag = f"{stat.st_mtime_ns}-{stat.st_size}"
                found.append(ArchiveObject(entry.path, stat.st_size, etag, run))
    found.sort(key=lambda obj: obj.key)
    return found


async def _list_s3(
    location: ArchiveLocation, since: datetime | None, s3: Any, outage: OutageWatch | None
) -> tuple[list[RunFolder], AsyncIterator[ArchiveObject]]:
    bucket = location.bucket
    assert bucket is not None
    folder_names: list[str] = []
    async for page in _pages(s3, outage, Bucket=bucket, Prefix=location.prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", ()):
            folder_names.append(common["Prefix"][len(location.prefix) :].rstrip("/"))
    runs = select_runs(folder_names, since)

    async def list_run(run: RunFolder) -> list[ArchiveObject]:
        found = []
        run_prefix = f"{location.prefix}{run.name}/"
        async for page in _pages(s3, outage, Bucket=bucket, Prefix=run_prefix):
            for entry in page.get("Contents", ()):
                key = entry["Key"]
                if entry["Size"] == 0 or not is_data_path(key[len(run_prefix) :]):
                    continue
                found.append(ArchiveObject(key, entry["Size"], entry["ETag"].strip('"'), run.name))
        return found

    return runs, _in_run_order(runs, list_run, RUN_LOOKAHEAD_S3)


async def _pages(s3: Any, outage: OutageWatch | None, **request: str) -> AsyncIterator[dict[str, Any]]:
    """ListObjectsV2's pages. Not botocore's paginator: each page is asked for through `outage`,
    which waits out an S3 that stops answering and asks for the same page again."""
    token = ""
    while True:
        request_page = dict(request, ContinuationToken=token) if token else request
        page: dict[str, Any] = await ask(outage, lambda: s3.list_objects_v2(**request_page))  # noqa: B023 - awaited at once
        yield page
        token = page.get("NextContinuationToken", "")
        if not page.get("IsTruncated") or not token:
            return


async def probe_read_access(location: ArchiveLocation, s3: Any) -> None:
    """Prove the archive can be listed and read (its first object's head) before anything
    is created for it: a wrong secret must not leave an empty table behind. S3 errors propagate
    for the caller to put in the user's terms; a local archive was checked when it was parsed."""
    if not location.is_s3:
        return
    answer = await s3.list_objects_v2(Bucket=location.bucket, Prefix=location.prefix, MaxKeys=1)
    # HeadObject needs what GetObject needs (s3:GetObject), and reads no byte.
    for entry in answer.get("Contents", ()):
        await s3.head_object(Bucket=location.bucket, Key=entry["Key"])
