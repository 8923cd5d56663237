"""Errors raised where nobody awaits them, turned into the end of the run.

A timer's callback (the checkpoint's group commit), a logging handler (the log under
`--log-path`) or another thread has no caller to raise to: the event loop would print
"Exception in callback" and go on, the run none the wiser. Each reports its error to the run's
`Faults` instead; `Faults.run` awaits the work and, when a fault comes first, cancels it (its
cleanup runs: the checkpoint is closed, the workers stopped) and raises the fault, so the run
ends within moments with the error's own message and exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Faults:
    """Made inside the running event loop of the work it guards."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._reported: asyncio.Future[BaseException] = self._loop.create_future()

    @property
    def fault(self) -> BaseException | None:
        """The first fault reported, if any."""
        return self._reported.result() if self._reported.done() else None

    def report(self, exc: BaseException) -> None:
        """End the run with `exc` (the first fault reported counts). Safe from any thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._keep(exc)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the run ended already
                self._loop.call_soon_threadsafe(self._keep, exc)

    def _keep(self, exc: BaseException) -> None:
        if not self._reported.done():
            self._reported.set_result(exc)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work`; a fault reported before it ends cancels it and is raised instead."""
        task = self._loop.create_task(work)
        try:
            await asyncio.wait((task, self._reported), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))  # let its cleanup run (it may raise the fault again)
        fault = self.fault
        if fault is None:
            return task.result()
        if not task.cancelled():
            task.exception()  # superseded by the fault (often the same error, raised again)
        raise fault
