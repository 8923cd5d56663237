"""A crash costs seconds, not the objects in flight: each object's acknowledged prefix is kept.

Every test measures what DynamoDB stored (the proxy counts each item a write stored) against a
clean run of the same archive into another table, so "written again" is exactly the extra the
interruption cost. The table admits a fixed rate (the proxy's token bucket), so that objects are
written together and none finishes early, as with a real table that is the bottleneck.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from populator.job.pipeline import PROGRESS_SECONDS
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, run_populator, table_items, upload, write_configs

# Three parts of 3,000 events: every object is in flight at once (--concurrency 3).
BIG_PARTS = SampleSpec(runs=1, parts_per_run=3, events_per_part=3000, formats=("gz",), now=NOW, seed=23)
CAPACITY = 3000  # items a second the table admits
WRITERS = 4


def run_args(archive: str, storage: Path, resolver: Path, *extra: str) -> list[str]:
    return [
        "run", archive, str(storage), str(resolver), "--on-demand",
        "--concurrency", "3", "--writers", str(WRITERS), *extra,
    ]  # fmt: skip


def clean_run_cost(aws: Any, dynamo_proxy: Any, tmp_path: Path, table: str, archive: str) -> int:
    """Items DynamoDB stores for one uninterrupted run of the archive (duplicates across
    requests are stored twice by any run: this is the baseline, not the distinct count)."""
    (tmp_path / "clean").mkdir()
    storage, resolver = write_configs(tmp_path / "clean", table)
    before = dynamo_proxy.items_stored
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    result = run_populator(
        *run_args(archive, storage, resolver, "--checkpoint", str(tmp_path / "clean.jsonl")), env=env
    )
    assert result.returncode == 0, result.stderr
    return dynamo_proxy.items_stored - before


def interrupt(
    args: list[str],
    env: dict[str, str],
    dynamo_proxy: Any,
    *,
    after: int,
    sig: int,
    journal: Path | None = None,
    ready: Any = None,
) -> str:
    """Start a run, send `sig` once `after` items are stored (and `journal` holds a prefix); its
    stderr."""
    start = dynamo_proxy.items_stored
    process = subprocess.Popen(
        [sys.executable, "-m", "populator", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while (
        dynamo_proxy.items_stored - start < after
        or (journal is not None and b'"progress"' not in (journal.read_bytes() if journal.exists() else b""))
        or (ready is not None and not ready())
    ):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    if sig == signal.SIGKILL:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    return err


def setup(aws: Any, dynamo_proxy: Any, tmp_path: Path, unique_name: str) -> tuple[Any, str, int]:
    root = tmp_path / "archive"
    expected = write_archive(root, BIG_PARTS)
    upload(aws.boto3_client("s3"), root, unique_name, "enriched")
    archive = f"s3://{unique_name}/enriched/"
    dynamo_proxy.limit_capacity(CAPACITY)
    baseline = clean_run_cost(aws, dynamo_proxy, tmp_path, f"{unique_name}-clean", archive)
    assert baseline >= len(expected.live_items())
    return expected, archive, baseline


def test_kill_9_half_way_writes_again_at_most_two_seconds_of_the_table(
    aws, dynamo_proxy, unique_name, tmp_path
):
    expected, archive, baseline = setup(aws, dynamo_proxy, tmp_path, unique_name)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    journal = tmp_path / "journal.jsonl"
    args = run_args(archive, storage, resolver, "--processes", "2", "--checkpoint", str(journal))
    before = dynamo_proxy.items_stored
    interrupt(args, env, dynamo_proxy, after=baseline // 2, sig=signal.SIGKILL, journal=journal)

    report = tmp_path / "resumed.json"
    resumed = run_populator(*args, "--report", str(report), env=env)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(report.read_text())
    written_again = dynamo_proxy.items_stored - before - baseline
    # Before: no object had finished, so all of it (about half the archive) was written again.
    assert written_again <= 2 * CAPACITY, (written_again, data)
    assert data["objects_resumed_partway"] >= 1 and data["items_carried_over"] > 0
    assert "resumed part-way: " in resumed.stdout
    assert "part-way" in resumed.stderr  # the resume line: what the checkpoint held
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


def test_sigterm_writes_nothing_again_beyond_the_requests_in_flight(aws, dynamo_proxy, unique_name, tmp_path):
    expected, archive, baseline = setup(aws, dynamo_proxy, tmp_path, unique_name)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    args = run_args(archive, storage, resolver, "--processes", "1")
    before = dynamo_proxy.items_stored
    err = interrupt(args, env, dynamo_proxy, after=baseline // 2, sig=signal.SIGTERM)
    assert "interrupted by SIGTERM" in err and "how far the others got" in err

    resumed = run_populator(*args, env=env)
    assert resumed.returncode == 0, resumed.stderr
    written_again = dynamo_proxy.items_stored - before - baseline
    assert written_again <= WRITERS * 25, written_again
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


def test_kill_9_then_a_fresh_machine_resumes_part_way_from_the_s3_checkpoint(
    aws, dynamo_proxy, unique_name, tmp_path
):
    expected, archive, baseline = setup(aws, dynamo_proxy, tmp_path, unique_name)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    checkpoint = f"s3://{unique_name}/checkpoints/"
    args = run_args(archive, storage, resolver, "--processes", "1", "--checkpoint", checkpoint)
    before = dynamo_proxy.items_stored
    s3 = aws.boto3_client("s3")

    def a_prefix_is_in_s3() -> bool:
        listed = s3.list_objects_v2(Bucket=unique_name, Prefix="checkpoints/").get("Contents", [])
        bodies = (s3.get_object(Bucket=unique_name, Key=entry["Key"])["Body"].read() for entry in listed)
        return any(b'"progress"' in body for body in bodies)

    interrupt(args, env, dynamo_proxy, after=baseline // 2, sig=signal.SIGKILL, ready=a_prefix_is_in_s3)
    shutil.rmtree(".populator", ignore_errors=True)  # another machine: nothing local is kept

    report = tmp_path / "resumed.json"
    resumed = run_populator(*args, "--report", str(report), env=env)
    assert resumed.returncode == 0, resumed.stderr
    written_again = dynamo_proxy.items_stored - before - baseline
    assert written_again <= 2 * CAPACITY, written_again
    assert json.loads(report.read_text())["objects_resumed_partway"] >= 1
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


def test_progress_is_recorded_about_once_a_second_an_object(aws, dynamo_proxy, unique_name, tmp_path):
    """The journal does not grow with every request: a prefix record an object a second at most."""
    _, archive, _ = setup(aws, dynamo_proxy, tmp_path, unique_name)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    journal = tmp_path / "journal.jsonl"
    started = time.monotonic()
    result = run_populator(*run_args(archive, storage, resolver, "--checkpoint", str(journal)), env=env)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    progress = [record for record in records if record["type"] == "progress"]
    assert progress, "no prefix was recorded while the objects were written"
    assert len(progress) <= 3 * (took / PROGRESS_SECONDS + 1)
    assert json.loads(journal.read_text().splitlines()[0])["version"] == 2


def test_a_read_broken_off_mid_object_writes_nothing_of_it_again(
    aws, dynamo_proxy, s3_proxy, unique_name, tmp_path
):
    """A reset half-way through an object's body: the read starts again once its batches are
    written, and skips every line they held."""
    expected, archive, baseline = setup(aws, dynamo_proxy, tmp_path, unique_name)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url, AWS_ENDPOINT_URL_S3=s3_proxy.url)
    s3_proxy.target([f"enriched/{expected.objects[0]}"])
    s3_proxy.reset_next = 1
    before = dynamo_proxy.items_stored
    report = tmp_path / "report.json"
    result = run_populator(
        *run_args(archive, storage, resolver, "--processes", "1", "--report", str(report)), env=env
    )
    assert result.returncode == 0, result.stderr
    assert s3_proxy.faults_injected == {"reset_next": 1}
    data = json.loads(report.read_text())
    assert data["object_restarts"] == 1
    assert data["objects_resumed_partway"] == 1 and data["items_carried_over"] > 0
    written_again = dynamo_proxy.items_stored - before - baseline
    assert written_again <= WRITERS * 25, written_again
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())
