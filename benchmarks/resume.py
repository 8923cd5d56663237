"""A crash costs seconds, not the objects in flight (issue 23): what a kill, a stop or a budget
makes populator write again.

Six gzip parts of 20,000 events into a table admitting C = 4,000 items/s (the capacity-limited
endpoint, `--write-capacity-percent 100`), every object read at once so that none finishes
early, as when the table is the bottleneck. First a clean run, whose items the endpoint counts
(keys repeated across requests are written twice by any run: that count is the baseline, not the
distinct keys). Then, each from an empty table and a new checkpoint, run to half of that count:

* **kill -9**, then the same command to the end: items written again = all items the endpoint
  admitted over both runs − the clean run's. Target: at most two seconds of the table (2 × C).
* **SIGTERM** (a graceful stop), then the same command: target at most the requests in flight
  (writers × 25 items).
* **`--max-write-units 600`**: the items admitted before it stops: target 600 + writers × 25.

A read reset part-way through an object is measured in `tests/job/test_crash_costs_seconds.py`
(an S3 fault proxy; the benchmark's archives are local).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .children import Endpoint
from .fixtures import benchmark_spec, child_env, ensure_archive
from .measurements import Bench
from .report import Row

PARTS, EVENTS_PER_PART = 6, 20_000
CAPACITY = 4000.0
WRITERS = 64  # populator's default: what "the requests in flight" means below
BUDGET_UNITS = 600


def a_crash_costs_seconds(bench: Bench, table: Endpoint) -> list[Row]:
    events = min(EVENTS_PER_PART, bench.settings.events_per_part)
    archive = ensure_archive(benchmark_spec(PARTS, events), bench.log_dir.parent)
    work = bench.log_dir / "resume"
    work.mkdir(parents=True, exist_ok=True)
    timeout = archive.distinct_keys / CAPACITY * 4 + 120
    command = [*bench.populator(archive), "--write-capacity-percent", "100", f"--concurrency={PARTS}"]

    def populator(name: str, *extra: str) -> list[str]:
        return [*command, "--checkpoint", str(work / f"{name}.jsonl"), *extra]

    table.reset()
    clean = bench.run("resume-clean", populator("clean"), table, timeout)
    baseline = table.stats()["items_written"]
    rows = []
    for label, sig, target in (
        ("kill -9 half-way, then the same command", signal.SIGKILL, 2 * CAPACITY),
        ("SIGTERM half-way, then the same command", signal.SIGTERM, WRITERS * 25),
    ):
        name = "resume-" + label.split()[0].lower().replace("-", "")
        table.reset()
        stopped = _stop_half_way(populator(name), table, baseline // 2, sig, work / f"{name}.log")
        resumed = bench.run(f"{name}-resumed", populator(name), table, timeout)
        again = table.stats()["items_written"] - baseline
        ok = clean.ok and resumed.ok and stopped
        rows.append(
            Row(
                f"items written again, {label} (C = {CAPACITY:,.0f} items/s)",
                f"{again:,} of {baseline:,}" + ("" if ok else " (a run failed: see the notes)"),
                "",
                f"{again / CAPACITY:.2f} s of the table",
                f"≤ {target:,.0f}",
                ok and again <= target,
            )
        )
    table.reset()
    budget = bench.run(
        "resume-budget", populator("budget", "--max-write-units", str(BUDGET_UNITS)), table, timeout
    )
    admitted = table.stats()["items_written"]
    target = BUDGET_UNITS + WRITERS * 25
    rows.append(
        Row(
            f"items written by `--max-write-units {BUDGET_UNITS}` (exit {budget.returncode})",
            f"{admitted:,}",
            "",
            "",
            f"≤ {target:,}",
            budget.returncode == 4 and admitted <= target,
        )
    )
    return rows


def _stop_half_way(command: list[str], table: Endpoint, items: int, sig: int, log: Path) -> bool:
    """Run `command` until the table admitted `items`, then send `sig`; False if it ended first."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=child_env(table.url), stdout=output, stderr=output, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 600
            while table.stats()["items_written"] < items:
                if process.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
            if sig == signal.SIGKILL:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.send_signal(sig)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return True
