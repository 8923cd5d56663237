"""--processes: several worker processes, one job (one table, one checkpoint, one summary)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from rich.console import Console

from populator.commands.build import build_job
from populator.commands.execute import execute
from populator.commands.outputs import RunOutputs
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, table_items, write_configs
from tests.support.full_disk import DiskFull, deadline

ARCHIVE = SampleSpec(
    runs=2, parts_per_run=6, events_per_part=300, now=NOW, formats=("gz", "plain", "multimember")
)


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "populator", "run", *args, "--on-demand"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_writing(args: list[str], env: dict[str, str], proxy) -> subprocess.Popen[str]:
    """Start `populator run` and return once its first items reached the table."""
    process = subprocess.Popen(
        [sys.executable, "-m", "populator", "run", *args, "--on-demand"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while proxy.items_stored == 0:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    return process


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_two_processes_write_the_whole_manifest_once(aws, dynamo_proxy, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, ARCHIVE)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    journal = tmp_path / "journal.jsonl"
    bad_rows = tmp_path / "bad.jsonl"
    args = [str(root), str(storage), str(resolver), "--processes", "2", "--checkpoint", str(journal)]

    result = run([*args, "--bad-rows", str(bad_rows)], env)

    assert result.returncode == 0, result.stderr
    assert f"objects: {len(expected.objects)} done of {len(expected.objects)}, 0 failed" in result.stdout
    assert f"lines read: {expected.lines:,}" in result.stdout
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())
    records = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    finished = [r["key"] for r in records if r["type"] == "object"]
    assert sorted(finished) == sorted(str(root / key) for key in expected.objects)  # each once
    assert len(bad_rows.read_bytes().splitlines()) == sum(expected.bad_rows.values())
    # No object was written twice: the items stored are the items of each object, once.
    assert dynamo_proxy.items_stored == sum(r["items"] for r in records if r["type"] == "object")

    again = run(args, env)
    assert again.returncode == 0, again.stderr
    assert f"objects skipped (already done): {len(expected.objects)}" in again.stdout


def test_a_killed_worker_fails_only_its_objects_and_a_rerun_completes(
    aws, dynamo_proxy, unique_name, tmp_path
):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=1, parts_per_run=8, events_per_part=400, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    dynamo_proxy.limit_capacity(1500)  # slow enough that the workers are busy when one is killed
    args = [str(root), str(storage), str(resolver), "--processes", "2", "--concurrency", "2"]
    process = start_writing(args, env, dynamo_proxy)
    workers = children(process.pid)
    assert len(workers) >= 2
    os.kill(workers[0], signal.SIGKILL)
    out, err = process.communicate(timeout=120)

    assert process.returncode == 1, err
    assert "exited unexpectedly" in out
    failed = re.findall(r"^FAILED (\S+): worker process", out, flags=re.MULTILINE)
    assert 1 <= len(failed) <= 2  # the objects the killed worker held (--concurrency 2: one each)
    assert "Traceback" not in out + err

    dynamo_proxy.limit_capacity(None)
    again = run(args, env)
    assert again.returncode == 0, again.stderr
    assert f"objects skipped (already done): {len(expected.objects) - len(failed)}" in again.stdout
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


def test_an_access_denied_in_a_worker_stops_the_job_with_exit_2(aws, dynamo_proxy, unique_name, tmp_path):
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=4, events_per_part=100, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    dynamo_proxy.deny_operations = frozenset({"BatchWriteItem"})

    result = run([str(root), str(storage), str(resolver), "--processes", "2"], env)

    assert result.returncode == 2, result.stderr
    assert "AccessDeniedException" in result.stderr
    assert "dynamodb:BatchWriteItem" in result.stderr
    assert "the default AWS credential chain" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    time.sleep(0.5)  # a worker that outlived its parent would exit within its 0.1 s watch
    assert not processes_mentioning(str(root))  # no worker left behind


def test_sigint_stops_every_worker_and_the_resume_completes(aws, dynamo_proxy, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=2, parts_per_run=8, events_per_part=250, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    dynamo_proxy.limit_capacity(1500)
    args = [str(root), str(storage), str(resolver), "--processes", "2", "--concurrency", "2"]
    process = start_writing(args, env, dynamo_proxy)
    workers = children(process.pid)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)

    dynamo_proxy.limit_capacity(None)
    again = run(args, env)
    assert again.returncode == 0, again.stderr
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


# Issue 22: with worker processes, an exception in the parent's tasks (a subscriber of the events
# the collector republishes, the collector itself, the checkpoint's group-commit timer) left the
# run frozen at "(0/s now)" forever, or ended it as "a bug". Each ends it within seconds (a hang
# fails at the subprocess timeout), with its own message and exit code.
HANG_BUDGET = 60


def test_max_bad_rows_reached_with_worker_processes_ends_the_run_with_exit_1(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, ARCHIVE)
    assert sum(expected.bad_rows.values()) > 10
    storage, resolver = write_configs(tmp_path, unique_name)
    journal = tmp_path / "journal.jsonl"
    args = [str(root), str(storage), str(resolver), "--processes", "2", "--concurrency", "2"]
    args += ["--checkpoint", str(journal)]

    result = run([*args, "--max-bad-rows", "10"], aws.env, timeout=HANG_BUDGET)

    assert result.returncode == 1, result.stderr
    assert "more than 10 bad rows (--max-bad-rows); stopped." in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    again = run(args, aws.env, timeout=HANG_BUDGET)  # the limit raised: the rest of the job
    assert again.returncode == 0, again.stderr
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


def test_the_bad_rows_file_failing_with_worker_processes_ends_the_run_with_exit_2(aws, unique_name, tmp_path):
    """/dev/full: every write fails with ENOSPC, as on a full disk. A dry run: nothing written, exit 2."""
    root = tmp_path / "archive"
    write_archive(root, ARCHIVE)
    storage, resolver = write_configs(tmp_path, unique_name)
    args = [str(root), str(storage), str(resolver), "--processes", "2", "--concurrency", "2", "--dry-run"]

    result = run([*args, "--bad-rows", "/dev/full"], aws.env, timeout=HANG_BUDGET)

    assert result.returncode == 2, result.stderr
    assert "--bad-rows /dev/full could not be written: No space left on device" in result.stderr
    assert " free on /dev" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_the_checkpoint_failing_with_worker_processes_ends_the_run_with_exit_1(
    aws, unique_name, tmp_path, monkeypatch, capsys
):
    """In this process (its workers forked from it), the journal's disk full after 2 KB: its group
    commits fail, on the timer or when a group is full. With room again, the same job completes.
    (tests/job/test_full_disk.py runs it on a real full tmpfs where it can mount one.)"""
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=2, parts_per_run=12, events_per_part=100, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    journal = tmp_path / "journal.jsonl"
    disk = DiskFull(monkeypatch, journal, room=2048)
    job = build_job(
        str(root), storage, resolver, on_demand=True, checkpoint=journal, processes=2, now=NOW.timestamp()
    )
    report = tmp_path / "report.json"
    quiet = RunOutputs(quiet=True, report=report)

    with deadline(HANG_BUDGET):
        code = execute(job, Console(file=io.StringIO()), Console(file=io.StringIO()), outputs=quiet)

    error = orjson.loads(report.read_bytes())["error"]
    assert code == 1, error
    assert error.startswith(f"the checkpoint {journal} could not be written: No space left on device")
    assert disk.refused
    logged = capsys.readouterr().err
    assert "Exception in callback" not in logged and "Traceback" not in logged
    records = [orjson.loads(line) for line in journal.read_bytes().splitlines()]  # whole lines only
    assert records[0]["type"] == "header"
    disk.free()
    with deadline(HANG_BUDGET):
        again = execute(job, Console(file=io.StringIO()), Console(file=io.StringIO()), outputs=quiet)
    assert again == 0, orjson.loads(report.read_bytes())["error"]
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())
