"""The compact set of finished objects: 16 bytes an object, exact whatever the digests do."""

from __future__ import annotations

import tempfile

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from populator.job import finished as finished_module
from populator.job.finished import FinishedSet


def spool_of(records: list[tuple[str, str]]):
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the set reads it back until the test ends
    offsets = []
    for key, etag in records:
        offsets.append(spool.tell())
        spool.write(orjson.dumps({"type": "object", "key": key, "etag": etag}) + b"\n")
    spool.flush()
    return spool, offsets


def test_finished_objects_are_found_with_their_etag_only():
    records = [(f"run=2026-01-01-00-00-00/part-{n:05d}.gz", f"etag-{n}") for n in range(1000)]
    spool, offsets = spool_of(records)
    found = FinishedSet(spool, len(records))
    for (key, _), offset in zip(records, offsets, strict=True):
        found.add(key, offset)
    assert len(found) == 1000
    assert all(found.holds(key, etag) for key, etag in records)
    assert not found.holds(records[0][0], "another-etag")
    assert not found.holds("run=2026-01-01-00-00-00/part-99999.gz", "etag-1")


def test_an_object_finished_again_with_another_etag_replaces_the_first(tmp_path):
    spool, offsets = spool_of([("a", "old"), ("a", "new")])
    found = FinishedSet(spool, 2)
    found.add("a", offsets[0])
    found.add("a", offsets[1])
    assert len(found) == 1 and found.holds("a", "new") and not found.holds("a", "old")


def test_a_digest_collision_cannot_mark_an_unfinished_object_done(monkeypatch):
    """Every key digests alike here: only the records read back tell them apart."""
    monkeypatch.setattr(finished_module, "_digest", lambda key: 42)
    records = [("finished-1", "e1"), ("finished-2", "e2"), ("finished-3", "e3")]
    spool, offsets = spool_of(records)
    found = FinishedSet(spool, len(records))
    for (key, _), offset in zip(records, offsets, strict=True):
        found.add(key, offset)
    assert len(found) == 3
    assert all(found.holds(key, etag) for key, etag in records)
    assert not found.holds("never-finished", "e1")
    assert not found.holds("finished-2", "e1")  # the right key, with another object's ETag


def test_an_empty_set_holds_nothing_and_needs_no_spool():
    assert not FinishedSet(None, 0).holds("a", "e")


def test_it_costs_about_16_bytes_an_object_over_its_load():
    found = FinishedSet(None, 1_000_000)
    assert found._digests.itemsize * len(found._digests) * 2 <= 1_000_000 * 16 / finished_module.LOAD + 1024


def test_it_refuses_more_than_it_was_sized_for():
    spool, offsets = spool_of([(str(n), "e") for n in range(64)])
    found = FinishedSet(spool, 10)
    with pytest.raises(OverflowError):
        for n, offset in enumerate(offsets):
            found.add(str(n), offset)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=60), st.text(max_size=20)), max_size=80),
    st.lists(st.text(min_size=1, max_size=60), max_size=20),
)
def test_it_answers_as_a_dict_would(records, others):
    spool, offsets = spool_of(records)
    found = FinishedSet(spool, len(records))
    latest: dict[str, str] = {}
    for (key, etag), offset in zip(records, offsets, strict=True):
        found.add(key, offset)
        latest[key] = etag
    assert len(found) == len(latest)
    for key, etag in latest.items():
        assert found.holds(key, etag)
    for key in others:
        assert found.holds(key, "x-etag") == (latest.get(key) == "x-etag")


def test_a_record_written_with_other_spacing_is_still_read_exactly():
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - read back until the test ends
    spool.write(b'{"etag": "e1", "type": "object", "key": "a", "size": 1}\n')
    spool.flush()
    found = FinishedSet(spool, 1)
    found.add("a", 0)
    assert found.holds("a", "e1") and not found.holds("a", "e2")
