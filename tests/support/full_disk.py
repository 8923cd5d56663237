"""Local disks that fail, for tests: ENOSPC injected (always available), a real tiny tmpfs (where
this machine lets a test mount one), a file-size limit (a real EFBIG, no privileges needed), and a
guard that fails a test that hangs instead of letting it hang.

populator writes its checkpoint and its `--bad-rows` file through `os.write`: `DiskFull` makes
those writes fail as a full disk does (a short write, then ENOSPC) for one path only, in this
process (and in the worker processes it forks, which never write either file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class DiskFull:
    """`os.write` to `path` fails with ENOSPC once `room` more bytes were written to it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path, room: int = 0) -> None:
        self.path = str(path.resolve())
        self.room = room
        self.refused = 0  # writes refused so far
        real = os.write

        def write(fd: int, data: Any) -> int:
            if not self._ours(fd):
                return real(fd, data)
            if self.room <= 0:
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written = real(fd, memoryview(data)[: self.room])
            self.room -= written
            return written

        monkeypatch.setattr(os, "write", write)

    def _ours(self, fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}") == self.path
        except OSError:
            return False

    def free(self) -> None:
        """Space comes back."""
        self.room = 1 << 40


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: int = 64 * 1024) -> Iterator[Path | None]:
    """A tmpfs of `size` bytes mounted at `where`, or None where this machine does not let a test
    mount one (not root, no `mount`, or a container that refuses it)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield None
        return
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(directory: Path, leave: int) -> Path:
    """Fill the filesystem of `directory` until about `leave` bytes are free; the filler's path
    (delete it to free the space again)."""
    filler = directory / "filler"
    free = shutil.disk_usage(directory).free
    with open(filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
        handle.write(b"\0" * max(0, free - leave))
    return filler


# Runs argv[2:] as a Python program after limiting the size of every file it writes to argv[1]
# bytes: a write past it fails with EFBIG (Python ignores SIGXFSZ). A launcher rather than a
# preexec_fn, which is unsafe in a process with threads (the tests' moto server).
_LIMITED = (
    "import os, resource, sys; limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def with_file_size_limit(limit: int, argv: list[str]) -> list[str]:
    """`python argv...` (argv without the interpreter) with files limited to `limit` bytes."""
    return [sys.executable, "-c", _LIMITED, str(limit), *argv]


class Hung(BaseException):
    """The code under test did not end within its budget (a BaseException: nothing catches it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise `Hung` in the main thread if the block takes longer than `seconds`: a test of
    something that must not hang fails instead of hanging the suite."""

    def expired(_signum: int, _frame: Any) -> None:
        raise Hung(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
