"""`run --report` and `--log-path`: what the operator keeps, complete and free of secrets."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from populator.config.storage import STORAGE_SCHEMA_PREFIX
from populator.errors import exit_status
from populator.observe import logs
from populator.observe.logstore import LogDestination, parse_log_path
from populator.observe.report import Tally, run_report
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import run_populator, table_items, upload, write_configs

SECRET = "wJalrXUtnFEMI-SECRET-DO-NOT-LEAK-8c1f"
REQUIRED = (
    "runs",
    "objects_total",
    "objects_done",
    "objects_failed",
    "failures",
    "lines_read",
    "items_written",
    "already_present",
    "bad_rows",
    "bad_rows_by_reason",
    "no_fingerprint",
    "skipped_expired",
    "duration_s",
    "items_per_s",
    "throttle_events",
)


def keys_config(directory: Path, table: str) -> Path:
    """A 1-0-0 storage config carrying an access key pair (the secret must never show)."""
    data = {
        "name": "m",
        "accessKeyId": "AKIATESTKEY00005678",
        "secretAccessKey": SECRET,
        "awsRegion": "us-east-1",
        "dynamodbTable": table,
        "purpose": "DUPLICATE_TRACKING",
    }
    path = directory / "keys.json"
    path.write_bytes(orjson.dumps({"schema": STORAGE_SCHEMA_PREFIX + "1-0-0", "data": data}))
    return path


@pytest.fixture
def archive(tmp_path):
    """No duplicate lines, no event in two runs: every item written is one item in the table."""
    root = tmp_path / "archive"
    spec = SampleSpec(
        runs=2, parts_per_run=2, events_per_part=300, duplicate_rate=0.0, cross_run_duplicates=0
    )
    expected = write_archive(root, SampleSpec(**{**spec.__dict__, "expired_runs": 1}))
    return root, expected


def test_the_report_equals_what_the_table_holds_and_keeps_no_secret(aws, unique_name, tmp_path, archive):
    root, expected = archive
    _, resolver = write_configs(tmp_path, unique_name)
    storage = keys_config(tmp_path, unique_name)
    report_path = tmp_path / "report.json"
    log_dir = tmp_path / "logs"
    result = run_populator(
        "run", str(root), str(storage), str(resolver), "--on-demand", "--report", str(report_path),
        "--log-path", str(log_dir), "--log-level", "debug", "--progress-interval", "0.2", env=aws.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    for key in REQUIRED:
        assert key in report, key
    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    assert report["items_written"] == len(found) == len(expected.live_items())
    assert report["objects_done"] == report["objects_total"] == len(expected.objects)
    assert report["objects_failed"] == 0 and report["failures"] == []
    assert report["runs"] == len(expected.runs)
    assert report["lines_read"] == expected.lines
    assert report["bad_rows"] == sum(expected.bad_rows.values())
    assert report["bad_rows_by_reason"] == dict(sorted(expected.bad_rows.items()))
    assert "fingerprint" not in report["bad_rows_by_reason"]
    assert report["no_fingerprint"] == expected.no_fingerprint > 0
    assert report["skipped_expired"] == len(expected.expired)
    assert report["status"] == "ok" and report["exit_code"] == 0
    assert report["table"] == unique_name and report["archive"] == str(root)
    assert report["items_per_s"] > 0 and report["duration_s"] > 0

    [folder, status] = sorted(log_dir.iterdir())
    assert folder.name.startswith("populator-") and folder.name.endswith(unique_name)
    [snapshot] = status.glob(f"{unique_name}-*/unsharded.json")  # for `populator status`
    assert json.loads(snapshot.read_text())["state"] == "finished"
    assert json.loads((folder / "report.json").read_text())["items_written"] == len(found)
    log_text = (folder / "populator.log").read_text()
    assert "runs selected: 3" in log_text and "object done: " in log_text and "progress: " in log_text
    for text in (report_path.read_text(), log_text, snapshot.read_text(), result.stdout, result.stderr):
        assert SECRET not in text
        assert "\x1b[" not in text


def test_log_path_on_s3_gets_the_report_and_the_log(aws, unique_name, tmp_path, archive):
    root, expected = archive
    s3 = aws.boto3_client("s3")
    s3.create_bucket(Bucket=f"{unique_name}-logs")
    _, resolver = write_configs(tmp_path, unique_name)
    storage = keys_config(tmp_path, unique_name)
    result = run_populator(
        "run", str(root), str(storage), str(resolver), "--on-demand", "--json-logs",
        "--log-path", f"s3://{unique_name}-logs/populator/", env=aws.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=f"{unique_name}-logs")["Contents"])
    status = keys.pop()  # populator/status/<job>/unsharded.json, for `populator status`
    assert status.startswith(f"populator/status/{unique_name}-") and status.endswith("/unsharded.json")
    snapshot = s3.get_object(Bucket=f"{unique_name}-logs", Key=status)["Body"].read().decode()
    assert json.loads(snapshot)["state"] == "finished" and SECRET not in snapshot
    assert len(keys) == 2 and all(k.startswith("populator/populator-") for k in keys)
    assert keys[0].endswith("/populator.log") and keys[1].endswith("/report.json")
    log_lines = s3.get_object(Bucket=f"{unique_name}-logs", Key=keys[0])["Body"].read().decode().splitlines()
    records = [json.loads(line) for line in log_lines]  # --json-logs: the stored log is JSON lines too
    assert any(r["message"].startswith("finished") for r in records)
    report = json.loads(s3.get_object(Bucket=f"{unique_name}-logs", Key=keys[1])["Body"].read())
    assert report["objects_done"] == len(expected.objects) and report["status"] == "ok"
    assert SECRET not in "\n".join(log_lines) + json.dumps(report) + result.stdout + result.stderr
    assert "stored in s3://" in result.stderr


def test_a_report_in_a_missing_directory_is_refused_before_any_work(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    result = run_populator(
        "run", str(archive[0]), str(storage), str(resolver), "--report", str(tmp_path / "no" / "r.json"),
        env=aws.env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]


def test_a_failed_run_reports_its_failures(aws, unique_name, tmp_path, archive):
    root, expected = archive
    (root / expected.objects[0]).write_bytes(b"\x1f\x8b\x08\x00 truncated")
    storage, resolver = write_configs(tmp_path, unique_name)
    report_path = tmp_path / "r.json"
    args = ("run", str(root), str(storage), str(resolver), "--on-demand", "--report", str(report_path))
    result = run_populator(*args, env=aws.env)
    assert result.returncode == 1
    report = json.loads(report_path.read_text())
    assert report["status"] == "failed_objects" and report["objects_failed"] == 1
    assert report["failures"][0]["object"] == str(root / expected.objects[0])
    assert report["failures"][0]["reason"]


def test_run_report_masks_registered_secrets_and_names_the_outcome():
    logs.add_secret(SECRET)
    tally = Tally()
    tally.failures["part-1"] = f"signature mismatch for {SECRET}"
    moment = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    report = run_report(
        tally, exit_code=1, started_at=moment, finished_at=moment, job={"table": "t"}, error=None
    )
    assert SECRET not in json.dumps(report)
    assert report["failures"] == [{"object": "part-1", "reason": "signature mismatch for ********"}]
    assert report["table"] == "t"  # the job's table, though the tally never saw it
    assert report["started_at"] == "2026-11-27T12:00:00.000Z"
    assert [exit_status(c) for c in (0, 1, 2, 3, 130, 143)] == [
        "ok",
        "failed_objects",
        "error",
        "internal_error",
        "interrupted",
        "interrupted",
    ]


def test_events_without_a_fingerprint_are_counted_apart_and_explained_once():
    from collections import Counter

    from populator.observe.hub import LinesParsed, ObjectRestarted
    from populator.observe.summary import print_summary, summary_rows
    from populator.source.archive import ArchiveObject

    obj = ArchiveObject("run=2026-11-20-10-00-00/part-00000.gz", 10, "e", "run=2026-11-20-10-00-00")
    tally = Tally(dry_run=True)
    assert tally.as_dict()["no_fingerprint"] == 0  # in every report, dry runs too
    tally(LinesParsed(obj, 10, 0, Counter({"etl_tstamp": 1}), 0, 0, 4))
    tally(ObjectRestarted(obj, "reset", 2, 10, 0, Counter({"etl_tstamp": 1}), 0, 0, 4))
    tally(LinesParsed(obj, 10, 0, Counter({"etl_tstamp": 1}), 0, 0, 4))
    report = tally.as_dict()
    assert report["no_fingerprint"] == 4 and report["bad_rows"] == 1
    assert report["bad_rows_by_reason"] == {"etl_tstamp": 1}
    assert ("no fingerprint (skipped)", "4") in summary_rows(tally)
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    print_summary(console, tally)
    text = console.file.getvalue()
    assert "no fingerprint (skipped): 4" in text
    assert text.count("random one, so no manifest item could ever match it") == 1


def test_log_paths_are_parsed_like_the_archive():
    assert parse_log_path("s3a://bucket/a/b") == LogDestination("bucket", "a/b/")
    assert parse_log_path("s3://bucket") == LogDestination("bucket", "")
    assert str(parse_log_path("s3://bucket/x/")) == "s3://bucket/x/"
    with pytest.raises(Exception, match="names no bucket"):
        parse_log_path("s3:///x")
    with pytest.raises(Exception, match="s3://bucket/prefix/ or a local directory"):
        parse_log_path("gs://bucket/x")


def test_json_log_lines_mask_secrets_and_carry_extra_fields():
    import io
    import logging

    logs.add_secret(SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("populator.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("key %s", SECRET, extra={"object": "part-1", "detail": {"secret": SECRET}})
    finally:
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["message"] == "key ********" and record["object"] == "part-1"
    assert record["detail"] == {"secret": "********"} and record["level"] == "warning"


def test_s3_archive_report(aws, unique_name, tmp_path, archive):
    """The report's archive is the S3 URL, and its counts match an S3 run too."""
    root, expected = archive
    upload(aws.boto3_client("s3"), root, unique_name, "enriched")
    storage, resolver = write_configs(tmp_path, unique_name)
    report_path = tmp_path / "r.json"
    result = run_populator(
        "run", f"s3://{unique_name}/enriched/", str(storage), str(resolver), "--on-demand",
        "--report", str(report_path), env=aws.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["archive"] == f"s3://{unique_name}/enriched/"
    assert report["objects_done"] == len(expected.objects)
    assert report["items_written"] == len(table_items(aws.boto3_client("dynamodb"), unique_name))


def test_consumed_capacity_below_one_unit_an_item_is_not_believed() -> None:
    """An endpoint that reports one unit a request (as moto does), never DynamoDB's one an item
    at least: the run counts its units instead, and the summary says why."""
    from populator.observe.hub import ItemsAcknowledged
    from populator.observe.summary import write_units_line
    from populator.source.archive import ArchiveObject

    tally = Tally()
    obj = ArchiveObject("run=2026-01-01-00-00-00/part-0", 10, "e", "run=2026-01-01-00-00-00")
    for _ in range(4):
        tally(ItemsAcknowledged(obj, 25, 0, units_reported=1.0))
    assert tally.write_units_consumed == 100 and tally.write_units_source == "counted"
    assert "below the one an item DynamoDB bills at least" in write_units_line(tally)
    honest = Tally()
    honest(ItemsAcknowledged(obj, 25, 0, units_reported=25.0))
    assert honest.write_units_consumed == 25 and honest.write_units_source == "dynamodb"
