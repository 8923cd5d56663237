"""`populator verify` on screen: what was checked, what is missing and where it came from."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..job.verify import MISSING_SHOWN, Verification


def render_verification(console: Console, result: Verification) -> None:
    console.print(
        Text.assemble(
            ("populator verify", "bold"),
            f": {result.archive} → DynamoDB table {result.table} ({result.region})",
        ),
        soft_wrap=True,
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    read = f"{result.objects_read:,} of {result.objects_selected:,} selected objects"
    grid.add_row(
        "read",
        f"{read}: {result.events_seen:,} events, {result.no_fingerprint:,} without a fingerprint "
        f"(run skips them, never in the table), {result.bad_rows:,} bad rows",
    )
    grid.add_row(
        "checked",
        f"{result.checked:,} events (sample of {result.sample_size:,}; "
        f"{result.expired_seen:,} expired by TTL not checked)",
    )
    coverage = f" ({result.coverage:.2f}%)" if result.coverage is not None else ""
    grid.add_row("present", Text(f"{result.present:,}{coverage}", style="green" if result.ok else ""))
    grid.add_row("missing", Text(f"{len(result.missing):,}", style="bold red" if result.missing else ""))
    if result.ttl is not None:
        off = result.ttl == "off"
        grid.add_row(
            "TTL",
            Text(
                "OFF: the manifest never expires (`populator run` enables it; or aws dynamodb "
                "update-time-to-live ... AttributeName=ttl)"
                if off
                else result.ttl,
                style="bold red" if off else "",
            ),
        )
    console.print(grid)
    if result.missing:
        console.print(f"missing (first {min(len(result.missing), MISSING_SHOWN)}):", style="bold")
        for picked in result.missing[:MISSING_SHOWN]:
            console.print(
                f"  eventId {picked.key[0]}  fingerprint {picked.key[1]}  "
                f"from {picked.obj}, line {picked.line}",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
    for key, reason in result.unreadable.items():
        console.print(f"unreadable: {key}: {reason}", style="yellow", soft_wrap=True, markup=False)
    if result.missing:
        console.print(
            Text.assemble(
                ("FAILED", "bold red"),
                f": {len(result.missing):,} of {result.checked:,} sampled events are not in the table. "
                "Run the same `populator run` again (writes are idempotent), then verify again.",
            ),
            soft_wrap=True,
        )
    elif result.checked:
        console.print(
            Text.assemble(("OK", "bold green"), f": all {result.checked:,} sampled events are in the table."),
            soft_wrap=True,
        )
    else:
        console.print("nothing to check: the selected objects hold no live event.", soft_wrap=True)
