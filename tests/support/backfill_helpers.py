"""Helpers for end-to-end tests: upload an archive, run a job in-process, read the table back."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from populator.commands.build import build_job
from populator.config.iglu import BUNDLED_REGISTRY_PATH
from populator.job.backfill import run_backfill
from populator.observe.hub import Hub
from populator.observe.report import Tally
from populator.samples.archive import SampleSpec, write_archive
from populator.samples.expected import ExpectedManifest
from populator.samples.lines import enriched_line
from populator.sink.manifest import RetryPolicy

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def run_populator(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m populator *args` in a child process, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "populator", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


STORAGE_2_0_0 = "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0"
# An embedded repository holding the real schemas (the package's bundled ones): no network, no
# fallback warning.
RESOLVER = {
    "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
    "data": {
        "cacheSize": 500,
        "repositories": [
            {
                "name": "bundled",
                "priority": 0,
                "vendorPrefixes": ["com.snowplowanalytics"],
                "connection": {"embedded": {"path": str(BUNDLED_REGISTRY_PATH)}},
            }
        ],
    },
}


def write_configs(directory: Path, table: str, region: str = "us-east-1") -> tuple[Path, Path]:
    storage = directory / "dynamodb.json"
    resolver = directory / "iglu_resolver.json"
    storage.write_bytes(
        orjson.dumps(
            {
                "schema": STORAGE_2_0_0,
                "data": {
                    "name": "manifest",
                    "auth": None,
                    "awsRegion": region,
                    "dynamodbTable": table,
                    "id": "2b4b4b3e-6b0a-4c39-b2f0-6a4f5f2b7a10",
                    "purpose": "EVENTS_MANIFEST",
                },
            }
        )
    )
    resolver.write_bytes(orjson.dumps(RESOLVER))
    return storage, resolver


def upload(s3: Any, root: Path, bucket: str, prefix: str) -> None:
    s3.create_bucket(Bucket=bucket)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.put_object(
                Bucket=bucket, Key=f"{prefix}/{path.relative_to(root).as_posix()}", Body=path.read_bytes()
            )


def run_job(archive: str, storage: Path, resolver: Path, *, now: datetime = NOW, **options: Any) -> Tally:
    """Build the job exactly as `populator run` does, and run it in this process."""
    options.setdefault("retry", RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.2))
    job = build_job(archive, storage, resolver, now=now.timestamp(), **options)
    return asyncio.run(run_backfill(job, Hub()))


def table_items(dynamodb: Any, table: str) -> dict[tuple[str, str], dict[str, int]]:
    found: dict[tuple[str, str], dict[str, int]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            assert set(item) == {"eventId", "fingerprint", "etlTime", "ttl"}
            found[(item["eventId"]["S"], item["fingerprint"]["S"])] = {
                "etlTime": int(item["etlTime"]["N"]),
                "ttl": int(item["ttl"]["N"]),
            }
    return found


def event_line(n: int, etl: str = "2026-11-20 10:05:00.000") -> str:
    """A valid enriched line whose key the test knows: `event_key(n)`."""
    event_id, fingerprint = event_key(n)
    return enriched_line(random.Random(n), event_id=event_id, etl_tstamp=etl, fingerprint=fingerprint)


def event_key(n: int) -> tuple[str, str]:
    return f"00000000-0000-4000-8000-{n:012d}", f"fp{n}"


@dataclass(frozen=True)
class CorruptArchive:
    """A local archive one of whose objects is cut short."""

    root: Path
    expected: ExpectedManifest  # what the archive holds with every object whole
    broken: Path  # the cut object: a gzip stream that ends halfway
    good_bytes: bytes  # its whole bytes, to mend it with


def corrupt_archive(root: Path, *, parts: int, events_per_part: int) -> CorruptArchive:
    """Write a one-run archive of `parts` gzip objects under `root`, and cut the second in half."""
    expected = write_archive(
        root,
        SampleSpec(runs=1, parts_per_run=parts, events_per_part=events_per_part, now=NOW, formats=("gz",)),
    )
    broken = root / expected.objects[1]
    good_bytes = broken.read_bytes()
    broken.write_bytes(good_bytes[: len(good_bytes) // 2])
    return CorruptArchive(root, expected, broken, good_bytes)


def create_table(work_dir: Path, storage: Path, resolver: Path) -> None:
    """Have populator create the job's table (a run over an empty archive), before faults are set."""
    empty = work_dir / "empty-archive"
    empty.mkdir(exist_ok=True)
    run_job(str(empty), storage, resolver)
