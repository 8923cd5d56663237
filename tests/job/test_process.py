"""One process's share of a job: a task the writer keeps beside the pipeline never dies unseen."""

from __future__ import annotations

import asyncio

import pytest

import populator.sink.throughput
from populator.job.process import until_a_helper_fails
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, run_job, write_configs


def test_a_failing_helper_ends_the_work_at_once_with_its_error() -> None:
    cancelled = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def helper() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("the helper broke")

    async def main() -> float:
        started = asyncio.get_running_loop().time()
        with pytest.raises(RuntimeError, match="the helper broke"):
            await until_a_helper_fails([asyncio.create_task(helper())], work())
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(main()) < 5  # not the minute the work would take
    assert cancelled.is_set()


def test_the_work_ends_as_it_ends_whatever_the_helpers_do() -> None:
    async def forever() -> None:
        await asyncio.sleep(60)

    async def main() -> None:
        cancelled = asyncio.create_task(forever())
        cancelled.cancel()
        done_early = asyncio.create_task(asyncio.sleep(0))
        running = asyncio.create_task(forever())

        async def work() -> None:
            await asyncio.sleep(0.05)

        await until_a_helper_fails([cancelled, done_early, running], work())
        assert not running.done()  # the helpers are their owner's to stop
        running.cancel()

        async def failing() -> None:
            raise ValueError("the work's own error")

        with pytest.raises(ValueError, match="the work's own error"):
            await until_a_helper_fails([], failing())

    asyncio.run(main())


def test_the_rate_watcher_failing_ends_the_run_with_its_error(
    aws, unique_name, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task that keeps the write rate current fails (a subscriber of its state raising, an
    error nobody foresaw): the run ends with that error, it does not go on without it."""

    async def broken(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("the rate watcher broke")

    monkeypatch.setattr(populator.sink.throughput, "watch_rate", broken)
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=20, events_per_part=200, now=NOW, seed=3))
    storage, resolver = write_configs(tmp_path, unique_name)

    with pytest.raises(RuntimeError, match="the rate watcher broke"):
        run_job(str(root), storage, resolver, on_demand=True, concurrency=2, writers=2)
