"""A run's report as one page to look at: one self-contained HTML file that needs no network.

The page tells how the run ended (and the command to go on, when there is one), its summary
figures, its timeline in charts (the write rate against the controller's rate and ceiling,
requests throttled by reason, the cost so far, items and objects done), bad rows by reason,
the objects that failed and what the job was. The figures and tables are HTML written here,
readable without JavaScript; the charts are drawn in the browser by uPlot (1.6.32, MIT:
`dist/uPlot.iife.min.js` and `dist/uPlot.min.css` of npm's `uplot`, unchanged, with its
licence, in `assets/`), 51 KB inlined into the page, by `assets/report.js`. The whole JSON report
is embedded (`<script type="application/json" id="report-data">`) and the charts are made from
its `timeline`, so what they show is the report's own numbers.

Imported only when HTML is written: `populator run` pays nothing for it at start-up.
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson

from .eventlog import RUN_LOGGER
from .import_progress import dollars
from .report import Tally
from .summary import throttle_advice

log = logging.getLogger(RUN_LOGGER)
# How each exit status reads on the page, and its colour (a CSS class).
_ENDINGS = {
    "ok": ("Finished", "good"),
    "failed_objects": ("Finished with failed objects", "bad"),
    "limit_reached": ("Stopped at a limit", "warn"),
    "outage": ("Stopped by an outage", "bad"),
    "interrupted": ("Interrupted", "warn"),
    "error": ("Stopped by an error", "bad"),
    "internal_error": ("Stopped by an internal error", "bad"),
}
_JOB_FIELDS = (
    ("command", "command"),
    ("archive", "archive"),
    ("table", "table"),
    ("region", "region"),
    ("since", "--since"),
    ("mode", "mode"),
    ("processes", "processes"),
    ("started_at", "started (UTC)"),
    ("finished_at", "finished (UTC)"),
    ("checkpoint", "checkpoint"),
    ("staging", "staging"),
    ("import_arn", "import"),
    ("populator_version", "populator"),
)


@cache
def _asset(name: str) -> str:
    return files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def render_html(report: dict[str, Any]) -> str:
    """The page for a run's JSON report (as `run_report` makes it, or read back from a file)."""
    table = report.get("table") or "no table"
    title = f"populator {_verb(report)}: {table}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{_e(title)}</title>\n",
            f"<style>{_asset('uPlot.min.css')}\n{_asset('report.css')}</style>\n</head>\n<body>\n<main>\n",
            f"<header><h1>{_e(title)}</h1>",
            f'<p class="where">{_e(report.get("archive") or "")}</p></header>\n',
            _ending(report),
            _figures(report),
            _charts(report),
            _bad_rows(report),
            _failures(report),
            _job(report),
            "</main>\n",
            '<script type="application/json" id="report-data">',
            _json_for_script(report),
            "</script>\n",
            f"<script>{_asset('uPlot.iife.min.js')}</script>\n",
            f"<script>{_asset('report.js')}</script>\n",
            "</body>\n</html>\n",
        ]
    )


def page_or_json(path: Path, report: dict[str, Any], data: bytes) -> tuple[Path, bytes]:
    """What `--report run.html` writes: the page, or should it fail (a bug), the JSON `data` in
    `run.json` beside it: a bug must not cost the run its report."""
    try:
        return path, render_html(report).encode()
    except Exception as exc:
        log.error("cannot make the HTML report (a bug): %r; the JSON report is in its place", exc)
        return path.with_suffix(".json"), data


def _verb(report: dict[str, Any]) -> str:
    if "import_status" in report:
        return "import"
    return "run (dry run)" if report.get("dry_run") else "run"


def _ending(report: dict[str, Any]) -> str:
    status = str(report.get("status") or "error")
    words, tone = _ENDINGS.get(status, (status, "bad"))
    code = report.get("exit_code")
    parts = [
        f'<section class="ending {tone}" id="ending"><h2>{_e(words)}',
        f' <span class="code">exit {_e(code)}</span>' if code is not None else "",
        "</h2>",
    ]
    if report.get("error"):
        parts.append(f"<p>{_e(report['error'])}</p>")
    if report.get("interrupted_by"):
        parts.append(f"<p>by {_e(report['interrupted_by'])}</p>")
    if report.get("limit"):
        parts.append(f"<p>at the limit <code>--{_e(str(report['limit']).replace('_', '-'))}</code></p>")
    resume = report.get("resume_command")
    if resume:
        parts.append(
            "<p>What is done is recorded; run the same command to go on:</p>"
            f'<pre id="resume-command"><code>{_e(resume)}</code></pre>'
        )
    return "".join(parts) + "</section>\n"


def _figures(report: dict[str, Any]) -> str:
    def number(key: str) -> float:
        value = report.get(key)
        return value if isinstance(value, int | float) else 0

    duration = number("duration_s")
    if report.get("dry_run"):
        items = ("items to write", f"{number('items_planned'):,.0f}", "")
    elif "items_staged" in report:
        imported = f"{number('imported_items'):,.0f} imported"
        items = ("items staged", f"{number('items_staged'):,.0f}", imported)
    else:
        present = f"{number('already_present'):,.0f} already there"
        items = ("items written", f"{number('items_written'):,.0f}", present)
    failed = number("objects_failed")
    cards = [
        items,
        (
            "objects done",
            f"{number('objects_done'):,.0f} of {number('objects_total'):,.0f}",
            f"{failed:,.0f} failed, {number('objects_skipped'):,.0f} done before",
        ),
        ("duration", _duration(duration), f"{number('items_per_s'):,.0f} items/s on average"),
        (
            "throttled requests",
            f"{number('throttle_events'):,.0f}",
            _count(number("rate_cuts"), "rate cut"),
        ),
        (
            "estimated cost",
            dollars(number("estimated_cost_usd")),
            f"{number('write_units_consumed'):,.0f} write units",
        ),
        ("bad rows", f"{number('bad_rows'):,.0f}", f"of {number('lines_read'):,.0f} lines read"),
    ]
    rows = "".join(
        f'<div class="figure"><div class="label">{_e(label)}</div><div class="value">{_e(value)}</div>'
        f'<div class="note">{_e(note)}</div></div>'
        for label, value, note in cards
    )
    return f'<section class="figures" id="figures">{rows}</section>\n'


def _charts(report: dict[str, Any]) -> str:
    timeline = report.get("timeline") or {}
    step = timeline.get("step_s")
    every = f"a point every {step:g} s" if isinstance(step, int | float) else "no timeline in this report"
    charts = (
        ("rate", "Write rate and its ceiling", "items/s: acknowledged, the controller's rate and ceiling"),
        ("throttles", "Throttled requests", "write requests throttled in each interval, by reason"),
        ("cost", "Cost so far", "estimated USD of the write units consumed"),
        ("progress", "Progress", "items acknowledged, and objects done"),
    )
    advice = throttle_advice(Tally(throttled_by_reason=Counter(report.get("throttled_by_reason") or {})))
    blocks = "".join(
        f'<figure class="chart-box"><figcaption><h3>{_e(heading)}</h3><p>{_e(note)}</p></figcaption>'
        f'<div class="chart" id="chart-{name}"></div>'
        + (f'<p class="advice">{_e(advice)}</p>' if name == "throttles" and advice else "")
        + "</figure>"
        for name, heading, note in charts
    )
    return (
        f'<section id="charts"><h2>Over time</h2><p class="note">{_e(every)}; times are local</p>'
        f"<noscript><p>The charts need JavaScript; every figure is also in the JSON report embedded "
        f'in this page.</p></noscript><div class="charts">{blocks}</div></section>\n'
    )


def _bad_rows(report: dict[str, Any]) -> str:
    reasons = report.get("bad_rows_by_reason") or {}
    if not reasons:
        return '<section id="bad-rows"><h2>Bad rows</h2><p>None.</p></section>\n'
    most = max(reasons.values()) or 1
    rows = "".join(
        f'<tr><th scope="row">{_e(reason)}</th><td class="count">{count:,}</td>'
        f'<td class="bar-cell"><span class="bar" style="width:{100 * count / most:.1f}%"></span></td></tr>'
        for reason, count in sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0]))
    )
    return (
        f'<section id="bad-rows"><h2>Bad rows by reason</h2><table class="bars">'
        '<thead><tr><th>reason</th><th class="count">rows</th><th></th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>\n"
    )


def _failures(report: dict[str, Any]) -> str:
    failures = report.get("failures") or []
    if not failures:
        return '<section id="failures"><h2>Failed objects</h2><p>None.</p></section>\n'
    rows = "".join(
        f"<li><code>{_e(failure.get('object'))}</code><br>{_e(failure.get('reason'))}</li>"
        for failure in failures
    )
    return (
        f'<section id="failures"><h2>Failed objects ({len(failures):,})</h2>'
        f'<ul class="failures">{rows}</ul></section>\n'
    )


def _job(report: dict[str, Any]) -> str:
    rows = "".join(
        f"<dt>{_e(label)}</dt><dd>{_e(report[key])}</dd>"
        for key, label in _JOB_FIELDS
        if report.get(key) not in (None, "")
    )
    return f'<section id="job"><h2>The job</h2><dl class="job">{rows}</dl></section>\n'


def _json_for_script(report: dict[str, Any]) -> str:
    """The report as JSON that cannot end its <script> element early (`<` escaped as JSON allows)."""
    text = orjson.dumps(report).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _count(count: float, noun: str) -> str:
    return f"{count:,.0f} {noun}{'' if count == 1 else 's'}"


def _e(value: object) -> str:
    return html.escape(str(value))
