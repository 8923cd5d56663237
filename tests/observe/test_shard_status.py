"""A run's status snapshot: what it holds, where it is kept, how it is published (and never harms the run)."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime

import orjson
import pytest

from populator.observe import logs
from populator.observe.hub import (
    Hub,
    ItemsAcknowledged,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
)
from populator.observe.logstore import LogDestination
from populator.observe.report import Tally
from populator.observe.shard_status import (
    FAILURES_NAMED,
    FINISHED,
    RUNNING,
    JobFacts,
    ShardStatus,
    StatusSource,
    state_for_exit,
    status_key,
    with_shard,
)
from populator.observe.status_feed import StatusFeed
from populator.observe.status_store import StatusWriter, read_statuses
from populator.source.archive import ArchiveObject
from populator.source.shard import Shard

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SECRET = "wJalrXUtnFEMI-SECRET-STATUS-0f3c"
RUN = "run=2026-11-20-10-00-00"
JOB = JobFacts(
    "manifest-0123456789ab", "s3://acme/enriched/", "manifest", "2026-11-01", "batch", False, Shard(2, 3)
)
COMMAND = "populator run s3://acme/enriched/ d.json r.json --shard auto/3 --log-path s3://acme/logs/"


def obj(index: int) -> ArchiveObject:
    return ArchiveObject(f"enriched/{RUN}/part-{index:05d}.gz", 1000, f"e{index}", RUN)


def half_done() -> Tally:
    tally = Tally()
    hub = Hub([tally])
    for index in range(10):
        hub.publish(ObjectListed(obj(index)))
    hub.publish(ListingDone(10, 10_000))
    hub.publish(ItemsAcknowledged(obj(0), 300, 0, units_reported=300.0))
    hub.publish(ObjectFinished(obj(0)))
    for index in range(1, 8):
        hub.publish(ObjectFailedEvent(obj(index), f"read failed ({SECRET})"))
    return tally


def source(tally: Tally, job: JobFacts = JOB, command: str | None = COMMAND) -> StatusSource:
    return StatusSource(tally, job, started=NOW, command=command, host="worker-7", pid=4242)


def test_a_snapshot_names_the_job_the_shard_the_figures_and_the_command_with_the_shard_made_explicit():
    status = source(half_done()).snapshot(now=NOW)
    assert (status.job, status.table, status.since, status.shard_label) == (
        JOB.key,
        "manifest",
        "2026-11-01",
        "2/3",
    )
    assert (status.host, status.pid, status.state, status.exit_code) == ("worker-7", 4242, RUNNING, None)
    assert (status.objects_total, status.objects_done, status.objects_failed) == (10, 1, 7)
    assert (
        status.listing_done and status.items_done == 300 and status.written_at == "2026-11-27T12:00:00.000Z"
    )
    assert len(status.failures) == FAILURES_NAMED  # the first few named, all counted
    # auto/3 means nothing on another machine: the command to go on names shard 2/3.
    assert status.command == COMMAND.replace("auto/3", "2/3")
    assert status_key(JOB.key, JOB.shard) == "status/manifest-0123456789ab/shard-2-of-3.json"
    assert status_key(JOB.key, None) == "status/manifest-0123456789ab/unsharded.json"


def test_the_outcome_follows_the_exit_code_and_a_finished_run_has_nothing_to_go_on_with():
    assert [state_for_exit(code) for code in (0, 1, 2, 3, 4, 5, 130, 143)] == [
        "finished", "failed", "failed", "failed", "stopped", "failed", "interrupted", "interrupted",
    ]  # fmt: skip
    tally = half_done()
    assert source(tally).snapshot(exit_code=0).command is None
    failed = source(tally).snapshot(exit_code=1, error="boom")
    assert failed.state == "failed" and failed.exit_code == 1 and failed.error == "boom" and failed.command


def test_a_snapshot_reads_back_whole_and_keeps_no_secret():
    logs.add_secret(SECRET)
    status = source(half_done()).snapshot(now=NOW)
    data = status.to_bytes()
    assert SECRET.encode() not in data and b"********" in data
    back = ShardStatus.from_bytes(data)
    assert back.as_dict() == orjson.loads(data)
    assert back.failures[0] == (obj(1).key, "read failed (********)")


def test_reading_tolerates_keys_of_later_formats_and_refuses_what_is_no_snapshot():
    raw = orjson.loads(source(half_done()).snapshot(now=NOW).to_bytes())
    later = ShardStatus.from_dict({**raw, "format": 2, "phase": "importing"})
    assert later.extra == {"phase": "importing"} and later.format == 2
    wrong = (
        {"written_at": "yesterday"},
        {"objects_done": "4"},
        {"cost_usd": None},
        {"dry_run": 1},
        {"pid": True},
        {"shard_index": 3},  # of 3
        {"shard_count": 10**9},
        {"shard_count": None},
    )
    for bad in (b"{", b"[]", orjson.dumps({"job": "x"}), *(orjson.dumps({**raw, **w}) for w in wrong)):
        with pytest.raises(ValueError):
            ShardStatus.from_bytes(bad)


def test_with_shard_rewrites_either_spelling_and_leaves_other_commands_alone():
    assert with_shard("populator run a s r --shard=auto/4", Shard(3, 4)) == "populator run a s r --shard=3/4"
    assert (
        with_shard("populator run 'a b' s r --shard 0/4", Shard(1, 4))
        == "populator run 'a b' s r --shard 1/4"
    )
    assert with_shard("populator run a s r", Shard(1, 4)) == "populator run a s r"


def test_the_feed_publishes_at_the_start_as_it_goes_and_the_outcome_at_the_end(tmp_path):
    destination = LogDestination(None, str(tmp_path / "logs"))
    tally = half_done()
    src = source(tally)
    path = tmp_path / "logs" / src.key
    with StatusFeed(src, StatusWriter(destination, src.key), interval=0.05) as feed:
        deadline = datetime.now(UTC).timestamp() + 10
        while feed.published < 3:
            assert datetime.now(UTC).timestamp() < deadline
            threading.Event().wait(0.01)
        assert ShardStatus.from_bytes(path.read_bytes()).state == RUNNING
        tally.items_written += 200
        feed.finish(0)
    last = ShardStatus.from_bytes(path.read_bytes())
    assert last.state == FINISHED and last.exit_code == 0 and last.items_done == 500
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # written aside, then renamed
    [read] = read_statuses(destination).snapshots
    assert read == last


class Failing(StatusWriter):
    def __init__(self) -> None:
        super().__init__(LogDestination("bucket", "logs/"), "status/j/unsharded.json")
        self.tries = 0

    def put(self, data: bytes) -> None:
        self.tries += 1
        raise OSError(28, "No space left on device")


def test_a_feed_that_cannot_write_says_so_once_and_the_run_goes_on(caplog):
    writer = Failing()
    caplog.set_level(logging.DEBUG, logger="populator.run")
    with StatusFeed(source(half_done()), writer, interval=0.02) as feed:
        while writer.tries < 4:
            threading.Event().wait(0.01)
        feed.finish(1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warnings) == 1
        and "cannot publish the status snapshot to s3://bucket/logs/status/j" in warnings[0].message
    )
    assert "No space left on device" in warnings[0].message
    assert feed.published == 0 and writer.tries >= 5  # every snapshot tried, the outcome too


class Slow(StatusWriter):
    """A write that takes a while, and says when it starts and ends."""

    def __init__(self, said: list[str], seconds: float = 0.3) -> None:
        super().__init__(LogDestination(None, "unused"), "status/j/unsharded.json")
        self.said = said
        self.seconds = seconds

    def put(self, data: bytes) -> None:
        self.said.append("write")
        time.sleep(self.seconds)
        self.said.append("written")


def test_a_fork_waits_for_the_write_in_flight():
    """A worker forked while the feed's thread is inside botocore would inherit its locks, held by
    a thread it does not have, and hang (seen with --processes 2 and --log-path s3://)."""
    said: list[str] = []
    with StatusFeed(source(half_done()), Slow(said), interval=60) as feed:
        while not said:
            time.sleep(0.001)
        child = os.fork()
        if child == 0:
            os._exit(0)
        said.append("forked")
        os.waitpid(child, 0)
        feed.finish(0)
    assert said[:3] == ["write", "written", "forked"]


def test_a_run_that_forks_its_workers_writes_its_first_snapshot_once_they_are_forked():
    said: list[str] = []
    with StatusFeed(source(half_done()), Slow(said, 0), interval=60, forks=1) as feed:
        time.sleep(0.5)
        assert said == []  # no write in flight when the worker is forked
        child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)
        deadline = time.monotonic() + 10
        while not said:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        feed.finish(0)
    assert said == ["write", "written"] * 2  # the first snapshot, then the outcome
