"""`populator plan` on screen: a table of runs, then the estimates, each saying what it rests on.

Rendered with rich, so a terminal gets colour and a pipe gets the same text without escape codes.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..events import NO_FINGERPRINT_WHY
from ..job.plan import Plan, TableView, about
from ..observe.snapshot import format_bytes, format_duration
from ..source.shard import ShardLoad, imbalance

RUNS_SHOWN = 40  # more runs than this: the first and last half, and a line saying how many between


def dollars(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def render_plan(console: Console, plan: Plan) -> None:
    console.print(
        Text.assemble(
            ("populator plan", "bold"),
            f": {plan.archive} → DynamoDB table {plan.table.name} ({plan.table.region})",
            " since " + plan.since.strftime("%Y-%m-%d %H:%M:%S") if plan.since else "",
        ),
        soft_wrap=True,
    )
    console.print(_runs_table(plan))
    console.print(_figures(plan))
    console.print(paths_table(plan))
    if plan.shards is not None:
        console.print(_shards_table(plan.shards))
    for warning in plan.warnings:
        console.print(Text.assemble(("warning: ", "bold yellow"), warning))
    console.print(
        "Nothing was written: plan only lists, reads object heads and describes the table.", style="dim"
    )


def _runs_table(plan: Plan) -> Table:
    table = Table(title="selected runs", title_justify="left", show_footer=True, box=None, pad_edge=False)
    table.add_column("run", footer=f"{len(plan.runs):,} runs", no_wrap=True)
    table.add_column("objects", justify="right", footer=f"{plan.objects:,}")
    table.add_column("bytes", justify="right", footer=format_bytes(plan.bytes))
    table.add_column("events (est.)", justify="right", footer=about(plan.events))
    table.add_column("note")
    runs = plan.runs
    hidden = 0
    if len(runs) > RUNS_SHOWN:
        hidden = len(runs) - RUNS_SHOWN
        runs = [*runs[: RUNS_SHOWN // 2], *runs[-RUNS_SHOWN // 2 :]]
    for index, run in enumerate(runs):
        if hidden and index == RUNS_SHOWN // 2:
            table.add_row(f"… {hidden:,} more runs (--json lists every one)", "", "", "", "", style="dim")
        note = Text("expired by TTL", style="yellow") if run.expired else Text("")
        table.add_row(run.run, f"{run.objects:,}", format_bytes(run.bytes), about(run.events), note)
    return table


def _figures(plan: Plan) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    samples = plan.samples
    per_mb = ", ".join(
        f"{ratio * 1_000_000:,.0f} lines per MB ({kind})"
        for kind, ratio in plan.estimate.ratios.items()
        if kind != "*"
    )
    grid.add_row(
        "sample",
        f"the first {plan.sample_kib:,} KiB of {len(samples)} of {plan.objects:,} objects: "
        f"{per_mb or 'nothing to read'}",
    )
    grid.add_row(
        "events",
        f"{about(plan.events)} with a fingerprint ({plan.estimate.event_share:.1%} of {about(plan.lines)} "
        "lines; the rest without a fingerprint, bad or blank)",
    )
    share = plan.estimate.no_fingerprint_share
    grid.add_row(
        "no fingerprint",
        f"{share:.1%} of the sampled events" + (f", skipped by run: {NO_FINGERPRINT_WHY}" if share else ""),
    )
    expired = (
        f"; {about(plan.expired_events)} in expired runs "
        + ("included (--include-expired)" if plan.include_expired else "skipped")
        if plan.expired_events
        else ""
    )
    grid.add_row("to write", f"{about(plan.items_to_write)} items{expired}")
    grid.add_row("write units", f"{about(plan.write_units)} WRU (one per item: manifest items are < 1 KB)")
    grid.add_row(
        "on-demand cost",
        f"{dollars(plan.cost_usd)} at ${plan.price_per_million:g} per million write request units"
        + (" (a provisioned table uses capacity already paid for)" if _provisioned(plan.table) else ""),
    )
    grid.add_row("table", table_line(plan.table, on_demand=plan.on_demand))
    rate = f"{plan.write_rate:,.0f} items/s ({plan.rate_basis})" if plan.write_rate else plan.rate_basis
    grid.add_row("write rate", rate)
    grid.add_row("duration", f"≈ {format_duration(plan.duration_s)}" if plan.duration_s is not None else "?")
    return grid


def paths_table(plan: Plan) -> Table:
    """`run` and `import` side by side: the same items, two ways into DynamoDB."""
    table = Table(title="run or import", title_justify="left", box=None, pad_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("populator run")
    table.add_column("populator import")
    name = plan.table.name
    run_table: str | Text
    import_table: str | Text
    if plan.table.status == "missing":
        run_table, import_table = f"creates {name}", f"creates {name} (ImportTable)"
    elif plan.table.status == "exists":
        run_table = f"writes into {name}"
        import_table = Text(
            f"not possible: {name} exists (ImportTable makes a new table: name one that does not exist)",
            style="yellow",
        )
    else:
        unknown = Text("needs a table that does not exist; unknown here", style="yellow")
        run_table, import_table = name, unknown
    items = f"{about(plan.items_to_write)} items"
    table.add_row("table", run_table, import_table)
    table.add_row("items", items, items)
    table.add_row(
        "how",
        f"{about(plan.write_units)} write request units",
        f"≈ {format_bytes(plan.staged_bytes)} of DynamoDB JSON (uncompressed) in ≈ {plan.staged_objects:,} "
        f"staged objects of ≤ {plan.items_per_object:,} items; no write capacity used",
    )
    table.add_row(
        "cost",
        f"{dollars(plan.cost_usd)} on demand (${plan.price_per_million:g} per million)",
        f"{dollars(plan.import_cost_usd)} (${plan.price_per_gb_import:g} per GB), and S3 requests",
    )
    duration = f"≈ {format_duration(plan.duration_s)}" if plan.duration_s is not None else "?"
    table.add_row("duration", duration, "staging ≈ a --dry-run's reading; then DynamoDB's own pace")
    return table


def _shards_table(loads: list[ShardLoad]) -> Table:
    """How the objects fall across --shards N: the heaviest shard sets how long the fleet takes."""
    heaviest = max(loads, key=lambda load: load.bytes)
    table = Table(
        title=f"across {len(loads):,} shards (--shard K/{len(loads)})",
        title_justify="left",
        caption=f"heaviest: {heaviest.shard}, {imbalance(loads):.2f}× the mean",
        caption_justify="left",
        box=None,
        pad_edge=False,
    )
    table.add_column("shard", no_wrap=True)
    table.add_column("objects", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("share of bytes", justify="right")
    shown, hidden = loads, 0
    if len(loads) > RUNS_SHOWN:
        hidden = len(loads) - RUNS_SHOWN
        shown = [*loads[: RUNS_SHOWN // 2], *loads[-RUNS_SHOWN // 2 :]]
    for index, load in enumerate(shown):
        if hidden and index == RUNS_SHOWN // 2:
            table.add_row(f"… {hidden:,} more shards (--json lists every one)", "", "", "", style="dim")
        share = f"{load.byte_share:.1%}"
        table.add_row(str(load.shard), f"{load.objects:,}", format_bytes(load.bytes), share)
    return table


def _provisioned(table: TableView) -> bool:
    return table.status == "exists" and table.billing_mode == "PROVISIONED"


def table_line(table: TableView, *, on_demand: bool = False) -> str:
    if table.status == "missing":
        if table.created_capacity is None:
            created = (
                "on demand (PAY_PER_REQUEST: 4,000 writes/s at once, its peak doubling every 30 "
                "minutes; --provisioned R/W for provisioned capacity)"
            )
        else:
            read, write = table.created_capacity
            created = f"provisioned, {write:,} WCU / {read:,} RCU (--provisioned)"
        return f"{table.name} does not exist: run would create it {created}"
    if table.status == "unknown":
        return f"{table.name}: billing mode and capacity unknown ({table.reason})"
    if table.billing_mode == "PROVISIONED":
        mode = f"provisioned, {table.write_capacity:,} WCU / {table.read_capacity or 0:,} RCU"
    else:
        mode = "on demand (PAY_PER_REQUEST)"
        if table.max_write_units:
            mode += f", at most {table.max_write_units:,} write units/s (MaxWriteRequestUnits)"
        if table.warm_write_units:
            mode += f", warm for {table.warm_write_units:,}/s"
    count = f", about {table.item_count:,} items now" if table.item_count is not None else ""
    return f"{table.name}: {mode}{count}; {ttl_words(table)}"


def ttl_words(table: TableView) -> str:
    """Time to live on `ttl`, and what run does about it."""
    if table.ttl == "enabled":
        return "TTL on ttl: enabled"
    if table.ttl == "off":
        return (
            "TTL on ttl: OFF (the manifest would never expire; run enables it, which needs "
            "dynamodb:UpdateTimeToLive)"
        )
    return f"TTL on ttl: {table.ttl}"
