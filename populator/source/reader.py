"""Stream one archive object as lines: fetch, detect gzip by magic bytes, split lines.

Nothing here holds a whole object in memory. Compressed chunks are inflated with a bounded
output size (so a 1000:1 gzip bomb cannot balloon memory), multi-member gzip is followed member
by member, and a line longer than `MAX_LINE_BYTES` is reported once as too long and skipped
without being buffered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from typing import Any, cast

from isal.igzip_lib import DECOMP_GZIP, IgzipDecompressor, IsalError

from ..events import KEPT_PREFIX, MAX_LINE_BYTES, TooLongLine

# aiobotocore ships no annotations (pyproject's mypy overrides): its S3 client is `Any` here.

CHUNK_BYTES = 64 * 1024  # per reader; 256 KiB cost ~2.7 MB a reader at --concurrency 64 (measured)
# Upper bound on what one decompress call may produce, and so on a block of lines: keeps memory
# flat on high ratios, and a block (parsed in a dozen passes) inside a core's 512 KiB L2 cache.
# 1 MiB held a 64 KiB read of a 9:1 part whole; 256 KiB: a third fewer L2 misses, as many
# instructions (cachegrind, L2 modelled as the LL cache; 8 parts of benchmarks/varied.py).
MAX_INFLATE_BYTES = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# isal's stub declares `IsalError: Exception`, an instance; it is the class of its errors.
_IsalError = cast("type[Exception]", IsalError)


class CorruptObject(Exception):
    """The object's bytes are not what they claim to be (truncated or corrupt gzip)."""


@dataclass(slots=True)
class LineBlock:
    """Consecutive lines of an object, starting at line number `first` (1-based).

    A line is its bytes with its newline (the last line of an object may have none), or a
    `TooLongLine` (only its head is kept) when it was longer than the limit. Blocks rather
    than single lines keep per-line overhead low.
    """

    first: int
    lines: list[bytes]


async def s3_chunks(s3: Any, bucket: str, key: str) -> AsyncIterator[bytes]:
    """The raw bytes of an S3 object, streamed."""
    response = await s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        while chunk := await body.read(CHUNK_BYTES):
            yield chunk


# A file this small is read in one call on the event loop: a read of a few KiB takes microseconds,
# where aiofiles' three hops to a thread (open, read, close) cost about 0.1 ms an object, a tenth of
# what a 2-event object costs in all (cProfile, 2,000 objects).
SMALL_FILE_BYTES = 256 * 1024


# A larger local file is read on the event loop too, a chunk at a time: from the page cache or a
# local disk 64 KiB take some tens of microseconds, and aiofiles' hop to one of its threads for each
# cost more than the read: GIL hand-overs between threads (varied benchmark archive, one process:
# 2.7 s of CPU against 2.1 s, 5,800 involuntary context switches against 54, 20k minor page faults
# against 7k). Reads that keep taking longer (a network mount, a cold disk) send the rest of the
# file through a thread, so that the loop keeps serving the other readers and the writers: each
# read may take FAST_READ_SECONDS, and once the time beyond that adds up to STALL_SECONDS (a
# preempted read on a busy machine now and then never does) the thread takes over.
FAST_READ_SECONDS = 0.001
STALL_SECONDS = 0.05


async def file_chunks(path: str, size: int | None = None) -> AsyncIterator[bytes]:
    """The raw bytes of a local file, streamed (`size`, when known, lets a small one be read whole)."""
    if size is not None and size <= SMALL_FILE_BYTES:
        with open(path, "rb") as small:
            data = small.read(SMALL_FILE_BYTES + 1)
        if len(data) <= SMALL_FILE_BYTES:
            if data:
                yield data
            return
        # It grew since it was listed: stream it instead, from the start.
    with open(path, "rb", buffering=0) as handle:
        stalled = 0.0  # seconds the reads took beyond FAST_READ_SECONDS each, lately
        read_in_thread = None
        while True:
            if read_in_thread is None:
                started = time.perf_counter()
                chunk = handle.read(CHUNK_BYTES)
                stalled = max(0.0, stalled + time.perf_counter() - started - FAST_READ_SECONDS)
                if stalled > STALL_SECONDS:
                    read_in_thread = partial(asyncio.get_running_loop().run_in_executor, None, handle.read)
                await asyncio.sleep(0)  # let the other readers, the writers and the signals in
            else:
                chunk = await read_in_thread(CHUNK_BYTES)
            if not chunk:
                return
            yield chunk


class _GzipStream:
    """Inflates concatenated gzip members; output per call is bounded.

    isal's IgzipDecompressor rather than its zlib-compatible decompressobj: it keeps input it
    has not used yet inside, so nothing is copied out as `unconsumed_tail`, and it fills its
    output buffer without growing it step by step (callgrind, one-part dry run: 2.9k fewer
    instructions a line, 2.3k of them in memcpy). It checks each member's CRC-32 and length as
    zlib does.
    """

    def __init__(self) -> None:
        self._inflater = IgzipDecompressor(flag=DECOMP_GZIP)
        self._member_has_data = False
        self._after_member = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate `data`, yielding at most MAX_INFLATE_BYTES at a time (lazily, so a
        high-ratio chunk never sits in memory whole)."""
        while True:
            if self._after_member:
                # Bytes after a finished member: a new member, or padding some tools append.
                if not data.strip(b"\x00"):
                    return
                if not data.startswith(GZIP_MAGIC[: len(data)]):
                    raise CorruptObject("unexpected bytes after a gzip member")
                self._inflater = IgzipDecompressor(flag=DECOMP_GZIP)
                self._after_member = False
                self._member_has_data = False
            elif not data and self._inflater.needs_input:
                return
            try:
                chunk = self._inflater.decompress(data, MAX_INFLATE_BYTES)
            except _IsalError as exc:
                raise CorruptObject(f"corrupt gzip data ({exc})") from None
            self._member_has_data = True
            if chunk:
                yield chunk
            if self._inflater.eof:
                data = self._inflater.unused_data
                self._after_member = True
            else:
                data = b""  # the rest of the input is inside the inflater, or used up

    def close(self) -> None:
        if self._member_has_data and not self._after_member:
            raise CorruptObject("truncated gzip stream (the last member ends early)")


async def decoded_chunks(raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Raw bytes → plain bytes, inflating when the first bytes are the gzip magic."""
    gzip: _GzipStream | None = None
    head = b""
    decided = False
    async for chunk in raw:
        if not decided:
            head += chunk
            if len(head) < len(GZIP_MAGIC):
                continue
            decided = True
            chunk, head = head, b""
            if chunk.startswith(GZIP_MAGIC):
                gzip = _GzipStream()
        if gzip is None:
            yield chunk
        else:
            for piece in gzip.feed(chunk):
                yield piece
    if not decided and head:
        yield head
    if gzip is not None:
        gzip.close()


def _tidy(lines: list[bytes], max_line: int) -> None:
    """Stand-ins for too-long lines, and CR LF endings dropped, in place."""
    for index, line in enumerate(lines):
        if len(line) > max_line and len(line.removesuffix(b"\n")) > max_line:
            lines[index] = TooLongLine(line[:KEPT_PREFIX])
        elif line.endswith(b"\r\n"):
            lines[index] = line[:-2]


async def iter_lines(
    chunks: AsyncIterator[bytes], max_line: int = MAX_LINE_BYTES
) -> AsyncIterator[LineBlock]:
    """Plain bytes → blocks of lines, each with its `\\n` (a `\\r\\n` is dropped whole); the
    last line needs no newline."""
    number = 1  # number of the next line to come out
    pending = b""
    skipping = False  # inside a too-long line, dropping bytes until its newline
    async for chunk in chunks:
        if skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                continue
            skipping = False
            chunk = chunk[cut + 1 :]
        if not chunk:
            continue
        # readlines finds newlines with memchr; bytes.split(b"\n") tests byte by byte and
        # costs 7k more instructions a line (callgrind, 1.4 KB lines).
        lines = BytesIO(chunk).readlines()
        if pending:  # joined to its rest alone: joining whole chunks copied every byte once more
            lines[0] = pending + lines[0]
        size = len(pending) + len(chunk)
        crs = b"\r" in chunk or b"\r" in pending
        pending = b"" if lines[-1].endswith(b"\n") else lines.pop()
        # Two scans of the whole chunk in C spare a Python step per line when, as nearly
        # always, no line is too long and none ends in CR.
        if size > max_line or crs:
            _tidy(lines, max_line)
        if len(pending) > max_line:
            lines.append(TooLongLine(pending[:KEPT_PREFIX]))
            pending = b""
            skipping = True
        if lines:
            yield LineBlock(number, lines)
            number += len(lines)
    if pending:
        yield LineBlock(number, [pending.removesuffix(b"\r")])
