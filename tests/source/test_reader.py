"""reader: gzip detection by magic bytes, multi-member streams, line splitting and limits."""

from __future__ import annotations

import asyncio
import gzip
import io
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import pytest

from populator.events import TooLongLine
from populator.source import reader
from populator.source.reader import CorruptObject, LineBlock, decoded_chunks, file_chunks, iter_lines


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_lines(
    data: bytes, chunk: int = 7, max_line: int = 1024 * 1024
) -> list[tuple[int, bytes | None]]:
    out = []
    async for block in iter_lines(decoded_chunks(chunked(data, chunk)), max_line=max_line):
        assert isinstance(block, LineBlock)
        out.extend(
            (block.first + i, None if isinstance(line, TooLongLine) else line.removesuffix(b"\n"))
            for i, line in enumerate(block.lines)
        )
    return out


async def raw_lines(data: bytes, chunk: int) -> list[bytes]:
    return [line async for block in iter_lines(chunked(data, chunk)) for line in block.lines]


TEXT = b"alpha\nbeta\n\ngamma\n"


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
async def test_plain_text_lines_with_numbers(chunk):
    assert await read_lines(TEXT, chunk) == [(1, b"alpha"), (2, b"beta"), (3, b""), (4, b"gamma")]


async def test_last_line_without_newline_and_crlf():
    assert await read_lines(b"a\r\nb") == [(1, b"a"), (2, b"b")]


@pytest.mark.parametrize("chunk", [1, 2, 1 << 20])
async def test_lines_keep_their_newline_and_lose_a_crlf_whole(chunk):
    assert await raw_lines(b"a\n\nb\r\nc\r", chunk) == [b"a\n", b"\n", b"b", b"c"]


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
async def test_gzip_detected_by_magic_bytes(chunk):
    assert [line for _, line in await read_lines(gzip.compress(TEXT), chunk)] == [
        b"alpha",
        b"beta",
        b"",
        b"gamma",
    ]


@pytest.mark.parametrize("chunk", [1, 9, 1 << 20])
async def test_multi_member_gzip_even_split_mid_line(chunk):
    data = gzip.compress(b"alpha\nbe") + gzip.compress(b"ta\ngamma\n") + gzip.compress(b"delta")
    assert [line for _, line in await read_lines(data, chunk)] == [b"alpha", b"beta", b"gamma", b"delta"]


async def test_trailing_zero_padding_after_gzip_is_ignored():
    data = gzip.compress(TEXT) + b"\x00" * 100
    assert len(await read_lines(data)) == 4


async def test_truncated_gzip_is_corrupt():
    data = gzip.compress(TEXT * 1000)
    with pytest.raises(CorruptObject, match="truncated"):
        await read_lines(data[: len(data) // 2])


async def test_corrupt_gzip_is_corrupt():
    data = bytearray(gzip.compress(TEXT * 1000))
    data[20:40] = b"\xff" * 20
    with pytest.raises(CorruptObject):
        await read_lines(bytes(data))


async def test_garbage_after_a_member_is_corrupt():
    with pytest.raises(CorruptObject):
        await read_lines(gzip.compress(TEXT) + b"not gzip")


async def test_empty_and_tiny_inputs():
    assert await read_lines(b"") == []
    assert await read_lines(b"x") == [(1, b"x")]


@pytest.mark.parametrize("chunk", [100, 4096, 1 << 20])
async def test_overlong_line_is_reported_once_and_skipped(chunk):
    data = b"first\n" + b"x" * 5000 + b"\nafter\n" + b"y" * 1001 + b"\nlast"
    assert await read_lines(data, chunk, max_line=1000) == [
        (1, b"first"),
        (2, None),
        (3, b"after"),
        (4, None),
        (5, b"last"),
    ]


async def test_overlong_line_does_not_grow_memory():
    # 64 MiB of line with no newline, gzip'd (highly compressible): memory must stay near the cap.
    line = b"z" * (64 * 1024 * 1024)
    data = gzip.compress(line + b"\nafter\n", compresslevel=1)
    tracemalloc.start()
    try:
        lines = await read_lines(data, chunk=256 * 1024, max_line=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [(1, None), (2, b"after")]
    assert peak < 16 * 1024 * 1024


async def test_high_ratio_gzip_is_inflated_in_bounded_pieces():
    data = zlib.compress(b"", 1)  # not gzip: passes through untouched
    assert await read_lines(data, 1 << 20) == [(1, data)]
    bomb = gzip.compress((b"a" * 1000 + b"\n") * 100_000, compresslevel=9)  # ~100 MB from ~100 KB
    count = 0
    async for block in iter_lines(decoded_chunks(chunked(bomb, 1 << 20))):
        count += len(block.lines)
    assert count == 100_000


async def test_file_chunks_streams_a_local_file(tmp_path):
    path = tmp_path / "part-00000.gz"
    path.write_bytes(gzip.compress(TEXT * 50_000))
    total = 0
    async for block in iter_lines(decoded_chunks(file_chunks(str(path)))):
        total += len(block.lines)
    assert total == 4 * 50_000


async def test_a_large_local_file_is_read_on_the_loop_and_lets_other_tasks_run(tmp_path, monkeypatch):
    data = bytes(range(256)) * 4096  # 1 MiB: streamed, not read whole
    path = tmp_path / "part-00000"
    path.write_bytes(data)
    loop = asyncio.get_running_loop()

    def no_thread(*args, **kwargs):
        raise AssertionError("a fast local read went through a thread")

    monkeypatch.setattr(loop, "run_in_executor", no_thread)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    chunks = [chunk async for chunk in file_chunks(str(path), path.stat().st_size)]
    task.cancel()
    assert b"".join(chunks) == data and len(chunks) == len(data) // reader.CHUNK_BYTES
    assert ticks >= len(chunks) - 1  # the loop went round between chunks


async def test_reads_that_keep_stalling_go_through_a_thread(tmp_path, monkeypatch):
    data = b"x" * (3 * reader.CHUNK_BYTES + 5)
    path = tmp_path / "part-00000"
    path.write_bytes(data)
    monkeypatch.setattr(reader, "FAST_READ_SECONDS", -reader.STALL_SECONDS)  # every read "stalls"
    threads: list[int] = []  # the thread of each read

    class Recorded(io.FileIO):
        def read(self, size: int = -1) -> bytes | None:
            threads.append(threading.get_ident())
            return super().read(size)

    monkeypatch.setattr(reader, "open", lambda path, mode, buffering: Recorded(path, mode), raising=False)
    chunks = [chunk async for chunk in file_chunks(str(path))]
    assert b"".join(chunks) == data
    main = threading.get_ident()
    assert threads[0] == main and threads[1:] and all(ident != main for ident in threads[1:])
