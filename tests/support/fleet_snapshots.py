"""Status snapshots made up for tests of `populator status`: a shard of a job at a fixed moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from populator.observe.shard_status import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    STOPPED,
    ShardStatus,
    iso_utc,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def snap(
    k: int | None, n: int | None, state: str = RUNNING, age: float = 5.0, **figures: object
) -> ShardStatus:
    """Shard k of n's snapshot, written `age` seconds before NOW."""
    shard = f" --shard {k}/{n}" if k is not None else ""
    values: dict[str, object] = {
        "job": "manifest-0123456789ab",
        "archive": "s3://acme/enriched/",
        "table": "manifest",
        "since": None,
        "mode": "batch",
        "dry_run": False,
        "shard_index": k,
        "shard_count": n,
        "host": f"host-{k}",
        "pid": 100 + (k or 0),
        "started_at": iso_utc(NOW - timedelta(hours=1)),
        "written_at": iso_utc(NOW - timedelta(seconds=age)),
        "state": state,
        "exit_code": {FINISHED: 0, FAILED: 1, STOPPED: 4, INTERRUPTED: 143}.get(state),
        "listing_done": True,
        "objects_total": 10,
        "objects_done": 10 if state == FINISHED else 4,
        "objects_done_before": 0,
        "objects_failed": 0,
        "bytes_total": 1000,
        "bytes_done": 1000 if state == FINISHED else 400,
        "items_done": 500,
        "items_per_s": 50.0,
        "eta_s": 0.0 if state == FINISHED else 60.0,
        "write_units": 500.0,
        "cost_usd": 0.0003,
        "command": None if state == FINISHED else f"populator run s3://acme/enriched/ d.json r.json{shard}",
    }
    values.update(figures)
    return ShardStatus(**values)  # type: ignore[arg-type]
