"""`populator demo`: the whole tool on an embedded default, no AWS account needed.

Generates a realistic sample archive, starts moto (S3 + DynamoDB) on a loopback port, uploads
the archive, runs the very same `run` code path against it, then reads the table back and checks
that it holds exactly the manifest the generator says it should. Then the other way in:
`populator import` stages the archive in S3 and has (moto's) ImportTable create a second table,
checked the same way. It ends by saying where the run's report is: `populator-demo-report.html`,
the page `run --report run.html` writes, in the working directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

import orjson
from rich.console import Console

from ..config.iglu import BUNDLED_REGISTRY_PATH
from ..samples.archive import SampleSpec, write_archive
from ..samples.expected import ExpectedManifest

DEMO_BUCKET = "populator-demo"
DEMO_PREFIX = "enriched/archive"
DEMO_TABLE = "snowplow-event-manifest-demo"
DEMO_IMPORT_TABLE = "snowplow-event-manifest-demo-imported"  # `populator import` creates this one
DEMO_STAGING = "populator-staging"
DEMO_REGION = "us-east-1"
DEMO_REPORT = "populator-demo-report.html"
_FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}


def storage_config_document(table: str, region: str) -> dict[str, object]:
    """A 2-0-0 storage config using the default credential chain."""
    return {
        "schema": "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0",
        "data": {
            "name": "Event manifest",
            "auth": None,
            "awsRegion": region,
            "dynamodbTable": table,
            "id": "6a2c7b9e-3f0d-4b8e-9a51-2d4c6e8f0a1b",
            "purpose": "EVENTS_MANIFEST",
        },
    }


RESOLVER_CONFIG_DOCUMENT = {
    "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
    "data": {
        "cacheSize": 500,
        "repositories": [
            {
                "name": "Iglu Central",
                "priority": 0,
                "vendorPrefixes": ["com.snowplowanalytics"],
                "connection": {"http": {"uri": "http://iglucentral.com"}},
            },
            {
                # The schemas bundled with populator, as an embedded repository: Iglu clients ask
                # embedded repositories before HTTP ones, so the demo stays offline.
                "name": "populator (embedded)",
                "priority": 0,
                "vendorPrefixes": ["com.snowplowanalytics"],
                "connection": {"embedded": {"path": str(BUNDLED_REGISTRY_PATH)}},
            },
        ],
    },
}


def demo_spec(events: int) -> SampleSpec:
    """A few runs, every part format, markers, bad lines, duplicates and one expired run."""
    runs, parts = 3, 5
    return SampleSpec(
        runs=runs,
        parts_per_run=parts,
        events_per_part=max(events // (runs * parts), 1),
        expired_runs=1,
        overlong_lines=1,
        long_line_every=500,
        plain_named_gz=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_demo(events: int, keep: Path | None = None, console: Console | None = None) -> int:
    """Run the demo; returns the exit code (0 when the table holds exactly what it should)."""
    from moto.server import ThreadedMotoServer  # an optional dependency: the `demo` extra

    from .build import build_job
    from .execute import execute
    from .failures import consoles
    from .outputs import RunOutputs

    out, err = consoles()
    out = console or out
    workdir = Path(tempfile.mkdtemp(prefix="populator-demo-"))
    archive = keep or workdir / "archive"
    try:
        spec = demo_spec(events)
        expected = write_archive(archive, spec)
        out.print(
            f"sample archive: {len(expected.runs)} runs, {len(expected.objects)} parts, "
            f"{expected.lines:,} lines ({expected.good_lines:,} events with a fingerprint, "
            f"{expected.no_fingerprint:,} without, "
            f"{sum(expected.bad_rows.values())} bad, "
            f"{len(expected.expired):,} expired by TTL) in {archive}",
            markup=False,
            soft_wrap=True,
        )
        # moto's werkzeug server logs every request; the demo's own lines are what matter.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        endpoint = f"http://127.0.0.1:{port}"
        saved = {k: os.environ.get(k) for k in (*_FAKE_CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_PROFILE")}
        try:
            # Only this process, only for the demo: never the user's real account.
            os.environ.update(_FAKE_CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
            os.environ.pop("AWS_PROFILE", None)
            out.print(f"moto (S3 + DynamoDB) listening on {endpoint}", markup=False, soft_wrap=True)
            uploaded = _upload(archive, endpoint)
            out.print(
                f"uploaded {uploaded} files to s3://{DEMO_BUCKET}/{DEMO_PREFIX}/",
                markup=False,
                soft_wrap=True,
            )
            storage = workdir / "dynamodb.json"
            resolver = workdir / "iglu_resolver.json"
            storage.write_bytes(orjson.dumps(storage_config_document(DEMO_TABLE, DEMO_REGION)))
            resolver.write_bytes(orjson.dumps(RESOLVER_CONFIG_DOCUMENT))
            _show_plan(storage, resolver, out)
            out.print(
                f"$ populator run s3://{DEMO_BUCKET}/{DEMO_PREFIX}/ dynamodb.json iglu_resolver.json "
                "--on-demand",
                markup=False,
                soft_wrap=True,
            )
            # On demand: a new table provisioned at Snowplow's 100 WCU would pace the demo at
            # 50 items/s (--write-capacity-percent 50 of it).
            job = build_job(
                f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}/",
                storage,
                resolver,
                on_demand=True,
                checkpoint=workdir / "checkpoint.jsonl",
            )
            report = _report_path()
            code = execute(job, out, err, outputs=RunOutputs(report=report))
            if code == 0:
                _show_verify(storage, resolver, out)
                code = _verify(expected, endpoint, out)
            if code == 0:
                code = _import(expected, endpoint, workdir, resolver, out, err)
            if report.is_file():
                out.print(f"the run's report, to open in a browser: {report}", markup=False, soft_wrap=True)
            return code
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _report_path() -> Path:
    """Where the run's page goes: the working directory (the temporary one if it is read-only)."""
    here = Path.cwd()
    return (here if os.access(here, os.W_OK) else Path(tempfile.gettempdir())) / DEMO_REPORT


def _upload(archive: Path, endpoint: str) -> int:
    import boto3  # installed with moto

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=DEMO_REGION)
    s3.create_bucket(Bucket=DEMO_BUCKET)
    count = 0
    for path in sorted(archive.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), DEMO_BUCKET, f"{DEMO_PREFIX}/{path.relative_to(archive).as_posix()}")
            count += 1
    return count


def _import(
    expected: ExpectedManifest, endpoint: str, workdir: Path, resolver: Path, out: Console, err: Console
) -> int:
    """The other way in: `populator import` stages the same archive in S3, and ImportTable (moto's)
    creates a second table from it, which must hold exactly the same manifest."""
    from .build import ImportArguments, build_job
    from .execute import execute

    storage = workdir / "dynamodb-import.json"
    storage.write_bytes(orjson.dumps(storage_config_document(DEMO_IMPORT_TABLE, DEMO_REGION)))
    archive, staging = f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}/", f"s3://{DEMO_BUCKET}/{DEMO_STAGING}/"
    out.print(
        f"$ populator import {archive} dynamodb-import.json iglu_resolver.json --staging {staging}",
        markup=False,
        soft_wrap=True,
    )
    job = build_job(
        archive,
        storage,
        resolver,
        checkpoint=workdir / "import-checkpoint.jsonl",
        imports=ImportArguments(staging=staging, poll_seconds=0.5),
    )
    code = execute(job, out, err)
    if code != 0:
        return code
    return _verify(expected, endpoint, out, DEMO_IMPORT_TABLE)


def _verify(expected: ExpectedManifest, endpoint: str, out: Console, table: str = DEMO_TABLE) -> int:
    """Read the table back; it must hold every live expected item and nothing else."""
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=DEMO_REGION)
    found: dict[tuple[str, str], int] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            found[(item["eventId"]["S"], item["fingerprint"]["S"])] = int(item["etlTime"]["N"])
    live = expected.live_items()
    missing = [key for key in live if key not in found]
    unexpected = [key for key in found if key not in live]
    wrong_time = [key for key, etl in found.items() if key in live and etl not in live[key]]
    if missing or unexpected or wrong_time:
        out.print(
            f"verify: FAILED: {len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong_time)} with a wrong etlTime",
            markup=False,
            soft_wrap=True,
        )
        return 1
    out.print(
        f"verify: the table holds exactly the {len(live):,} expected manifest items in {table} "
        f"({len(expected.expired):,} expired ones and {expected.no_fingerprint:,} events without a "
        "fingerprint rightly skipped)",
        markup=False,
        soft_wrap=True,
    )
    return 0


def _show_plan(storage: Path, resolver: Path, out: Console) -> None:
    """`populator plan` before the run: what it will do, and that it writes nothing."""
    import asyncio

    from ..job.plan import make_plan
    from .build import build_job
    from .plan_view import render_plan

    archive = f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}/"
    out.print(
        f"$ populator plan {archive} dynamodb.json iglu_resolver.json --on-demand",
        markup=False,
        soft_wrap=True,
    )
    render_plan(out, asyncio.run(make_plan(build_job(archive, storage, resolver, on_demand=True))))


def _show_verify(storage: Path, resolver: Path, out: Console) -> None:
    """`populator verify` after the run: a sample of the archive's events, read back."""
    import asyncio

    from ..job.verify import verify
    from .build import build_job
    from .verify_view import render_verification

    archive = f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}/"
    out.print(
        f"$ populator verify {archive} dynamodb.json iglu_resolver.json --sample 1000",
        markup=False,
        soft_wrap=True,
    )
    render_verification(out, asyncio.run(verify(build_job(archive, storage, resolver), 1000)))
