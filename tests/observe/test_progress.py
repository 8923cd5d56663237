"""What the operator sees during a run: a live display on a terminal, plain progress lines elsewhere."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections import Counter

import pytest
from rich.console import Console

from populator.observe.hub import (
    BytesRead,
    Hub,
    ItemsAcknowledged,
    LinesParsed,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectListed,
    ObjectSkipped,
    RateChanged,
    RunsSelected,
    Throttled,
)
from populator.observe.progress import LiveProgress, ProgressLog, progress_line, render_snapshot
from populator.observe.report import Tally
from populator.observe.snapshot import Snapshot, Speedometer, format_duration
from populator.observe.summary import print_summary
from populator.samples.archive import SampleSpec, write_archive
from populator.sink.ratelimit import RateState
from populator.source.archive import ArchiveObject, RunFolder
from tests.support.backfill_helpers import run_populator, write_configs
from tests.support.terminal import run_in_a_terminal

ESCAPE = "\x1b["
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal(buffer: io.StringIO, width: int, **environ: str) -> Console:
    """A fake colour terminal `width` columns wide, whatever the caller's TERM, COLUMNS or NO_COLOR.

    rich reads those from the environment (TERM=dumb makes any terminal 80 columns, uncoloured),
    so the console is given an environment of its own.
    """
    env = {"TERM": "xterm-256color", "COLUMNS": str(width), "LINES": "30", **environ}
    return Console(file=buffer, force_terminal=True, width=width, color_system="truecolor", _environ=env)


COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-9]|9[0-7]|38;)[0-9;]*m")  # foreground colours


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def obj(run: str, index: int, size: int = 1000) -> ArchiveObject:
    return ArchiveObject(f"archive/{run}/part-{index:05d}.gz", size, f"etag-{index}", run)


def busy_tally() -> Tally:
    """A run half way: 2 runs of 2 objects listed, one run done, one object failed, one skipped."""
    from datetime import UTC, datetime

    tally = Tally()
    hub = Hub([tally])
    runs = ["run=2026-11-01-00-00-00", "run=2026-11-02-00-00-00"]
    hub.publish(
        RunsSelected(
            [RunFolder(datetime(2026, 11, d, tzinfo=UTC), r) for d, r in ((1, runs[0]), (2, runs[1]))]
        )
    )
    objects = [obj(runs[0], 0), obj(runs[0], 1), obj(runs[1], 2), obj(runs[1], 3)]
    hub.publish(ObjectSkipped(objects[0]))  # listed, and done before
    for o in objects[1:]:
        hub.publish(ObjectListed(o))
    hub.publish(ListingDone(4, 4000))
    hub.publish(BytesRead(objects[1], 1000))
    hub.publish(LinesParsed(objects[1], 120, 1, Counter(field_count=2), 7, 0))
    hub.publish(ItemsAcknowledged(objects[1], 110, 0))
    hub.publish(ObjectFinished(objects[1], 120, 110, 2))
    hub.publish(BytesRead(objects[2], 400))
    hub.publish(ObjectFailedEvent(objects[2], "truncated gzip stream"))
    hub.publish(BytesRead(objects[3], 500))
    hub.publish(Throttled())
    hub.publish(RateChanged(RateState(rate=1234.0, ceiling=5000.0, throttle_events=1, throttled_requests=1)))
    return tally


def test_tally_counts_runs_done_only_when_every_object_of_the_run_is_settled():
    tally = busy_tally()
    assert tally.runs == 2
    assert tally.runs_done == 1  # the first run: one object skipped, one finished
    assert (tally.write_rate, tally.rate_cuts, tally.throttle_events) == (1234.0, 1, 1)


def test_snapshot_reads_the_tally_and_measures_rates_over_a_window():
    tally = busy_tally()
    clock = FakeClock()
    speed = Speedometer(tally, window=10.0, clock=clock)
    first = speed.snapshot()
    assert first.items_per_s_now is None  # no span yet
    assert (first.objects_done, first.objects_failed, first.objects_skipped) == (1, 1, 1)
    assert first.bytes_total == 3000  # the skipped object's bytes are not to be read
    assert first.bytes_done == 1900
    assert first.fraction == pytest.approx(1900 / 3000)
    clock.now += 2
    tally.items_written += 500
    tally.bytes_read += 200
    second = speed.snapshot()
    assert second.items_per_s_now == pytest.approx(250.0)
    assert second.eta_s == pytest.approx((3000 - 2100) / 100)  # 200 bytes in 2 s
    clock.now += 20  # the window moves on: the rate is measured over the last readings only
    tally.items_written += 100
    speed.snapshot()
    clock.now += 10
    third = speed.snapshot()
    assert third.items_per_s_now == 0.0  # nothing written in the last 10 s
    assert third.items_per_s_avg > 0


def test_on_a_resume_that_skips_most_objects_progress_and_eta_count_only_what_is_left():
    """9,000 of 10,000 objects finished before: the bar and the time left are about the 1,000."""
    from datetime import UTC, datetime

    tally = Tally()
    hub = Hub([tally])
    runs = [f"run=2026-11-{day:02d}-00-00-00" for day in range(1, 11)]
    folders = [RunFolder(datetime(2026, 11, day + 1, tzinfo=UTC), run) for day, run in enumerate(runs)]
    hub.publish(RunsSelected(folders))
    objects = [obj(runs[n // 1000], n) for n in range(10_000)]
    for index, o in enumerate(objects):
        hub.publish(ObjectSkipped(o) if index < 9_000 else ObjectListed(o))
    hub.publish(ListingDone(len(objects), 1000 * len(objects)))
    clock = FakeClock()
    speed = Speedometer(tally, window=10.0, clock=clock)
    speed.snapshot()
    for o in objects[9_000:9_500]:  # half of what is left, in 10 s
        hub.publish(BytesRead(o, o.size))
        hub.publish(ObjectFinished(o, 10, 10, 0))
    clock.now += 10
    snap = speed.snapshot()
    assert snap.bytes_total == 1000 * 1000  # the skipped objects' bytes are not to be read
    assert snap.fraction == pytest.approx(0.5)
    assert snap.eta_s == pytest.approx(10.0)  # the other half, at the same pace
    assert (snap.objects_skipped, snap.objects_done) == (9_000, 500)
    assert snap.runs_done == 9  # every run whose objects were all skipped or finished


def test_eta_is_unknown_while_listing_and_zero_when_done():
    tally = Tally()
    hub = Hub([tally])
    o = obj("run=2026-11-01-00-00-00", 0)
    hub.publish(ObjectListed(o))
    snap = Speedometer(tally).snapshot()
    assert snap.fraction is None and snap.eta_s is None
    hub.publish(ListingDone(1, o.size))
    hub.publish(BytesRead(o, o.size))
    snap = Speedometer(tally).snapshot()
    assert snap.fraction == 1.0 and snap.eta_s == 0.0


def test_the_live_display_on_a_fake_terminal_shows_every_figure():
    snap = Speedometer(busy_tally()).snapshot()
    buffer = io.StringIO()
    terminal(buffer, 140).print(render_snapshot(snap, width=140))
    text = buffer.getvalue()
    assert ESCAPE in text  # a terminal gets styles
    plain = ANSI.sub("", text)
    for expected in (
        "63.3%",
        "1.9 kB of 3.0 kB",
        "runs",
        "1 of 2",
        "objects",
        "1 of 4",
        "failed",
        "lines read",
        "120",
        "items written",
        "110",
        "now",
        "average",
        "write rate",
        "1,234/s",
        "ceiling",
        "5,000/s",
        "throttled",
        "1 (1 cuts)",
        "bad rows",
        "expired",
        "skipped",
        "ETA",
    ):
        assert expected in plain, (expected, plain)


def billion_event_snapshot() -> Snapshot:
    """Three years of a busy pipeline (10^10 events, a million objects), as wide as figures get."""
    return Snapshot(
        elapsed_s=3 * 86_400 + 4_000.0, dry_run=False, listing_done=True, runs_total=8_760, runs_done=4_321,
        objects_total=1_234_567, objects_done=654_321, objects_failed=12_345, objects_skipped=400_000,
        bytes_total=987_654_321_000_000, bytes_done=456_789_000_000_000, lines_read=12_345_678_901,
        bad_rows=98_765_432, skipped_expired=1_234_567_890, items=11_111_111_111,
        items_per_s_now=39_876.0, items_per_s_avg=38_765.0, write_rate=40_000.0, write_ceiling=40_000.0,
        throttle_events=123_456, rate_cuts=7_890, eta_s=2 * 86_400 + 100.0,
        write_units=11_111_111_111.0, cost_usd=6_944.44,
    )  # fmt: skip


FIGURES = ("runs", "objects", "failed", "skipped", "lines read", "bad rows", "expired", "items written",
           "now", "average", "write rate", "ceiling", "throttled", "spent", "ETA")  # fmt: skip


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("snapshot", ["busy", "billion"])
def test_the_live_display_fits_the_terminal_and_keeps_every_figure(width, snapshot):
    snap = Speedometer(busy_tally()).snapshot() if snapshot == "busy" else billion_event_snapshot()
    buffer = io.StringIO()
    terminal(buffer, width).print(render_snapshot(snap, width=width))
    lines = ANSI.sub("", buffer.getvalue()).splitlines()
    assert max(len(line) for line in lines) < width, lines  # the last column would wrap on some terminals
    plain = "\n".join(lines)
    for label in FIGURES:
        assert re.search(rf"(^| ){label} ", plain, re.M), (label, plain)  # whole, never split over lines
    assert "…" not in plain  # at 80 columns and more, nothing needed cutting
    if snapshot == "billion":
        for figure in ("12,345,678,901", "11,111,111,111", "654,321 of 1,234,567", "2d 0:01:40", "$6,944.44"):
            assert figure in plain, (figure, plain)


@pytest.mark.parametrize("width", [20, 40, 60])
def test_on_a_narrow_terminal_the_display_drops_parts_but_never_wraps(width):
    buffer = io.StringIO()
    terminal(buffer, width).print(render_snapshot(billion_event_snapshot(), width=width))
    lines = ANSI.sub("", buffer.getvalue()).splitlines()
    assert max(len(line) for line in lines) < width, lines
    assert len(lines) == 1 + 14  # the head line and one row per figure: nothing folded onto another line


def test_a_wide_terminal_shows_the_figures_side_by_side_and_a_full_bar():
    buffer = io.StringIO()
    terminal(buffer, 200).print(render_snapshot(billion_event_snapshot(), width=200))
    lines = ANSI.sub("", buffer.getvalue()).splitlines()
    assert len(lines) == 1 + 4  # head, then runs/objects/failed/skipped beside the other groups
    assert sum(lines[0].count(glyph) for glyph in "━╸╺") == 40


def test_no_color_keeps_colour_codes_off_a_terminal_display():
    buffer = io.StringIO()
    console = terminal(buffer, 140, NO_COLOR="1")
    console.print(render_snapshot(Speedometer(busy_tally()).snapshot()))
    assert ESCAPE in buffer.getvalue()  # still a terminal (bold, dim)
    assert not COLOUR.search(buffer.getvalue())


def test_off_a_terminal_the_display_and_the_summary_have_no_escape_codes():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=100)
    tally = busy_tally()
    console.print(render_snapshot(Speedometer(tally).snapshot()))
    print_summary(console, tally)
    assert ESCAPE not in buffer.getvalue()
    assert "items written: 110" in buffer.getvalue()
    assert "FAILED archive/run=2026-11-02-00-00-00/part-00002.gz: truncated gzip stream" in buffer.getvalue()


def test_the_summary_is_a_table_on_a_terminal():
    buffer = io.StringIO()
    print_summary(terminal(buffer, 100), busy_tally())
    assert "populator summary" in buffer.getvalue() and "│" in buffer.getvalue()


def test_live_progress_redraws_from_the_tally_on_a_fake_terminal():
    buffer = io.StringIO()
    console = terminal(buffer, 140)
    tally = busy_tally()
    with LiveProgress(console, tally):
        time.sleep(0.3)
        tally.items_written += 1000
        time.sleep(0.3)
    assert "items written" in buffer.getvalue() and "1,110" in buffer.getvalue()


def test_a_progress_line_is_plain_text():
    line = progress_line(Speedometer(busy_tally()).snapshot())
    assert line.startswith("progress: 63.3% read (1.9 kB of 3.0 kB)")
    for part in (
        "runs 1/2",
        "objects 1/4 (1 failed, 1 skipped)",
        "items written 110",
        "throttled 1 (1 cuts)",
    ):
        assert part in line
    assert ESCAPE not in line


def test_progress_log_writes_a_line_every_interval_with_the_figures_as_data(caplog):
    tally = busy_tally()
    with caplog.at_level(logging.INFO, logger="populator.progress"), ProgressLog(tally, interval=0.05):
        time.sleep(0.4)
    records = [r for r in caplog.records if r.name == "populator.progress"]
    assert len(records) >= 3
    assert records[-1].getMessage().startswith("progress: ")
    assert records[-1].progress["items"] == 110 and records[-1].progress["objects_failed"] == 1


def test_format_duration():
    assert format_duration(7.4) == "0:00:07"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(2 * 86400 + 5) == "2d 0:00:05"
    assert format_duration(None) == "?"


# ---------------------------------------------------------------- the real command line


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=2, parts_per_run=2, events_per_part=400))
    return root


def test_off_a_terminal_progress_comes_as_plain_lines_every_interval(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    result = run_populator(
        "run", str(archive), str(storage), str(resolver), "--on-demand", "--writers", "1",
        "--max-write-rate", "400", "--progress-interval", "0.2", env=aws.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert ESCAPE not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 2, result.stderr
    assert "items written: " in result.stdout


def test_json_logs_are_one_json_object_a_line(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    result = run_populator(
        "run", str(archive), str(storage), str(resolver), "--on-demand", "--max-write-rate", "500",
        "--progress-interval", "0.2", "--json-logs", env=aws.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    progress = [r for r in records if r["logger"] == "populator.progress"]
    assert progress and progress[-1]["progress"]["objects_total"] == 4
    [finished] = [r for r in records if r["message"].startswith("finished")]
    assert finished["report"]["objects_done"] == 4 and finished["report"]["status"] == "ok"


def test_quiet_prints_only_the_summary(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    result = run_populator(
        "run", str(archive), str(storage), str(resolver), "--on-demand", "--quiet",
        "--progress-interval", "0.1", env=aws.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "objects: 4 done of 4, 0 failed" in result.stdout


def test_log_level_warning_keeps_info_off_stderr(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    result = run_populator(
        "run", str(archive), str(storage), str(resolver), "--on-demand", "--log-level", "WARNING",
        "--progress-interval", "0.1", env=aws.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "progress: " not in result.stderr and "runs selected" not in result.stderr


def test_on_a_terminal_a_live_display_then_a_summary_table(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    args = ["run", str(archive), str(storage), str(resolver), "--on-demand", "--max-write-rate", "600"]
    code, output = run_in_a_terminal(args, aws.env)
    assert code == 0, output
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    assert "populator run" in plain and "items written" in plain and "ETA" in plain
    assert "populator summary" in plain
    assert "progress: " not in plain  # the display replaces the progress lines
    assert COLOUR.search(output)

    code, output = run_in_a_terminal([*args, "--restart"], {**aws.env, "NO_COLOR": "1"})
    assert code == 0, output
    assert not COLOUR.search(output)


def test_on_an_80_column_terminal_no_line_of_the_display_wraps(aws, unique_name, tmp_path, archive):
    storage, resolver = write_configs(tmp_path, unique_name)
    args = ["run", str(archive), str(storage), str(resolver), "--on-demand", "--max-write-rate", "600"]
    code, output = run_in_a_terminal(args, aws.env, columns=80)
    assert code == 0, output
    frames = [line.rsplit("\r", 1)[-1] for line in ANSI.sub("", output).replace("\r\n", "\n").split("\n")]
    assert max(len(frame) for frame in frames) < 80, max(frames, key=len)
    plain = "\n".join(frames)
    assert re.search(r"^lines read ", plain, re.M) is None  # a label never starts a line cut from its row
    for label in ("lines read", "items written", "write rate", "ETA"):
        assert label in plain


def test_a_progress_line_counts_the_events_without_a_fingerprint_apart_from_bad_rows():
    tally = busy_tally()
    tally.no_fingerprint = 1234
    snap = Speedometer(tally).snapshot()
    line = progress_line(snap)
    assert "no fingerprint 1,234" in line and f"bad rows {tally.bad_rows:,}" in line
    assert snap.as_dict()["no_fingerprint"] == 1234  # --json-logs carry it as a field
