"""populator on a pseudo-terminal of a chosen width, as a user at a terminal runs it."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable


def run_in_a_terminal(
    args: list[str],
    env: dict[str, str],
    columns: int = 150,
    *,
    interrupt_when: Callable[[bytes], bool] | None = None,
    budget: float = 120,
) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; its exit code and output.

    `interrupt_when(output so far)` true: Ctrl-C (SIGINT) is sent, once, as a user would.
    """
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "populator", *args],
        env={**env, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + budget
    interrupted = False
    while time.monotonic() < deadline:
        if interrupt_when is not None and not interrupted and interrupt_when(b"".join(chunks)):
            process.send_signal(signal.SIGINT)
            interrupted = True
        ready, _, _ = select.select([main], [], [], 0.1)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    code = process.wait(timeout=30)
    os.close(main)
    return code, b"".join(chunks).decode("utf-8", "replace")
