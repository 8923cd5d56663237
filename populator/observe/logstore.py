"""`--log-path`: where a run's report and log are kept, a local directory or an S3 prefix.

Each run gets its own folder, `populator-<UTC start>-<table>/`, holding `report.json` and
`populator.log`. Locally the log is written there as the run goes (it survives a crash); on S3
both files are uploaded at the end, with the S3 client settings of the run itself (profile,
region, `AWS_ENDPOINT_URL_S3`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import LocalWriteError, UsageError
from ..source.archive import split_s3_url

REPORT_NAME = "report.json"
LOG_NAME = "populator.log"


@dataclass(frozen=True)
class LogDestination:
    bucket: str | None  # None: a local directory
    prefix: str  # S3: key prefix ending in "/" (or ""); local: the directory

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.is_s3 else self.prefix

    def folder(self, name: str) -> str:
        """Where the folder `name` is, as shown to the user."""
        return f"{self}{name}/" if self.is_s3 else str(Path(self.prefix) / name)


def parse_log_path(raw: str) -> LogDestination:
    """`s3://bucket/prefix/` (s3n://, s3a:// too) or a local directory (created when missing)."""
    if (s3 := split_s3_url(raw)) is not None:
        if not s3[0]:
            raise UsageError(f"--log-path {raw!r} names no bucket. Use s3://bucket/prefix/.")
        return LogDestination(*s3)
    if "://" in raw:
        raise UsageError(f"--log-path {raw!r}: use s3://bucket/prefix/ or a local directory.")
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--log-path {raw!r} is a file; pass a directory (or s3://bucket/prefix/).")
    return LogDestination(None, str(path))


def folder_name(table: str, started: datetime) -> str:
    return f"populator-{started:%Y-%m-%d-%H-%M-%S}-{table}"


def local_folder(destination: LogDestination, name: str) -> Path:
    """Create (if needed) and return the run's local folder."""
    assert not destination.is_s3
    folder = Path(destination.prefix) / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--log-path {destination}: cannot create {folder}: {exc.strerror or exc}."
        ) from None
    return folder


def store(
    destination: LogDestination, name: str, files: dict[str, bytes], *, profile: str | None = None
) -> str:
    """Write `files` into the run's folder; returns where they went. Raises `LocalWriteError` (a
    local folder), botocore errors, or `EndpointUnreachable` when S3 cannot be reached."""
    if not destination.is_s3:
        folder = local_folder(destination, name)
        for file_name, data in files.items():
            try:
                (folder / file_name).write_bytes(data)
            except OSError as exc:
                then = "run the same command to keep them (what the checkpoint holds is not written again)."
                raise LocalWriteError.of("--log-path", folder / file_name, exc, then) from None
        return str(folder)
    asyncio.run(_upload(destination, name, files, profile))
    return destination.folder(name)


async def _upload(
    destination: LogDestination, name: str, files: dict[str, bytes], profile: str | None
) -> None:
    from ..config.aws import Endpoint, connection_failure, s3_client_for

    async with s3_client_for(profile, 4) as s3:
        try:
            for file_name, data in files.items():
                content_type = (
                    "application/json" if file_name.endswith(".json") else "text/plain; charset=utf-8"
                )
                await s3.put_object(
                    Bucket=destination.bucket,
                    Key=f"{destination.prefix}{name}/{file_name}",
                    Body=data,
                    ContentType=content_type,
                )
        except Exception as exc:
            unreachable = connection_failure(exc, [Endpoint.of("S3", s3)])
            if unreachable is not None:
                raise unreachable from None
            raise
