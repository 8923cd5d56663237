"""The benchmark's output: a markdown table of ratios against targets, the machine, the runs."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .children import ChildRun
from .fixtures import ROOT


@dataclass(frozen=True)
class Row:
    """One line of the results table. `passed` is None when the row has no target."""

    metric: str
    populator: str
    baseline: str
    ratio: str
    target: str
    passed: bool | None

    @property
    def result(self) -> str:
        return {True: "PASS", False: "**FAIL**", None: ""}[self.passed]


def render(rows: Sequence[Row], runs: Sequence[ChildRun], notes: Sequence[str], settings: str) -> str:
    """The whole report: table, notes, machine and the individual runs."""
    lines = [
        "| metric | populator | baseline | ratio | target | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *(_row_line(row) for row in rows),
    ]
    parts = ["\n".join(lines), "", f"Settings: {settings}.", ""]
    if notes:
        parts += [*(f"- {note}" for note in notes), ""]
    parts += [machine_description(), "", _runs_table(runs)]
    return "\n".join(parts) + "\n"


def _row_line(row: Row) -> str:
    cells = (row.metric, row.populator, row.baseline, row.ratio, row.target, row.result)
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _runs_table(runs: Sequence[ChildRun]) -> str:
    lines = [
        "<details><summary>Individual runs</summary>",
        "",
        "| run | wall s | exit | peak RSS MB | populator's own duration |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for run in runs:
        exit_text = "timeout" if run.timed_out else str(run.returncode)
        own = run.summary().get("duration", "")
        lines.append(f"| {run.name} | {run.seconds:.2f} | {exit_text} | {run.peak_rss_mb:.0f} | {own} |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def machine_description() -> str:
    """Where and when the numbers were taken; ratios only mean something with this next to them."""
    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Machine: {cores} cores available ({os.cpu_count()} online), {cpu_model()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"load average {load} at the end. "
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. populator at {git_revision()}."
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_revision() -> str:
    """The commit measured, marked when populator/ had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "populator"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown revision"
    return f"{head} (with uncommitted changes to populator/)" if dirty else head
