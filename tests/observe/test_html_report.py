"""The HTML report of a real run against moto, throttled, with a failed object, looked at in
headless Chromium: the page is the run's JSON report, its charts plot the run's timeline (read
back through the page), nothing overflows at 1280 and 390 px, and the console stays clean.

`REPORT_PICTURE=docs/report.png pytest tests/observe/test_html_report.py -k 1280` redraws the
README's screenshot from this run.
"""

from __future__ import annotations

import html
import json
import os
import re
import struct
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from populator.observe.html_report import render_html
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import run_populator, write_configs
from tests.support.chromium import Chromium
from tests.support.dynamo_proxy import DynamoProxy
from tests.support.moto_server import MotoHandle, aws_child_env

DATA = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)
REASON = "TableWriteProvisionedThroughputExceeded"


@dataclass(frozen=True)
class Run:
    work: Path
    page: Path  # --report run.html
    report: dict[str, Any]  # report.json, as --log-path kept it
    stderr: str


@pytest.fixture(scope="module")
def throttled_run(moto_server: MotoHandle, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`populator run --report run.html --log-path logs` at most 400 items/s, behind a proxy that
    admits 300 and throttles a request with a reason at 4, 8 and 12 s, one object of the archive cut short
    (with REPORT_PICTURE set, an archive three times as long: more points to draw)."""
    work = tmp_path_factory.mktemp("throttled-run")
    events = 1500 if os.environ.get("REPORT_PICTURE") else 500
    expected = write_archive(
        work / "archive", SampleSpec(runs=2, parts_per_run=3, events_per_part=events, formats=("gz",))
    )
    cut = work / "archive" / expected.objects[1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    storage, resolver = write_configs(work, f"t-{uuid.uuid4().hex[:8]}")
    proxy = DynamoProxy(moto_server.url).start()
    stop = threading.Event()

    def throttle_now_and_then() -> None:
        for _ in range(3):
            if stop.wait(4.0):
                return
            proxy.throttle_next = 1

    later = threading.Thread(target=throttle_now_and_then, daemon=True)
    try:
        proxy.throttling_reasons = (REASON,)
        proxy.limit_capacity(300)
        later.start()
        result = run_populator(
            "run",
            str(work / "archive"),
            str(storage),
            str(resolver),
            "--max-write-rate",
            "400",
            "--writers",
            "8",
            "--read-attempts",
            "1",
            "--report",
            "run.html",
            "--log-path",
            "logs",
            env=dict(aws_child_env(moto_server.url), AWS_ENDPOINT_URL_DYNAMODB=proxy.url),
            cwd=work,
            timeout=300,
        )
    finally:
        stop.set()
        later.join()
        proxy.stop()
    assert result.returncode == 1, result.stderr  # the object cut short failed; the rest is written
    (stored,) = (work / "logs").glob("populator-*/report.json")
    return Run(work, work / "run.html", json.loads(stored.read_text()), result.stderr)


@pytest.fixture(scope="module")
def browser() -> Any:
    with Chromium() as chromium:
        yield chromium


def embedded(page: str) -> dict[str, Any]:
    match = DATA.search(page)
    assert match, "the page embeds no report"
    return dict(json.loads(match.group(1)))


def test_the_page_is_the_runs_report_and_tells_the_command_to_go_on(throttled_run: Run) -> None:
    page = throttled_run.page.read_text(encoding="utf-8")
    report = throttled_run.report
    assert embedded(page) == report  # --report run.html and --log-path's report.json: one report
    assert report["status"] == "failed_objects" and report["exit_code"] == 1
    # The command printed to go on is the report's, and the page shows it.
    assert report["resume_command"].startswith("populator run ")
    assert "run the same command to go on" in throttled_run.stderr
    assert f"\n  {report['resume_command']}\n" in throttled_run.stderr
    assert html.escape(report["resume_command"]) in page
    (failure,) = report["failures"]
    assert html.escape(failure["object"]) in page and html.escape(failure["reason"]) in page
    for reason in report["bad_rows_by_reason"]:
        assert f'<th scope="row">{reason}</th>' in page
    assert report["throttled_by_reason"].get(REASON, 0) > 0
    # Self-contained: no attribute loads anything; one file of a modest size.
    assert not re.search(r"\b(src|href)\s*=", page)
    assert len(page.encode()) < 150_000


def expected_charts(report: dict[str, Any]) -> tuple[list[float], dict[str, dict[str, list[Any]]]]:
    """What each chart must plot, worked out here from the JSON report's timeline."""
    timeline = report["timeline"]

    def column(name: str) -> list[Any]:
        at = timeline["columns"].index(name)
        return [point[at] for point in timeline["points"]]

    def per_interval(totals: list[int]) -> list[int]:
        return [total - (totals[i - 1] if i else 0) for i, total in enumerate(totals)]

    started = datetime.fromisoformat(report["started_at"].replace("Z", "+00:00")).timestamp()
    t, items = column("t"), column("items")
    acknowledged = [None] + [
        (items[i] - items[i - 1]) / (t[i] - t[i - 1]) if t[i] > t[i - 1] else None for i in range(1, len(t))
    ]
    by_reason = column("throttled_by_reason")
    reasons = sorted({reason for counts in by_reason for reason in counts})
    throttles = {reason: per_interval([counts.get(reason, 0) for counts in by_reason]) for reason in reasons}
    return [started + seconds for seconds in t], {
        "rate": {
            "acknowledged items/s": acknowledged,
            "rate": column("write_rate"),
            "ceiling": column("write_ceiling"),
        },
        "throttles": throttles or {"throttled": per_interval(column("throttled"))},
        "cost": {"cost so far (USD)": column("cost_usd")},
        "progress": {"items acknowledged": items, "objects done": column("objects_done")},
    }


# Each chart as the page drew it: its series' labels, the data it plots, whether its canvas has
# ink, and its legend read from the DOM with the cursor put on each point in turn.
READ_CHARTS = """(async () => {
  const found = {};
  for (const [name, u] of Object.entries(window.populatorCharts)) {
    const legend = [];
    for (let i = 0; i < u.data[0].length; i++) {
      u.setCursor({left: u.valToPos(u.data[0][i], "x"), top: 5});
      await new Promise(resolve => requestAnimationFrame(resolve));
      const rows = [...u.root.querySelectorAll(".u-legend tr.u-series")].slice(1);
      legend.push({idx: u.cursor.idx, cells: rows.map(row => row.querySelector(".u-value").textContent)});
    }
    const canvas = u.ctx.canvas;
    const pixels = u.ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { ink++; } }
    found[name] = {labels: u.series.slice(1).map(s => s.label), data: u.data, legend, ink};
  }
  return found;
})()"""


def legend_number(text: str) -> float | None:
    return None if text.strip() in ("–", "--", "") else float(text.replace("$", "").replace(",", ""))


def test_the_charts_plot_the_runs_timeline(throttled_run: Run, browser: Chromium) -> None:
    view = browser.look(throttled_run.page, width=1280, height=900, evaluate={"charts": READ_CHARTS})
    assert view.console_errors == []
    charts = view.values["charts"]
    x, expected = expected_charts(throttled_run.report)
    assert len(x) >= 3  # a run of several steps, not only its start and its end
    assert set(charts) == set(expected)
    for name, series in expected.items():
        drawn = charts[name]
        assert drawn["labels"] == list(series), name
        assert drawn["data"][0] == pytest.approx(x, abs=1e-3), name
        for label, values, plotted in zip(series, series.values(), drawn["data"][1:], strict=True):
            assert plotted == pytest.approx(values, abs=1e-9), f"{name}: {label}"
        assert drawn["ink"] > 1000, f"{name}: nothing drawn"
        # The legend the reader sees, at each point the cursor landed on, tells the same numbers.
        landed = set()
        for shown in drawn["legend"]:
            index = shown["idx"]
            landed.add(index)
            for label, cell in zip(series, shown["cells"], strict=True):
                want = series[label][index]
                got = legend_number(cell)
                if want is None:
                    assert got is None, f"{name}: {label} at {index}: {cell!r}"
                else:
                    assert got == pytest.approx(want, abs=0.051), f"{name}: {label} at {index}: {cell!r}"
        assert len(landed) >= len(x) - 1, f"{name}: the cursor reached only points {sorted(landed)}"
    assert {"TableWriteProvisionedThroughputExceeded"} <= set(charts["throttles"]["labels"])


FITS = "document.documentElement.scrollWidth <= window.innerWidth"
CHARTS_FIT = (
    "Object.values(window.populatorCharts).every(u => u.root.getBoundingClientRect().right <= innerWidth)"
)


@pytest.mark.parametrize("width, height, mobile", [(1280, 900, False), (390, 844, True)], ids=["1280", "390"])
def test_the_page_fits_the_screen_without_console_errors(
    throttled_run: Run, browser: Chromium, tmp_path: Path, width: int, height: int, mobile: bool
) -> None:
    view = browser.look(
        throttled_run.page,
        width=width,
        height=height,
        mobile=mobile,
        evaluate={
            "fits": FITS,
            "charts_fit": CHARTS_FIT,
            "charts": "Object.keys(window.populatorCharts).length",
            "fetched": "performance.getEntriesByType('resource').map(entry => entry.name)",
            "resume": "document.getElementById('resume-command').textContent",
        },
    )
    assert view.console_errors == []
    assert view.values["fits"] and view.values["charts_fit"], f"horizontal overflow at {width} px"
    assert view.values["charts"] == 4
    assert view.values["fetched"] == []  # nothing loaded from anywhere: the file is the whole page
    assert view.values["resume"] == throttled_run.report["resume_command"]
    assert view.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">I", view.screenshot[16:20])[0] == width  # the screenshot is the page's width
    (tmp_path / f"report-{width}.png").write_bytes(view.screenshot)
    picture = os.environ.get("REPORT_PICTURE")
    if picture and width == 1280:  # the README's: down to the charts
        top = browser.look(throttled_run.page, width=width, height=height, down_to="#charts")
        Path(picture).write_bytes(top.screenshot)


def test_what_the_archive_says_cannot_break_out_of_the_page(browser: Chromium, tmp_path: Path) -> None:
    hostile = '</script><script>console.error("escaped")</script><img src=x onerror=alert(1)>'
    report = {
        "populator_version": "0.1.0",
        "started_at": "2026-11-27T23:20:56.446Z",
        "exit_code": 1,
        "status": "failed_objects",
        "table": hostile,
        "failures": [{"object": f"run=2026-11-20/{hostile}", "reason": hostile}],
        "bad_rows_by_reason": {hostile: 3},
        "resume_command": f"populator run '{hostile}'",
    }
    page = render_html(report)
    assert embedded(page) == report
    path = tmp_path / "hostile.html"
    path.write_text(page, encoding="utf-8")
    view = browser.look(
        path,
        width=390,
        height=844,
        mobile=True,
        evaluate={
            "scripts": "document.scripts.length",
            "images": "document.images.length",
            "empty": "document.querySelector('#chart-rate .empty').textContent",
            "fits": FITS,
        },
    )
    assert view.console_errors == []
    assert view.values == {"scripts": 3, "images": 0, "empty": "This report has no timeline.", "fits": True}
