"""staging: DynamoDB-JSON lines, the key set, and the stager against moto's S3 over real HTTP.

The stager's promises: every line is DynamoDB JSON ImportTable reads; parts go up while items
are written (never a whole object in memory), each at least S3's 5 MiB but the last; archive
objects are never split between staged objects; a staged object is reported only once its
upload is complete and every archive object in it settled; keys are unique within one.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from populator.config.aws import new_session, s3_client
from populator.config.storage import AwsSettings
from populator.events import TTL_SECONDS, ManifestItem
from populator.sink.staging import (
    MIN_PART_BYTES,
    HeldObject,
    KeySet,
    StagedObject,
    Stager,
    item_line,
    item_lines,
    staged_line_bytes,
)


def items(count: int, seed: int = 1, prefix: str = "") -> list[ManifestItem]:
    rng = random.Random(seed)
    return [
        ManifestItem(
            f"{prefix}{rng.getrandbits(32):08x}-0000-4000-8000-{index:012d}",
            f"{rng.getrandbits(128):032x}",
            1_790_000_000 + rng.randrange(86_400),
        )
        for index in range(count)
    ]


class Obj:
    def __init__(self, key: str) -> None:
        self.key = key


def held(key: str, count: int) -> HeldObject:
    return HeldObject(key, f"etag-{key}", 100, count, count, 0)


# ----------------------------------------------------------------------------- lines and keys


@pytest.mark.parametrize(
    "fingerprint", ["0f" * 16, 'with "quotes" and \\ back', "tab\there\x01", "éè 指纹 🙂"]
)
def test_a_line_is_the_dynamodb_json_importtable_reads(fingerprint):
    item = ManifestItem("2b4b4b3e-6b0a-4c39-b2f0-6a4f5f2b7a10", fingerprint, 1_790_000_123)
    line = item_line(item)
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {
        "Item": {
            "eventId": {"S": item.event_id},
            "fingerprint": {"S": fingerprint},
            "etlTime": {"N": "1790000123"},
            "ttl": {"N": str(1_790_000_123 + TTL_SECONDS)},
        }
    }


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=40), st.integers(0, 10**10)), min_size=1, max_size=30
    )
)
def test_a_batch_of_lines_reads_back_as_its_items(draws):
    """Any fingerprint text (a batch mixing plain and escaped ones), any etlTime: the lines of a
    batch are its items, in order, each as ImportTable reads it."""
    batch = [
        ManifestItem(f"2b4b4b3e-6b0a-4c39-b2f0-{i:012d}", fingerprint, etl_time)
        for i, (fingerprint, etl_time) in enumerate(draws)
    ]
    text = item_lines(batch)
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert [json.loads(line) for line in lines] == [
        {
            "Item": {
                "eventId": {"S": item.event_id},
                "fingerprint": {"S": item.fingerprint},
                "etlTime": {"N": str(item.etl_time)},
                "ttl": {"N": str(item.etl_time + TTL_SECONDS)},
            }
        }
        for item in batch
    ]


def test_the_line_size_estimate_is_exact_for_a_typical_item():
    item = ManifestItem("2b4b4b3e-6b0a-4c39-b2f0-6a4f5f2b7a10", "a" * 32, 1_790_000_123)
    assert staged_line_bytes() == len(item_line(item).encode())


def test_the_key_set_keeps_the_first_of_each_key_through_growth():
    keys = KeySet(expected=16)
    first = items(50_000)
    assert keys.new(first) == first
    again = [ManifestItem(i.event_id, i.fingerprint, i.etl_time + 1) for i in first[:1000]]
    fresh = items(10, seed=2, prefix="x")
    assert keys.new([*again, *fresh, *fresh]) == fresh
    assert keys.used == 50_010
    assert keys.memory <= 50_010 * 8 * 4  # 8 bytes a slot, at least a quarter full after growth


def test_the_key_set_is_made_for_its_expected_keys_at_once():
    keys = KeySet(expected=100_000)
    memory = keys.memory
    assert 100_000 * 8 * 2 <= memory <= 100_000 * 8 * 4  # at most half full once they are all in
    first = items(100_000)
    assert keys.new(first) == first
    assert keys.memory == memory  # no growth on the way
    assert keys.new(first[:10]) == []


def test_a_released_key_set_is_empty_and_small():
    keys = KeySet(expected=100_000)
    batch = items(1000)
    keys.new(batch)
    keys.release()
    assert keys.used == 0 and keys.memory < 100_000
    assert keys.new(batch) == batch  # usable again, holding nothing of before


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 3)), max_size=400),
    st.integers(0, 1500),
    st.sampled_from([0, 100, 600, 5000]),
)
def test_the_key_set_agrees_with_a_set(draws, fresh, expected):
    """Any sequence of batches, duplicates within and across them, any starting size, growing
    or not (the smallest table holds 512 keys; `fresh` distinct keys around the drawn ones take
    it past that): the items kept are the first of each key, in order, as a set of the keys
    already seen says."""
    keys = KeySet(expected=expected)
    seen: set[tuple[str, str]] = set()
    drawn = [(f"e{e}", f"f{f}") for e, f in draws]
    filler = [(f"n{n}", "f") for n in range(fresh)]
    order = [*filler[: fresh // 2], *drawn, *filler[fresh // 2 :], *drawn]
    pending = [ManifestItem(event_id, fingerprint, i) for i, (event_id, fingerprint) in enumerate(order)]
    for start in range(0, len(pending), 37):
        batch = pending[start : start + 37]
        expect = []
        for item in batch:
            if (item.event_id, item.fingerprint) not in seen:
                seen.add((item.event_id, item.fingerprint))
                expect.append(item)
        assert keys.new(batch) == expect
    assert keys.used == len(seen)


# ----------------------------------------------------------------------------- the stager


class Recording:
    """An S3 client that passes every call on and remembers the multipart ones."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.parts: list[tuple[str, int, int]] = []  # (key, part number, bytes)
        self.completed: list[str] = []
        self.aborted: list[str] = []

    async def create_multipart_upload(self, **kwargs: Any) -> Any:
        return await self._s3.create_multipart_upload(**kwargs)

    async def upload_part(self, **kwargs: Any) -> Any:
        self.parts.append((kwargs["Key"], kwargs["PartNumber"], len(kwargs["Body"])))
        return await self._s3.upload_part(**kwargs)

    async def complete_multipart_upload(self, **kwargs: Any) -> Any:
        self.completed.append(kwargs["Key"])
        return await self._s3.complete_multipart_upload(**kwargs)

    async def abort_multipart_upload(self, **kwargs: Any) -> Any:
        self.aborted.append(kwargs["Key"])
        return await self._s3.abort_multipart_upload(**kwargs)


@pytest.fixture
async def s3(aws) -> Iterator[Any]:
    settings = AwsSettings(profile=None, dynamodb_region="us-east-1", dynamodb_keys=None, pool_size=8)
    async with s3_client(new_session(None), settings) as client:
        yield client


@pytest.fixture
async def bucket(s3, unique_name) -> str:
    await s3.create_bucket(Bucket=unique_name)
    return unique_name


def stager(s3: Any, bucket: str, staged: list[StagedObject], aborted: list[str], **options: Any) -> Stager:
    return Stager(
        s3,
        bucket,
        "job/data/",
        on_staged=staged.append,
        on_aborted=lambda key, upload_id: aborted.append(key),
        **options,
    )


async def lines_of(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = await (await s3.get_object(Bucket=bucket, Key=key))["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).splitlines()]


async def write_all(writer: Stager, key: str, batch: list[ManifestItem], size: int = 25) -> None:
    for start in range(0, len(batch), size):
        await writer.write_from(Obj(key), batch[start : start + size])
        await asyncio.sleep(0)  # as the pipeline's writers do between batches (a queue get)


async def test_parts_go_up_while_writing_each_at_least_5_mib_but_the_last(s3, bucket):
    recording = Recording(s3)
    staged: list[StagedObject] = []
    writer = stager(recording, bucket, staged, [], part_bytes=MIN_PART_BYTES)
    batch = items(150_000)  # ~26 MB of lines, ~7 MB of gzip: two parts or more
    await write_all(writer, "a", batch)
    uploaded_while_writing = len(recording.parts)
    writer.object_finished(held("a", len(batch)))
    await writer.close()

    assert uploaded_while_writing >= 1 and not recording.aborted
    (done,) = staged
    sizes = [size for _, _, size in sorted(recording.parts, key=lambda part: part[1])]
    assert len(sizes) >= 2 and all(size >= MIN_PART_BYTES for size in sizes[:-1])
    assert done.size == sum(sizes) and done.items == len(batch) and done.duplicates == 0
    found = await lines_of(s3, bucket, done.key)
    assert [line["Item"]["eventId"]["S"] for line in found] == [item.event_id for item in batch]
    assert done.bytes == sum(len(item_line(item).encode()) for item in batch)


async def test_archive_objects_stay_whole_and_a_staged_object_waits_for_all_of_its_own(s3, bucket):
    staged: list[StagedObject] = []
    writer = stager(s3, bucket, staged, [], items_per_object=50)
    a, b, c = items(40, 1, "a"), items(40, 2, "b"), items(40, 3, "c")
    await write_all(writer, "a", a[:20])
    await write_all(writer, "b", b[:20])  # joins a's staged object: 40 items, not full yet
    await write_all(writer, "a", a[20:])  # 60: full, takes no new archive object
    await write_all(writer, "c", c)  # a staged object of its own
    await write_all(writer, "b", b[20:])  # b goes on where it began
    writer.object_finished(held("a", 40))
    writer.object_finished(held("c", 40))
    await asyncio.sleep(0.3)
    assert staged == []  # a's staged object waits for b; c's is not full
    writer.object_finished(held("b", 40))
    await asyncio.sleep(0.3)
    assert [sorted(h.key for h in done.held) for done in staged] == [["a", "b"]]  # before close
    await writer.close()

    by_keys = {tuple(sorted(h.key for h in done.held)): done for done in staged}
    assert set(by_keys) == {("a", "b"), ("c",)}
    first = await lines_of(s3, bucket, by_keys[("a", "b")].key)
    assert {line["Item"]["eventId"]["S"] for line in first} == {i.event_id for i in a + b}
    assert by_keys[("a", "b")].items == 80 and by_keys[("c",)].items == 40


async def test_a_key_is_written_once_a_staged_object(s3, bucket):
    staged: list[StagedObject] = []
    writer = stager(s3, bucket, staged, [], items_per_object=1_000)
    shared = items(30, 7, "s")
    later = [ManifestItem(i.event_id, i.fingerprint, i.etl_time + 3600) for i in shared]
    outcome = await writer.write_from(Obj("a"), shared[:25])
    assert (outcome.written, outcome.already_present) == (25, 0)
    await writer.write_from(Obj("a"), shared[25:])
    outcome = await writer.write_from(Obj("b"), later[:25])  # another object, the same keys
    assert (outcome.written, outcome.already_present) == (0, 25)
    writer.object_finished(held("a", 30))
    writer.object_finished(held("b", 25))
    await writer.close()
    (done,) = staged
    found = await lines_of(s3, bucket, done.key)
    assert len(found) == 30 and done.duplicates == 25
    assert {int(line["Item"]["etlTime"]["N"]) for line in found} == {i.etl_time for i in shared}


async def test_failed_and_abandoned_objects_are_left_out_and_an_empty_upload_is_aborted(s3, bucket):
    staged: list[StagedObject] = []
    aborted: list[str] = []
    writer = stager(s3, bucket, staged, aborted, items_per_object=30)
    await write_all(writer, "bad", items(30, 1, "x"))
    writer.object_failed("bad")  # its staged object holds nothing finished: aborted
    await write_all(writer, "ok", items(10, 2, "y"))
    await write_all(writer, "cut", items(10, 3, "z"))  # abandoned by a graceful stop
    writer.object_finished(held("ok", 10))
    await writer.close()
    assert len(aborted) == 1
    (done,) = staged
    assert [h.key for h in done.held] == ["ok"]
    listed = await s3.list_objects_v2(Bucket=bucket)
    assert [entry["Key"] for entry in listed.get("Contents", [])] == [done.key]
    uploads = await s3.list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []


async def test_abort_gives_up_every_open_upload(s3, bucket):
    staged: list[StagedObject] = []
    aborted: list[str] = []
    writer = stager(s3, bucket, staged, aborted)
    await write_all(writer, "a", items(100))
    await writer.abort()
    assert staged == [] and len(aborted) == 1
    assert (await s3.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []


def test_a_part_size_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="minimum part size"):
        Stager(object(), "b", "p/", part_bytes=MIN_PART_BYTES - 1)
