"""The command line as a user meets it: a subprocess, exit codes, messages, never a traceback."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from populator.config.aws import translate
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, run_populator, table_items, write_configs


def on_demand_if_run(args: tuple[str, ...]) -> list[str]:
    """New tables on demand: 50 % of a new table's 100 WCU would pace tests at 50 items/s."""
    return ["--on-demand"] if args[:1] == ("run",) and "--help" not in args else []


def populator(*args: str, env: dict[str, str], cwd=None) -> subprocess.CompletedProcess[str]:
    return run_populator(*args, *on_demand_if_run(args), env=env, cwd=cwd)


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=2, parts_per_run=2, events_per_part=40, now=NOW))
    return root, expected


def test_run_writes_the_manifest_and_prints_a_plain_summary(aws, unique_name, tmp_path, archive):
    root, expected = archive
    storage, resolver = write_configs(tmp_path, unique_name)
    result = populator("run", str(root), str(storage), str(resolver), "--concurrency", "64", env=aws.env)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout + result.stderr  # not a terminal: no escape codes
    assert "items written: " in result.stdout
    assert "objects: 4 done of 4, 0 failed" in result.stdout
    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    # The archive's runs are recent, so the real clock finds nothing expired.
    assert set(found) == set(expected.live_items())


def test_failed_objects_exit_1_and_are_named(aws, unique_name, tmp_path, archive):
    root, expected = archive
    broken = root / expected.objects[0]
    broken.write_bytes(gzip.compress(os.urandom(10000))[:200])
    storage, resolver = write_configs(tmp_path, unique_name)
    result = populator("run", str(root), str(storage), str(resolver), env=aws.env)
    assert result.returncode == 1, result.stderr
    assert f"FAILED {broken}: truncated gzip stream" in result.stdout
    assert "objects: 3 done of 4, 1 failed" in result.stdout


def test_bad_since_exits_2_with_the_accepted_formats(aws, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, "t")
    result = populator(
        "run", str(archive[0]), str(storage), str(resolver), "--since", "01/06/2026", env=aws.env
    )
    assert_clean_failure(result, 2, "YYYY-MM-dd", "YYYY-MM-dd-HH-mm-ss")


def test_missing_storage_config(aws, tmp_path, archive):
    _, resolver = write_configs(tmp_path, "t")
    result = populator("run", str(archive[0]), str(tmp_path / "nope.json"), str(resolver), env=aws.env)
    assert_clean_failure(result, 2, "nope.json", "does not exist")


def test_storage_config_that_is_not_json_names_the_position(aws, tmp_path, archive):
    _, resolver = write_configs(tmp_path, "t")
    bad = tmp_path / "dynamodb.json"
    bad.write_text('{"schema": "iglu:x",\n  "data": {,}}')
    result = populator("run", str(archive[0]), str(bad), str(resolver), env=aws.env)
    assert_clean_failure(result, 2, "dynamodb.json is not valid JSON", "line 2")


def test_storage_config_without_a_table(aws, tmp_path, archive):
    _, resolver = write_configs(tmp_path, "t")
    bad = tmp_path / "dynamodb.json"
    bad.write_text(
        '{"schema": "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/2-0-0",'
        ' "data": {"awsRegion": "us-east-1", "auth": null}}'
    )
    result = populator("run", str(archive[0]), str(bad), str(resolver), env=aws.env)
    assert_clean_failure(result, 2, "data.dynamodbTable: required property is missing")


def test_unknown_storage_schema(aws, tmp_path, archive):
    _, resolver = write_configs(tmp_path, "t")
    bad = tmp_path / "dynamodb.json"
    bad.write_text('{"schema": "iglu:com.acme/other/jsonschema/1-0-0", "data": {}}')
    result = populator("run", str(archive[0]), str(bad), str(resolver), env=aws.env)
    assert_clean_failure(result, 2, "iglu:com.acme/other/jsonschema/1-0-0", "Supported")


def test_missing_resolver_config(aws, tmp_path, archive):
    storage, _ = write_configs(tmp_path, "t")
    result = populator("run", str(archive[0]), str(storage), str(tmp_path / "resolver.json"), env=aws.env)
    assert_clean_failure(result, 2, "RESOLVER_CONFIG", "does not exist")


def test_archive_that_is_not_a_directory(aws, tmp_path):
    storage, resolver = write_configs(tmp_path, "t")
    result = populator("run", str(tmp_path / "missing"), str(storage), str(resolver), env=aws.env)
    assert_clean_failure(result, 2, "is not a directory")


def test_missing_bucket(aws, unique_name, tmp_path):
    storage, resolver = write_configs(tmp_path, unique_name)
    result = populator("run", f"s3://{unique_name}-nobucket/x/", str(storage), str(resolver), env=aws.env)
    assert_clean_failure(result, 2, "the bucket does not exist")


def test_wrong_table_keys_exit_2(aws, unique_name, tmp_path, archive):
    aws.boto3_client("dynamodb").create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    storage, resolver = write_configs(tmp_path, unique_name)
    result = populator("run", str(archive[0]), str(storage), str(resolver), env=aws.env)
    assert_clean_failure(result, 2, "is not an event manifest", "eventId HASH (S)")


def test_no_credentials_exit_2(aws, unique_name, tmp_path, archive):
    env = {k: v for k, v in aws.env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    storage, resolver = write_configs(tmp_path, unique_name)
    result = populator("run", str(archive[0]), str(storage), str(resolver), env=env)
    assert_clean_failure(result, 2, "No AWS credentials found")


def test_unknown_profile_exit_2(aws, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, "t")
    result = populator("run", str(archive[0]), str(storage), str(resolver), "--profile", "nope", env=aws.env)
    assert_clean_failure(result, 2, "nope")


def test_dry_run_on_a_local_archive_needs_no_aws_at_all(tmp_path, archive):
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    storage, resolver = write_configs(tmp_path, "t")
    result = populator("run", str(archive[0]), str(storage), str(resolver), "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "items to write: " in result.stdout


def test_version_and_help():
    env = {"PATH": "/usr/bin:/bin"}
    assert populator("--version", env=env).stdout.startswith("populator ")
    help_text = populator("run", "--help", env=env).stdout
    for option in (
        "--since",
        "--concurrency",
        "--dry-run",
        "--conditional",
        "--include-expired",
        "--profile",
    ):
        assert option in help_text


def test_access_denied_is_explained_with_the_identity_and_permission():
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "BatchWriteItem")
    error = translate(
        denied, action="writing", permission="dynamodb:BatchWriteItem", identity="key ending ABCD"
    )
    assert error is not None and error.exit_code == 2
    assert "dynamodb:BatchWriteItem" in str(error) and "key ending ABCD" in str(error)
    assert translate(NoCredentialsError(), action="x", permission="y", identity="z").exit_code == 2


def test_ctrl_c_exits_130_and_rerunning_completes(aws, unique_name, tmp_path):
    import signal
    import time

    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=1, parts_per_run=4, events_per_part=1500, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    args = [
        sys.executable,
        "-m",
        "populator",
        "run",
        str(root),
        str(storage),
        str(resolver),
        "--writers",
        "1",
        "--on-demand",
    ]
    process = subprocess.Popen(args, env=aws.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dynamodb = aws.boto3_client("dynamodb")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt once writing has visibly started
        if (
            unique_name in dynamodb.list_tables()["TableNames"]
            and dynamodb.scan(TableName=unique_name, Select="COUNT", Limit=50)["Count"]
        ):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in err + out
    assert len(table_items(dynamodb, unique_name)) < len(expected.items)

    result = populator("run", str(root), str(storage), str(resolver), env=aws.env)
    assert result.returncode == 0, result.stderr
    assert set(table_items(dynamodb, unique_name)) == set(expected.live_items())


def test_the_secret_key_never_reaches_the_output(aws, unique_name, tmp_path, archive):
    import orjson

    from populator.config.storage import STORAGE_SCHEMA_PREFIX

    secret = "wJalrXUtnFEMI-SECRET-DO-NOT-LEAK-8c1f"
    _, resolver = write_configs(tmp_path, unique_name)
    storage = tmp_path / "keys.json"
    data = {
        "name": "m",
        "accessKeyId": "AKIATESTKEY00005678",
        "secretAccessKey": secret,
        "awsRegion": "us-east-1",
        "dynamodbTable": unique_name,
        "purpose": "DUPLICATE_TRACKING",
    }
    storage.write_bytes(orjson.dumps({"schema": STORAGE_SCHEMA_PREFIX + "1-0-0", "data": data}))
    ok = populator("run", str(archive[0]), str(storage), str(resolver), env=aws.env)
    assert ok.returncode == 0, ok.stderr
    aws.boto3_client("dynamodb").delete_table(TableName=unique_name)
    aws.boto3_client("dynamodb").create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    refused = populator("run", str(archive[0]), str(storage), str(resolver), env=aws.env)
    assert refused.returncode == 2
    for result in (ok, refused):
        assert secret not in result.stdout + result.stderr


def test_access_denied_on_the_table_names_the_key_and_permission(
    aws, dynamo_proxy, unique_name, tmp_path, archive
):
    import orjson

    from populator.config.storage import STORAGE_SCHEMA_PREFIX

    secret = "wJalrXUtnFEMI-SECRET-DO-NOT-LEAK-77aa"
    _, resolver = write_configs(tmp_path, unique_name)
    storage = tmp_path / "keys.json"
    data = {
        "name": "m",
        "accessKeyId": "AKIATESTKEYQ9Z4",
        "secretAccessKey": secret,
        "awsRegion": "us-east-1",
        "dynamodbTable": unique_name,
        "purpose": "DUPLICATE_TRACKING",
    }
    storage.write_bytes(orjson.dumps({"schema": STORAGE_SCHEMA_PREFIX + "1-0-0", "data": data}))
    dynamo_proxy.deny_operations = frozenset({"DescribeTable"})
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)

    result = populator("run", str(archive[0]), str(storage), str(resolver), env=env)

    assert_clean_failure(
        result, 2, "access key ending in Q9Z4", "dynamodb:DescribeTable", "AccessDeniedException"
    )
    assert secret not in result.stdout + result.stderr
    assert "AKIATESTKEYQ9Z4" not in result.stdout + result.stderr


def test_writers_default_to_64_requests_in_flight_and_16_conditional_writers(tmp_path):
    from populator.commands.build import build_job

    storage, resolver = write_configs(tmp_path, "manifest")
    (tmp_path / "archive").mkdir()
    archive = str(tmp_path / "archive")
    assert build_job(archive, storage, resolver).pipeline.writers == 64
    assert build_job(archive, storage, resolver, conditional=True).pipeline.writers == 16
    assert build_job(archive, storage, resolver, conditional=True, writers=3).pipeline.writers == 3


@pytest.mark.parametrize(("code", "returncode", "stderr"), [(None, 0, ""), (3, 3, ""), ("boom", 1, "boom\n")])
def test_exit_now_flushes_buffered_output_and_keeps_the_exit_code(code, returncode, stderr):
    """The process ends with os._exit: what was printed to a pipe (block-buffered) must still
    arrive, and SystemExit's code conventions hold."""
    script = f"from populator.commands.cli import exit_now; print('summary', end=''); exit_now({code!r})"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (returncode, "summary", stderr)
