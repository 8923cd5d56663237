"""A run publishing its status snapshot to `--log-path`: at its start, every few seconds, at its end.

A thread of its own reads the tally (through a `StatusSource`) and writes the snapshot with a
`StatusWriter`, so that a slow or failing S3 never slows the run or fails it: the first error
is logged once as a warning, later ones only at debug level, and the run goes on (the next
snapshot tries again). The last snapshot, the run's outcome, is waited for at most
`FINAL_WAIT_SECONDS` when the run ends.

`--processes` forks its workers while the feed runs. A child forked while the feed's thread is
inside botocore (importing a module, holding a lock) inherits what it holds, held by a thread
the child does not have: it hung for good on its first import or S3 call (seen). So a run that
will fork (`forks`, its worker count) has its feed wait for the forks before its first write
(`FIRST_WAIT_SECONDS` at most: a run may fail before it forks), and, for any later fork, the
thread writes only while it holds its feed's lock, which a fork takes first
(`os.register_at_fork`; `FORK_WAIT_SECONDS` at most).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from ..errors import PopulatorError

if TYPE_CHECKING:  # imported by the run's modules: kept light for every command's start
    from .shard_status import ShardStatus, StatusSource
    from .status_store import StatusWriter

DEFAULT_STATUS_INTERVAL = 10.0
FINAL_WAIT_SECONDS = 10.0
FIRST_WAIT_SECONDS = 15.0
FORK_WAIT_SECONDS = 5.0
log = logging.getLogger("populator.run")
_FEEDS: weakref.WeakSet[StatusFeed] = weakref.WeakSet()  # the feeds of this process, for forks
_HELD: list[threading.Lock] = []  # the locks taken before a fork, released after it
_forks = 0  # forks made by this process so far


def _before_fork() -> None:
    for feed in list(_FEEDS):
        if feed._writing.acquire(timeout=FORK_WAIT_SECONDS):
            _HELD.append(feed._writing)


def _after_fork_in_parent() -> None:
    global _forks
    _forks += 1
    _after_fork()
    for feed in list(_FEEDS):
        feed._forked()


def _after_fork() -> None:
    while _HELD:
        _HELD.pop().release()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork)


class StatusFeed:
    """Use as a context manager around a run; `finish(exit_code)` publishes its outcome."""

    def __init__(
        self,
        source: StatusSource,
        writer: StatusWriter,
        interval: float = DEFAULT_STATUS_INTERVAL,
        *,
        forks: int = 0,
    ) -> None:
        self._source = source
        self._writer = writer
        self._interval = interval
        self._stopped = threading.Event()
        self._writing = threading.Lock()  # held while the thread is in the writer (see the module)
        self._forks_wanted = forks
        self._forks_at_start = 0
        self._ready = threading.Event()  # the forks are done (or none is coming): writes may start
        self._final: ShardStatus | None = None
        self._failed_once = False
        self.published = 0  # snapshots written
        self._thread = threading.Thread(target=self._loop, name="populator-status", daemon=True)

    @property
    def where(self) -> str:
        return self._writer.where

    def _forked(self) -> None:
        if _forks - self._forks_at_start >= self._forks_wanted:
            self._ready.set()

    def _loop(self) -> None:
        try:
            deadline = time.monotonic() + FIRST_WAIT_SECONDS
            while not self._ready.wait(0.1) and not self._stopped.is_set() and time.monotonic() < deadline:
                pass
            if not self._stopped.is_set():  # else the outcome, below, is all there is to say
                self._publish(self._source.snapshot())
            while not self._stopped.wait(self._interval):
                self._publish(self._source.snapshot())
            if self._final is not None:
                self._publish(self._final)
        finally:
            with self._writing:
                self._writer.close()

    def _publish(self, status: ShardStatus) -> None:
        try:
            with self._writing:
                self._writer.put(status.to_bytes())
        except Exception as exc:  # the OS's, botocore's, an unreachable endpoint: never the run's
            from ..errors import describe_failure

            why = str(exc) if isinstance(exc, PopulatorError) else describe_failure(exc)
            if self._failed_once:
                log.debug("cannot publish the status snapshot to %s: %s", self.where, why)
            else:
                self._failed_once = True
                log.warning(
                    "cannot publish the status snapshot to %s (the run goes on; `populator status` "
                    "will show this run as stale): %s",
                    self.where,
                    why,
                )
        else:
            self.published += 1

    def __enter__(self) -> StatusFeed:
        # The thread's first S3 call would import it, registering at-fork hooks in the middle of
        # a fork (an after-fork hook without its before: "release unlocked lock", seen).
        import concurrent.futures.thread  # noqa: F401

        self._forks_at_start = _forks
        if self._forks_wanted <= 0:
            self._ready.set()
        _FEEDS.add(self)
        self._thread.start()
        return self

    def finish(self, exit_code: int, error: str | None = None) -> None:
        """Publish the run's outcome (waited for at most FINAL_WAIT_SECONDS) and stop."""
        if self._stopped.is_set():
            return
        self._final = self._source.snapshot(exit_code=exit_code, error=error)
        self._stopped.set()
        self._thread.join(timeout=FINAL_WAIT_SECONDS)
        if self._thread.is_alive():
            log.warning(
                "the last status snapshot is not written to %s yet; the run ends without it", self.where
            )

    def __exit__(self, *exc: object) -> None:
        """Stop without an outcome (when `finish` was not reached)."""
        if not self._stopped.is_set():
            self._stopped.set()
            self._thread.join(timeout=FINAL_WAIT_SECONDS)
