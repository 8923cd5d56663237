"""`--checkpoint s3://bucket/prefix/`: a journal of whole segment objects that a retry on another
machine resumes from. Against moto over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from populator.config.aws import new_session, s3_client
from populator.config.storage import AwsSettings
from populator.errors import UsageError
from populator.job.checkpoint import (
    GROUP_RECORDS,
    FinishedObject,
    JobIdentity,
    Journal,
    S3Checkpoint,
    parse_checkpoint,
)
from populator.samples.archive import SampleSpec, write_archive
from populator.source.archive import ArchiveObject
from tests.support.backfill_helpers import NOW, run_populator, table_items, write_configs

IDENTITY = JobIdentity(archive="s3://acme/archive/", table="manifest", since=None, mode="batch")
SETTINGS = AwsSettings(profile=None, dynamodb_region="us-east-1", dynamodb_keys=None, pool_size=4)


def obj(key: str, etag: str = "e1") -> ArchiveObject:
    return ArchiveObject(key=key, size=10, etag=etag, run="run=2026-01-01-00-00-00")


def done(key: str, etag: str = "e1") -> FinishedObject:
    return FinishedObject(key=key, etag=etag, size=10, lines=3, items=2, bad_rows=0)


@pytest.fixture
def bucket(aws, unique_name):
    aws.boto3_client("s3").create_bucket(Bucket=unique_name)
    return unique_name


def with_s3(work):
    async def main():
        async with s3_client(new_session(None), SETTINGS) as s3:
            return await work(s3)

    return asyncio.run(main())


def segments(aws, bucket: str) -> dict[str, bytes]:
    s3 = aws.boto3_client("s3")
    keys = [e["Key"] for e in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_parse_checkpoint_tells_s3_from_a_path():
    assert parse_checkpoint("s3://acme/ckpt") == S3Checkpoint("acme", "ckpt/")
    assert parse_checkpoint("s3://acme/") == S3Checkpoint("acme", "")
    assert str(parse_checkpoint("./journal.jsonl")) == "journal.jsonl"
    with pytest.raises(UsageError, match="name a bucket"):
        parse_checkpoint("s3:///ckpt/")


def test_each_group_is_one_whole_segment_with_a_header_and_a_resume_loads_them_all(aws, bucket):
    location = S3Checkpoint(bucket, "ckpt/")

    async def first(s3):
        journal = await Journal.open_s3(s3, location, IDENTITY)
        for n in range(GROUP_RECORDS + 3):
            journal.record(done(f"k{n}"))
        await journal.aclose()

    with_s3(first)
    found = segments(aws, bucket)
    assert len(found) == 2  # a full group, then the three left at the end
    prefix = location.job_prefix(IDENTITY)
    for key, body in found.items():
        assert key.startswith(prefix) and key.endswith(".jsonl")
        lines = body.splitlines()
        assert orjson.loads(lines[0])["identity"] == IDENTITY.as_dict()
    assert sorted(len(body.splitlines()) - 1 for body in found.values()) == [3, GROUP_RECORDS]

    async def second(s3):
        journal = await Journal.open_s3(s3, location, IDENTITY)
        result = (
            journal.resumed,
            journal.finished_count,
            journal.is_finished(obj("k0")),
            journal.is_finished(obj(f"k{GROUP_RECORDS + 2}")),
            journal.is_finished(obj("k0", etag="changed")),
            journal.is_finished(obj("never")),
        )
        journal.record(done("later"))
        await journal.aclose()
        return result

    assert with_s3(second) == (True, GROUP_RECORDS + 3, True, True, False, False)
    assert len(segments(aws, bucket)) == 3  # the second process wrote its own, overwriting nothing


def test_two_processes_writing_at_once_never_overwrite_each_other(aws, bucket):
    location = S3Checkpoint(bucket, "")

    async def two(s3):
        first = await Journal.open_s3(s3, location, IDENTITY)
        second = await Journal.open_s3(s3, location, IDENTITY)
        for n in range(5):
            first.record(done(f"a{n}"))
            second.record(done(f"b{n}"))
        await asyncio.gather(first.aclose(), second.aclose())
        third = await Journal.open_s3(s3, location, IDENTITY)
        count = third.finished_count
        await third.aclose()
        return count

    assert with_s3(two) == 10
    assert len(segments(aws, bucket)) == 2


def test_a_segment_is_never_overwritten_even_if_a_name_came_twice(aws, bucket):
    """The put is conditional (If-None-Match: *): a name already taken fails instead."""
    location = S3Checkpoint(bucket, "")
    key = location.job_prefix(IDENTITY) + "taken.jsonl"
    aws.boto3_client("s3").put_object(Bucket=bucket, Key=key, Body=b"first")

    async def put_again(s3):
        journal = await Journal.open_s3(s3, S3Checkpoint(bucket, "other/"), IDENTITY)
        await journal._store._put(key, b"second")

    with pytest.raises(Exception, match=r"PreconditionFailed|412"):
        with_s3(put_again)
    assert segments(aws, bucket)[key] == b"first"


def test_restart_deletes_the_jobs_segments_and_another_job_is_refused(aws, bucket):
    location = S3Checkpoint(bucket, "ckpt/")

    async def write(s3):
        journal = await Journal.open_s3(s3, location, IDENTITY)
        journal.record(done("a"))
        await journal.aclose()

    with_s3(write)
    foreign = JobIdentity(archive="s3://acme/archive/", table="manifest", since="2026-01-01", mode="batch")
    header = orjson.dumps({"type": "header", "version": 1, "identity": foreign.as_dict()})
    planted = location.job_prefix(IDENTITY) + "planted.jsonl"
    aws.boto3_client("s3").put_object(Bucket=bucket, Key=planted, Body=header + b"\n")

    async def reopen(s3):
        await Journal.open_s3(s3, location, IDENTITY)

    with pytest.raises(UsageError, match="belongs to another job"):
        with_s3(reopen)

    async def restart(s3):
        journal = await Journal.open_s3(s3, location, IDENTITY, restart=True)
        fresh = (journal.resumed, journal.is_finished(obj("a")))
        await journal.aclose()
        return fresh

    assert with_s3(restart) == (False, False)
    assert segments(aws, bucket) == {}


def test_kill_9_then_a_fresh_machine_resumes_from_the_s3_checkpoint(
    aws, dynamo_proxy, unique_name, bucket, tmp_path
):
    """SIGKILL mid-run, then the same command in a new working directory (another machine, as an
    AWS Batch retry would be): the table ends exact and finished objects are not read again."""
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=2, parts_per_run=6, events_per_part=300, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    checkpoint = f"s3://{bucket}/populator/checkpoints/"
    args = [
        "run", str(root), str(storage), str(resolver), "--checkpoint", checkpoint,
        "--concurrency", "2", "--processes", "1",
    ]  # fmt: skip
    first_machine = tmp_path / "machine-1"
    first_machine.mkdir()
    dynamo_proxy.limit_capacity(1200)
    process = subprocess.Popen(
        [sys.executable, "-m", "populator", *args],
        env=env, cwd=first_machine, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not segments(aws, bucket):  # at least one group of finished objects is in S3
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert not (first_machine / ".populator").exists()  # nothing of it was kept locally
    dynamo_proxy.limit_capacity(None)

    second_machine = tmp_path / "machine-2"
    second_machine.mkdir()
    report = tmp_path / "report.json"
    result = run_populator(*args, "--report", str(report), env=env, cwd=second_machine)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["objects_skipped"] >= 1
    assert data["objects_skipped"] + data["objects_done"] == len(expected.objects)
    assert data["checkpoint"].startswith(checkpoint)
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


def test_a_checkpoint_that_cannot_be_written_stops_the_run_at_once(
    aws, dynamo_proxy, s3_proxy, unique_name, bucket, tmp_path
):
    """S3 refuses the checkpoint's segments: the run stops at the first one (it does not write on
    with nothing recorded, each segment waiting out its retries), exit 1 since items were written."""
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=3, events_per_part=2000, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    dynamo_proxy.limit_capacity(1000)  # a run of about 5 s: the first segment is due after 1 s
    s3_proxy.deny_operations = frozenset({"PutObject"})
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url, AWS_ENDPOINT_URL_S3=s3_proxy.url)
    report = tmp_path / "report.json"
    started = time.monotonic()
    result = run_populator(
        "run", str(root), str(storage), str(resolver), "--on-demand", "--processes", "1",
        "--checkpoint", f"s3://{bucket}/checkpoints/", "--report", str(report), env=env,
    )  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "the checkpoint under s3://" in result.stderr and "s3:PutObject" in result.stderr
    assert "run the same command to go on" in result.stderr and "Traceback" not in result.stderr
    data = json.loads(report.read_text())
    assert data["items_written"] > 0  # what was acknowledged is counted
    assert data["objects_done"] < 3  # stopped there and then, not at the end
    assert took < 30, took
