"""pipeline: bounded stages, object completion, and clean cancellation (writers stubbed)."""

from __future__ import annotations

import asyncio
import random

import pytest

from populator.events import ManifestItem
from populator.job.pipeline import PipelineOptions, run_pipeline
from populator.observe.hub import Hub, ObjectFailedEvent, ObjectFinished
from populator.observe.report import Tally
from populator.samples.archive import SampleSpec, write_archive
from populator.sink.manifest import WriteFailed, WriteOutcome
from populator.sink.writes import BATCH_SIZE, KeyedObject
from populator.source.archive import parse_location
from tests.support.backfill_helpers import NOW


class RecordingWriter:
    """Acknowledges batches after a random short delay, remembering every item."""

    batch_size = BATCH_SIZE
    combines_objects = False

    def __init__(self) -> None:
        self.items: list[ManifestItem] = []
        self.batch_sizes: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def write(self, items: list[ManifestItem]) -> WriteOutcome:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(random.random() / 1000)
            self.items.extend(items)
            self.batch_sizes.append(len(items))
            return WriteOutcome(len(items), 0)
        finally:
            self.in_flight -= 1

    async def write_from(self, obj: KeyedObject, items: list[ManifestItem]) -> WriteOutcome:
        return await self.write(items)


def options(root, **kw) -> PipelineOptions:
    return PipelineOptions(location=parse_location(str(root)), now=NOW.timestamp(), **kw)


async def test_every_item_reaches_the_writer_in_batches_of_at_most_25(tmp_path):
    expected = write_archive(tmp_path, SampleSpec(runs=2, parts_per_run=3, events_per_part=200, now=NOW))
    writer = RecordingWriter()
    hub, tally = Hub(), Tally()
    hub.subscribe(tally)
    await run_pipeline(options(tmp_path, concurrency=3, writers=4), hub, writer=writer, s3=None)
    assert {item.key for item in writer.items} == set(expected.live_items())
    assert max(writer.batch_sizes) == 25
    assert writer.max_in_flight <= 4
    assert tally.objects_done == len(expected.objects)
    assert not tally.failures


async def test_an_object_is_finished_only_after_all_its_batches_are_acknowledged(tmp_path):
    write_archive(tmp_path, SampleSpec(runs=1, parts_per_run=2, events_per_part=300, now=NOW))
    acknowledged: dict[str, int] = {}
    finished_with: dict[str, int] = {}
    writer = RecordingWriter()

    def watch(event):
        if isinstance(event, ObjectFinished):
            finished_with[event.obj.key] = acknowledged.get(event.obj.key, 0)
        elif type(event).__name__ == "ItemsAcknowledged":
            acknowledged[event.obj.key] = acknowledged.get(event.obj.key, 0) + event.written

    hub = Hub()
    hub.subscribe(watch)
    await run_pipeline(options(tmp_path, concurrency=2, writers=3), hub, writer=writer, s3=None)
    assert finished_with == acknowledged
    assert sum(acknowledged.values()) == len(writer.items)


async def test_a_failed_batch_fails_only_its_object(tmp_path):
    expected = write_archive(tmp_path, SampleSpec(runs=1, parts_per_run=3, events_per_part=100, now=NOW))
    doomed = str(tmp_path / expected.objects[1])
    doomed_keys: set[tuple[str, str]] = set()

    class FailingWriter(RecordingWriter):
        async def write(self, items):
            if any(item.key in doomed_keys for item in items):
                raise WriteFailed("budget spent")
            return await super().write(items)

    import gzip

    raw = (tmp_path / expected.objects[1]).read_bytes()
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    for line in text.split(b"\n"):
        fields = line.split(b"\t")
        if len(fields) == 131:
            doomed_keys.add((fields[6].decode(), fields[129].decode()))
    hub, tally = Hub(), Tally()
    hub.subscribe(tally)
    failures = []
    hub.subscribe(lambda e: failures.append(e) if isinstance(e, ObjectFailedEvent) else None)
    await run_pipeline(options(tmp_path, concurrency=3, writers=2), hub, writer=FailingWriter(), s3=None)
    assert [f.obj.key for f in failures] == [doomed]
    assert tally.objects_done == 2


async def test_a_fatal_writer_error_cancels_every_task(tmp_path):
    write_archive(tmp_path, SampleSpec(runs=2, parts_per_run=3, events_per_part=300, now=NOW))

    class BrokenWriter(RecordingWriter):
        async def write(self, items):
            await asyncio.sleep(0)
            raise PermissionError("denied")

    with pytest.raises(ExceptionGroup) as caught:
        await run_pipeline(options(tmp_path, concurrency=8, writers=4), Hub(), writer=BrokenWriter(), s3=None)
    assert caught.group_contains(PermissionError)
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_dry_run_counts_without_a_writer(tmp_path):
    expected = write_archive(tmp_path, SampleSpec(runs=1, parts_per_run=2, events_per_part=100, now=NOW))
    hub, tally = Hub(), Tally(dry_run=True)
    hub.subscribe(tally)
    await run_pipeline(options(tmp_path), hub, writer=None, s3=None)
    assert tally.items_planned >= len(expected.live_items())
    assert tally.objects_done == len(expected.objects)


def _triage_raising_on(monkeypatch, marker: bytes, exc: Exception) -> None:
    """The parser raises `exc` on any block holding a line with `marker`, as a bug would."""
    import populator.job.pipeline as pipeline

    real = pipeline.triage

    def triage(lines, *args, **kwargs):
        if any(isinstance(line, bytes) and marker in line for line in lines):
            raise exc
        return real(lines, *args, **kwargs)

    monkeypatch.setattr(pipeline, "triage", triage)


def _events_in(path) -> set[tuple[str, str]]:
    import gzip

    from populator.events import parse_line

    raw = path.read_bytes()
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    parsed = (parse_line(line) for line in text.split(b"\n"))
    return {item.key for item in parsed if isinstance(item, ManifestItem)}


def _one_event_of(path) -> bytes:
    return min(_events_in(path))[0].encode()


async def test_an_unexpected_error_in_one_object_fails_only_that_object(tmp_path, monkeypatch):
    expected = write_archive(tmp_path, SampleSpec(runs=1, parts_per_run=3, events_per_part=100, now=NOW))
    doomed = tmp_path / expected.objects[1]
    _triage_raising_on(monkeypatch, _one_event_of(doomed), ValueError("year 0 is out of range"))
    writer = RecordingWriter()
    hub, tally = Hub(), Tally()
    hub.subscribe(tally)
    failures = []
    hub.subscribe(lambda e: failures.append(e) if isinstance(e, ObjectFailedEvent) else None)
    await run_pipeline(options(tmp_path, concurrency=3, writers=2), hub, writer=writer, s3=None)
    assert [f.obj.key for f in failures] == [str(doomed)]
    assert "ValueError: year 0 is out of range" in failures[0].reason
    assert "a bug in populator" in failures[0].reason
    assert tally.objects_done == 2
    others = set().union(*(_events_in(tmp_path / key) for key in expected.objects[::2]))
    assert others and others <= {item.key for item in writer.items}


async def test_an_error_meant_to_stop_the_job_still_stops_it(tmp_path, monkeypatch):
    from populator.errors import PopulatorError

    expected = write_archive(tmp_path, SampleSpec(runs=1, parts_per_run=3, events_per_part=100, now=NOW))
    marker = _one_event_of(tmp_path / expected.objects[1])
    _triage_raising_on(monkeypatch, marker, PopulatorError("more bad rows than --max-bad-rows"))
    with pytest.raises(ExceptionGroup) as caught:
        await run_pipeline(options(tmp_path, concurrency=3), Hub(), writer=None, s3=None)
    assert caught.group_contains(PopulatorError)


async def test_events_without_a_fingerprint_are_counted_never_bad_rows_nor_written(tmp_path):
    from populator.job.badrows import BadRowFile, BadRowLimit
    from populator.observe.hub import BadRowFound
    from tests.support.snowplow_lines import CASES

    run = tmp_path / "run=2021-09-17-09-00-00"
    run.mkdir()
    lines = [case.line for case in CASES.values()]
    without = [case.line for case in CASES.values() if case.expected == "no_fingerprint"]
    (run / "part-00000").write_bytes(b"\n".join([*lines, *without * 200]) + b"\n")  # mostly without
    bad = sum(1 for case in CASES.values() if case.expected in {"etl_tstamp", "field_count"})
    writer, hub, tally = RecordingWriter(), Hub(), Tally()
    events: list = []
    bad_rows = BadRowFile(tmp_path / "bad.jsonl")
    for subscriber in (tally, events.append, bad_rows, BadRowLimit(bad)):  # the limit: exactly the bad
        hub.subscribe(subscriber)
    await run_pipeline(options(tmp_path, include_expired=True), hub, writer=writer, s3=None)
    bad_rows.close()
    found = [event for event in events if isinstance(event, BadRowFound)]
    assert sorted(event.reason for event in found) == sorted(
        case.expected for case in CASES.values() if case.expected in {"etl_tstamp", "field_count"}
    )
    assert len((tmp_path / "bad.jsonl").read_text().splitlines()) == bad  # the limit was not passed
    assert tally.no_fingerprint == 1 + 200 and tally.bad_rows == bad
    assert "fingerprint" not in tally.bad_rows_by_reason
    assert {item.key for item in writer.items} == {case.expected[:2] for case in CASES.values()
                                                   if isinstance(case.expected, tuple)}  # fmt: skip
    [done] = [event for event in events if isinstance(event, ObjectFinished)]
    assert done.no_fingerprint == 201 and done.bad_rows == bad


async def test_a_pipeline_cancelled_with_ends_gathered_leaves_no_task_behind(tmp_path):
    """Objects' ends are gathered across objects (BatchWriteItem) and flushed on a timer; the
    table stops taking writes, the queue fills, a timer's flush waits on it; then the run is
    cancelled. No flush may be left waiting: it would be destroyed pending once the loop is
    gone ("Task was destroyed but it is pending", or an error of a closed loop)."""

    class StuckWriter(RecordingWriter):
        combines_objects = True

        async def write(self, items: list[ManifestItem]) -> WriteOutcome:
            await asyncio.Event().wait()  # never answers
            raise AssertionError("unreachable")

    # Each object: a full batch (straight to the queue) and an end (gathered): twelve objects fill
    # the queue of the one stuck writer, and the ends gathered meanwhile are flushed on a timer.
    write_archive(tmp_path, SampleSpec(runs=1, parts_per_run=12, events_per_part=40, now=NOW, seed=9))
    before = asyncio.all_tasks()
    run = asyncio.ensure_future(
        run_pipeline(options(tmp_path, concurrency=12, writers=1), Hub(), writer=StuckWriter(), s3=None)
    )
    await asyncio.sleep(1.0)  # the queue is full, a timer's flush waits on it
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.sleep(0)
    assert [task for task in asyncio.all_tasks() - before if not task.done()] == []
