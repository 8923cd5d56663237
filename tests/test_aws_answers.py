"""Every AWS call populator makes, answered with an error code it has never heard of.

AWS answered, so it is never "a bug" (exit 3): before anything is written the command ends with
exit 2, after writes began with exit 1 (and the command to go on), and the message names the
operation, AWS's code and AWS's message. A table whose TTL cannot be turned on still takes the
backfill, and the run says plainly that the manifest will never expire. A clock off AWS's is
named with the offset, from the answer's Date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, run_populator, upload, write_configs

UNKNOWN = "PopulatorHasNeverHeardOfThisException"
SMALL = SampleSpec(runs=1, parts_per_run=2, events_per_part=40, formats=("gz",), now=NOW, seed=5)


@pytest.fixture
def world(aws: Any, dynamo_proxy: Any, s3_proxy: Any, unique_name: str, tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "archive"
    write_archive(root, SMALL)
    s3 = aws.boto3_client("s3")
    upload(s3, root, unique_name, "enriched")
    s3.create_bucket(Bucket=f"{unique_name}-staging")
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url, AWS_ENDPOINT_URL_S3=s3_proxy.url)
    return {
        "archive": f"s3://{unique_name}/enriched/",
        "configs": [str(storage), str(resolver)],
        "env": env,
        "staging": f"s3://{unique_name}-staging/p/",
        "report": tmp_path / "report.json",
    }


def populator(world: dict[str, Any], command: str, *extra: str) -> Any:
    args = [command, world["archive"], *world["configs"], *extra]
    if command in ("run", "import"):
        args += ["--report", str(world["report"]), "--retry-base-delay", "0.001"]
    return run_populator(*args, env=world["env"], timeout=120)


def assert_told(result: Any, code: int, operation: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == code, text
    assert "Traceback" not in text and "bug in populator" not in text, text
    assert UNKNOWN in text and operation in text and "try me" in text, text


@pytest.mark.parametrize(
    ("service", "operation", "command", "code"),
    [
        ("dynamodb", "DescribeTable", "run", 2),
        ("dynamodb", "CreateTable", "run", 2),
        ("dynamodb", "BatchWriteItem", "run", 1),
        ("s3", "ListObjectsV2", "run", 2),
        ("s3", "GetObject", "run", 1),
        ("dynamodb", "ImportTable", "import", 1),
        ("dynamodb", "DescribeImport", "import", 1),
        ("s3", "POST object", "import", 2),  # CreateMultipartUpload, as the proxy tells it: nothing staged
        ("dynamodb", "BatchGetItem", "verify", 2),
    ],
)
def test_an_unknown_error_code_is_told_never_a_bug(
    world: dict[str, Any],
    dynamo_proxy: Any,
    s3_proxy: Any,
    service: str,
    operation: str,
    command: str,
    code: int,
) -> None:
    extra: list[str] = ["--on-demand"] if command == "run" else []
    if command == "import":
        extra = ["--staging", world["staging"], "--poll-interval", "0.05"]
    if command == "verify":
        assert populator(world, "run", "--on-demand").returncode == 0  # a table to read back
    proxy = dynamo_proxy if service == "dynamodb" else s3_proxy
    proxy.answer_operations = {operation: (400, UNKNOWN, "try me")}
    result = populator(world, command, *extra)
    assert_told(result, code, "CreateMultipartUpload" if operation == "POST object" else operation)
    if code == 1:
        assert "run the same command to go on" in result.stderr


def test_ttl_that_cannot_be_enabled_is_said_plainly_and_the_backfill_goes_on(
    world: dict[str, Any], dynamo_proxy: Any
) -> None:
    dynamo_proxy.answer_operations = {"UpdateTimeToLive": (400, UNKNOWN, "try me")}
    result = populator(world, "run", "--on-demand")
    assert result.returncode == 0, result.stderr
    assert "time to live is not on" in result.stderr and "never expire" in result.stderr
    assert "update-time-to-live" in result.stderr and UNKNOWN in result.stderr
    report = json.loads(world["report"].read_text())
    assert UNKNOWN in report["ttl_problem"]
    assert "TTL on ttl: OFF" in result.stdout

    dynamo_proxy.answer_operations = None  # fixed (the permission given): the next run turns it on
    again = populator(world, "run", "--on-demand")
    assert again.returncode == 0, again.stderr
    assert "time to live is not on" not in again.stderr
    assert json.loads(world["report"].read_text())["ttl_problem"] is None


def test_plan_shows_a_table_it_cannot_describe_as_unknown(world: dict[str, Any], dynamo_proxy: Any) -> None:
    dynamo_proxy.answer_operations = {"DescribeTable": (400, UNKNOWN, "try me")}
    result = populator(world, "plan")
    assert result.returncode == 0, result.stderr
    assert UNKNOWN in result.stdout


def test_a_clock_20_minutes_off_is_named_with_the_offset(world: dict[str, Any], dynamo_proxy: Any) -> None:
    expired = (
        "Signature expired: 20261202T041000Z is now earlier than 20261202T042500Z (20261202T043000Z - 5 min.)"
    )
    dynamo_proxy.answer_operations = {"DescribeTable": (400, "InvalidSignatureException", expired, 20 * 60)}
    result = populator(world, "run", "--on-demand")
    assert result.returncode == 2, result.stderr
    assert "clock is 20 minutes behind AWS's" in result.stderr
    assert "NTP" in result.stderr and expired in result.stderr  # AWS's own words are kept
    assert "credentials" not in result.stderr


def test_a_clock_20_minutes_behind_is_told_before_anything_is_written(
    world: dict[str, Any], dynamo_proxy: Any
) -> None:
    """DynamoDB checks signing times (moto does not: the proxy does, as DynamoDB does)."""
    dynamo_proxy.clock_ahead = 20 * 60
    result = populator(world, "run", "--on-demand")
    assert result.returncode == 2, result.stderr
    assert "clock is 20 minutes behind AWS's" in result.stderr and "NTP" in result.stderr
    assert "Signature expired" in result.stderr and "Traceback" not in result.stderr
    assert dynamo_proxy.skew_refusals == 1  # DescribeTable: nothing else was tried


def test_a_clock_that_steps_during_a_run_is_corrected_on_the_signed_write_path(
    world: dict[str, Any], dynamo_proxy: Any, aws: Any, unique_name: str
) -> None:
    """The clock steps 20 minutes back once the table is set up: the writes are refused, signed
    again with AWS's time from the refusal's Date, and the run ends exact, asking for NTP."""
    dynamo_proxy.clock_ahead = 20 * 60
    dynamo_proxy.skew_operations = frozenset({"BatchWriteItem"})
    result = populator(world, "run", "--on-demand")
    assert result.returncode == 0, result.stderr
    assert "clock is 20 minutes behind AWS's" in result.stderr and "NTP" in result.stderr
    assert 1 <= dynamo_proxy.skew_refusals <= 2 * 64  # once a process, for the writes in flight
    report = json.loads(world["report"].read_text())
    assert report["objects_failed"] == 0 and abs(report["clock_offset_s"] - 1200) < 5
    assert (
        aws.boto3_client("dynamodb").scan(TableName=unique_name, Select="COUNT")["Count"]
        == report["items_written"]
    )


def test_a_clock_that_steps_with_botocore_writes_stops_the_run_naming_the_clock(
    world: dict[str, Any], dynamo_proxy: Any
) -> None:
    """botocore does not correct a skew: the run stops at the first refused write (nothing was
    written: exit 2), with the offset and AWS's own words."""
    dynamo_proxy.clock_ahead = 20 * 60
    dynamo_proxy.skew_operations = frozenset({"BatchWriteItem"})
    result = populator(world, "run", "--on-demand", "--write-path", "botocore")
    assert result.returncode == 2, result.stderr
    assert "clock is 20 minutes behind AWS's" in result.stderr and "NTP" in result.stderr
    assert "Signature expired" in result.stderr and "Traceback" not in result.stderr


def test_s3_refusing_a_skewed_clock_on_a_dry_run_names_the_clock(
    world: dict[str, Any], s3_proxy: Any
) -> None:
    """Before: S3's RequestTimeTooSkewed ended a dry run as a bug (exit 3)."""
    s3_proxy.answer_operations = {
        "ListObjectsV2": (
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
    }
    result = populator(world, "run", "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "RequestTimeTooSkewed" in result.stderr and "clock" in result.stderr and "NTP" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("refused", ["HeadObject", "ListObjectsV2"])
def test_an_archive_that_cannot_be_read_creates_no_table(
    world: dict[str, Any], aws: Any, s3_proxy: Any, unique_name: str, refused: str
) -> None:
    # A wrong secret, or a policy without s3:GetObject (which HeadObject needs as GetObject does).
    s3_proxy.deny_operations = frozenset({refused, "GetObject"} if refused == "HeadObject" else {refused})
    result = populator(world, "run", "--on-demand")
    assert result.returncode == 2, result.stderr
    assert refused in result.stderr and "Traceback" not in result.stderr
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]
