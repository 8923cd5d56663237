"""Child processes for the harness: timed runs with their own peak RSS, and the endpoints.

A measured command runs in its own process; its wall time is taken with `perf_counter` around
it. Its peak RSS is the largest `VmHWM` (the kernel's per-process high-water mark) read from
`/proc` while it runs, over it and its descendants. Not `ru_maxrss`: Linux carries the forking
process's high-water mark across `exec` into the child's, so every child of this (large) harness
would report at least the harness's own size. Output goes to log files under
`benchmarks/out/logs/`, so a chatty child can never block on a full pipe and every run can be
read afterwards.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from .fixtures import ROOT, child_env

ENDPOINT_SCRIPT = ROOT / "benchmarks" / "endpoint.py"
_SAMPLE_SECONDS = 0.05  # how often VmHWM is read
_SCAN_SECONDS = 0.5  # how often /proc is scanned for new descendants
_SUMMARY_LINE = re.compile(r"^([a-z][a-z /()]*): (.+)$")


class HarnessError(Exception):
    """The harness itself could not do its job (not a slow or failing populator)."""


@dataclass(frozen=True)
class ChildRun:
    """One finished (or killed) child process."""

    name: str
    command: list[str]
    returncode: int
    seconds: float
    peak_rss_mb: float
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def summary(self) -> dict[str, str]:
        """populator's plain `label: value` summary lines (printed when stdout is not a terminal)."""
        found: dict[str, str] = {}
        for line in self.stdout.splitlines():
            match = _SUMMARY_LINE.match(line.strip())
            if match:
                found[match.group(1)] = match.group(2)
        return found

    def problem(self) -> str:
        """Why the run did not complete cleanly, in one line (empty when it did)."""
        if self.timed_out:
            return f"{self.name}: killed after {self.seconds:.0f} s (timeout)"
        if self.returncode != 0:
            # populator names failed objects on stdout, after its summary; errors go to stderr.
            failed = [line for line in self.stdout.splitlines() if line.startswith("FAILED")]
            lines = self.stderr.strip().splitlines()[-3:] or failed[:1]
            return f"{self.name}: exit {self.returncode}: {' | '.join(lines)[:400]}"
        return ""


def run_child(
    name: str, command: Sequence[str], *, env: dict[str, str], timeout: float, log_dir: Path
) -> ChildRun:
    """Run `command` to completion (or kill it at `timeout`), timing it and reading its peak RSS.

    It runs in an empty working directory of its own (`<log_dir>/<name>.cwd`): populator keeps
    its checkpoint journal under the working directory, and a journal left by an earlier run
    would make it skip the objects this run is meant to measure.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    workdir = log_dir / f"{name}.cwd"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=out, stderr=err, env=env, cwd=workdir)
        reaped = _Reaper(process.pid)
        memory = _MemoryWatch(process.pid)
        deadline = start + timeout
        while not reaped.done.wait(_SAMPLE_SECONDS) and time.perf_counter() < deadline:
            memory.sample()
        timed_out = not reaped.done.is_set()
        if timed_out:
            process.kill()
            reaped.done.wait()
        process.returncode = reaped.returncode  # reaped by wait4: keep Popen from waiting again
    return ChildRun(
        name=name,
        command=list(command),
        returncode=reaped.returncode,
        seconds=reaped.finished - start,
        peak_rss_mb=memory.peak_kb / 1024,
        timed_out=timed_out,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


class _Reaper:
    """Waits for one pid with `os.wait4` in a thread, noting the moment it exited."""

    def __init__(self, pid: int) -> None:
        self.done = threading.Event()
        self.returncode = -1
        self.finished = 0.0
        threading.Thread(target=self._wait, args=(pid,), daemon=True).start()

    def _wait(self, pid: int) -> None:
        _, status = os.waitpid(pid, 0)
        self.finished = time.perf_counter()
        self.returncode = os.waitstatus_to_exitcode(status)
        self.done.set()


class _MemoryWatch:
    """Peak RSS of a process tree, per process, from `/proc/<pid>/status` VmHWM.

    VmHWM only grows, so sampling every few tens of milliseconds loses at most what a process
    allocates in its very last moments. Descendants (worker processes) are looked for less often,
    since that means scanning all of /proc.
    """

    def __init__(self, pid: int) -> None:
        self._root = pid
        self._pids = {pid}
        self._peaks: dict[int, int] = {}
        self._next_scan = 0.0

    @property
    def peak_kb(self) -> int:
        """The largest high-water mark of any one process of the tree."""
        return max(self._peaks.values(), default=0)

    def sample(self) -> None:
        now = time.monotonic()
        if now >= self._next_scan:
            self._pids |= _descendants(self._pids)
            self._next_scan = now + _SCAN_SECONDS
        for pid in self._pids:
            hwm = _vm_hwm_kb(pid)
            if hwm:
                self._peaks[pid] = max(self._peaks.get(pid, 0), hwm)


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass  # gone, or a zombie without memory
    return 0


def _descendants(known: set[int]) -> set[int]:
    """Processes whose parent is in `known` (one level per scan is enough at our scan rate)."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent in known:
            found.add(int(entry.name))
    return found


class Endpoint:
    """A running endpoint script and a small client for its counters.

    The script serves HTTP on a free loopback port and prints that port on its first stdout line;
    its stderr goes to `<log_dir>/endpoint-<name>.stderr`. By default it is `endpoint.py`, the
    DynamoDB stand-in, with the flags that `latency_ms`, `capacity`, `on_demand` and
    `maximum_reason` make; given `args`, `script` is started with those instead.
    """

    def __init__(
        self,
        name: str,
        latency_ms: float,
        capacity: float,
        log_dir: Path,
        *,
        on_demand: bool = False,
        maximum_reason: str | None = None,
        script: Path = ENDPOINT_SCRIPT,
        args: Sequence[str] | None = None,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.capacity = capacity
        self.on_demand = on_demand
        self.maximum_reason = maximum_reason  # None: not an on-demand maximum; "": one without reasons
        if args is None:
            args = [
                f"--latency-ms={latency_ms}",
                f"--capacity={capacity}",
                *(["--on-demand"] if on_demand else []),
                *(
                    [f"--throttling-reason={maximum_reason}", "--whole-requests"]
                    if maximum_reason is not None
                    else []
                ),
            ]
        self._stderr = (log_dir / f"endpoint-{name}.stderr").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=child_env(None),
            cwd=ROOT,
        )
        self.url = f"http://127.0.0.1:{self._read_port()}"

    def _read_port(self) -> int:
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], 30)
        line = self._process.stdout.readline().strip() if ready else b""
        if not line.isdigit():
            self.stop()
            raise HarnessError(f"the {self.name} endpoint did not start (see benchmarks/out/logs/)")
        return int(line)

    def reset(self) -> None:
        self._call("POST", "/__reset")

    def stats(self, with_keys: bool = False) -> dict[str, Any]:
        return self._call("GET", "/__stats?keys=1" if with_keys else "/__stats")

    def _call(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except OSError as exc:
            raise HarnessError(f"the {self.name} endpoint stopped answering: {exc}") from exc

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
