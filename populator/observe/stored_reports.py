"""A run's JSON report read back after the run: from a file, a run's folder, or a `--log-path`.

`read_report` takes what an operator has at hand: the `--report` JSON file, a run's
`populator-<UTC start>-<table>/` folder kept by `--log-path`, or the `--log-path` itself (a local
directory or `s3://bucket/prefix/`), where the latest run's folder is taken (folder names start
with the UTC start time, so the latest sorts last). S3 is read with the same settings as the
runs that wrote there (profile, region, `AWS_ENDPOINT_URL_S3`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import UsageError
from ..source.archive import split_s3_url
from .logstore import REPORT_NAME

FOLDER_PREFIX = "populator-"  # see logstore.folder_name


@dataclass(frozen=True)
class StoredReport:
    report: dict[str, Any]
    source: str  # where it was read, as the user would write it
    name: str  # the run's folder name (or the file's stem), to name what is made of it
    path: Path | None  # the local file it was read from (None: S3)
    runs_there: int = 1  # run folders found where a --log-path was given


def read_report(where: str, *, profile: str | None = None) -> StoredReport:
    """The report at `where`; UsageError (exit 2) when there is none or it is not a report."""
    s3 = split_s3_url(where)
    if s3 is not None:
        bucket, prefix = s3
        if not bucket:
            raise UsageError(f"{where!r} names no bucket. Use s3://bucket/prefix/.")
        return asyncio.run(_read_s3(where, bucket, prefix, profile))
    return _read_local(Path(where).expanduser())


def _read_local(path: Path) -> StoredReport:
    if path.is_file():
        return StoredReport(_parse(_read(path), str(path)), str(path), path.stem, path)
    if not path.is_dir():
        raise UsageError(f"{str(path)!r} does not exist. Pass a JSON report, a run's folder or a --log-path.")
    if (path / REPORT_NAME).is_file():
        report = path / REPORT_NAME
        return StoredReport(_parse(_read(report), str(report)), str(report), path.name, report)
    runs = sorted(found.parent for found in path.glob(f"{FOLDER_PREFIX}*/{REPORT_NAME}"))
    if not runs:
        raise UsageError(
            f"{str(path)!r} holds no {REPORT_NAME} and no {FOLDER_PREFIX}<time>-<table>/ folder with one: "
            "pass a JSON report, a run's folder, or the --log-path the run was given."
        )
    report = runs[-1] / REPORT_NAME
    return StoredReport(_parse(_read(report), str(report)), str(report), runs[-1].name, report, len(runs))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}.") from None


def _parse(data: bytes, source: str) -> dict[str, Any]:
    try:
        report = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{source} is not JSON ({exc}); pass the JSON report of a run.") from None
    if not isinstance(report, dict) or "exit_code" not in report or "populator_version" not in report:
        raise UsageError(f"{source} is JSON but not the report of a populator run (--report, --log-path).")
    return report


async def _read_s3(where: str, bucket: str, prefix: str, profile: str | None) -> StoredReport:
    from ..config.aws import Endpoint, refusal, s3_client_for, translate

    async with s3_client_for(profile, 2) as s3:
        try:
            found, runs = (
                (prefix.rstrip("/"), 1)  # split_s3_url ends every prefix in "/"
                if prefix.rstrip("/").endswith(".json")
                else await _latest_report_key(s3, bucket, prefix)
            )
            if found is None:
                raise UsageError(
                    f"{where} holds no {REPORT_NAME} and no {FOLDER_PREFIX}<time>-<table>/ folder with "
                    "one: pass a run's folder or the --log-path the run was given."
                )
            key = found
            answer = await s3.get_object(Bucket=bucket, Key=key)
            async with answer["Body"] as body:
                data = await body.read()
        except UsageError:
            raise
        except Exception as exc:
            action = f"reading the report at {where}"
            usage = translate(
                exc,
                action=action,
                permission="s3:ListBucket and s3:GetObject on the prefix",
                identity=profile or "the default credentials",
                endpoints=[Endpoint.of("S3", s3)],
            )
            if usage is not None:
                raise usage from None
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError):
                raise refusal(exc, action) from None
            raise
    source = f"s3://{bucket}/{key}"
    name = key.rsplit("/", 2)[-2] if key.endswith(f"/{REPORT_NAME}") else key.rsplit("/", 1)[-1][:-5]
    return StoredReport(_parse(data, source), source, name or "report", None, runs)


async def _latest_report_key(s3: Any, bucket: str, prefix: str) -> tuple[str | None, int]:
    """The report right under `prefix` (a run's folder), or the latest run folder's under it."""
    found: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            rest = key[len(prefix) :]
            if rest == REPORT_NAME:
                return key, 1
            folder, _, file_name = rest.partition("/")
            if file_name == REPORT_NAME and folder.startswith(FOLDER_PREFIX):
                found.append(key)
    return (max(found), len(found)) if found else (None, 0)
