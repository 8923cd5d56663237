"""The end-of-run summary: a table on a terminal, `label: value` lines elsewhere."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .report import Tally


def summary_rows(tally: Tally) -> list[tuple[str, str]]:
    """The end-of-run summary as label/value rows, shared by the table and the plain text."""
    rows = [
        (
            "table",
            f"{tally.table}{' (created)' if tally.table_created else ''}"
            if tally.table
            else "none (dry run)",
        ),
        ("runs", f"{tally.runs:,}"),
        (
            "objects",
            f"{tally.objects_done:,} done of {tally.objects_total:,}, {len(tally.failures):,} failed",
        ),
        ("objects skipped (already done)", f"{tally.objects_skipped:,}"),
        ("bytes read", f"{tally.bytes_read:,}"),
        ("lines read", f"{tally.lines_read:,} ({tally.blank_lines:,} blank)"),
    ]
    if tally.dry_run:
        rows.append(("items to write", f"{tally.items_planned:,}"))
    else:
        rows.append(("items written", f"{tally.items_written:,}"))
        rows.append(("already present", f"{tally.already_present:,}"))
    rows += [
        ("duplicates merged", f"{tally.merged_duplicates:,}"),
        ("bad rows", f"{tally.bad_rows:,}"),
    ]
    rows += [(f"  {reason}", f"{count:,}") for reason, count in sorted(tally.bad_rows_by_reason.items())]
    rows += [
        ("expired (skipped)", f"{tally.skipped_expired:,}"),
        ("throttled requests", f"{tally.throttle_events:,} ({tally.rate_cuts:,} rate cuts)"),
        ("write rate ceiling", f"{tally.write_ceiling:,.0f} items/s" if tally.write_ceiling else "none"),
        ("duration", f"{tally.duration_s:,.1f} s"),
        ("items/s", f"{tally.items_per_s:,.0f}"),
    ]
    return rows


def print_summary(console: Console, tally: Tally) -> None:
    """A table on a terminal, `label: value` lines elsewhere (no escape codes)."""
    rows = summary_rows(tally)
    if console.is_terminal:
        table = Table(title="populator summary", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        for label, value in rows:
            table.add_row(label, value)
        console.print(table)
    else:
        for label, value in rows:
            console.print(f"{label}: {value}", markup=False, highlight=False, soft_wrap=True)
    for key, reason in tally.failures.items():
        console.print(f"FAILED {key}: {reason}", markup=False, highlight=False, soft_wrap=True)
