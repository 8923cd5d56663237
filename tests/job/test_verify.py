"""`populator verify`: a sample of the archive's events read back; deletions after a run are found."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess

import pytest
from aiohttp import web

from populator.config.aws import new_session
from populator.config.storage import AwsSettings
from populator.events import ManifestItem
from populator.job.verify import Selection, read_back
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import run_job, run_populator, table_items, upload, write_configs
from tests.support.dynamo_proxy import _error, _json_response
from tests.support.independent_parser import classify, read_lines
from tests.support.loopback_proxy import Knob, LoopbackProxy, check_budget


def delete_items(dynamodb, table: str, keys) -> None:
    for event_id, fingerprint in keys:
        key = {"eventId": {"S": event_id}, "fingerprint": {"S": fingerprint}}
        dynamodb.delete_item(TableName=table, Key=key)


def verify(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_populator("verify", *args, env=env)


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=2, parts_per_run=3, events_per_part=200, expired_runs=1))
    return root, expected


def backfilled(aws, unique_name, tmp_path, archive):
    root, expected = archive
    storage, resolver = write_configs(tmp_path, unique_name)
    import datetime as dt

    tally = run_job(str(root), storage, resolver, now=dt.datetime.now(dt.UTC))
    assert not tally.failures
    return root, expected, storage, resolver


def test_after_a_full_run_every_event_is_found(aws, unique_name, tmp_path, archive):
    root, expected, storage, resolver = backfilled(aws, unique_name, tmp_path, archive)
    result = verify(str(root), str(storage), str(resolver), "--sample", "100000", "--json", env=aws.env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # Every live event checked (there are fewer than the sample); expired ones are not missing.
    assert report["checked"] == len(expected.live_items())
    assert report["missing"] == 0 and report["coverage_percent"] == 100.0
    assert report["expired_not_checked"] > 0
    assert report["objects_read"] == report["objects_selected"] == len(expected.objects)
    # Blank lines are neither events nor bad rows.
    assert expected.blank_lines > 0
    assert report["bad_rows"] == sum(expected.bad_rows.values())
    assert report["events_seen"] == expected.good_lines
    # Events without a fingerprint are not expected in the table: counted apart, never checked.
    assert report["no_fingerprint"] == expected.no_fingerprint > 0
    text = verify(str(root), str(storage), str(resolver), "--sample", "100000", env=aws.env)
    assert text.returncode == 0 and f"{expected.no_fingerprint:,} without a fingerprint" in text.stdout


def test_verify_finds_items_deleted_after_a_run(aws, unique_name, tmp_path, archive):
    root, _, storage, resolver = backfilled(aws, unique_name, tmp_path, archive)
    dynamodb = aws.boto3_client("dynamodb")
    deleted = sorted(table_items(dynamodb, unique_name))[:7]
    delete_items(dynamodb, unique_name, deleted)
    result = verify(str(root), str(storage), str(resolver), "--sample", "100000", "--json", env=aws.env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["missing"] == 7
    assert {(m["eventId"], m["fingerprint"]) for m in report["missing_keys"]} == set(deleted)
    assert all(m["object"].startswith(str(root)) and m["line"] >= 1 for m in report["missing_keys"])
    assert report["coverage_percent"] == pytest.approx(
        100 * (report["checked"] - 7) / report["checked"], abs=1e-3
    )

    text = verify(str(root), str(storage), str(resolver), "--sample", "100000", env=aws.env)
    assert text.returncode == 1
    assert "missing  7" in text.stdout and "FAILED: 7 of" in text.stdout
    assert f"eventId {deleted[0][0]}" in text.stdout or "missing (first 5)" in text.stdout


def test_a_small_sample_still_reads_every_object_once(aws, unique_name, tmp_path, archive):
    root, expected, storage, resolver = backfilled(aws, unique_name, tmp_path, archive)
    # Delete every item of one object: a sample of 20 must still find it (each object gets a pick).
    dynamodb = aws.boto3_client("dynamodb")
    target = sorted(expected.objects)[-1]
    keys = {outcome[:2] for outcome in map(classify, read_lines(root / target)) if isinstance(outcome, tuple)}
    delete_items(dynamodb, unique_name, keys)
    result = verify(str(root), str(storage), str(resolver), "--sample", "20", "--json", env=aws.env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["checked"] == 20
    assert {m["object"] for m in report["missing_keys"]} == {str(root / target)}


def test_verify_of_an_s3_archive(aws, unique_name, tmp_path, archive):
    root, _ = archive
    upload(aws.boto3_client("s3"), root, unique_name, "enriched")
    storage, resolver = write_configs(tmp_path, unique_name)
    url = f"s3://{unique_name}/enriched/"
    import datetime as dt

    assert not run_job(url, storage, resolver, now=dt.datetime.now(dt.UTC)).failures
    result = verify(url, str(storage), str(resolver), "--sample", "300", env=aws.env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "OK: all 300 sampled events are in the table." in result.stdout
    assert "\x1b[" not in result.stdout


def test_a_missing_table_is_a_usage_error(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    result = verify(str(archive[0]), str(storage), str(resolver), env=aws.env)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]


# ----------------------------------------------------------------------------- the sample


def item(n: int) -> ManifestItem:
    return ManifestItem(f"00000000-0000-4000-8000-{n:012d}", f"fp{n}", 1_790_000_000)


def test_every_event_is_chosen_when_there_are_fewer_than_the_sample():
    selection = Selection(50)
    for n in range(30):
        selection.offer(item(n), f"part-{n % 3}", n)
    assert {p.key for p in selection.chosen()} == {item(n).key for n in range(30)}


def test_each_object_gets_a_pick_and_the_choice_ignores_the_reading_order():
    offers = [(item(n), f"part-{n % 10}", n) for n in range(5000)]
    first, second = Selection(25, seed=3), Selection(25, seed=3)
    for offer in offers:
        first.offer(*offer)
    for offer in random.Random(1).sample(offers, len(offers)):
        second.offer(*offer)
    chosen = first.chosen()
    assert len(chosen) == 25
    assert {p.obj for p in chosen} == {f"part-{i}" for i in range(10)}
    assert {p.key for p in chosen} == {p.key for p in second.chosen()}
    assert {p.key for p in Selection(25, seed=4).chosen()} == set()  # nothing offered, nothing chosen


def test_a_duplicate_event_is_checked_once():
    selection = Selection(10)
    for obj in ("part-0", "part-1"):
        selection.offer(item(1), obj, 1)
    assert len(selection.chosen()) == 1


# ------------------------------------------------------------------- reading back, retried


class BatchGetProxy(LoopbackProxy):
    """Forwards to moto; the next `unprocess_next` BatchGetItem requests get only half their keys
    answered (the rest in UnprocessedKeys), the next `throttle_next` a throughput error."""

    unprocess_next: Knob[int] = Knob(0, check_budget)
    throttle_next: Knob[int] = Knob(0, check_budget)

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self.requests = 0
        self.largest = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not request.headers.get("X-Amz-Target", "").endswith(".BatchGetItem"):
            status, headers, payload = await self._upstream(request, body)
            return web.Response(status=status, headers=headers, body=payload)
        document = json.loads(body)
        with self._lock:
            self.requests += 1
            self.largest = max(self.largest, sum(len(t["Keys"]) for t in document["RequestItems"].values()))
            throttle = self.throttle_next > 0
            if throttle:
                self.throttle_next -= 1
            unprocess = not throttle and self.unprocess_next > 0
            if unprocess:
                self.unprocess_next -= 1
        if throttle:
            return _error(
                400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "slow"
            )
        withheld = {}
        if unprocess:
            for table, request_items in document["RequestItems"].items():
                keys = request_items["Keys"]
                half = len(keys) // 2
                withheld[table] = {**request_items, "Keys": keys[half:]}
                request_items["Keys"] = keys[:half]
        new_body = json.dumps(document).encode()
        status, headers, payload = await self._upstream(request, new_body, identity=True)
        result = json.loads(payload)
        if withheld:
            result["UnprocessedKeys"] = withheld
        return _json_response(status, result)


def test_read_back_splits_into_100_keys_and_retries_unprocessed_keys_and_throttles(
    aws, moto_server, unique_name, tmp_path, archive, monkeypatch
):
    backfilled(aws, unique_name, tmp_path, archive)
    present = sorted(table_items(aws.boto3_client("dynamodb"), unique_name))[:230]
    absent = [(f"00000000-0000-4000-8000-{n:012d}", "nope") for n in range(20)]

    async def read(url: str) -> set[tuple[str, str]]:
        from populator.config.aws import dynamodb_client

        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        settings = AwsSettings(profile=None, dynamodb_region="us-east-1", dynamodb_keys=None, pool_size=4)
        async with dynamodb_client(new_session(None), settings) as client:
            return await read_back(client, unique_name, [*present, *absent, *present[:5]], base_delay=0.001)

    proxy = BatchGetProxy(moto_server.url).start()
    try:
        proxy.unprocess_next = 3
        proxy.throttle_next = 2
        found = asyncio.run(read(proxy.url))
    finally:
        proxy.stop()
    assert found == set(present)
    assert proxy.largest == 100
    assert proxy.requests >= 3 + 3 + 2  # three chunks, three retries of unprocessed keys, two throttles
