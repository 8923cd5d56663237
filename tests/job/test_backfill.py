"""End to end against moto over real HTTP: archive in, manifest table out, item for item.

The expected manifest comes from the generator's own record of what it wrote, and is also
cross-checked against an independent, deliberately simple parser.
"""

from __future__ import annotations

import gzip

import pytest

from populator.config.storage import STORAGE_SCHEMA_PREFIX
from populator.errors import TableSchemaError
from populator.events import TTL_SECONDS
from populator.samples.archive import SampleSpec, write_archive
from populator.sink.manifest import RetryPolicy
from tests.support.backfill_helpers import (
    NOW,
    corrupt_archive,
    create_table,
    event_key,
    event_line,
    run_job,
    table_items,
    upload,
    write_configs,
)
from tests.support.independent_parser import derive_manifest

SMALL = SampleSpec(
    runs=2,
    parts_per_run=5,
    events_per_part=120,
    now=NOW,
    expired_runs=1,
    cross_run_duplicates=8,
    same_id_other_fingerprint=5,
    duplicate_rate=0.05,
    overlong_lines=1,
    long_line_every=50,
    plain_named_gz=True,
)


def assert_table_is_manifest(found, expected_items):
    assert set(found) == set(expected_items)
    for key, values in found.items():
        assert values["etlTime"] in expected_items[key]
        assert values["ttl"] == values["etlTime"] + TTL_SECONDS


def test_s3_archive_backfill_equals_the_expected_manifest(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SMALL)
    independent = derive_manifest(root)
    assert independent == expected.items  # the two references agree before we trust either
    upload(aws.boto3_client("s3"), root, unique_name, "enriched/archive")
    storage, resolver = write_configs(tmp_path, unique_name)

    tally = run_job(f"s3://{unique_name}/enriched/archive/", storage, resolver, concurrency=4, writers=4)

    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    live = {k: v for k, v in independent.items() if k not in expected.expired}
    assert_table_is_manifest(found, live)
    assert not tally.failures
    assert tally.table_created
    assert tally.objects_done == tally.objects_total == len(expected.objects)
    assert tally.runs == len(expected.runs)
    assert tally.lines_read == expected.lines
    assert tally.blank_lines == expected.blank_lines
    assert tally.bad_rows_by_reason == expected.bad_rows
    assert tally.no_fingerprint == expected.no_fingerprint > 0
    assert tally.skipped_expired > 0
    assert tally.items_written >= len(live)


def test_local_directory_backfill_equals_the_expected_manifest(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SMALL)
    storage, resolver = write_configs(tmp_path, unique_name)

    tally = run_job(str(root), storage, resolver, concurrency=64, writers=8)

    assert_table_is_manifest(table_items(aws.boto3_client("dynamodb"), unique_name), expected.live_items())
    assert tally.objects_done == len(expected.objects)
    assert tally.bad_rows_by_reason == expected.bad_rows


def test_a_new_table_is_on_demand_and_provisioned_as_snowplow_does_when_asked(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=1, events_per_part=10, now=NOW))
    dynamodb = aws.boto3_client("dynamodb")

    storage, resolver = write_configs(tmp_path, unique_name)
    tally = run_job(str(root), storage, resolver, provisioned="100/100")
    assert tally.write_ceiling == 50  # --write-capacity-percent 50 of the new table's 100 WCU
    table = dynamodb.describe_table(TableName=unique_name)["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("eventId", "HASH"),
        ("fingerprint", "RANGE"),
    }
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("eventId", "S"),
        ("fingerprint", "S"),
    }
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 100
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 100
    ttl = dynamodb.describe_time_to_live(TableName=unique_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")

    on_demand = unique_name + "-od"
    storage, resolver = write_configs(tmp_path, on_demand)
    run_job(str(root), storage, resolver)  # the default
    table = dynamodb.describe_table(TableName=on_demand)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=on_demand)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")


def test_table_with_other_keys_is_refused_and_nothing_is_written(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=1, events_per_part=10, now=NOW))
    dynamodb = aws.boto3_client("dynamodb")
    dynamodb.create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    storage, resolver = write_configs(tmp_path, unique_name)
    with pytest.raises(TableSchemaError, match="eventId HASH"):
        run_job(str(root), storage, resolver)
    assert dynamodb.scan(TableName=unique_name)["Count"] == 0


def test_dry_run_makes_no_dynamodb_call(aws, dynamo_proxy, monkeypatch, unique_name, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    root = tmp_path / "archive"
    expected = write_archive(root, SMALL)
    upload(aws.boto3_client("s3"), root, unique_name, "a")
    storage, resolver = write_configs(tmp_path, unique_name)

    tally = run_job(f"s3://{unique_name}/a", storage, resolver, dry_run=True)

    assert sum(dynamo_proxy.calls.values()) == 0
    assert tally.items_planned >= len(expected.live_items())
    assert tally.items_written == 0
    assert tally.bad_rows_by_reason == expected.bad_rows
    assert tally.objects_done == len(expected.objects)
    tables = aws.boto3_client("dynamodb").list_tables()["TableNames"]
    assert unique_name not in tables


def test_dynamodb_endpoint_variable_is_honoured(aws, dynamo_proxy, monkeypatch, unique_name, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=1, events_per_part=30, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    run_job(str(root), storage, resolver)
    assert dynamo_proxy.calls["BatchWriteItem"] > 0
    assert dynamo_proxy.calls["DescribeTable"] > 0


def test_unprocessed_items_are_retried_until_every_item_is_stored(
    aws, dynamo_proxy, monkeypatch, unique_name, tmp_path
):
    root = tmp_path / "archive"
    expected = write_archive(root, SMALL)
    storage, resolver = write_configs(tmp_path, unique_name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    dynamo_proxy.unprocessed_share = 0.4

    tally = run_job(
        str(root), storage, resolver, retry=RetryPolicy(attempts=30, base_delay=0.001, max_delay=0.01)
    )

    assert dynamo_proxy.unprocessed_items_returned > 0
    assert tally.throttle_events > 0
    assert not tally.failures
    assert_table_is_manifest(table_items(aws.boto3_client("dynamodb"), unique_name), expected.live_items())


def test_throttling_server_errors_and_dropped_connections_are_retried(
    aws, dynamo_proxy, monkeypatch, unique_name, tmp_path
):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=1, parts_per_run=2, events_per_part=200, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    dynamo_proxy.throttle_next = 3
    dynamo_proxy.throttling_exception_next = 2
    dynamo_proxy.server_error_next = 2
    dynamo_proxy.drop_next = 2

    tally = run_job(str(root), storage, resolver, writers=2)

    assert not tally.failures
    assert tally.throttle_events >= 5
    assert_table_is_manifest(table_items(aws.boto3_client("dynamodb"), unique_name), expected.live_items())


def test_spent_retry_budget_fails_that_object_and_the_others_go_on(
    aws, dynamo_proxy, monkeypatch, unique_name, tmp_path
):
    root = tmp_path / "archive"
    run_dir = root / "run=2026-11-20-10-00-00"
    run_dir.mkdir(parents=True)
    etl = "2026-11-20 10:05:00.000"
    first = [event_line(i, etl) for i in range(60)]
    second = [event_line(1000 + i, etl) for i in range(60)]
    (run_dir / "part-00000.gz").write_bytes(gzip.compress(("\n".join(first) + "\n").encode()))
    (run_dir / "part-00001.gz").write_bytes(gzip.compress(("\n".join(second) + "\n").encode()))
    storage, resolver = write_configs(tmp_path, unique_name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    # Create the table first, then make the first two write requests fail: with one reader,
    # one writer and two attempts, the first batch of part-00000 spends its budget.
    create_table(tmp_path, storage, resolver)
    dynamo_proxy.throttle_next = 2

    tally = run_job(str(root), storage, resolver, concurrency=1, writers=1, retry=RetryPolicy(2, 0.001, 0.01))

    failed_key = str(run_dir / "part-00000.gz")
    assert list(tally.failures) == [failed_key]
    assert "ProvisionedThroughputExceededException" in tally.failures[failed_key]
    assert tally.objects_done == 1
    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    second_keys = {event_key(1000 + i) for i in range(60)}
    assert second_keys <= set(found)


def test_duplicate_keys_side_by_side_are_merged_into_one_request(aws, unique_name, tmp_path):
    run_dir = tmp_path / "archive" / "run=2026-11-20-10-00-00"
    run_dir.mkdir(parents=True)
    etl = "2026-11-20 10:05:00.000"
    lines = [event_line(1, etl)] * 30 + [event_line(i, etl) for i in range(2, 40)]
    (run_dir / "part-00000").write_text("\n".join(lines) + "\n")
    storage, resolver = write_configs(tmp_path, unique_name)

    tally = run_job(str(tmp_path / "archive"), storage, resolver)

    assert not tally.failures
    assert tally.merged_duplicates == 29
    assert len(table_items(aws.boto3_client("dynamodb"), unique_name)) == 39


def test_conditional_mode_leaves_an_existing_item_alone(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(
        root, SampleSpec(runs=2, parts_per_run=1, events_per_part=40, now=NOW, cross_run_duplicates=3)
    )
    storage, resolver = write_configs(tmp_path, unique_name)
    dynamodb = aws.boto3_client("dynamodb")
    create_table(tmp_path, storage, resolver)
    # An item the live shredder wrote earlier with another etlTime: the first writer wins.
    key = sorted(expected.live_items())[0]
    dynamodb.put_item(
        TableName=unique_name,
        Item={
            "eventId": {"S": key[0]},
            "fingerprint": {"S": key[1]},
            "etlTime": {"N": "12345"},
            "ttl": {"N": "99999"},
        },
    )

    tally = run_job(str(root), storage, resolver, conditional=True)

    found = table_items(dynamodb, unique_name)
    assert found[key] == {"etlTime": 12345, "ttl": 99999}
    assert set(found) == set(expected.live_items())
    # A key in two runs is written once; the other run's write finds it and leaves it.
    for other, times in expected.live_items().items():
        if other != key:
            assert found[other]["etlTime"] in times
    assert tally.already_present == 1 + 3


def test_since_selects_runs_at_or_after_it(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(
        root, SampleSpec(runs=3, parts_per_run=1, events_per_part=30, now=NOW, cross_run_duplicates=0)
    )
    second_run = expected.runs[1]  # "run=YYYY-MM-DD-HH-MM-SS"
    storage, resolver = write_configs(tmp_path, unique_name)

    tally = run_job(str(root), storage, resolver, since=second_run[len("run=") :])

    assert tally.runs == 2
    assert tally.objects_done == 2


def test_expired_items_are_skipped_unless_asked(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(
        root, SampleSpec(runs=1, parts_per_run=1, events_per_part=30, now=NOW, expired_runs=1)
    )
    assert expected.expired
    storage, resolver = write_configs(tmp_path, unique_name)
    dynamodb = aws.boto3_client("dynamodb")

    tally = run_job(str(root), storage, resolver)
    assert set(table_items(dynamodb, unique_name)) == set(expected.live_items())
    assert tally.skipped_expired >= len(expected.expired)

    tally = run_job(str(root), storage, resolver, include_expired=True)
    assert set(table_items(dynamodb, unique_name)) == set(expected.items)
    assert tally.skipped_expired == 0


def test_corrupt_object_fails_alone(aws, unique_name, tmp_path):
    archive = corrupt_archive(tmp_path / "archive", parts=3, events_per_part=50)
    broken = archive.broken
    storage, resolver = write_configs(tmp_path, unique_name)

    tally = run_job(str(archive.root), storage, resolver)

    assert list(tally.failures) == [str(broken)]
    assert "truncated gzip" in tally.failures[str(broken)]
    assert tally.objects_done == 2


FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz-SECRET-DO-NOT-LEAK"


@pytest.mark.parametrize("version", ["1-0-0", "1-0-1", "2-0-0"])
def test_config_keys_are_used_for_dynamodb_and_s3_uses_the_default_chain(
    aws, dynamo_proxy, monkeypatch, unique_name, tmp_path, version
):
    import orjson

    from tests.support.backfill_helpers import RESOLVER

    # Every service-specific endpoint variable is honoured: the generic one leads nowhere.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=1, parts_per_run=2, events_per_part=30, now=NOW))
    upload(aws.boto3_client("s3"), root, unique_name, "archive")
    keys = {"accessKeyId": "AKIACONFIGKEY0001234", "secretAccessKey": FAKE_SECRET}
    data = {"name": "m", "awsRegion": "eu-west-1", "dynamodbTable": unique_name}
    if version == "2-0-0":
        data |= {"auth": keys, "id": "2b4b4b3e-6b0a-4c39-b2f0-6a4f5f2b7a10", "purpose": "EVENTS_MANIFEST"}
    else:
        data |= keys | {"purpose": "DUPLICATE_TRACKING"}
    storage = tmp_path / "dynamodb.json"
    storage.write_bytes(
        orjson.dumps(
            {
                "schema": STORAGE_SCHEMA_PREFIX + version,
                "data": data,
            }
        )
    )
    resolver = tmp_path / "resolver.json"
    resolver.write_bytes(orjson.dumps(RESOLVER))

    tally = run_job(f"s3://{unique_name}/archive/", storage, resolver)

    assert set(dynamo_proxy.access_keys) == {"AKIACONFIGKEY0001234"}
    assert not tally.failures
    dynamodb = aws.boto3_client("dynamodb", region_name="eu-west-1")
    assert set(table_items(dynamodb, unique_name)) == set(expected.live_items())
    from populator.config.storage import load_storage_config

    assert FAKE_SECRET not in repr(load_storage_config(storage))
    assert FAKE_SECRET not in str(load_storage_config(storage))


def test_lines_as_snowplow_writes_them_end_to_end_and_none_is_fatal(aws, unique_name, tmp_path):
    """Every kind of line Snowplow's own fixtures hold (tests/support/snowplow_lines.py), the
    year-0000 etl_tstamp among them, through `populator run` with two worker processes: exit 0,
    the table holds exactly the valid events that have a fingerprint, and the one without is
    counted apart, never written to --bad-rows nor counted by --max-bad-rows."""
    import json
    from collections import Counter

    from tests.support.backfill_helpers import run_populator
    from tests.support.snowplow_lines import CASES

    run = tmp_path / "archive" / "run=2021-10-14-07-30-00"
    run.mkdir(parents=True)
    lines = [case.line for case in CASES.values()]
    (run / "part-00000.gz").write_bytes(gzip.compress(b"\n".join(lines[::2]) + b"\n"))
    (run / "part-00001").write_bytes(b"\n".join(lines[1::2]) + b"\n")
    items = {
        case.expected[:2]: case.expected[2] for case in CASES.values() if isinstance(case.expected, tuple)
    }
    reasons = Counter(
        case.expected for case in CASES.values() if case.expected in {"etl_tstamp", "field_count"}
    )
    storage, resolver = write_configs(tmp_path, unique_name)
    report, bad = tmp_path / "report.json", tmp_path / "bad.jsonl"
    common = ["--include-expired", "--processes", "2", "--max-bad-rows", str(reasons.total())]

    for extra in (["--dry-run"], ["--on-demand", "--bad-rows", str(bad)]):
        args = ["run", str(tmp_path / "archive"), str(storage), str(resolver), *common, *extra]
        result = run_populator(*args, "--report", str(report), env=aws.env)
        assert result.returncode == 0, result.stderr
        data = json.loads(report.read_text())
        assert data["no_fingerprint"] == 1
        assert data["bad_rows_by_reason"] == dict(sorted(reasons.items()))
        assert data["objects_failed"] == 0 and data["status"] == "ok"
        assert "no fingerprint (skipped): 1" in result.stdout + result.stderr

    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    assert {key: values["etlTime"] for key, values in found.items()} == items
    records = [json.loads(line) for line in bad.read_text().splitlines()]
    assert Counter(record["reason"] for record in records) == reasons


def test_an_s3_archive_as_snowplow_pipelines_leave_it_reads_its_data_files_and_nothing_else(
    aws, unique_name, tmp_path
):
    """Batch `part-*` files (gzip and plain), a Stream Enrich S3 Loader file, a nested part and
    every kind of Snowplow line, beside what Hadoop leaves that is not data (`_SUCCESS`, a `.crc`,
    `_temporary/`, a `_$folder$` placeholder, an empty object, a file outside any run folder)."""
    import json
    from collections import Counter

    from tests.support.backfill_helpers import run_populator
    from tests.support.snowplow_lines import CASES

    lines = [case.line for case in CASES.values()]
    root = tmp_path / "archive"
    run = root / "run=2019-03-04-05-00-00"
    (run / "sub").mkdir(parents=True)
    (run / "_temporary" / "0").mkdir(parents=True)
    data = {
        "part-00000.gz": gzip.compress(b"\n".join(lines[0::4]) + b"\n"),
        "part-00001": b"\n".join(lines[1::4]) + b"\n",
        "2019-03-04-04-50-29-49594479543466447225451425906541389451227893456563613698.gz": gzip.compress(
            b"\n".join(lines[2::4]) + b"\n"
        ),
        "sub/part-00002.txt.gz": gzip.compress(b"\n".join(lines[3::4]) + b"\n"),
    }
    for name, body in data.items():
        (run / name).write_bytes(body)
    (run / "_SUCCESS").write_bytes(b"")
    (run / ".part-00000.gz.crc").write_bytes(b"crc-bytes")
    (run / "_temporary" / "0" / "part-00009.gz").write_bytes(gzip.compress(lines[0]))
    (run / "empty-part").write_bytes(b"")
    (root / "run=2019-03-04-05-00-00_$folder$").write_bytes(b"")
    (root / "README.txt").write_bytes(b"not in a run folder\n")
    s3 = aws.boto3_client("s3")
    bucket = f"{unique_name}-archive"
    s3.create_bucket(Bucket=bucket)
    upload(s3, root, bucket, "enriched/archive")

    items = {
        case.expected[:2]: case.expected[2] for case in CASES.values() if isinstance(case.expected, tuple)
    }
    reasons = Counter(case.expected for case in CASES.values() if isinstance(case.expected, str))
    reasons.pop("no_fingerprint", None)
    storage, resolver = write_configs(tmp_path, unique_name)
    report = tmp_path / "report.json"
    archive = f"s3://{bucket}/enriched/archive/"
    result = run_populator(
        "run", archive, str(storage), str(resolver), "--include-expired", "--report", str(report), env=aws.env
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(report.read_text())
    assert summary["objects_total"] == len(data) == summary["objects_done"]
    assert summary["no_fingerprint"] == sum(1 for c in CASES.values() if c.expected == "no_fingerprint")
    assert summary["bad_rows_by_reason"] == dict(sorted(reasons.items()))
    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    assert {key: values["etlTime"] for key, values in found.items()} == items
