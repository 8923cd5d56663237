"""Resuming and surviving: checkpoints, kill -9, Ctrl-C/SIGTERM, bad data, a throttling table."""

from __future__ import annotations

import gzip
import random
import re
import shlex
import signal
import subprocess
import sys
import time

import orjson
import pytest

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
    write_configs,
)

MANY_SMALL_PARTS = SampleSpec(
    runs=3, parts_per_run=8, events_per_part=250, now=NOW, formats=("gz", "plain", "multimember")
)


def start(args, env) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "populator", "run", *args, "--on-demand"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_rerun_skips_finished_objects_and_reads_changed_ones(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=2, parts_per_run=3, events_per_part=60, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    first = run_job(str(root), storage, resolver)
    assert first.objects_done == len(expected.objects) and first.objects_skipped == 0

    again = run_job(str(root), storage, resolver)
    assert again.objects_skipped == len(expected.objects)
    assert again.objects_done == 0 and again.items_written == 0

    changed = root / expected.objects[2]
    time.sleep(0.01)
    changed.write_bytes(changed.read_bytes())  # same bytes, new mtime: a new version of the object
    third = run_job(str(root), storage, resolver)
    assert third.objects_done == 1 and third.objects_skipped == len(expected.objects) - 1


def test_a_failed_object_is_the_only_one_read_again(aws, unique_name, tmp_path):
    archive = corrupt_archive(tmp_path / "archive", parts=4, events_per_part=60)
    root, broken = archive.root, archive.broken
    storage, resolver = write_configs(tmp_path, unique_name)
    first = run_job(str(root), storage, resolver)
    assert list(first.failures) == [str(broken)]

    broken.write_bytes(archive.good_bytes)
    second = run_job(str(root), storage, resolver)
    assert not second.failures
    assert second.objects_done == 1 and second.objects_skipped == 3
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(archive.expected.live_items())


def test_kill_9_three_times_then_finish(aws, dynamo_proxy, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, MANY_SMALL_PARTS)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    args = [str(root), str(storage), str(resolver), "--concurrency", "2", "--writers", "4"]
    rng = random.Random(20261127)
    killed = 0
    for _ in range(3):
        before = dynamo_proxy.items_stored
        process = start(args, env)
        wait_for(lambda b=before, p=process: dynamo_proxy.items_stored > b or p.poll() is not None)
        time.sleep(rng.uniform(0.0, 0.8))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.communicate(timeout=60)
    assert killed >= 2, "the archive was written too fast to be interrupted"

    final = start(args, env)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert re.search(r"objects: \d+ done of \d+, 0 failed", out)
    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    distinct = expected.live_items()
    assert set(found) == set(distinct)
    assert dynamo_proxy.items_stored <= 2 * len(distinct)


def test_sigint_exits_130_and_the_printed_command_resumes(aws, dynamo_proxy, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, MANY_SMALL_PARTS)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    process = start([str(root), str(storage), str(resolver), "--concurrency", "2", "--writers", "2"], env)
    wait_for(lambda: dynamo_proxy.items_stored > 0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert "interrupted by SIGINT" in err
    command = err.split("resume with:\n", 1)[1].strip().splitlines()[0]
    argv = shlex.split(command)
    assert argv[:2] == ["populator", "run"]

    resumed = subprocess.run(
        [sys.executable, "-m", "populator", *argv[1:]], env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    skipped = int(re.search(r"objects skipped \(already done\): (\d+)", resumed.stdout).group(1))
    # What was written before the stop is kept: whole objects, or the prefixes of the others.
    assert skipped > 0 or "resumed part-way: " in resumed.stdout, resumed.stdout
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


def test_sigterm_exits_143(aws, dynamo_proxy, unique_name, tmp_path):
    root = tmp_path / "archive"
    write_archive(root, MANY_SMALL_PARTS)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    process = start([str(root), str(storage), str(resolver), "--concurrency", "2", "--writers", "2"], env)
    wait_for(lambda: dynamo_proxy.items_stored > 0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "interrupted by SIGTERM" in err


def test_an_8_mb_line_is_one_bad_row_and_the_lines_after_it_are_written(aws, unique_name, tmp_path):
    run_dir = tmp_path / "archive" / "run=2026-11-20-10-00-00"
    run_dir.mkdir(parents=True)
    lines = (
        [event_line(i) for i in range(20)]
        + ["x" * (8 * 1024 * 1024)]
        + [event_line(i) for i in range(20, 45)]
    )
    (run_dir / "part-00000.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 1))
    storage, resolver = write_configs(tmp_path, unique_name)
    bad_rows = tmp_path / "bad.jsonl"

    tally = run_job(str(tmp_path / "archive"), storage, resolver, bad_rows=bad_rows)

    assert dict(tally.bad_rows_by_reason) == {"line_too_long": 1}
    assert len(table_items(aws.boto3_client("dynamodb"), unique_name)) == 45
    records = [orjson.loads(line) for line in bad_rows.read_bytes().splitlines()]
    assert len(records) == 1
    assert records[0]["line"] == 21 and records[0]["reason"] == "line_too_long"
    assert records[0]["head"] == "x" * 1024
    assert records[0]["object"].endswith("part-00000.gz")


def test_bad_rows_file_and_limit(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(
        root, SampleSpec(runs=1, parts_per_run=2, events_per_part=50, now=NOW, bad_lines_per_part=4)
    )
    storage, resolver = write_configs(tmp_path, unique_name)
    bad_rows = tmp_path / "bad.jsonl"
    tally = run_job(str(root), storage, resolver, bad_rows=bad_rows)
    records = [orjson.loads(line) for line in bad_rows.read_bytes().splitlines()]
    assert len(records) == sum(expected.bad_rows.values()) == tally.bad_rows
    assert {r["reason"] for r in records} == set(expected.bad_rows)
    assert all(set(r) == {"object", "line", "reason", "head"} and len(r["head"]) <= 1024 for r in records)

    limited = subprocess.run(
        [
            sys.executable,
            "-m",
            "populator",
            "run",
            str(root),
            str(storage),
            str(resolver),
            "--max-bad-rows",
            "2",
            "--restart",
        ],
        env=aws.env,
        capture_output=True,
        text=True,
    )
    assert limited.returncode == 1, limited.stderr
    assert "more than 2 bad rows" in limited.stderr
    assert "Traceback" not in limited.stderr


def test_a_table_that_throttles_loses_nothing(aws, dynamo_proxy, monkeypatch, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=1, parts_per_run=3, events_per_part=400, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    create_table(tmp_path, storage, resolver)
    dynamo_proxy.limit_capacity(300)  # items per second, a second's worth of burst: well below any pace

    tally = run_job(
        str(root),
        storage,
        resolver,
        writers=8,
        retry=RetryPolicy(attempts=40, base_delay=0.01, max_delay=0.5),
    )

    assert not tally.failures
    assert tally.throttle_events > 0
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


# A bug in the parser, on the lines of one object only: `populator` as it is, but for this.
FAULTY_PARSER_RUN = """
import sys
import populator.job.pipeline as pipeline

marker = sys.argv.pop(1).encode()
real = pipeline.triage


def triage(lines, *args, **kwargs):
    if any(isinstance(line, bytes) and marker in line for line in lines):
        raise ValueError("year 0 is out of range")
    return real(lines, *args, **kwargs)


pipeline.triage = triage
from populator.commands.cli import main

main()
"""


@pytest.mark.parametrize("processes", ["1", "2"])
def test_an_unexpected_error_in_one_object_fails_it_and_the_run_goes_on(
    aws, unique_name, tmp_path, processes
):
    root = tmp_path / "archive"
    objects = [root / "run=2026-11-20-10-00-00" / f"part-{i:05d}" for i in range(4)]
    objects[0].parent.mkdir(parents=True)
    for i, path in enumerate(objects):
        path.write_text("".join(event_line(i * 100 + n) + "\n" for n in range(20)))
    doomed = objects[2]
    marker = event_key(205)[0]
    storage, resolver = write_configs(tmp_path, unique_name)
    journal = tmp_path / "journal.jsonl"
    args = [str(root), str(storage), str(resolver), "--on-demand", "--checkpoint", str(journal)]

    result = subprocess.run(
        [sys.executable, "-c", FAULTY_PARSER_RUN, marker, "run", *args, "--processes", processes],
        env=aws.env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"FAILED {doomed}: internal error while reading it: ValueError: year 0 is out of range" in (
        result.stdout
    )
    assert "objects: 3 done of 4, 1 failed" in result.stdout
    written = set(table_items(aws.boto3_client("dynamodb"), unique_name))
    others = {event_key(i * 100 + n) for i in (0, 1, 3) for n in range(20)}
    assert others <= written and not {event_key(200 + n) for n in range(20)} & written
    recorded = {orjson.loads(line).get("key") for line in journal.read_text().splitlines()}
    assert str(doomed) not in recorded
    assert {str(path) for path in objects} - {str(doomed)} <= recorded

    again = run_job(str(root), storage, resolver, checkpoint=journal)  # the bug fixed: only it is read
    assert not again.failures and again.objects_done == 1 and again.objects_skipped == 3
    assert others | {event_key(200 + n) for n in range(20)} <= set(
        table_items(aws.boto3_client("dynamodb"), unique_name)
    )
