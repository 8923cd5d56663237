"""How many lines and events an archive holds, estimated from the first KiB of a few objects.

Reading a whole archive to count it would cost as much as the backfill. Instead the first
`head` bytes of a few objects are read (a ranged GET on S3), inflated and counted: that gives
lines per compressed byte, which times each object's size (known from the listing) estimates
its lines. Gzip and plain-text parts differ tenfold, so the ratio is taken per kind of object
(by name: `.gz`/`.gzip` or not), with objects of every kind in the sample.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeVar

import aiofiles

from ..events import triage
from .archive import ArchiveLocation, ArchiveObject
from .reader import CorruptObject, decoded_chunks

# aiobotocore ships no annotations (pyproject's mypy overrides): its S3 client is `Any` here.

DEFAULT_SAMPLE_OBJECTS = 8
DEFAULT_SAMPLE_KIB = 256
MAX_INFLATED_BYTES = 64 * 1024 * 1024  # of one head: a gzip bomb is not read further
_CONCURRENCY = 8

_T = TypeVar("_T")


def kind_of(obj: ArchiveObject) -> str:
    """`gzip` for parts named `.gz`/`.gzip`, `plain` for the others (content may disagree)."""
    name = PurePosixPath(obj.key).name.lower()
    return "gzip" if name.endswith((".gz", ".gzip")) else "plain"


@dataclass(frozen=True)
class ObjectSample:
    """What the head of one object held."""

    obj: ArchiveObject
    compressed_bytes: int  # bytes read from the object
    whole: bool  # the object was read to its end: its counts are exact
    lines: float  # lines read, the cut last one as a fraction
    blank: int  # of the complete lines
    bad: int
    events: int  # complete lines that are valid enriched events with a fingerprint (items to write)
    no_fingerprint: int = 0  # complete lines that are valid events without one (run skips them)

    @property
    def complete_lines(self) -> int:
        return self.blank + self.bad + self.events + self.no_fingerprint

    @property
    def lines_per_byte(self) -> float:
        return self.lines / self.compressed_bytes if self.compressed_bytes else 0.0


def choose_sample(objects: Sequence[ArchiveObject], count: int) -> list[ArchiveObject]:
    """Up to `count` objects spread evenly over the list, at least one of each kind."""
    if count >= len(objects):
        return list(objects)
    kinds: dict[str, list[ArchiveObject]] = {}
    for obj in objects:
        kinds.setdefault(kind_of(obj), []).append(obj)
    chosen: list[ArchiveObject] = []
    for members in kinds.values():
        share = max(1, round(count * len(members) / len(objects)))
        chosen += spread(members, share)
    return chosen


class EvenSample:
    """Items (a listing's objects) spread evenly over a stream of unknown length, in bounded memory.

    Keeps every `stride`-th item; when more than `keep` are kept, every other one goes and the
    stride doubles. At the end the kept items are evenly spaced over the whole stream, and
    `spread` picks `count` of them: `choose_sample` without holding a million-object listing. Up
    to `keep` items nothing is dropped, so a small archive is sampled exactly as a list would be.
    """

    def __init__(self, count: int, keep: int = 4096) -> None:
        self._keep = max(keep, 2 * count, 2)
        self._stride = 1
        self._seen = 0
        self.items: list[ArchiveObject] = []
        self.total = 0

    def add(self, item: ArchiveObject) -> None:
        self.total += 1
        if self._seen % self._stride == 0:
            self.items.append(item)
            if len(self.items) > self._keep:
                self.items = self.items[::2]
                self._stride *= 2
        self._seen += 1


def choose_streamed(samples: dict[str, EvenSample], count: int) -> list[ArchiveObject]:
    """`choose_sample` over the even samples of each kind: up to `count` objects, at least one of
    each kind, shared out by how many objects each kind has."""
    total = sum(sample.total for sample in samples.values())
    chosen: list[ArchiveObject] = []
    for sample in samples.values():
        if count >= total:
            chosen += sample.items
            continue
        share = max(1, round(count * sample.total / total))
        chosen += spread(sample.items, share)
    return chosen


def spread(items: Sequence[_T], count: int) -> list[_T]:
    """`count` items evenly spaced over `items` (all of them when there are fewer)."""
    if count >= len(items):
        return list(items)
    if count <= 0:
        return []
    step = len(items) / count
    return [items[int(step * index + step / 2)] for index in range(count)]


async def sample_heads(
    location: ArchiveLocation, objects: Sequence[ArchiveObject], head: int, s3: Any | None = None
) -> list[ObjectSample]:
    limit = asyncio.Semaphore(_CONCURRENCY)

    async def one(obj: ArchiveObject) -> ObjectSample:
        async with limit:
            raw = await _read_head(location, obj, head, s3)
            return await count_head(obj, raw)

    return list(await asyncio.gather(*(one(obj) for obj in objects)))


async def _read_head(location: ArchiveLocation, obj: ArchiveObject, head: int, s3: Any | None) -> bytes:
    if location.is_s3:
        assert s3 is not None, "an S3 archive is read with an S3 client"
        response = await s3.get_object(Bucket=location.bucket, Key=obj.key, Range=f"bytes=0-{head - 1}")
        async with response["Body"] as body:
            return bytes(await body.read())
    async with aiofiles.open(obj.key, "rb") as handle:
        return bytes(await handle.read(head))


async def count_head(obj: ArchiveObject, raw: bytes) -> ObjectSample:
    """Inflate (if gzip) and count the first bytes of an object."""
    whole = len(raw) >= obj.size
    pieces: list[bytes] = []
    size = 0
    try:
        async for piece in decoded_chunks(_once(raw)):
            pieces.append(piece)
            size += len(piece)
            if size >= MAX_INFLATED_BYTES:
                whole = False
                break
    except CorruptObject:
        whole = False  # a head cut inside a gzip member: expected
    text = b"".join(pieces)
    cut = text.rfind(b"\n") + 1
    complete = text[:cut].split(b"\n")[:-1] if cut else []
    rest = len(text) - cut
    if whole and rest:
        complete.append(text[cut:].rstrip(b"\r"))
        rest = 0
    lines: float = len(complete)
    if rest and cut:
        lines += rest / (cut / len(complete))  # the cut line, as a fraction of an average one
    sorted_out = triage([line.rstrip(b"\r") for line in complete], None)
    events = len(sorted_out.items)
    return ObjectSample(
        obj=obj,
        compressed_bytes=len(raw),
        whole=whole,
        lines=lines,
        blank=sorted_out.blank,
        bad=len(sorted_out.bad),
        events=events + sorted_out.expired,
        no_fingerprint=sorted_out.no_fingerprint,
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass(frozen=True)
class LineEstimate:
    """Lines per compressed byte for each kind of object, the share of lines that are events to
    write, and the share of valid events that have no fingerprint (and so are not written)."""

    ratios: dict[str, float]
    event_share: float
    exact: dict[str, ObjectSample]  # objects read whole: their own counts
    no_fingerprint_share: float = 0.0  # of the sampled valid events (with a fingerprint or not)

    def lines(self, obj: ArchiveObject) -> float:
        sample = self.exact.get(obj.key)
        if sample is not None:
            return sample.lines
        return self.lines_of(kind_of(obj), obj.size)

    def lines_of(self, kind: str, size: int) -> float:
        """The lines in `size` bytes of objects of one kind, read by nobody."""
        return size * self.ratios.get(kind, self.ratios.get("*", 0.0))

    def events(self, obj: ArchiveObject) -> float:
        sample = self.exact.get(obj.key)
        if sample is not None:
            return float(sample.events)
        return self.lines(obj) * self.event_share


def estimate(samples: Sequence[ObjectSample]) -> LineEstimate:
    """Pool the samples: a ratio per kind, and one for kinds nobody sampled (`*`)."""
    ratios: dict[str, float] = {}
    by_kind: dict[str, list[ObjectSample]] = {}
    for sample in samples:
        by_kind.setdefault(kind_of(sample.obj), []).append(sample)
    for kind, members in [*by_kind.items(), ("*", list(samples))]:
        read = sum(s.compressed_bytes for s in members)
        ratios[kind] = sum(s.lines for s in members) / read if read else 0.0
    complete = sum(s.complete_lines for s in samples)
    events = sum(s.events for s in samples)
    share = events / complete if complete else 0.0
    without = sum(s.no_fingerprint for s in samples)
    no_fingerprint_share = without / (events + without) if events + without else 0.0
    return LineEstimate(ratios, share, {s.obj.key: s for s in samples if s.whole}, no_fingerprint_share)
