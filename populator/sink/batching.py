"""Parsed items → write requests of `BATCH_SIZE` items whose keys are unique within each request.

DynamoDB refuses a BatchWriteItem that holds one key twice, so a key seen again before its
request is full is merged into the first (the earlier etlTime wins: the first shredding). Keys
repeated across requests are left alone: the second write finds the item already there.

Pure and synchronous: the reader feeds one block of items at a time and submits what comes out.
"""

from __future__ import annotations

from operator import itemgetter

from ..events import ManifestItem
from .writes import BATCH_SIZE

_event_id = itemgetter(0)


class BatchCutter:
    """Cuts a stream of items into requests; holds at most one unfinished request."""

    __slots__ = ("_pending", "_size")

    def __init__(self, size: int = BATCH_SIZE) -> None:
        self._size = size
        self._pending: dict[tuple[str, str], ManifestItem] = {}

    def feed(self, items: list[ManifestItem]) -> tuple[list[list[ManifestItem]], int]:
        """The requests `items` completes, and how many of them were merged into an earlier one."""
        pending = self._pending
        # Nearly every block has no repeated event_id at all: then no key can repeat within
        # any request, and the block is cut with slices instead of a dict update per item.
        # (~0.1 us an item against ~1.5 us for the per-item path, measured in benchmarks.)
        ids = set(map(_event_id, items))
        if len(ids) == len(items) and ids.isdisjoint(key[0] for key in pending):
            return self._cut_distinct(items), 0
        return self._cut_each(items)

    @property
    def buffered(self) -> bool:
        """Whether items wait for the next request."""
        return bool(self._pending)

    def flush(self) -> list[ManifestItem]:
        """The unfinished request, possibly empty; the cutter starts afresh."""
        rest = list(self._pending.values())
        self._pending = {}
        return rest

    def _cut_distinct(self, items: list[ManifestItem]) -> list[list[ManifestItem]]:
        size = self._size
        queued = [*self._pending.values(), *items] if self._pending else items
        whole = len(queued) - len(queued) % size
        requests = [queued[start : start + size] for start in range(0, whole, size)]
        self._pending = {(item[0], item[1]): item for item in queued[whole:]}
        return requests

    def _cut_each(self, items: list[ManifestItem]) -> tuple[list[list[ManifestItem]], int]:
        size = self._size
        pending = self._pending
        requests: list[list[ManifestItem]] = []
        merged = 0
        for item in items:
            key = (item[0], item[1])
            known = pending.get(key)
            if known is not None:
                merged += 1
                if item[2] < known[2]:
                    pending[key] = item
                continue
            pending[key] = item
            if len(pending) == size:
                requests.append(list(pending.values()))
                pending = {}
        self._pending = pending
        return requests, merged
