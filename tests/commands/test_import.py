"""`populator import` end to end against moto: stage, ImportTable, TTL, the sample, the clean-up.

Where moto's ImportTable differs from DynamoDB's (the ClientToken, an import that takes time),
`dynamo_proxy` in front of moto answers as DynamoDB documents (see tests/support/dynamo_proxy.py).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from populator.commands.build import ImportArguments, build_job
from populator.commands.execute import execute
from populator.commands.outputs import RunOutputs
from populator.events import TTL_SECONDS
from populator.samples.archive import SampleSpec, write_archive
from populator.samples.expected import ExpectedManifest
from tests.support.backfill_helpers import NOW, run_job, run_populator, table_items, upload, write_configs


def nowhere() -> Console:
    return Console(file=open("/dev/null", "w"), width=200)


def import_here(
    archive: str,
    storage: Path,
    resolver: Path,
    staging: str,
    *,
    verify_sample: int = 100,
    items_per_object: int | None = None,
    keep_staging: bool = False,
    **options: Any,
) -> tuple[int, dict[str, Any]]:
    """`populator import` in this process, its clock at NOW: the exit code and the report."""
    report = Path(f"report-{time.monotonic_ns()}.json")
    imports = ImportArguments(
        staging=staging, keep_staging=keep_staging, poll_seconds=0.05, verify_sample=verify_sample
    )
    if items_per_object is not None:
        imports = dataclasses.replace(imports, items_per_object=items_per_object)
    job = build_job(archive, storage, resolver, imports=imports, now=NOW.timestamp(), **options)
    code = execute(job, nowhere(), nowhere(), outputs=RunOutputs(quiet=True, report=report))
    return code, json.loads(report.read_text())


def objects(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [entry["Key"] for page in pages for entry in page.get("Contents", [])]


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, ExpectedManifest]:
    """Duplicates (in a run and across runs), bad and blank lines, two expired runs."""
    root = tmp_path / "archive"
    spec = SampleSpec(runs=3, parts_per_run=3, events_per_part=500, expired_runs=2, now=NOW)
    return root, write_archive(root, spec)


@pytest.fixture
def on_s3(aws: Any, unique_name: str, archive: tuple[Path, ExpectedManifest]) -> tuple[str, str]:
    """The archive uploaded, and an empty staging bucket: (archive URL, staging URL)."""
    s3 = aws.boto3_client("s3")
    upload(s3, archive[0], unique_name, "enriched")
    s3.create_bucket(Bucket=f"{unique_name}-staging")
    return f"s3://{unique_name}/enriched/", f"s3://{unique_name}-staging/populator/"


def configs(tmp_path: Path, table: str) -> tuple[Path, Path]:
    folder = tmp_path / table
    folder.mkdir()
    return write_configs(folder, table)


def test_the_imported_table_equals_what_run_writes_with_ttl_on(aws, unique_name, tmp_path, archive, on_s3):
    _, expected = archive
    source, staging = on_s3
    since = expected.runs[1].removeprefix("run=")  # the second expired run and the three live ones
    dynamodb = aws.boto3_client("dynamodb")
    run_storage, resolver = configs(tmp_path, f"{unique_name}-run")
    run_job(source, run_storage, resolver, since=since, on_demand=True)
    written = table_items(dynamodb, f"{unique_name}-run")

    storage, resolver = configs(tmp_path, unique_name)
    code, report = import_here(
        source, storage, resolver, staging, since=since, items_per_object=700, processes=2
    )

    assert code == 0, report
    imported = table_items(dynamodb, unique_name)
    assert written and set(imported) == set(written)
    for key, item in imported.items():
        assert item["ttl"] == item["etlTime"] + TTL_SECONDS
        # A key seen at several etlTimes (a cross-run duplicate) may keep any of them: ImportTable
        # keeps one of the staged objects' items, BatchWriteItem the last written.
        assert item["etlTime"] in expected.items[key]
        if len(expected.items[key]) == 1:
            assert item == written[key]
    ttl = dynamodb.describe_time_to_live(TableName=unique_name)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) in (("ttl", "ENABLED"), ("ttl", "ENABLING"))
    assert report["import_status"] == "COMPLETED" and report["import_errors"] == 0
    assert report["staged_objects"] > 1 and report["items_staged"] >= len(imported)
    assert report["bad_rows"] > 0 and report["skipped_expired"] > 0
    assert report["sample_checked"] > 0 and report["sample_missing"] == 0
    assert 0 < report["estimated_import_cost_usd"] < report["run_on_demand_cost_usd"]
    assert objects(aws.boto3_client("s3"), f"{unique_name}-staging") == []  # deleted after the import


def test_keep_staging_keeps_the_staged_objects_and_a_rerun_changes_nothing(aws, unique_name, tmp_path, on_s3):
    source, staging = on_s3
    storage, resolver = configs(tmp_path, unique_name)
    code, report = import_here(source, storage, resolver, staging, keep_staging=True, verify_sample=0)
    assert code == 0 and report["staging_deleted"] is False and report["sample_checked"] is None
    kept = objects(aws.boto3_client("s3"), f"{unique_name}-staging")
    assert len([key for key in kept if key.endswith(".json.gz")]) == report["staged_objects"]
    items = table_items(aws.boto3_client("dynamodb"), unique_name)

    code, again = import_here(source, storage, resolver, staging, keep_staging=True)
    assert code == 0 and again["import_arn"] == report["import_arn"]  # the same import, reattached
    assert again["objects_total"] == 0 and again["items_staged"] == report["items_staged"]
    assert table_items(aws.boto3_client("dynamodb"), unique_name) == items


# ---------------------------------------------------------------------------- refusals (exit 2)


def test_an_existing_table_is_refused_and_nothing_is_staged(aws, unique_name, tmp_path, on_s3):
    source, staging = on_s3
    storage, resolver = configs(tmp_path, unique_name)
    aws.boto3_client("dynamodb").create_table(
        TableName=unique_name,
        AttributeDefinitions=[{"AttributeName": "eventId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "eventId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = run_populator("import", source, str(storage), str(resolver), "--staging", staging, env=aws.env)
    assert result.returncode == 2, result.stderr
    assert "already exists" in result.stderr and "populator run" in result.stderr
    assert "new table" in result.stderr and "Traceback" not in result.stderr
    assert objects(aws.boto3_client("s3"), f"{unique_name}-staging") == []
    assert not Path(".populator").exists()


@pytest.mark.parametrize(
    "staging, extra, says",
    [
        ("./local-folder/", (), "not an S3 URL"),
        ("s3:///prefix/", (), "not an S3 URL"),
        ("{bucket}-staging/ok/", ("--shard", "0/2"), "--shard"),
        ("s3://{bucket}-missing/p/", (), "the bucket does not exist"),
        ("s3://{bucket}-staging/", (), "not this import's"),
    ],
    ids=["local", "no bucket", "shard", "missing bucket", "another job's objects"],
)
def test_staging_that_cannot_work_exits_2_with_nothing_staged(
    aws, unique_name, tmp_path, on_s3, staging, extra, says
):
    source, _ = on_s3
    s3 = aws.boto3_client("s3")
    s3.put_object(Bucket=f"{unique_name}-staging", Key="other-table-0123456789ab/data/x.json.gz", Body=b"x")
    storage, resolver = configs(tmp_path, unique_name)
    staging = staging.format(bucket=unique_name)
    result = run_populator(
        "import", source, str(storage), str(resolver), "--staging", staging, *extra, env=aws.env
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert objects(s3, f"{unique_name}-staging") == ["other-table-0123456789ab/data/x.json.gz"]
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]


def test_a_staging_bucket_that_cannot_be_written_exits_2(
    aws, unique_name, tmp_path, on_s3, s3_proxy, monkeypatch
):
    source, staging = on_s3
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_proxy.url)
    s3_proxy.deny_operations = frozenset({"PutObject"})
    storage, resolver = configs(tmp_path, unique_name)
    code, report = import_here(source, storage, resolver, staging)
    assert code == 2
    assert "s3:PutObject" in report["error"] and "refused PutObject" in report["error"]
    assert objects(aws.boto3_client("s3"), f"{unique_name}-staging") == []


def test_more_staged_objects_than_importtable_reads_is_refused_before_staging(
    aws, unique_name, tmp_path, on_s3, monkeypatch
):
    import populator.job.staging_checks as staging_checks

    monkeypatch.setattr(staging_checks, "MAX_STAGED_OBJECTS", 3)  # the archive has 9 objects of ~250 items
    source, staging = on_s3
    storage, resolver = configs(tmp_path, unique_name)
    code, report = import_here(source, storage, resolver, staging, items_per_object=100)
    assert code == 2
    assert "more than the 3 objects ImportTable reads" in report["error"]
    assert "--items-per-object" in report["error"]
    assert objects(aws.boto3_client("s3"), f"{unique_name}-staging") == []


# ---------------------------------------------------------------------------- surviving


def journal_records(kind: str) -> list[dict[str, Any]]:
    found = []
    for path in Path(".populator").glob("*.staging.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("type") == kind:
                found.append(record)
    return found


def wait_for(condition: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_kill_9_while_staging_then_a_rerun_imports_the_exact_manifest(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=4, parts_per_run=4, events_per_part=1200, expired_runs=1))
    s3 = aws.boto3_client("s3")
    upload(s3, root, unique_name, "enriched")
    s3.create_bucket(Bucket=f"{unique_name}-staging")
    storage, resolver = configs(tmp_path, unique_name)
    source = f"s3://{unique_name}/enriched/"
    args = [
        sys.executable, "-m", "populator", "import", source, str(storage), str(resolver),
        "--staging", f"s3://{unique_name}-staging/p/", "--items-per-object", "900", "--processes", "1",
        "--concurrency", "2", "--poll-interval", "0.1",
    ]  # fmt: skip
    process = subprocess.Popen(args, env=aws.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: len(journal_records("staged")) >= 2 or process.poll() is not None)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    staged_before = len(journal_records("staged"))

    result = subprocess.run(args, env=aws.env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "objects skipped (already done)" in result.stdout
    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    assert set(found) == set(expected.live_items())
    assert all(item["etlTime"] in expected.items[key] for key, item in found.items())
    assert len(journal_records("staged")) > staged_before
    assert s3.list_multipart_uploads(Bucket=f"{unique_name}-staging").get("Uploads", []) == []
    assert objects(s3, f"{unique_name}-staging") == []


def test_a_rerun_reattaches_to_the_import_instead_of_importing_twice(
    aws, unique_name, tmp_path, on_s3, dynamo_proxy
):
    source, staging = on_s3
    storage, resolver = configs(tmp_path, unique_name)
    env = {**aws.env, "AWS_ENDPOINT_URL_DYNAMODB": dynamo_proxy.url}
    args = [
        sys.executable, "-m", "populator", "import", source, str(storage), str(resolver),
        "--staging", staging, "--poll-interval", "0.1", "--processes", "1",
    ]  # fmt: skip
    dynamo_proxy.hold_imports = True  # the import takes its time, as DynamoDB's do
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: journal_records("import") or first.poll() is not None)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    assert "goes on in AWS" in err and "populator import" in err and "Traceback" not in err
    assert dynamo_proxy.calls["ImportTable"] == 1

    described = dynamo_proxy.calls["DescribeImport"]
    second = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: dynamo_proxy.calls["DescribeImport"] > described or second.poll() is not None)
    second.send_signal(signal.SIGINT)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 130, out + err
    assert dynamo_proxy.calls["ImportTable"] == 1  # reattached by its ARN

    # A crash after ImportTable was asked, before its answer was written down: the token again.
    for path in Path(".populator").glob("*.staging.jsonl"):
        lines = [
            line for line in path.read_bytes().splitlines(keepends=True) if b'"type":"import"' not in line
        ]
        path.write_bytes(b"".join(lines))
    dynamo_proxy.hold_imports = False
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert dynamo_proxy.calls["ImportTable"] == 2 and dynamo_proxy.imports_started == 1
    assert "COMPLETED" in result.stdout
    assert len(table_items(aws.boto3_client("dynamodb"), unique_name)) > 0


# ---------------------------------------------------------------------------- failing (exit 1)


def corrupt_a_staged_object(s3: Any, bucket: str, body: Any) -> str:
    key = next(key for key in objects(s3, bucket) if key.endswith(".json.gz"))
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    s3.put_object(Bucket=bucket, Key=key, Body=body(size))
    return key


def stage_only(aws, dynamo_proxy, monkeypatch, source, storage, resolver, staging) -> None:
    """Stage, with ImportTable refused (exit 1: items were staged, so not the "nothing written" of
    exit 2): the staged objects stay for the test to spoil."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    dynamo_proxy.deny_operations = frozenset({"ImportTable"})
    code, report = import_here(source, storage, resolver, staging)
    assert code == 1 and "dynamodb:ImportTable" in report["error"], report
    dynamo_proxy.deny_operations = None


def test_an_import_that_fails_ends_with_exit_1_and_the_reason(
    aws, unique_name, tmp_path, on_s3, dynamo_proxy, monkeypatch
):
    source, staging = on_s3
    storage, resolver = configs(tmp_path, unique_name)
    stage_only(aws, dynamo_proxy, monkeypatch, source, storage, resolver, staging)
    s3 = aws.boto3_client("s3")
    corrupt_a_staged_object(s3, f"{unique_name}-staging", lambda size: b"\0" * size)  # not gzip any more

    code, report = import_here(source, storage, resolver, staging)
    assert code == 1
    assert report["import_status"] == "FAILED" and report["status"] == "failed_objects"
    assert "the import ended FAILED" in report["error"] and "/aws-dynamodb/imports" in report["error"]
    assert "gzip" in report["error"]  # moto's failure message, passed on
    assert objects(s3, f"{unique_name}-staging")  # kept, to look at


def test_an_import_with_item_errors_ends_with_exit_1(
    aws, unique_name, tmp_path, on_s3, dynamo_proxy, monkeypatch
):
    import gzip

    source, staging = on_s3
    storage, resolver = configs(tmp_path, unique_name)
    stage_only(aws, dynamo_proxy, monkeypatch, source, storage, resolver, staging)
    bad = b'{"Item":{"eventId":{"S":"e"},"etlTime":{"N":"1"}}}\n'  # no fingerprint: not a manifest key
    corrupt_a_staged_object(aws.boto3_client("s3"), f"{unique_name}-staging", lambda size: gzip.compress(bad))

    code, report = import_here(source, storage, resolver, staging)
    assert code == 1
    assert report["import_status"] == "COMPLETED" and report["import_errors"] == 1
    assert "completed with 1 item errors" in report["error"] and "/aws-dynamodb/imports" in report["error"]
    assert report["ttl_enabled"] is False


def test_an_archive_with_nothing_to_import_exits_2_and_creates_no_table(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=0, expired_runs=1, parts_per_run=2, events_per_part=50, now=NOW))
    aws.boto3_client("s3").create_bucket(Bucket=f"{unique_name}-staging")
    storage, resolver = configs(tmp_path, unique_name)
    code, report = import_here(str(root), storage, resolver, f"s3://{unique_name}-staging/p/")
    assert code == 2 and "nothing to import" in report["error"]
    assert report["skipped_expired"] > 0 and report["import_arn"] is None
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]


def test_a_checkpoint_on_s3_is_refused(aws, unique_name, tmp_path, on_s3):
    source, staging = on_s3
    storage, resolver = configs(tmp_path, unique_name)
    args = ("import", source, str(storage), str(resolver), "--staging", staging, "--checkpoint", "s3://b/c/")
    result = run_populator(*args, env=aws.env)
    assert result.returncode == 2 and "on this machine" in result.stderr


# ---------------------------------------------------------------------------- plan


def test_plan_shows_run_and_import_side_by_side(aws, unique_name, tmp_path, archive):
    root, expected = archive
    storage, resolver = configs(tmp_path, unique_name)
    result = run_populator("plan", str(root), str(storage), str(resolver), "--json", env=aws.env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    imported = plan["import"]
    assert imported["possible"] is True and imported["staged_objects"] == 1
    assert imported["staged_bytes"] == pytest.approx(plan["items_to_write"] * 175, rel=0.05)
    assert 0 < imported["import_cost_usd"] < plan["on_demand_cost_usd"]

    smaller = run_populator(
        "plan", str(root), str(storage), str(resolver), "--items-per-object", "500", "--json", env=aws.env
    )
    assert json.loads(smaller.stdout)["import"]["staged_objects"] == -(-plan["items_to_write"] // 500)
    text = run_populator("plan", str(root), str(storage), str(resolver), env=aws.env)
    assert "run or import" in text.stdout and "populator import" in text.stdout

    aws.boto3_client("dynamodb").create_table(
        TableName=unique_name,
        AttributeDefinitions=[{"AttributeName": "eventId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "eventId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    existing = run_populator("plan", str(root), str(storage), str(resolver), env=aws.env)
    assert "not possible" in existing.stdout and expected.runs[0] in existing.stdout
