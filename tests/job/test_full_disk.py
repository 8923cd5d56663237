"""Full disks and other local I/O errors: the checkpoint, `--bad-rows`, `--report`, the log under
`--log-path` (issue 22).

Each ends the run at once with one paragraph naming the path and the space left on its
filesystem: exit 1 once writes to the table began, 2 before, never 3 ("a bug"). The journal keeps
every record it acknowledged; a disk error is never taken for a broken read. Every case runs with
ENOSPC injected (`DiskFull`) or from /dev/full (always), and the checkpoint and the log also on a
real full tmpfs where this machine lets a test mount one.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from populator.commands.build import build_job
from populator.commands.execute import execute
from populator.commands.outputs import RunOutputs
from populator.errors import EXIT_FAILED, EXIT_USAGE, LocalWriteError, exit_code_for
from populator.job.checkpoint import GROUP_SECONDS, FinishedObject, JobIdentity, Journal
from populator.observe.logstore import LOG_NAME, parse_log_path
from populator.samples.archive import SampleSpec, write_archive
from populator.source.archive import ArchiveObject
from tests.support.backfill_helpers import NOW, run_populator, table_items, write_configs
from tests.support.full_disk import DiskFull, deadline, fill, tiny_tmpfs

BUDGET = 60  # seconds: a run that hangs fails here instead
SPEC = SampleSpec(runs=2, parts_per_run=10, events_per_part=150, now=NOW)
IDENTITY = JobIdentity(archive="s3://acme/archive/", table="manifest", since=None, mode="batch")


def finished(key: str) -> FinishedObject:
    return FinishedObject(key=key, etag="e1", size=10, lines=3, items=2, bad_rows=1)


def execute_here(job: Any, tmp_path: Path, **outputs: Any) -> tuple[int, dict[str, Any]]:
    """The job as `populator run` runs it, in this process: its exit code and its report."""
    report = outputs.pop("report", tmp_path / "report.json")
    quiet = RunOutputs(quiet=True, report=report, **outputs)
    with deadline(BUDGET):
        code = execute(job, Console(file=io.StringIO()), Console(file=io.StringIO()), outputs=quiet)
    return code, orjson.loads(report.read_bytes()) if report.exists() else {}


def populator(*args: str, env: dict[str, str]) -> Any:
    return run_populator("run", *args, env=env, timeout=BUDGET)


def quiet_loop(messages: list[str]) -> None:
    """Collect what the event loop would print as "Exception in callback" instead."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: messages.append(context["message"]))


# ----------------------------------------------------------------------------- the exit code


def test_a_local_write_error_is_exit_2_before_writes_began_and_1_after():
    error = LocalWriteError("the checkpoint x could not be written: No space left on device.")
    assert exit_code_for(error) == EXIT_USAGE
    assert exit_code_for(error, writes_began=True) == EXIT_FAILED


def test_the_message_names_the_path_and_the_space_left(tmp_path):
    error = LocalWriteError.of(
        "the checkpoint", tmp_path / "j.jsonl", OSError(28, "No space left on device"), "it resumes."
    )
    text = str(error)
    assert text.startswith(f"the checkpoint {tmp_path / 'j.jsonl'} could not be written: No space left")
    assert " free on /" in text and "Free space on /" in text and text.endswith("it resumes.")


# ----------------------------------------------------------------------------- the checkpoint


async def test_a_group_commit_failing_on_its_timer_keeps_its_records_and_says_so(tmp_path, monkeypatch):
    """Before: the group was detached before its write failed (its records lost), and the error
    went to the event loop ("Exception in callback") instead of ending the run."""
    printed: list[str] = []
    quiet_loop(printed)
    path = tmp_path / "j.jsonl"
    journal = Journal.open(path, IDENTITY)
    header = path.read_bytes()
    failures: list[BaseException] = []
    journal.on_failure = failures.append
    disk = DiskFull(monkeypatch, path, room=100)  # a short write, then ENOSPC

    journal.record(finished("a"))  # acknowledged: committed with its group, within GROUP_SECONDS
    journal.record(finished("b"))
    await asyncio.sleep(GROUP_SECONDS * 3)

    assert printed == []
    assert len(failures) == 1 and isinstance(failures[0], LocalWriteError)
    assert str(failures[0]).startswith(f"the checkpoint {path} could not be written: No space left")
    assert path.read_bytes() == header  # the short write undone: no torn record in the middle
    disk.free()
    journal.close()  # what waits is committed
    again = Journal.open(path, IDENTITY)
    assert again.is_finished(ArchiveObject(key="a", size=10, etag="e1", run="r"))
    assert again.finished_count == 2
    again.close()


def test_a_full_disk_under_the_checkpoint_ends_the_run_with_exit_1_then_it_resumes(
    aws, unique_name, tmp_path, monkeypatch, capsys
):
    """Before: "Exception in callback" tracebacks, and the run ended as a bug (exit 3), or even
    exit 0 with the records of the groups that failed on their timer lost."""
    root = tmp_path / "archive"
    expected = write_archive(root, SPEC)
    storage, resolver = write_configs(tmp_path, unique_name)
    journal = tmp_path / "journal.jsonl"
    disk = DiskFull(monkeypatch, journal, room=2048)
    job = build_job(str(root), storage, resolver, on_demand=True, checkpoint=journal, now=NOW.timestamp())

    code, report = execute_here(job, tmp_path)

    assert code == 1, report["error"]
    assert report["error"].startswith(f"the checkpoint {journal} could not be written: No space left")
    assert "free on /" in report["error"] and "run the same command" in report["error"]
    logged = capsys.readouterr().err
    assert "Exception in callback" not in logged and "Traceback" not in logged
    disk.free()
    code, report = execute_here(job, tmp_path)
    assert code == 0, report["error"]
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_real_full_tmpfs_under_the_checkpoint(aws, unique_name, tmp_path, processes):
    root = tmp_path / "archive"
    expected = write_archive(root, SPEC)
    storage, resolver = write_configs(tmp_path, unique_name)
    with tiny_tmpfs(tmp_path / "small") as small:
        if small is None:
            pytest.skip("cannot mount a tmpfs here; the ENOSPC-injected test above covers it")
        filler = fill(small, leave=4096)
        journal = small / "journal.jsonl"
        args = [str(root), str(storage), str(resolver), "--on-demand", "--checkpoint", str(journal)]
        args += ["--processes", processes]

        result = populator(*args, env=aws.env)

        assert result.returncode == 1, result.stderr
        assert f"the checkpoint {journal} could not be written: No space left on device" in result.stderr
        assert f"free on {small}" in result.stderr
        assert "Exception in callback" not in result.stderr and "Traceback" not in result.stderr
        filler.unlink()
        again = populator(*args, env=aws.env)
        assert again.returncode == 0, again.stderr
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


# ----------------------------------------------------------------------------- --bad-rows


def test_bad_rows_on_a_full_disk_are_not_taken_for_a_broken_read(aws, unique_name, tmp_path):
    """/dev/full refuses every write with ENOSPC. Before: OSError was taken for a read that broke
    off, every object was read five times, then exit 3."""
    root = tmp_path / "archive"
    write_archive(root, SPEC)
    storage, resolver = write_configs(tmp_path, unique_name)
    args = [str(root), str(storage), str(resolver), "--dry-run", "--processes", "1"]

    result = populator(*args, "--bad-rows", "/dev/full", env=aws.env)

    assert result.returncode == 2, result.stderr  # a dry run: nothing was written
    assert "--bad-rows /dev/full could not be written: No space left on device" in result.stderr
    assert "broke off" not in result.stderr and "object failed" not in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_bad_rows_filling_the_disk_mid_run_end_it_exit_1_once_items_were_written(
    aws, unique_name, tmp_path, monkeypatch
):
    root = tmp_path / "archive"
    write_archive(root, SPEC)
    storage, resolver = write_configs(tmp_path, unique_name)
    bad_rows = tmp_path / "bad.jsonl"
    bad_rows.touch()
    disk = DiskFull(monkeypatch, bad_rows, room=3000)
    job = build_job(
        str(root), storage, resolver, on_demand=True, bad_rows=bad_rows, concurrency=2, now=NOW.timestamp()
    )

    code, report = execute_here(job, tmp_path)

    assert disk.refused
    assert report["error"].startswith(f"--bad-rows {bad_rows} could not be written: No space left")
    assert code == (EXIT_FAILED if report["items_written"] else EXIT_USAGE), report["error"]
    assert report["object_restarts"] == 0 and report["objects_failed"] == 0
    lines = bad_rows.read_bytes().splitlines()
    assert lines and all(orjson.loads(line)["reason"] for line in lines)  # whole records only


# ----------------------------------------------------------------------------- --report, --log-path


def test_a_report_that_cannot_be_written_is_exit_1_after_a_run_that_wrote(aws, unique_name, tmp_path):
    """Before: an error line, then exit 0 as if the report were there."""
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=2, events_per_part=50, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)

    args = [str(root), str(storage), str(resolver), "--on-demand"]

    result = populator(*args, "--report", "/dev/full", env=aws.env)

    assert result.returncode == 1, result.stderr
    assert "--report /dev/full could not be written: No space left on device" in result.stderr
    assert " free on /dev" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_a_log_file_that_cannot_be_written_ends_the_run(aws, unique_name, tmp_path, monkeypatch, capsys):
    """The run's log under --log-path is /dev/full (ENOSPC from its first line). Before: a
    "--- Logging error ---" traceback for every record, and a run that went on without its log."""
    import populator.commands.watch as watch

    root = tmp_path / "archive"
    write_archive(root, SPEC)
    storage, resolver = write_configs(tmp_path, unique_name)
    logs = tmp_path / "logs"
    (logs / "the-run").mkdir(parents=True)
    (logs / "the-run" / LOG_NAME).symlink_to("/dev/full")
    monkeypatch.setattr(watch, "folder_name", lambda table, started: "the-run")
    job = build_job(str(root), storage, resolver, on_demand=True, now=NOW.timestamp())

    code, report = execute_here(job, tmp_path, log_path=parse_log_path(str(logs)))

    assert code == 2, report  # before anything was written
    assert report["error"].startswith(f"the log {logs / 'the-run' / LOG_NAME} could not be written: No space")
    assert report["items_written"] == 0
    assert "Logging error" not in capsys.readouterr().err


def test_a_log_path_on_a_real_full_tmpfs_ends_the_run(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    write_archive(root, SPEC)
    storage, resolver = write_configs(tmp_path, unique_name)
    report = tmp_path / "report.json"
    with tiny_tmpfs(tmp_path / "small") as small:
        if small is None:
            pytest.skip("cannot mount a tmpfs here; the /dev/full test above covers it")
        fill(small, leave=4096)
        args = [str(root), str(storage), str(resolver), "--on-demand", "--log-level", "debug"]

        result = populator(*args, "--log-path", str(small), "--report", str(report), env=aws.env)

    assert result.returncode in (1, 2), result.stderr
    written = orjson.loads(report.read_bytes())
    assert result.returncode == (1 if written["items_written"] else 2)
    assert "could not be written: No space left on device" in result.stderr
    assert f"free on {small}" in result.stderr
    assert "Logging error" not in result.stderr and "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
