"""One machine's share of the archive, for a backfill spread over a fleet: `--shard K/N`.

An object belongs to shard `blake2b(shard key) mod N`. The shard key is the object's key relative
to the archive root (`run=2026-06-01-13-45-00/part-00000.gz`), so an S3 archive and a copy of it
on local disk shard alike, whatever the bucket, prefix or local path. blake2b is the same on every
machine and Python version; Python's own `hash()` is salted per process and would not be. Every
object is in exactly one of the N shards.

`auto/N` takes K from the index the batch engine gives each copy of a job:
`AWS_BATCH_JOB_ARRAY_INDEX` (AWS Batch array jobs) or `JOB_COMPLETION_INDEX` (Kubernetes
Indexed Jobs).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import UsageError

# (variable, what sets it), in the order they are looked up.
INDEX_VARIABLES = (
    ("AWS_BATCH_JOB_ARRAY_INDEX", "AWS Batch array jobs"),
    ("JOB_COMPLETION_INDEX", "Kubernetes Indexed Jobs"),
)
MAX_SHARDS = 10_000  # the largest AWS Batch array
_SPEC = re.compile(r"(auto|-?\d+)/(-?\d+)")
_FORMS = (
    "use K/N for shard K of N (0 ≤ K < N, e.g. 0/4), or auto/N to read K from "
    "AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array jobs) or JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)"
)


def shard_of(shard_key: str, count: int) -> int:
    """The shard (0 to count - 1) that `shard_key` belongs to; stable across machines and versions."""
    # surrogateescape: a local file name that is not UTF-8 hashes as its bytes on disk.
    digest = hashlib.blake2b(shard_key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS or not 0 <= self.index < self.count:
            raise ValueError(f"no shard {self.index}/{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, shard_key: str) -> bool:
        return shard_of(shard_key, self.count) == self.index


def parse_shard(raw: str, environ: Mapping[str, str] | None = None) -> Shard:
    """`K/N` or `auto/N` → Shard. Raises UsageError saying what to fix."""
    match = _SPEC.fullmatch(raw.strip())
    if match is None:
        raise UsageError(f"--shard {raw!r} is not a shard: {_FORMS}.")
    count = int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise UsageError(f"--shard {raw!r}: N must be from 1 to {MAX_SHARDS:,}.")
    if match.group(1) != "auto":
        index = int(match.group(1))
        if not 0 <= index < count:
            raise UsageError(f"--shard {raw!r}: K must be from 0 to {count - 1} (N - 1).")
        return Shard(index, count)
    return Shard(_index_from_environment(count, os.environ if environ is None else environ), count)


def _index_from_environment(count: int, environ: Mapping[str, str]) -> int:
    for name, source in INDEX_VARIABLES:
        value = environ.get(name)
        if value is None:
            continue
        try:
            index = int(value.strip())
        except ValueError:
            raise UsageError(
                f"--shard auto/{count}: {name} is {value!r}, not a shard index (a whole number from 0 to "
                f"{count - 1})."
            ) from None
        if not 0 <= index < count:
            raise UsageError(
                f"--shard auto/{count}: {name}={index} is out of range (0 to {count - 1}). Make the "
                f"{source} size match N: {count} copies of the job for auto/{count}."
            )
        return index
    raise UsageError(
        f"--shard auto/{count}: neither AWS_BATCH_JOB_ARRAY_INDEX (set in AWS Batch array jobs) nor "
        f"JOB_COMPLETION_INDEX (set in Kubernetes Indexed Jobs) is set. Submit an array job of size "
        f"{count} or an Indexed Job with {count} completions, or pass --shard K/{count}."
    )


@dataclass(frozen=True, slots=True)
class ShardLoad:
    """How much of the archive one shard holds."""

    shard: Shard
    objects: int
    bytes: int
    object_share: float  # of all objects, 0 to 1
    byte_share: float  # of all bytes, 0 to 1


def shard_distribution(objects: Iterable[tuple[str, int]], count: int) -> list[ShardLoad]:
    """How `(shard key, size)` pairs fall across `count` shards, shard 0 first."""
    tally = ShardTally(count)
    for shard_key, size in objects:
        tally.add(shard_key, size)
    return tally.loads()


class ShardTally:
    """Objects and bytes per shard, counted as a listing streams by (nothing kept per object)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._objects = [0] * count
        self._bytes = [0] * count

    def add(self, shard_key: str, size: int) -> None:
        index = shard_of(shard_key, self.count)
        self._objects[index] += 1
        self._bytes[index] += size

    def loads(self) -> list[ShardLoad]:
        total_objects, total_bytes = sum(self._objects), sum(self._bytes)
        return [
            ShardLoad(
                Shard(index, self.count),
                found,
                size,
                found / total_objects if total_objects else 0.0,
                size / total_bytes if total_bytes else 0.0,
            )
            for index, (found, size) in enumerate(zip(self._objects, self._bytes, strict=True))
        ]


def imbalance(loads: Iterable[ShardLoad]) -> float:
    """The heaviest shard's bytes over the mean (1.0 is perfectly even): how much longer it runs."""
    sizes = [load.bytes for load in loads]
    mean = sum(sizes) / len(sizes) if sizes else 0.0
    return max(sizes) / mean if mean else 1.0
