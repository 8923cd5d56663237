"""SIGINT/SIGTERM: stop gracefully on the first signal, at once on the second.

The first signal sets the `stop` event the pipeline watches (no new object is taken, writes
already queued for fully read objects finish) and arms a deadline; the second signal, or the
deadline, cancels the job outright. Either way the checkpoint journal stays valid, since each
of its lines is written whole.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..errors import EXIT_OK, EXIT_SIGINT, EXIT_SIGNALS

GRACE_SECONDS = 10.0


@dataclass
class Interruption:
    """Which signals arrived while the job ran."""

    signals: list[signal.Signals] = field(default_factory=list)

    @property
    def first(self) -> signal.Signals | None:
        return self.signals[0] if self.signals else None

    @property
    def exit_code(self) -> int:
        return EXIT_SIGNALS.get(self.first, EXIT_SIGINT) if self.first else EXIT_OK


async def run_interruptible(
    job: Callable[[asyncio.Event], Awaitable[object]],
    *,
    on_signal: Callable[[signal.Signals, bool], None] = lambda sig, first: None,
    grace: float = GRACE_SECONDS,
) -> Interruption:
    """Run `job(stop)` until it returns or is interrupted; re-raises anything else it raises."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stop = asyncio.Event()
    interruption = Interruption()

    def handle(sig: signal.Signals) -> None:
        first = not interruption.signals
        interruption.signals.append(sig)
        on_signal(sig, first)
        if first:
            stop.set()
            loop.call_later(grace, task.cancel)
        else:
            task.cancel()

    for sig in EXIT_SIGNALS:
        loop.add_signal_handler(sig, handle, sig)
    try:
        await job(stop)
    except asyncio.CancelledError:
        if not interruption.signals:
            raise
        task.uncancel()
    finally:
        for sig in EXIT_SIGNALS:
            loop.remove_signal_handler(sig)
    return interruption
