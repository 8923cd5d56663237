"""pipeline: bounded stages, object completion, and clean cancellation (writers stubbed)."""

from __future__ import annotations

import asyncio
import random

import pytest

from populator.commands.sample import SampleSpec, write_archive
from populator.events import ManifestItem
from populator.job.pipeline import PipelineOptions, run_pipeline
from populator.observe.hub import Hub, ObjectFailedEvent, ObjectFinished
from populator.observe.report import Tally
from populator.sink.manifest import WriteFailed, WriteOutcome
from populator.source.archive import parse_location
from tests.support.backfill_helpers import NOW


class RecordingWriter:
    """Acknowledges batches after a random short delay, remembering every item."""

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

    class BrokenWriter:
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
