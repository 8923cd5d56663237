"""The import's staging journal: what a rerun finds after any crash, and whose journal it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from populator.errors import LocalWriteError, UsageError
from populator.job.checkpoint import JobIdentity, Journal
from populator.job.staging_journal import StagingJournal, finished, journal_path
from populator.sink.staging import HeldObject, StagedObject
from populator.source.archive import ArchiveObject

JOB = {"identity": {"table": "t", "mode": "import"}, "staging": "s3://b/p/", "job_id": "t-0123"}
IDENTITY = JobIdentity("s3://a/", "t", None, "import")


def staged(key: str, *held: str) -> StagedObject:
    return StagedObject(key, 10, 100, 5, tuple(HeldObject(h, f"e-{h}", 7, 9, 5, 1) for h in held), 2)


def test_it_sits_next_to_the_checkpoint():
    assert journal_path(Path(".populator/t-0123.jsonl")) == Path(".populator/t-0123.staging.jsonl")


def test_a_rerun_finds_every_record_even_after_a_torn_last_line(tmp_path):
    path = tmp_path / "j.staging.jsonl"
    journal = StagingJournal.open(path, JOB)
    nonce = journal.state.nonce
    journal.upload_started("data/1.json.gz", "u1")
    journal.upload_started("data/2.json.gz", "u2")
    journal.staged(staged("data/1.json.gz", "run=1/a", "run=1/b"))
    journal.upload_started("data/3.json.gz", "u3")
    journal.aborted("data/3.json.gz", "u3")
    journal.import_requested("populator-token")
    journal.close()
    with open(path, "ab") as handle:
        handle.write(b'{"type":"import","arn":"arn:aws:dyn')  # a crash in the middle of a line

    again = StagingJournal.open(path, JOB)
    state = again.state
    assert state.nonce == nonce  # so the ClientToken is the same
    assert state.uploads == {"data/2.json.gz": "u2"}  # the one to abort
    assert list(state.staged) == ["data/1.json.gz"] and state.staged["data/1.json.gz"] == staged(
        "data/1.json.gz", "run=1/a", "run=1/b"
    )
    assert (state.items, state.bytes, state.compressed_bytes, state.duplicates) == (5, 100, 10, 2)
    assert state.client_token == "populator-token" and state.import_arn is None
    again.import_started("arn:aws:dynamodb:us-east-1:1:table/t/import/1")
    again.close()
    assert StagingJournal.open(path, JOB).state.import_arn == "arn:aws:dynamodb:us-east-1:1:table/t/import/1"


def test_another_imports_journal_is_refused_and_restart_starts_afresh(tmp_path):
    path = tmp_path / "j.staging.jsonl"
    journal = StagingJournal.open(path, JOB)
    journal.staged(staged("data/1.json.gz", "a"))
    journal.close()
    with pytest.raises(UsageError, match=r"belongs to another import.*staging"):
        StagingJournal.open(path, {**JOB, "staging": "s3://elsewhere/"})
    fresh = StagingJournal.open(path, JOB, restart=True)
    assert fresh.state.staged == {}


def test_reconcile_finishes_in_the_checkpoint_what_a_crash_left_only_here(tmp_path):
    checkpoint = Journal.open(tmp_path / "c.jsonl", IDENTITY)
    journal = StagingJournal.open(tmp_path / "c.staging.jsonl", JOB)
    journal.staged(staged("data/1.json.gz", "a", "b"))
    checkpoint.record(finished(HeldObject("a", "e-a", 7, 9, 5, 1)))  # "b" was not recorded yet
    checkpoint.close()
    journal.close()

    checkpoint = Journal.open(tmp_path / "c.jsonl", IDENTITY)
    journal = StagingJournal.open(tmp_path / "c.staging.jsonl", JOB)
    assert journal.reconcile(checkpoint) == {("b", "e-b")}
    checkpoint.close()
    reopened = Journal.open(tmp_path / "c.jsonl", IDENTITY)
    assert reopened.is_finished(ArchiveObject("b", 7, "e-b", "run=1"))
    assert reopened.is_finished(ArchiveObject("a", 7, "e-a", "run=1"))
    reopened.close()


def test_a_full_disk_is_told_with_the_path_and_the_journal_keeps_what_it_acknowledged(tmp_path, monkeypatch):
    """Before: a plain OSError ("a bug", exit 3), and a short write could leave a torn record in
    the middle of the journal for the next record to follow."""
    from tests.support.full_disk import DiskFull

    path = tmp_path / "j.staging.jsonl"
    journal = StagingJournal.open(path, JOB)
    journal.upload_started("data/1.json.gz", "u1")
    journal.staged(staged("data/1.json.gz", "run=1/a"))
    acknowledged = path.read_bytes()
    disk = DiskFull(monkeypatch, path, room=20)  # a short write, then ENOSPC

    with pytest.raises(LocalWriteError) as failed:
        journal.staged(staged("data/2.json.gz", "run=1/b"))
    message = str(failed.value)
    assert message.startswith(f"the staging journal {path} could not be written: No space left")
    assert " free on " in message and "run the same command" in message
    assert path.read_bytes() == acknowledged  # the short write undone

    disk.free()
    journal.upload_started("data/3.json.gz", "u3")  # space back: the journal goes on whole
    journal.close()
    state = StagingJournal.open(path, JOB).state
    assert list(state.staged) == ["data/1.json.gz"] and state.uploads == {"data/3.json.gz": "u3"}
