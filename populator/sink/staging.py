"""Staged objects for `populator import`: manifest items as gzip DynamoDB-JSON lines in S3.

DynamoDB's ImportTable creates a table from objects under an S3 prefix. The `Stager` is the
writer of the import path: the pipeline hands it each archive object's items as it hands the
table writers theirs, and the stager appends them, one
`{"Item":{"eventId":{"S":…},"fingerprint":{"S":…},"etlTime":{"N":…},"ttl":{"N":…}}}` a line, to
a gzip stream that goes to S3 by multipart upload as it is written: parts of `PART_BYTES`
(never below S3's 5 MiB, except the last), at most two in flight, so memory stays bounded
whatever an object's size.

Archive objects are grouped whole into staged objects of about `items_per_object` items: an
archive object joins the staged object open when its first items come, and stays there; a
staged object that has enough items takes no new archive object and is completed as soon as
every archive object in it has settled (finished or failed). Only then are its archive objects
finished for the checkpoint (`on_staged`). Keys are unique within a staged object, the earlier
line winning (the same rule as a batch); a key in two staged objects is left to ImportTable,
which keeps one of them.

No AWS library is imported here: the S3 client is handed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypedDict

import orjson
from isal import isal_zlib

from ..config.outage import OutageWatch, ask
from ..events import TTL_SECONDS, ManifestItem
from .writes import KeyedObject, WriteOutcome

# aiobotocore ships no annotations (pyproject's mypy overrides): its S3 client is `Any` here.

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB  # S3's minimum for every part but the last
PART_BYTES = 6 * MIB
PARTS_IN_FLIGHT = 2  # per staged object
MAX_STAGED_OBJECTS = 50_000  # ImportTable's limit of S3 objects per import
DEFAULT_ITEMS_PER_OBJECT = 4_000_000  # what AWS advises for items under 1 KB
COMPRESS_LEVEL = 1  # isal's fast level: ImportTable bills the uncompressed bytes anyway
STAGING_BATCH = 100  # items a batch from the pipeline (BatchWriteItem's 25; bigger cost the cutter more)
DATA_FOLDER = "data/"
SUFFIX = ".json.gz"

# A fingerprint is any UTF-8 text of the enriched line, which JSON may need escapes for (event
# ids are UUIDs, checked by the parser; numbers are digits). Printable ASCII but `"` and `\`
# needs none: a batch's fingerprints are checked together by deleting those bytes (a C loop,
# measured at a tenth of the time of a regular expression searching for the others).
_PLAIN = bytes(range(0x20, 0x7F)).translate(None, b'"\\')
_key = itemgetter(0, 1)
_BITS = 0xFFFFFFFFFFFFFFFF


def item_line(item: ManifestItem) -> str:
    """One manifest item as a line of DynamoDB JSON, as ImportTable reads it."""
    return item_lines([item])


def staged_line_bytes(fingerprint_length: int = 32, event_id_length: int = 36, digits: int = 10) -> int:
    """The bytes of one line for an item of these sizes (plan's estimate of the staged gigabytes)."""
    item = ManifestItem("e" * event_id_length, "f" * fingerprint_length, 10 ** (digits - 1))
    return len(item_line(item).encode())


def item_lines(items: Sequence[ManifestItem]) -> str:
    """Manifest items as lines of DynamoDB JSON, in order."""
    tails = _TAILS if len(_TAILS) < _TAILS_HELD else _fresh_tails()
    parts: list[str] = []
    add = parts.extend
    if _plain("".join(map(_fingerprint, items))):
        for e, f, t in items:
            add((_HEAD, e, _MIDDLE, f, tails.get(t) or _tail(t)))
    else:
        for e, f, t in items:
            add((_HEAD, _escaped(e), _MIDDLE, _escaped(f), tails.get(t) or _tail(t)))
    return "".join(parts)


# A line is these five pieces. The last depends only on the etlTime, which a whole run of
# batch-enriched events shares (and stream-enriched ones share by the second), so it is made once
# for each and kept: formatting two numbers an item was a tenth of the stager's time.
_HEAD = '{"Item":{"eventId":{"S":"'
_MIDDLE = '"},"fingerprint":{"S":"'
_TAILS: dict[int, str] = {}
_TAILS_HELD = 65_536
_fingerprint = itemgetter(1)


def _tail(etl_time: int) -> str:
    ttl = etl_time + TTL_SECONDS
    tail = _TAILS[etl_time] = f'"}},"etlTime":{{"N":"{etl_time}"}},"ttl":{{"N":"{ttl}"}}}}}}\n'
    return tail


def _fresh_tails() -> dict[int, str]:
    _TAILS.clear()
    return _TAILS


def _plain(text: str) -> bool:
    """No character of `text` needs a JSON escape (and it is ASCII, the common case)."""
    return text.isascii() and not text.encode().translate(None, _PLAIN)


def _escaped(text: str) -> str:
    """`text` as the inside of a JSON string."""
    return orjson.dumps(text).decode()[1:-1]


@dataclass(frozen=True, slots=True)
class HeldObject:
    """An archive object inside a staged object, with the counts the checkpoint records."""

    key: str
    etag: str
    size: int
    lines: int
    items: int
    bad_rows: int


@dataclass(frozen=True, slots=True)
class StagedObject:
    """A staged object whose upload is complete: where it is, what it holds."""

    key: str
    size: int  # compressed bytes, as stored
    bytes: int  # uncompressed: what ImportTable bills
    items: int  # lines (distinct keys within it)
    held: tuple[HeldObject, ...]  # the archive objects it holds, whole
    duplicates: int = 0  # items dropped because their key was already in it


class KeySet:
    """The keys of one staged object, as 64-bit hashes in an open-addressing table.

    8 bytes a slot, at most half full: 16 to 32 bytes a key (64 MiB for 4,000,000), where a
    set of Python ints takes about 75. Two different keys with one hash would make the second
    look like a duplicate: about one chance in two million for a staged object of 4,000,000
    keys (n² / 2⁶⁵), once in ten thousand backfills of a billion events.

    The table is made at once for the `expected` keys (the staged object's target): growing it
    by doubling rehashed every key in Python about once more, 40% of its time. Its memory is an
    anonymous mapping, which the system gives page by page as slots are first written, so a
    staged object that ends small costs only the pages it touched.
    """

    __slots__ = ("_limit", "_map", "_mask", "_table", "used")

    def __init__(self, expected: int = 0) -> None:
        slots = MIN_KEY_SLOTS
        while expected > slots // 2:
            slots *= 2
        self._map, self._table = _zeroed_slots(slots)
        self._mask = slots - 1
        self._limit = slots // 2
        self.used = 0

    @property
    def memory(self) -> int:
        """Bytes of the table (committed by the system as its pages are touched)."""
        return len(self._table) * 8

    def new(self, items: Sequence[ManifestItem]) -> list[ManifestItem]:
        """The items whose key is not in the set yet (the first of each), now added."""
        if self.used + len(items) > self._limit:  # room for the whole batch first: never full
            self._grow(self.used + len(items))
        table, mask = self._table, self._mask
        kept: list[ManifestItem] = []
        keep = kept.append
        # The hashes at C speed (a tuple's hash, from its strings' cached ones); the probe in Python.
        for item, code in zip(items, map(hash, map(_key, items)), strict=True):
            code = code & _BITS or 1  # 0 marks an empty slot
            slot = code & mask
            while True:
                held = table[slot]
                if not held:
                    table[slot] = code
                    keep(item)
                    break
                if held == code:
                    break
                slot = (slot + 1) & mask
        self.used += len(kept)
        return kept

    def release(self) -> None:
        """Give the table's memory back (the set is empty and small afterwards)."""
        self._table.release()
        self._map.close()
        self._map, self._table = _zeroed_slots(MIN_KEY_SLOTS)
        self._mask, self._limit, self.used = MIN_KEY_SLOTS - 1, MIN_KEY_SLOTS // 2, 0

    def _grow(self, keys: int) -> None:
        """Room for `keys` keys at most half full (a staged object past its target: one archive
        object larger than the rest of it)."""
        slots = len(self._table) * 2
        while keys > slots // 2:
            slots *= 2
        mapping, table = _zeroed_slots(slots)
        mask = slots - 1
        for code in self._table:
            if code:
                slot = code & mask
                while table[slot]:
                    slot = (slot + 1) & mask
                table[slot] = code
        self._table.release()
        self._map.close()
        self._map, self._table, self._mask, self._limit = mapping, table, mask, slots // 2


MIN_KEY_SLOTS = 1 << 10


def _zeroed_slots(slots: int) -> tuple[mmap.mmap, memoryview]:
    """`slots` unsigned 64-bit zeros, in memory the system commits only where it is written."""
    mapping = mmap.mmap(-1, slots * 8)
    return mapping, memoryview(mapping).cast("Q")


class _Part(TypedDict):
    """An uploaded part, as CompleteMultipartUpload lists it."""

    PartNumber: int
    ETag: str


@dataclass(eq=False)
class _Open:
    """A staged object being written."""

    key: str
    upload_id: str
    keys: KeySet  # sized by the stager for its target
    compressor: isal_zlib.Compress = field(
        default_factory=lambda: isal_zlib.compressobj(COMPRESS_LEVEL, isal_zlib.DEFLATED, 31)
    )
    buffer: bytearray = field(default_factory=bytearray)
    parts: list[_Part] = field(default_factory=list)
    in_flight: list[asyncio.Task[None]] = field(default_factory=list)
    next_part: int = 1
    size: int = 0  # compressed bytes uploaded or buffered
    raw: int = 0  # uncompressed bytes
    items: int = 0
    duplicates: int = 0
    pending: set[str] = field(default_factory=set)  # archive objects in it, not settled yet
    held: dict[str, HeldObject] = field(default_factory=dict)  # archive objects finished in it
    full: bool = False  # takes no new archive object
    ended: bool = False  # completed or aborted


class Stager:
    """The import path's writer: `write_from(obj, items)` for each batch of an archive object.

    `object_finished` and `object_failed` say an archive object settled (the job calls them on
    `ObjectFinished` / `ObjectFailedEvent`); `close()` completes what can be completed when the
    pipeline is over (a graceful stop included: archive objects abandoned mid-read are left out),
    `abort()` gives up the open uploads after an error. Callbacks: `on_upload_started(key,
    upload_id)` before the first part of a staged object, `on_staged(StagedObject)` once its upload
    is complete, `on_aborted(key, upload_id)`.
    """

    batch_size = STAGING_BATCH  # read by the pipeline's batch cutter
    combines_objects = False  # archive objects are kept whole: each batch comes with its object

    def __init__(
        self,
        s3: Any,
        bucket: str,
        data_prefix: str,
        *,
        items_per_object: int = DEFAULT_ITEMS_PER_OBJECT,
        part_bytes: int = PART_BYTES,
        on_upload_started: Callable[[str, str], None] = lambda key, upload_id: None,
        on_staged: Callable[[StagedObject], None] = lambda staged: None,
        on_aborted: Callable[[str, str], None] = lambda key, upload_id: None,
        outage: OutageWatch | None = None,
    ) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes {part_bytes} is below S3's minimum part size ({MIN_PART_BYTES})")
        self._s3 = s3
        self._outage = outage  # an S3 that stops answering is waited for, up to its budget
        self._bucket = bucket
        self._prefix = data_prefix
        self._target = items_per_object
        self._part_bytes = part_bytes
        self._on_upload_started = on_upload_started
        self._on_staged = on_staged
        self._on_aborted = on_aborted
        self._current: _Open | None = None
        self._open: list[_Open] = []
        self._by_object: dict[str, _Open] = {}
        self._opening = asyncio.Lock()
        self._completions: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        self._run = secrets.token_hex(4)  # names of this process's staged objects are unique
        self._count = 0

    # ------------------------------------------------------------------ the writer

    async def write(self, items: list[ManifestItem]) -> WriteOutcome:
        raise TypeError("a Stager needs to know each batch's archive object: call write_from(obj, items)")

    async def write_from(self, obj: KeyedObject, items: list[ManifestItem]) -> WriteOutcome:
        """Append a batch of the archive object `obj` (anything with a `.key`) to its staged object."""
        self._raise_failure()
        staged = self._by_object.get(obj.key)
        if staged is None:
            staged = await self._assign(obj.key)
        kept = staged.keys.new(items)
        dropped = len(items) - len(kept)
        staged.duplicates += dropped
        if kept:
            text = item_lines(kept).encode()
            staged.raw += len(text)
            staged.items += len(kept)
            staged.buffer += staged.compressor.compress(text)
            if len(staged.buffer) >= self._part_bytes:
                await self._send_part(staged)
        if staged.items >= self._target:
            self._fill(staged)
        return WriteOutcome(len(kept), dropped)

    def object_finished(self, held: HeldObject) -> None:
        staged = self._by_object.pop(held.key, None)
        if staged is None:
            return  # no item of it was written: nothing of it is staged
        staged.pending.discard(held.key)
        staged.held[held.key] = held
        self._maybe_complete(staged)

    def object_failed(self, key: str) -> None:
        staged = self._by_object.pop(key, None)
        if staged is not None:
            staged.pending.discard(key)  # its items stay: harmless duplicates once it is staged again
            self._maybe_complete(staged)

    async def close(self) -> None:
        """Complete every staged object that holds a finished archive object; abort the rest."""
        for staged in list(self._open):
            staged.pending.clear()  # abandoned mid-read (a graceful stop): they are read again later
            staged.full = True
            self._maybe_complete(staged)
        self._by_object.clear()
        self._current = None
        while self._completions:
            await asyncio.wait(set(self._completions))
        self._raise_failure()

    async def abort(self) -> None:
        """Abort every upload not completed (after an error); never raises."""
        for task in list(self._completions):
            task.cancel()
        for staged in list(self._open):
            for task in staged.in_flight:
                task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._abort(staged)
        self._open.clear()
        self._by_object.clear()
        self._current = None

    @property
    def staged_count(self) -> int:
        """Staged objects started by this stager."""
        return self._count

    # -------------------------------------------------------------- staged objects

    async def _assign(self, key: str) -> _Open:
        async with self._opening:
            staged = self._by_object.get(key)  # another batch of it may have opened one meanwhile
            if staged is None:
                current = self._current
                if current is None or current.full or current.items >= self._target:
                    if current is not None:
                        self._fill(current)
                    current = self._current = await self._start()
                staged = current
                staged.pending.add(key)
                self._by_object[key] = staged
        return staged

    async def _start(self) -> _Open:
        self._count += 1
        key = f"{self._prefix}{self._run}-{self._count:05d}{SUFFIX}"
        # No Content-Encoding: a reader that honours it would inflate the object before ImportTable.
        answer = await ask(
            self._outage,
            lambda: self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType="application/gzip"
            ),
        )
        staged = _Open(key, answer["UploadId"], KeySet(self._target))
        self._on_upload_started(key, staged.upload_id)
        self._open.append(staged)
        return staged

    def _fill(self, staged: _Open) -> None:
        """Enough items: no new archive object joins it; it completes once its objects settle."""
        if not staged.full:
            staged.full = True
            if self._current is staged:
                self._current = None
            self._maybe_complete(staged)

    def _maybe_complete(self, staged: _Open) -> None:
        if staged.ended or not staged.full or staged.pending:
            return
        staged.ended = True
        task = asyncio.get_running_loop().create_task(self._complete(staged))
        self._completions.add(task)
        task.add_done_callback(self._completed)

    def _completed(self, task: asyncio.Task[None]) -> None:
        self._completions.discard(task)
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    async def _complete(self, staged: _Open) -> None:
        if not staged.held:  # every archive object in it failed or was abandoned
            await self._abort(staged)
            return
        staged.buffer += staged.compressor.flush()
        await self._send_part(staged, last=True)
        if staged.in_flight:
            await asyncio.wait(list(staged.in_flight))
        self._raise_failure()
        parts = sorted(staged.parts, key=lambda part: part["PartNumber"])
        await ask(
            self._outage,
            lambda: self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=staged.key,
                UploadId=staged.upload_id,
                MultipartUpload={"Parts": parts},
            ),
        )
        self._open.remove(staged)
        done = StagedObject(
            staged.key,
            staged.size,
            staged.raw,
            staged.items,
            tuple(staged.held.values()),
            staged.duplicates,
        )
        staged.keys.release()  # the key table is the big part: let it go now
        self._on_staged(done)

    async def _abort(self, staged: _Open) -> None:
        staged.ended = True
        if staged.in_flight:
            await asyncio.wait(list(staged.in_flight))
        await ask(
            self._outage,
            lambda: self._s3.abort_multipart_upload(
                Bucket=self._bucket, Key=staged.key, UploadId=staged.upload_id
            ),
        )
        if staged in self._open:
            self._open.remove(staged)
        self._on_aborted(staged.key, staged.upload_id)

    async def _send_part(self, staged: _Open, *, last: bool = False) -> None:
        """Upload what the buffer holds as the next part (waiting while two are in flight)."""
        if not staged.buffer and not (last and not staged.parts and not staged.in_flight):
            return
        while len(staged.in_flight) >= PARTS_IN_FLIGHT:
            await asyncio.wait(list(staged.in_flight), return_when=asyncio.FIRST_COMPLETED)
            self._raise_failure()
        data, staged.buffer = staged.buffer, bytearray()  # handed over, not copied
        number = staged.next_part
        staged.next_part += 1
        staged.size += len(data)
        task = asyncio.get_running_loop().create_task(self._upload(staged, number, data))
        staged.in_flight.append(task)

        def landed(done: asyncio.Task[None]) -> None:
            staged.in_flight.remove(done)
            if not done.cancelled() and done.exception() is not None and self._error is None:
                self._error = done.exception()

        task.add_done_callback(landed)

    async def _upload(self, staged: _Open, number: int, data: bytearray) -> None:
        answer = await ask(
            self._outage,
            lambda: self._s3.upload_part(
                Bucket=self._bucket, Key=staged.key, UploadId=staged.upload_id, PartNumber=number, Body=data
            ),
        )
        staged.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _raise_failure(self) -> None:
        """A part or a completion that failed (after botocore's retries) stops the writing."""
        if self._error is not None:
            raise self._error
