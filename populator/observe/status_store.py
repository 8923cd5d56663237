"""Status snapshots kept under a `--log-path`: written one at a time, read all at once.

`StatusWriter` is what a run's feed writes with, from its own thread: locally a file replaced
whole (written aside, then renamed, so a reader never sees half of one), on S3 a PutObject with
the run's own S3 settings (profile, region, `AWS_ENDPOINT_URL_S3`) through one client kept for
the run, on an event loop of the feed's thread. `read_statuses` is what `populator status` reads:
every snapshot under `<log path>/status/`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .logstore import LogDestination
from .shard_status import STATUS_FOLDER, ShardStatus, is_status_file

PUT_ATTEMPTS = 2  # a snapshot is replaced by the next one in seconds: no long retries
READS_AT_ONCE = 16


class StatusWriter:
    """Writes one run's snapshot at `key` below `destination`; used from one thread only."""

    def __init__(self, destination: LogDestination, key: str, *, profile: str | None = None) -> None:
        self.destination = destination
        self.key = key
        self._profile = profile
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_context: Any = None
        self._client: Any = None

    @property
    def where(self) -> str:
        if self.destination.is_s3:
            return f"{self.destination}{self.key}"
        return str(Path(self.destination.prefix) / self.key)

    def put(self, data: bytes) -> None:
        """Raises OSError, botocore's errors, or `EndpointUnreachable`."""
        if not self.destination.is_s3:
            path = Path(self.where)
            path.parent.mkdir(parents=True, exist_ok=True)
            aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            aside.write_bytes(data)
            os.replace(aside, path)
            return
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._put(data))

    async def _put(self, data: bytes) -> None:
        from ..config.aws import Endpoint, connection_failure

        if self._client is None:
            await self._open()
        try:
            await self._client.put_object(
                Bucket=self.destination.bucket,
                Key=f"{self.destination.prefix}{self.key}",
                Body=data,
                ContentType="application/json",
            )
        except Exception as exc:
            unreachable = connection_failure(exc, [Endpoint.of("S3", self._client)])
            if unreachable is not None:
                raise unreachable from None
            raise

    async def _open(self) -> None:
        from ..config.aws import s3_client_for

        context = s3_client_for(self._profile, 2, attempts=PUT_ATTEMPTS)
        self._client = await context.__aenter__()
        self._client_context = context

    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            if self._client_context is not None:
                loop.run_until_complete(self._client_context.__aexit__(None, None, None))
        except Exception:  # closing a client that never connected: nothing to keep
            pass
        finally:
            self._client = self._client_context = None
            loop.close()
            self._loop = None


@dataclass
class StatusRead:
    """What `read_statuses` found: the snapshots, and the files that were not snapshots."""

    snapshots: list[ShardStatus] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def add(self, where: str, data: bytes) -> None:
        try:
            self.snapshots.append(ShardStatus.from_bytes(data))
        except ValueError as exc:
            self.unreadable.append((where, str(exc)))


def read_statuses(destination: LogDestination, *, profile: str | None = None) -> StatusRead:
    """Every snapshot under `<destination>/status/`. Raises UsageError (a missing directory or
    bucket, no access, an endpoint out of reach)."""
    found = StatusRead()
    if not destination.is_s3:
        root = Path(destination.prefix)
        if not root.is_dir():
            raise UsageError(f"{destination}: no such directory. Pass the --log-path the runs were given.")
        for path in sorted((root / STATUS_FOLDER).glob("*/*.json")):
            if is_status_file(path.name):
                try:
                    found.add(str(path), path.read_bytes())
                except OSError as exc:
                    found.unreadable.append((str(path), exc.strerror or str(exc)))
        return found
    return asyncio.run(_read_s3(destination, profile, found))


async def _read_s3(destination: LogDestination, profile: str | None, found: StatusRead) -> StatusRead:
    from botocore.exceptions import ClientError

    from ..config.aws import Endpoint, refusal, s3_client_for, translate
    from ..config.storage import identity_hint

    action = f"reading the status snapshots under {destination}"
    async with s3_client_for(profile, READS_AT_ONCE) as s3:
        try:
            keys = await _list(s3, destination)
            at_once = asyncio.Semaphore(READS_AT_ONCE)

            async def fetch(key: str) -> tuple[str, bytes | None]:
                async with at_once:
                    try:
                        answer = await s3.get_object(Bucket=destination.bucket, Key=key)
                        async with answer["Body"] as body:
                            return key, await body.read()
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                            return key, None  # replaced or deleted since the listing
                        raise

            for key, data in await asyncio.gather(*(fetch(key) for key in keys)):
                if data is not None:
                    found.add(f"s3://{destination.bucket}/{key}", data)
        except Exception as exc:
            usage = translate(
                exc,
                action=action,
                permission="s3:ListBucket and s3:GetObject on the prefix",
                identity=identity_hint(None, profile),
                endpoints=[Endpoint.of("S3", s3)],
            )
            if usage is not None:
                raise usage from None
            if isinstance(exc, ClientError):
                if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                    raise UsageError(
                        f"{destination}: the bucket does not exist. Pass the --log-path the runs were given."
                    ) from None
                raise refusal(exc, action) from None
            raise
    return found


async def _list(s3: Any, destination: LogDestination) -> list[str]:
    keys: list[str] = []
    prefix = f"{destination.prefix}{STATUS_FOLDER}/"
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=destination.bucket, Prefix=prefix):
        for entry in page.get("Contents", ()):
            key = str(entry["Key"])
            parts = key[len(prefix) :].split("/")
            if len(parts) == 2 and is_status_file(parts[1]):
                keys.append(key)
    return keys
