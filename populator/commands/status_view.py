"""`populator status` on screen (a table a job, fit for 80 columns) and as a small HTML page.

Each job gets a title line, a table of its shards (state, objects, items, rate, time left, cost,
failures, and how long ago the last snapshot came) with the job's totals as the footer, then what
needs someone: each failed, stale, stopped, interrupted or missing shard with the command to go
on (printed whole, never cut, so that it can be copied), and the failures named.
"""

from __future__ import annotations

import html
from datetime import datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..observe.fleet import MISSING, STALE, Fleet, JobView, ShardView
from ..observe.shard_status import FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED
from ..observe.snapshot import format_duration

STYLES = {
    RUNNING: "cyan",
    FINISHED: "green",
    FAILED: "bold red",
    STALE: "bold red",
    STOPPED: "yellow",
    INTERRUPTED: "yellow",
    MISSING: "yellow",
}
COLUMNS = ("shard", "state", "objects", "items", "items/s", "ETA", "cost", "failed", "seen")


def render_fleet(console: Console, fleet: Fleet) -> None:
    console.print(fleet_renderable(fleet), crop=False)


def fleet_renderable(fleet: Fleet, *, fold: bool = False) -> RenderableType:
    """Every line fits the console's width but the commands to go on, kept whole to be copied
    (`fold`: folded too, as a live display must, whose redraw counts the lines it printed)."""
    parts: list[RenderableType] = [
        Text.assemble(
            ("populator status", "bold"),
            f": {fleet.location} at {_clock(fleet.now)} (stale after "
            f"{format_duration(fleet.stale_after_s)} without a snapshot)",
        )
    ]
    if not fleet.jobs:
        parts.append(
            Text(
                "No status snapshot here: pass the --log-path the runs were given (a run publishes its "
                "first snapshot as it starts)."
            )
        )
    for job in fleet.jobs:
        parts += ["", _title(job), _table(job), *_notes(job, fold)]
    for where, why in fleet.unreadable:
        # Wrapped between words, but a path longer than the line is never cut (it is copied).
        warning = Text.assemble(
            ("warning: ", "bold yellow"),
            f"{where} is not a status snapshot: {why}",
            overflow="fold" if fold else "ignore",
        )
        parts.append(warning)
    return Group(*parts)


def _title(job: JobView) -> Text:
    first = job.first
    shards = f"{job.shard_count} shards" if job.shard_count is not None else "unsharded"
    counts = ", ".join(f"{job.count(state)} {state}" for state in STYLES if job.count(state))
    since = f" since {first.since}" if first.since else ""
    dry = " (dry run)" if first.dry_run else ""
    return Text.assemble(
        ("job ", "bold"),
        (job.key, "bold"),
        f"{dry}: {first.archive}{since} → {first.table}; {shards}: {counts}",
    )


def _table(job: JobView) -> Table:
    sharded = job.shard_count is not None
    table = Table(box=box.SIMPLE, show_edge=False, padding=0, show_footer=sharded)
    footer = _totals(job)
    for index, name in enumerate(COLUMNS):
        table.add_column(
            name,
            footer=footer[index],
            justify="left" if index < 2 else "right",
            no_wrap=True,
            overflow="ellipsis",
        )
    for view in job.shards:
        table.add_row(*_cells(view))
    return table


def _cells(view: ShardView) -> list[str | Text]:
    state = Text(view.state, style=STYLES.get(view.state, ""))
    status = view.status
    if status is None:
        return [view.label, state, "", "", "", "", "", "", "-"]
    objects = (
        f"{_count(status.objects_done)}/{_count(status.objects_total)}{'' if status.listing_done else '+'}"
    )
    rate = _rate(status.items_per_s) if view.state == RUNNING else "-"
    eta = format_duration(view.eta_s) if view.state == RUNNING else "-" if view.state == FINISHED else "?"
    failed = Text(f"{status.objects_failed:,}", style="bold red" if status.objects_failed else "")
    return [
        view.label,
        state,
        objects,
        _count(status.items_done),
        rate,
        eta,
        _dollars(status.cost_usd),
        failed,
        _ago(view.age_s),
    ]


def _totals(job: JobView) -> list[str]:
    total = f"{_count(job.objects_done)}/{_count(job.objects_total)}{'' if job.listing_done else '+'}"
    done = job.state == FINISHED
    return [
        "job",
        job.state,
        total,
        _count(job.items_done),
        "-" if done else _rate(job.items_per_s),
        "-" if done else format_duration(job.eta_s),
        _dollars(job.cost_usd),
        f"{job.objects_failed:,}",
        "",
    ]


def _notes(job: JobView, fold: bool = False) -> list[Text]:
    notes: list[Text] = []
    if job.eta_s is None and any(view.needs_someone for view in job.shards):
        notes.append(Text("ETA: none until the shards below go on; they will not finish by themselves."))
    for view in job.shards:
        if view.needs_someone or view.state == MISSING:
            notes.append(
                Text.assemble(
                    (f"shard {view.label} ", "bold"), (view.state, STYLES.get(view.state, "")), _why(view)
                )
            )
            if view.command:
                notes.append(
                    Text(f"  {view.command}", no_wrap=not fold, overflow="fold" if fold else "ignore")
                )
        status = view.status
        if status is not None and status.failures:
            more = status.objects_failed - len(status.failures)
            named = "; ".join(f"{key}: {reason}" for key, reason in status.failures)
            notes.append(
                Text.assemble(
                    (f"failures of shard {view.label}: ", "bold red"),
                    named + (f" (and {more:,} more)" if more > 0 else ""),
                )
            )
    return notes


def _why(view: ShardView) -> str:
    status = view.status
    if status is None:
        if view.needs_someone:
            why = ": no snapshot at all, and nothing of its job runs"
        else:
            why = ": no snapshot yet (not started, or started without --log-path)"
        return why + (", start it with:" if view.command else "")
    where = f"host {status.host}, pid {status.pid}"
    go_on = ", go on with:" if view.command else ""
    if view.state == STALE:
        return f": no snapshot for {format_duration(view.age_s)} ({where}): killed, hung or cut off{go_on}"
    ended = f"exit {status.exit_code}" if status.exit_code is not None else "ended"
    error = f": {status.error}" if status.error else ""
    return f" ({ended}, {where}){error}{go_on}"


def fleet_html(fleet: Fleet) -> str:
    """The same, as one self-contained page (no script, no network): a table a job and its notes."""
    body = [f"<h1>populator status</h1><p>{_e(fleet.location)} at {_e(_clock(fleet.now))}</p>"]
    for job in fleet.jobs:
        body.append(f"<h2>{_e(_title(job).plain)}</h2><div class=scroll><table><thead><tr>")
        body += [f"<th>{_e(name)}</th>" for name in COLUMNS]
        body.append("</tr></thead><tbody>")
        for view in job.shards:
            cells = [cell.plain if isinstance(cell, Text) else cell for cell in _cells(view)]
            body.append(
                f"<tr class={_e(view.state)}>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>"
            )
        body.append("</tbody>")
        if job.shard_count is not None:
            body.append("<tfoot><tr>" + "".join(f"<td>{_e(c)}</td>" for c in _totals(job)) + "</tr></tfoot>")
        body.append("</table></div>")
        body += [f"<pre>{_e(note.plain)}</pre>" for note in _notes(job)]
    return _PAGE.format(body="\n".join(body))


_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>populator status</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222}}
.scroll{{overflow-x:auto}} table{{border-collapse:collapse}}
th,td{{padding:.2em .6em;text-align:right;white-space:nowrap}}
th:nth-child(-n+2),td:nth-child(-n+2){{text-align:left}}
thead,tfoot{{font-weight:bold}} tfoot td{{border-top:1px solid #999}}
.finished td:nth-child(2){{color:#080}} .running td:nth-child(2){{color:#06c}}
.failed td:nth-child(2),.stale td:nth-child(2){{color:#c00;font-weight:bold}}
pre{{white-space:pre-wrap;word-break:break-all;margin:.3em 0}}
</style></head><body>
{body}
</body></html>
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float | None) -> str:
    """How long ago, in its largest unit: `5s`, `10m`, `3h`, `2d`."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _count(number: float) -> str:
    """`12,345` up to 99,999, then `123.5k`, `12.3M`, `1.2B`: six characters or so."""
    if number < 100_000:
        return f"{number:,.0f}"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= size:
            return f"{number / size:,.1f}{unit}"
    raise AssertionError("unreachable")


def _rate(rate: float | None) -> str:
    return "?" if rate is None else f"{_count(rate)}/s"


def _dollars(amount: float) -> str:
    if amount >= 100_000:
        return f"${_count(amount)}"
    if amount >= 100:
        return f"${amount:,.0f}"
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"
