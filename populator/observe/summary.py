"""The end-of-run summary: a table on a terminal, `label: value` lines elsewhere."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..events import NO_FINGERPRINT_WHY
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
        *([("TTL on ttl", f"OFF: {tally.ttl_problem}")] if tally.ttl_problem else []),
        ("objects skipped (already done)", f"{tally.objects_skipped:,}"),
        *(
            [
                (
                    "resumed part-way",
                    f"{tally.objects_resumed_partway:,} objects, "
                    f"{tally.items_carried_over:,} items not written again",
                )
            ]
            if tally.objects_resumed_partway
            else []
        ),
        ("bytes read", f"{tally.bytes_read:,}"),
        ("lines read", f"{tally.lines_read:,} ({tally.blank_lines:,} blank)"),
    ]
    if tally.dry_run:
        rows.append(("items to write", f"{tally.items_planned:,}"))
    else:
        rows.append(("items written", f"{tally.items_written:,}"))
        rows.append(("already present", f"{tally.already_present:,}"))
        rows.append(("write units consumed", write_units_line(tally)))
    rows += [
        ("duplicates merged", f"{tally.merged_duplicates:,}"),
        ("bad rows", f"{tally.bad_rows:,}"),
    ]
    rows += [(f"  {reason}", f"{count:,}") for reason, count in sorted(tally.bad_rows_by_reason.items())]
    rows += [
        ("no fingerprint (skipped)", f"{tally.no_fingerprint:,}"),
        ("expired (skipped)", f"{tally.skipped_expired:,}"),
        ("throttled requests", f"{tally.throttle_events:,} ({tally.rate_cuts:,} rate cuts)"),
        *((f"  {reason}", f"{count:,}") for reason, count in sorted(tally.throttled_by_reason.items())),
        ("write rate ceiling", f"{tally.write_ceiling:,.0f} items/s" if tally.write_ceiling else "none"),
        ("duration", f"{tally.duration_s:,.1f} s"),
        ("items/s", f"{tally.items_per_s:,.0f}"),
    ]
    return rows


def print_rows(console: Console, title: str, rows: list[tuple[str, str]]) -> None:
    """A summary's rows: a table on a terminal, `label: value` lines elsewhere (no escape codes)."""
    if console.is_terminal:
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        for label, value in rows:
            table.add_row(label, value)
        console.print(table, width=max(console.width - 1, 20))  # never into the last column
    else:
        for label, value in rows:
            console.print(f"{label}: {value}", markup=False, highlight=False, soft_wrap=True)


def print_summary(console: Console, tally: Tally) -> None:
    """A table on a terminal, `label: value` lines elsewhere (no escape codes)."""
    print_rows(console, "populator summary", summary_rows(tally))
    if tally.no_fingerprint:  # wrapped short of the last column on a terminal, one line elsewhere
        terminal = console.is_terminal
        console.print(
            no_fingerprint_note(tally),
            markup=False,
            highlight=False,
            soft_wrap=not terminal,
            width=max(console.width - 1, 20) if terminal else None,
        )
    advice = throttle_advice(tally)
    if advice:
        console.print(advice, markup=False, highlight=False, soft_wrap=True)
    for key, reason in tally.failures.items():
        console.print(f"FAILED {key}: {reason}", markup=False, highlight=False, soft_wrap=True)


def no_fingerprint_note(tally: Tally) -> str:
    """Why the events without a fingerprint were skipped, said once under the summary."""
    events = "event" if tally.no_fingerprint == 1 else "events"
    return f"no fingerprint: {tally.no_fingerprint:,} valid {events} skipped; {NO_FINGERPRINT_WHY}."


def write_units_line(tally: Tally) -> str:
    """`N (≈ $X at $P per million)`, saying when the units were counted rather than reported."""
    line = (
        f"{tally.write_units_consumed:,.0f} (≈ ${tally.estimated_cost_usd:,.2f} at "
        f"${tally.price_per_million:g} per million)"
    )
    if tally.reported_units_implausible:
        line += (
            f", counted: one an item (the endpoint reported {tally.write_units_reported:,.0f} units for "
            f"{tally.items_with_reported_units:,} items, below the one an item DynamoDB bills at least)"
        )
    elif tally.write_units_counted:
        line += ", counted: one an item where DynamoDB reported no ConsumedCapacity"
    return line


# What to do about the reason that throttled most, by the limit type DynamoDB names at the end
# of its reason (`TableWrite` + `ProvisionedThroughputExceeded`...) or by the error code.
_ADVICE = (
    (
        ("ProvisionedThroughputExceeded",),
        "the table's provisioned write capacity was the limit: raise its WCU (or its auto-scaling "
        "maximum), or lower --write-capacity-percent to leave the shredder more room.",
    ),
    (
        ("AccountLimitExceeded", "MaxOnDemandThroughputExceeded", "RequestLimitExceeded"),
        "an account or on-demand maximum was the limit: ask AWS for a higher per-table write quota "
        "(Service Quotas), or raise the table's MaxWriteRequestUnits.",
    ),
    (
        ("KeyRangeThroughputExceeded",),
        "one partition was the limit: events that share one event id (robots reuse ids) are all "
        "written to one partition, which takes about 1,000 writes/s whatever the table's capacity.",
    ),
)


def throttle_advice(tally: Tally) -> str | None:
    """One sentence on what to do about the throttling of a run, or None when there was none."""
    if not tally.throttled_by_reason:
        return None
    reason, count = max(tally.throttled_by_reason.items(), key=lambda pair: (pair[1], pair[0]))
    for endings, advice in _ADVICE:
        if any(ending in reason for ending in endings):
            return f"throttled {count:,} times mostly by {reason}: {advice}"
    return (
        f"throttled {count:,} times mostly by {reason}, which DynamoDB gave no reason for: the table's "
        "CloudWatch metrics (WriteThrottleEvents and its throttling reasons) tell which limit it was."
    )
