"""Cutting items into write requests: unique keys per request, the first shredding kept."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from populator.events import ManifestItem
from populator.sink.batching import BatchCutter


def item(event: int, fingerprint: str = "f", etl_time: int = 1000) -> ManifestItem:
    return ManifestItem(f"00000000-0000-4000-8000-{event:012d}", fingerprint, etl_time)


def reference(items: list[ManifestItem], size: int) -> tuple[list[list[ManifestItem]], int]:
    """The rule spelled out one item at a time: a request fills until it holds `size` keys."""
    requests: list[list[ManifestItem]] = []
    current: dict[tuple[str, str], ManifestItem] = {}
    merged = 0
    for it in items:
        key = (it.event_id, it.fingerprint)
        if key in current:
            merged += 1
            if it.etl_time < current[key].etl_time:
                current[key] = it
            continue
        current[key] = it
        if len(current) == size:
            requests.append(list(current.values()))
            current = {}
    if current:
        requests.append(list(current.values()))
    return requests, merged


def cut(blocks: list[list[ManifestItem]], size: int) -> tuple[list[list[ManifestItem]], int]:
    cutter = BatchCutter(size)
    requests: list[list[ManifestItem]] = []
    merged = 0
    for block in blocks:
        done, block_merged = cutter.feed(block)
        requests += done
        merged += block_merged
    if rest := cutter.flush():
        requests.append(rest)
    return requests, merged


def test_distinct_items_are_cut_in_order_into_full_requests() -> None:
    items = [item(n) for n in range(60)]
    requests, merged = cut([items[:7], items[7:40], items[40:]], 25)
    assert [len(r) for r in requests] == [25, 25, 10]
    assert [it for r in requests for it in r] == items
    assert merged == 0


def test_a_key_repeated_within_a_request_is_merged_keeping_the_earlier_etl_time() -> None:
    first = item(1, etl_time=2000)
    earlier = item(1, etl_time=1000)
    requests, merged = cut([[first, item(2)], [earlier, item(3)]], 25)
    assert requests == [[earlier, item(2), item(3)]]
    assert merged == 1


def test_a_key_repeated_in_a_later_request_is_written_again() -> None:
    requests, merged = cut([[item(1), item(2)], [item(1)]], 2)
    assert requests == [[item(1), item(2)], [item(1)]]
    assert merged == 0


def test_same_event_id_with_another_fingerprint_is_another_key() -> None:
    requests, merged = cut([[item(1, "a"), item(1, "b")]], 25)
    assert requests == [[item(1, "a"), item(1, "b")]]
    assert merged == 0


@given(
    events=st.lists(st.tuples(st.integers(0, 30), st.sampled_from("ab"), st.integers(0, 5)), max_size=120),
    cuts=st.lists(st.integers(0, 120), max_size=8),
    size=st.integers(1, 25),
)
def test_any_blocking_of_any_stream_matches_the_rule(
    events: list[tuple[int, str, int]], cuts: list[int], size: int
) -> None:
    items = [item(e, f, t) for e, f, t in events]
    bounds = sorted({0, len(items), *(c for c in cuts if c <= len(items))})
    blocks = [items[a:b] for a, b in pairwise(bounds)]
    requests, merged = cut(blocks, size)
    assert (requests, merged) == reference(items, size)
    for request in requests:
        assert 1 <= len(request) <= size
        assert len({(it.event_id, it.fingerprint) for it in request}) == len(request)
