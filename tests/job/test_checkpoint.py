"""checkpoint: the journal's format, crash tolerance and identity checks."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import orjson
import pytest

from populator.errors import UsageError
from populator.job.checkpoint import (
    GROUP_RECORDS,
    GROUP_SECONDS,
    FinishedObject,
    JobIdentity,
    Journal,
    default_path,
)
from populator.source.archive import ArchiveObject

IDENTITY = JobIdentity(archive="s3://acme/archive/", table="manifest", since=None, mode="batch")


def obj(key: str, etag: str = "e1") -> ArchiveObject:
    return ArchiveObject(key=key, size=10, etag=etag, run="run=2026-01-01-00-00-00")


def finished(key: str, etag: str = "e1") -> FinishedObject:
    return FinishedObject(key=key, etag=etag, size=10, lines=3, items=2, bad_rows=1)


def test_a_new_journal_has_a_header_then_one_line_per_finished_object(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal.open(path, IDENTITY)
    journal.record(finished("a"))
    journal.record(finished("b"))
    journal.close()
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["identity"] == IDENTITY.as_dict()
    assert [line["key"] for line in lines[1:]] == ["a", "b"]
    assert lines[1] == {
        "type": "object",
        "key": "a",
        "etag": "e1",
        "size": 10,
        "lines": 3,
        "items": 2,
        "bad_rows": 1,
    }


def test_reopening_skips_finished_objects_with_the_same_etag_only(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal.open(path, IDENTITY)
    journal.record(finished("a"))
    journal.close()
    again = Journal.open(path, IDENTITY)
    assert again.resumed
    assert again.is_finished(obj("a"))
    assert not again.is_finished(obj("a", etag="changed"))
    assert not again.is_finished(obj("b"))


def test_a_torn_last_line_is_ignored_and_appending_goes_on(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal.open(path, IDENTITY)
    journal.record(finished("a"))
    journal.close()
    with open(path, "ab") as handle:
        handle.write(b'{"type": "object", "key": "b", "et')  # killed mid-write
    again = Journal.open(path, IDENTITY)
    assert again.is_finished(obj("a")) and not again.is_finished(obj("b"))
    again.record(finished("c"))
    again.close()
    third = Journal.open(path, IDENTITY)
    assert third.is_finished(obj("c")) and third.finished_count == 2


def test_another_jobs_journal_is_refused_with_the_difference(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal.open(path, IDENTITY).close()
    other = JobIdentity(
        archive="s3://acme/archive/", table="other-table", since="2026-06-01-00-00-00", mode="batch"
    )
    with pytest.raises(UsageError) as caught:
        Journal.open(path, other)
    message = str(caught.value)
    assert "table: journal has 'manifest', this command has 'other-table'" in message
    assert "since" in message and "--restart" in message


def test_restart_starts_over(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal.open(path, IDENTITY)
    journal.record(finished("a"))
    journal.close()
    other = JobIdentity(archive="s3://acme/archive/", table="manifest", since=None, mode="conditional")
    fresh = Journal.open(path, other, restart=True)
    assert not fresh.is_finished(obj("a"))
    fresh.close()
    assert orjson.loads(path.read_bytes().splitlines()[0])["identity"]["mode"] == "conditional"


def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text("hello\n")
    with pytest.raises(UsageError, match="not a populator journal"):
        Journal.open(path, IDENTITY)


def test_default_path_depends_on_the_job_identity(tmp_path):
    first = default_path(IDENTITY)
    assert first.parent.name == ".populator" and first.name.startswith("manifest-")
    assert default_path(IDENTITY) == first
    conditional = JobIdentity(IDENTITY.archive, IDENTITY.table, IDENTITY.since, "conditional")
    sharded = JobIdentity(IDENTITY.archive, IDENTITY.table, IDENTITY.since, "batch", shard="1/3")
    assert len({first, default_path(conditional), default_path(sharded)}) == 3


def test_records_are_committed_in_groups_within_a_tenth_of_a_second(tmp_path):
    path = tmp_path / "j.jsonl"

    async def main():
        journal = Journal.open(path, IDENTITY)
        for n in range(10):
            journal.record(finished(f"k{n}"))
        committed_at_once = len(path.read_bytes().splitlines()) - 1
        await asyncio.sleep(GROUP_SECONDS * 3)
        committed_later = len(path.read_bytes().splitlines()) - 1
        for n in range(GROUP_RECORDS):
            journal.record(finished(f"g{n}"))
        committed_full_group = len(path.read_bytes().splitlines()) - 1
        await journal.aclose()
        return committed_at_once, committed_later, committed_full_group

    at_once, later, full = asyncio.run(main())
    assert (at_once, later) == (0, 10)  # one write and fsync for the ten, a moment later
    assert full == 10 + GROUP_RECORDS  # a full group goes at once


def test_kill_9_between_groups_loses_only_the_group_not_yet_committed(tmp_path):
    """A real SIGKILL after one full group and part of the next."""
    path = tmp_path / "j.jsonl"
    script = f"""
import asyncio, os, signal
from pathlib import Path
from populator.job.checkpoint import FinishedObject, JobIdentity, Journal, GROUP_RECORDS
identity = JobIdentity(**{IDENTITY.as_dict()!r})

async def main():
    journal = Journal.open(Path({str(path)!r}), identity)
    for n in range(GROUP_RECORDS + 5):
        journal.record(FinishedObject(f"k{{n}}", "e1", 10, 3, 2, 0))
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr
    again = Journal.open(path, IDENTITY)
    assert again.finished_count == GROUP_RECORDS
    assert again.is_finished(obj(f"k{GROUP_RECORDS - 1}"))
    assert not again.is_finished(obj(f"k{GROUP_RECORDS}"))  # the uncommitted five are read again
    again.close()


def test_a_journal_written_by_the_previous_release_still_resumes(aws, tmp_path):
    """tests/job/fixtures/journal-v1.jsonl, as version 1 wrote it (no prefixes): its two
    finished objects are skipped, the other two written, and prefixes are appended after it."""
    import os
    import shutil
    from pathlib import Path

    from populator.events import ManifestItem, parse_line
    from populator.samples.archive import SampleSpec, write_archive
    from tests.support.backfill_helpers import NOW, run_job, table_items, write_configs

    spec = SampleSpec(runs=1, parts_per_run=4, events_per_part=50, formats=("plain",), now=NOW, seed=7)
    objects = sorted(write_archive(Path("archive"), spec).objects)  # the fixture's archive, byte for byte
    for index, relative in enumerate(objects):  # and the ETags it recorded (mtime-size)
        stamp = 1_780_000_000_000_000_000 + index
        os.utime(Path("archive") / relative, ns=(stamp, stamp))
    journal = tmp_path / "journal.jsonl"
    shutil.copy(Path(__file__).parent / "fixtures" / "journal-v1.jsonl", journal)
    storage, resolver = write_configs(tmp_path, "journal-v1-table")

    tally = run_job("archive", storage, resolver, checkpoint=journal, on_demand=True)

    assert tally.objects_skipped == 2 and tally.objects_done == 2 and not tally.failures
    written = {
        (item.event_id, item.fingerprint)
        for relative in objects[2:]
        for line in (Path("archive") / relative).read_bytes().splitlines()
        if isinstance(item := parse_line(line), ManifestItem)
    }
    assert set(table_items(aws.boto3_client("dynamodb"), "journal-v1-table")) == written
    assert journal.read_bytes().startswith(b'{"type":"header","version":1,')
