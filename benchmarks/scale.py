"""Archives of many small objects: memory and time per object, first run and resume (issue 14).

A year of hourly batch runs is 8,760 run folders and 10^5-10^6 objects. These rows write a
local archive of `objects` gzip objects of 2 events each, spread over run folders of 50 objects
(so 10,000 objects are 200 runs), back-fill it into the null endpoint with a checkpoint, then run
the same command again, which skips every object. Measured for 10,000 and 100,000 objects:

- peak RSS of each run, and the bytes per object between the two sizes (the slope, so start-up
  memory, the same for both, cancels out);
- objects/s: objects ÷ populator's own duration (its summary's `duration`, which starts after
  the interpreter and the imports, so the figure is the per-object cost alone), as a ratio to a
  baseline measured on the same archive in the same run, right after it: for the first run,
  `find -exec zcat | cut -f3,7,130` (every object opened, decompressed and its three fields cut:
  the reading alone, no write); for the resume, `find -printf '%s %T@ %p'` (a bare listing of
  every object with its size and mtime, which is all a resume needs of a finished object). The
  machine's speed then cancels out; an absolute objects/s target did not (it failed or passed
  with the load of the machine).
"""

from __future__ import annotations

import dataclasses
import gzip
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from populator.samples.lines import enriched_line

from .children import Endpoint
from .fixtures import OUT_DIR
from .measurements import Bench, ratio_row
from .report import Row

SIZES = (10_000, 100_000)
OBJECTS_PER_RUN = 50
EVENTS_PER_OBJECT = 2
BYTES_PER_OBJECT_TARGET = 64
# × the baseline's objects/s: the absolute targets these rows had (2,000 and 50,000 objects/s "on
# this machine"), divided by the baselines measured on this machine when it was quiet (26,198 and
# 335,503 objects/s, docs/benchmarks.md): the same bars, now held whatever the machine and its load.
FIRST_RUN_TARGET = 0.075
RESUME_TARGET = 0.15
# The baselines, given the archive's root as $1.
READ_BASELINE = (
    'set -o pipefail; find "$1" -type f -name "*.gz" -exec zcat -- {} + | cut -f3,7,130 >/dev/null'
)
LIST_BASELINE = 'find "$1" -type f -name "*.gz" -printf "%s %T@ %p\\n" >/dev/null'
BASELINES = {
    "first": (READ_BASELINE, "find -exec zcat | cut"),
    "resume": (LIST_BASELINE, "find -printf (a listing)"),
}
_GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class TinyArchive:
    root: Path
    objects: int


def ensure_tiny_archive(objects: int, out_dir: Path = OUT_DIR) -> TinyArchive:
    """`objects` gzip objects of 2 realistic events each, generated once and cached."""
    root = out_dir / "archives" / f"tiny-{objects}-v{_GENERATOR_VERSION}"
    done = root / ".complete"
    if done.exists():
        return TinyArchive(root, objects)
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(objects)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(objects):
        run, position = divmod(index, OBJECTS_PER_RUN)
        moment = start + timedelta(hours=run)
        folder = root / f"run={moment:%Y-%m-%d-%H-%M-%S}"
        if position == 0:
            folder.mkdir(parents=True)
        etl = (moment + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.000")
        lines = [
            enriched_line(
                rng,
                event_id=f"{index:08x}-{n:04x}-4000-8000-{rng.getrandbits(48):012x}",
                etl_tstamp=etl,
                fingerprint=f"{rng.getrandbits(128):032x}",
            )
            for n in range(EVENTS_PER_OBJECT)
        ]
        (folder / f"part-{position:05d}.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 1))
    done.write_text("")
    return TinyArchive(root, objects)


def _duration(summary: dict[str, str]) -> float | None:
    raw = summary.get("duration", "").removesuffix(" s").replace(",", "")
    try:
        return float(raw)
    except ValueError:
        return None


def many_objects(bench: Bench, null: Endpoint, sizes: tuple[int, ...] = SIZES) -> list[Row]:
    """Peak RSS and objects/s of a first run and of a resume, at two archive sizes."""
    measured: dict[tuple[int, str], tuple[float, float | None, str]] = {}
    baseline_rates: dict[str, float] = {}
    for objects in sizes:
        archive = ensure_tiny_archive(objects)
        journal = bench.log_dir / f"scale-{objects}.journal"
        journal.unlink(missing_ok=True)
        command = [
            *bench.populator(archive),  # type: ignore[arg-type] - only .root is read
            f"--checkpoint={journal}",
        ]
        for phase in ("first", "resume"):
            name = f"populator-{objects}-objects-{phase}"
            run = bench.run(name, command, null, timeout=objects / 200 + 120)
            duration = _duration(run.summary())
            rate = objects / duration if run.ok and duration else None
            status = "" if run.ok else f" ({'timeout' if run.timed_out else f'exit {run.returncode}'})"
            measured[(objects, phase)] = (run.peak_rss_mb, rate, status)
            if objects == sizes[-1]:  # right after populator's, on the same archive and machine
                script, _ = BASELINES[phase]
                base = bench.run(
                    f"baseline-{objects}-objects-{phase}",
                    ["bash", "-c", script, phase, str(archive.root)],
                    None,
                    timeout=objects / 200 + 120,
                )
                baseline_rates[phase] = objects / base.seconds if base.ok and base.seconds > 0 else 0.0
    small, large = sizes[0], sizes[-1]
    rows: list[Row] = []
    for phase, target in (("first", FIRST_RUN_TARGET), ("resume", RESUME_TARGET)):
        (rss_small, _, _), (rss_large, rate, status) = measured[(small, phase)], measured[(large, phase)]
        slope = (rss_large - rss_small) * 1024 * 1024 / (large - small)
        rows.append(
            Row(
                f"peak RSS per object, {phase} run, {small:,} → {large:,} objects",
                f"{slope:,.0f} B/object ({rss_small:,.0f} → {rss_large:,.0f} MB){status}",
                "",
                "",
                f"≤ {BYTES_PER_OBJECT_TARGET} B",
                not status and slope <= BYTES_PER_OBJECT_TARGET,
            )
        )
        label = "first run (2-event objects, null endpoint)" if phase == "first" else "resume, all skipped"
        row = ratio_row(
            f"objects/s, {label}, {large:,} objects",
            rate or 0.0,
            baseline_rates.get(phase, 0.0),
            BASELINES[phase][1],
            target,
            unit="objects/s",
        )
        rows.append(
            row
            if not status
            else dataclasses.replace(row, populator=f"{row.populator}{status}", passed=False)
        )
    return rows
