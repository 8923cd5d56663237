"""`python benchmarks/run.py`: generate (or reuse) the archives, start both endpoints, measure, report.

Exit status: 0 when the measurements completed, whatever they show (a missed target is a
result, not an error); 2 when the harness itself could not run (an endpoint that would not
start, an archive that could not be generated).
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import json
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .children import Endpoint, HarnessError
from .fixtures import OUT_DIR, ROOT, benchmark_spec, ensure_archive, ensure_varied_archive, write_configs
from .measurements import (
    Bench,
    Settings,
    as_json,
    capacity_limited,
    design_choices,
    dry_run_vs_zcat,
    end_to_end,
    on_demand_maximum,
    peak_memory,
)
from .report import Row, render
from .resume import CAPACITY as CRASH_CAPACITY
from .resume import a_crash_costs_seconds
from .scale import many_objects
from .staging import staging_vs_dry_run
from .varied import VARIED, scaled

MAXIMUM_REASON = "TableWriteMaxOnDemandThroughputExceeded"

FULL = Settings(
    parts=4,
    events_per_part=50_000,
    wide_parts=64,
    wide_events_per_part=1_000,
    dry_run_parts=16,
    latency_ms=5.0,
    capacity=5_000,
    budget=15.0,
    # The development machine is shared: a run of two busy processes loses more to a busy
    # neighbour than the one-core zcat does. The best of several runs estimates each command's
    # own speed (two full runs with five: 2.15x and 2.13x on the dry-run row).
    repeats=5,
    timeout=900.0,
)
QUICK = Settings(
    parts=4,
    events_per_part=2_000,
    wide_parts=64,
    wide_events_per_part=100,
    dry_run_parts=8,
    latency_ms=5.0,
    capacity=2_000,
    budget=2.0,
    repeats=1,
    timeout=180.0,
    scale_objects=(1_000, 5_000),
    varied_scale=0.04,
)


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Measure populator against its baselines and print the ratios as a markdown table.",
    )
    parser.add_argument("--quick", action="store_true", help="small archive, short budgets (a smoke run)")
    parser.add_argument("--parts", type=int, help="gzip parts in the main archive")
    parser.add_argument("--events-per-part", type=int, help="events in each part")
    parser.add_argument("--dry-run-parts", type=int, help="gzip parts in the dry-run row's long archive")
    parser.add_argument("--latency-ms", type=float, help="endpoint latency per request (default 5)")
    parser.add_argument("--capacity", type=float, help="items/s of the capacity-limited endpoint")
    parser.add_argument("--budget", type=float, help="seconds each baseline script writes")
    parser.add_argument("--repeats", type=int, help="dry-run and zcat|cut runs (best counts)")
    parser.add_argument(
        "--populator-args", default="", help='extra args for every populator run, e.g. "--writers 32"'
    )
    parser.add_argument(
        "--capacity-args",
        default="",
        help='extra args for the capacity run only, e.g. "--max-write-rate 5000"',
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where archives, logs and latest.md go")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help='measure only the steps whose name contains this text, e.g. "dry run vs" (repeatable)',
    )
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = ("parts", "events_per_part", "dry_run_parts", "latency_ms", "capacity", "budget", "repeats")
    overrides = {name: getattr(args, name) for name in sizes if getattr(args, name) is not None}
    settings = dataclasses.replace(
        base,
        **overrides,
        populator_args=shlex.split(args.populator_args),
        capacity_args=shlex.split(args.capacity_args),
        only=args.only,
    )
    return settings, args.out


def prepare(settings: Settings, out: Path) -> Bench:
    """Archives (cached) and config files; a fresh log folder for this run."""
    print("preparing archives (generated once, then cached under benchmarks/out/)...", file=sys.stderr)
    archive = ensure_archive(benchmark_spec(settings.parts, settings.events_per_part), out)
    wide = ensure_archive(benchmark_spec(settings.wide_parts, settings.wide_events_per_part), out)
    long = ensure_archive(benchmark_spec(settings.dry_run_parts, settings.events_per_part), out)
    varied = ensure_varied_archive("varied", scaled(VARIED, settings.varied_scale), out)
    storage, resolver = write_configs(out / "configs")
    # Bytecode for the code measured, as `pip install` writes it: with PYTHONDONTWRITEBYTECODE
    # set in the caller's environment, every child would otherwise compile changed modules anew.
    compileall.compile_dir(ROOT / "populator", quiet=1)
    log_dir = out / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    return Bench(settings, archive, wide, long, storage, resolver, log_dir, varied=varied)


def measure(bench: Bench) -> list[Row]:
    """Every measurement, one after the other so they never share the CPU."""
    settings = bench.settings
    with (
        Endpoint("null", settings.latency_ms, 0, bench.log_dir) as null,
        Endpoint("limited", settings.latency_ms, settings.capacity, bench.log_dir) as limited,
        Endpoint(
            "limited-on-demand", settings.latency_ms, settings.capacity, bench.log_dir, on_demand=True
        ) as hidden,
        Endpoint(
            "maximum-with-reason",
            settings.latency_ms,
            settings.capacity,
            bench.log_dir,
            on_demand=True,
            maximum_reason=MAXIMUM_REASON,
        ) as maximum,
        Endpoint("resume", settings.latency_ms, CRASH_CAPACITY, bench.log_dir) as resume,
        Endpoint(
            "maximum-without-reason",
            settings.latency_ms,
            settings.capacity,
            bench.log_dir,
            on_demand=True,
            maximum_reason="",
        ) as silent,
    ):
        rows: list[Row] = []
        for step, name in (
            (lambda: dry_run_vs_zcat(bench), "dry run vs zcat | cut"),
            (lambda: end_to_end(bench, null), "end to end vs boto3 baselines"),
            (lambda: capacity_limited(bench, limited), "capacity-limited provisioned table"),
            (lambda: capacity_limited(bench, hidden), "capacity-limited table of unknown capacity"),
            (lambda: on_demand_maximum(bench, maximum, silent), "a hidden on-demand maximum"),
            (lambda: peak_memory(bench, null), "peak RSS"),
            (lambda: many_objects(bench, null, settings.scale_objects), "many small objects"),
            (lambda: staging_vs_dry_run(bench), "import staging vs dry run"),
            (lambda: a_crash_costs_seconds(bench, resume), "a crash costs seconds"),
            (lambda: design_choices(bench, null), "design choices"),
        ):
            if settings.only and not any(text in name for text in settings.only):
                continue
            print(f"measuring: {name}...", file=sys.stderr)
            rows += step()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    settings, out = parse_args(argv)
    try:
        bench = prepare(settings, out)
        rows = measure(bench)
    except HarnessError as exc:
        print(f"benchmark harness failed: {exc}", file=sys.stderr)
        return 2
    report = render(rows, bench.runs, bench.notes, settings.describe())
    print(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(report)
    (out / "latest.json").write_text(
        json.dumps({"date": datetime.now(UTC).isoformat(), "rows": as_json(rows)}, indent=1)
    )
    return 0
