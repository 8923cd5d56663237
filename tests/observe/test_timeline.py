"""The run's timeline: a point every step, bounded in number (and memory) over any duration."""

from __future__ import annotations

import itertools
import json
import sys
import tracemalloc
from collections import Counter

from populator.observe.report import Tally
from populator.observe.timeline import MAX_POINTS, Timeline


def test_a_24_hour_run_keeps_at_most_max_points_and_its_memory_stays_small() -> None:
    tally = Tally()
    timeline = Timeline(tally, step=5.0)
    tracemalloc.start()
    for second in range(0, 24 * 3600, 1):  # the sampler's one-second tick, for 24 hours
        tally.items_written = second * 1000  # items/s and running totals as a real run has them
        tally.throttle_events = second // 60
        tally.throttled_by_reason = Counter({"ProvisionedThroughputExceededException": second // 60})
        timeline.sample(tally.started + second)
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    points = timeline.points
    assert len(points) <= MAX_POINTS
    assert timeline.step == 5.0 * 2**4  # coarsened four times: points 80 s apart cover 24 h in 1,080
    assert current < 2 * 1024 * 1024, current  # a few hundred KB at most
    # Nothing is lost but resolution: running totals, the last one the run's.
    timeline.sample(tally.started + 24 * 3600, force=True)  # the end, as the sampler keeps it
    assert timeline.points[-1].t == 24 * 3600 and timeline.points[-1].items == (24 * 3600 - 1) * 1000
    last_due = [p.t for p in points][-1]
    assert 24 * 3600 - last_due <= timeline.step  # nothing dropped at the newest end
    assert [p.t for p in points] == sorted(p.t for p in points)
    assert all(b.items >= a.items for a, b in itertools.pairwise(points))
    assert len(json.dumps(timeline.as_dict())) < 512 * 1024
    assert sys.getsizeof(timeline.as_dict()["points"]) < 64 * 1024


def test_points_are_due_every_step_and_the_end_is_always_kept() -> None:
    tally = Tally()
    timeline = Timeline(tally, step=5.0)
    for second in range(12):
        tally.items_written = second
        timeline.sample(tally.started + second)
    assert [p.t for p in timeline.points] == [0.0, 5.0, 10.0]
    timeline.sample(tally.started + 11.5, force=True)
    assert timeline.points[-1].t == 11.5 and timeline.points[-1].items == 11
    report = timeline.as_dict()
    assert report["columns"][0] == "t" and report["step_s"] == 5.0
    assert report["points"][1][report["columns"].index("items")] == 5


def test_max_points_must_be_even() -> None:
    import pytest

    with pytest.raises(ValueError):
        Timeline(Tally(), max_points=3)


def test_a_runs_report_holds_its_timeline(tmp_path) -> None:
    from rich.console import Console

    from populator.commands.build import build_job
    from populator.commands.execute import execute
    from populator.commands.outputs import RunOutputs
    from populator.samples.archive import SampleSpec, write_archive
    from tests.support.backfill_helpers import NOW, write_configs

    write_archive(tmp_path / "archive", SampleSpec(runs=1, parts_per_run=2, events_per_part=50, now=NOW))
    storage, resolver = write_configs(tmp_path, "t")
    job = build_job(str(tmp_path / "archive"), storage, resolver, dry_run=True, now=NOW.timestamp())
    report = tmp_path / "report.json"
    quiet = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    assert execute(job, quiet, quiet, outputs=RunOutputs(quiet=True, report=report)) == 0
    timeline = json.loads(report.read_text())["timeline"]
    assert timeline["columns"][:3] == ["t", "items", "throttled"]
    assert len(timeline["points"]) >= 2  # the start and the end, always
    items = timeline["columns"].index("items")
    assert timeline["points"][-1][items] == json.loads(report.read_text())["items_planned"]


def test_halving_keeps_the_newest_point() -> None:
    tally = Tally()
    timeline = Timeline(tally, step=1.0, max_points=4)
    for second in range(5):  # the fifth point finds the timeline full
        tally.items_written = second
        timeline.sample(tally.started + second)
    assert [p.t for p in timeline.points] == [1.0, 3.0, 4.0] and timeline.step == 2.0
    assert timeline.points[-1].items == 4
