"""`populator plan`: what a run would do, worked out without writing anything.

Lists the selected runs, estimates their events from a sample of object heads (see
estimate.py), and turns that into write units, an on-demand cost and a duration at the table's
capacity. The table is only described (DescribeTable); when it cannot be (refused, no
credentials), the plan says why and goes on, but an S3 or DynamoDB endpoint this machine cannot
reach at all is an error (exit 2), as it would be for `run`. No table is created, no checkpoint
opened, no item written.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..events import NO_FINGERPRINT_WHY, TTL_SECONDS
from ..sink.pricing import DEFAULT_PRICE_PER_GB_IMPORT, DEFAULT_PRICE_PER_MILLION_WRU, import_cost_usd
from ..sink.ratelimit import UNKNOWN_CAPACITY_START
from ..sink.staging import DEFAULT_ITEMS_PER_OBJECT, staged_line_bytes
from ..sink.throughput import write_ceiling
from ..sink.writes import TableInfo
from ..source.archive import ArchiveObject, RunFolder, list_archive
from ..source.estimate import (
    DEFAULT_SAMPLE_KIB,
    DEFAULT_SAMPLE_OBJECTS,
    EvenSample,
    LineEstimate,
    ObjectSample,
    choose_streamed,
    estimate,
    kind_of,
    sample_heads,
)
from ..source.shard import ShardLoad, ShardTally, imbalance
from .clients import guard, open_clients
from .spec import BackfillJob


@dataclass(frozen=True)
class PlanOptions:
    sample_objects: int = DEFAULT_SAMPLE_OBJECTS
    sample_kib: int = DEFAULT_SAMPLE_KIB
    price_per_million: float = DEFAULT_PRICE_PER_MILLION_WRU
    now: float | None = None  # epoch seconds; None: the clock
    shards: int | None = None  # show how the objects fall across this many shards (--shards)
    items_per_object: int = DEFAULT_ITEMS_PER_OBJECT  # `import`: items a staged object
    price_per_gb_import: float = DEFAULT_PRICE_PER_GB_IMPORT


@dataclass(frozen=True)
class RunPlan:
    run: str
    started: datetime
    objects: int
    bytes: int
    lines: float
    events: float
    expired: bool  # run time + 180 days is in the past


@dataclass(frozen=True)
class TableView:
    """What DescribeTable said, or why it could not say."""

    name: str
    region: str
    status: str  # "exists", "missing" or "unknown"
    billing_mode: str | None = None  # PROVISIONED or PAY_PER_REQUEST
    write_capacity: int | None = None
    read_capacity: int | None = None
    item_count: int | None = None  # DynamoDB's own figure, updated about every 6 hours
    problem: str | None = None  # keys that are not a manifest's
    reason: str | None = None  # why the status is unknown
    max_write_units: int | None = None  # on demand: OnDemandThroughput.MaxWriteRequestUnits
    warm_write_units: int | None = None  # WarmThroughput.WriteUnitsPerSecond
    created_capacity: tuple[int, int] | None = None  # missing: the (RCU, WCU) run would provision
    ttl: str | None = None  # exists: "enabled", "off", or why it is not known


@dataclass(frozen=True)
class Plan:
    archive: str
    since: datetime | None
    now: datetime
    runs: list[RunPlan]
    samples: list[ObjectSample]
    estimate: LineEstimate
    table: TableView
    include_expired: bool
    on_demand: bool
    price_per_million: float
    write_rate: float | None  # items/s the run would be held to (or is assumed to reach)
    rate_basis: str
    provisioned_rate: bool = False  # the rate is a share of provisioned capacity
    sample_kib: int = DEFAULT_SAMPLE_KIB
    warnings: list[str] = field(default_factory=list)
    shards: list[ShardLoad] | None = None  # with --shards: objects and bytes per shard
    items_per_object: int = DEFAULT_ITEMS_PER_OBJECT  # `populator import`: items a staged object
    price_per_gb_import: float = DEFAULT_PRICE_PER_GB_IMPORT

    @property
    def objects(self) -> int:
        return sum(run.objects for run in self.runs)

    @property
    def bytes(self) -> int:
        return sum(run.bytes for run in self.runs)

    @property
    def lines(self) -> float:
        return sum(run.lines for run in self.runs)

    @property
    def events(self) -> float:
        return sum(run.events for run in self.runs)

    @property
    def expired_events(self) -> float:
        return sum(run.events for run in self.runs if run.expired)

    @property
    def items_to_write(self) -> float:
        """Events the run would write (duplicates aside): all, or all but the expired runs'."""
        return self.events if self.include_expired else self.events - self.expired_events

    @property
    def write_units(self) -> float:
        """One write request unit per item: manifest items are far below 1 KB."""
        return self.items_to_write

    @property
    def cost_usd(self) -> float:
        return self.write_units / 1_000_000 * self.price_per_million

    @property
    def duration_s(self) -> float | None:
        return self.items_to_write / self.write_rate if self.write_rate else None

    # `populator import`, beside `run`: the same items, staged as DynamoDB JSON for ImportTable.

    @property
    def import_possible(self) -> bool:
        """ImportTable only creates a table: one that exists (or may) rules the import out."""
        return self.table.status == "missing"

    @property
    def staged_bytes(self) -> float:
        """The uncompressed DynamoDB JSON `import` would stage: what ImportTable bills."""
        return self.items_to_write * staged_line_bytes()

    @property
    def staged_objects(self) -> int:
        """About as many staged objects (archive objects are never split between two)."""
        if self.items_to_write <= 0:
            return 0
        return min(self.objects, max(1, math.ceil(self.items_to_write / self.items_per_object)))

    @property
    def import_cost_usd(self) -> float:
        return import_cost_usd(self.staged_bytes, self.price_per_gb_import)

    def as_dict(self) -> dict[str, Any]:
        sampled = self.samples
        return {
            "archive": self.archive,
            "since": self.since.strftime("%Y-%m-%d-%H-%M-%S") if self.since else None,
            "now": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "runs": [
                {
                    "run": run.run,
                    "started": run.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "objects": run.objects,
                    "bytes": run.bytes,
                    "estimated_lines": round(run.lines),
                    "estimated_events": round(run.events),
                    "expired": run.expired,
                }
                for run in self.runs
            ],
            "objects": self.objects,
            "bytes": self.bytes,
            "sample": {
                "objects": len(sampled),
                "kib_per_object": self.sample_kib,
                "bytes_read": sum(s.compressed_bytes for s in sampled),
                "lines": round(sum(s.lines for s in sampled), 1),
                "events": sum(s.events for s in sampled),
                "no_fingerprint": sum(s.no_fingerprint for s in sampled),
                "no_fingerprint_share": round(self.estimate.no_fingerprint_share, 4),
                "lines_per_mb": {
                    kind: round(ratio * 1_000_000, 1) for kind, ratio in self.estimate.ratios.items()
                },
                "event_share": round(self.estimate.event_share, 4),
            },
            "estimated_lines": round(self.lines),
            "estimated_events": round(self.events),
            "estimated_expired_events": round(self.expired_events),
            "include_expired": self.include_expired,
            "items_to_write": round(self.items_to_write),
            "write_units": round(self.write_units),
            "price_per_million_wru": self.price_per_million,
            "on_demand_cost_usd": round(self.cost_usd, 4),
            "table": asdict(self.table),
            "write_rate": round(self.write_rate, 1) if self.write_rate else None,
            "write_rate_basis": self.rate_basis,
            "duration_s": round(self.duration_s, 1) if self.duration_s is not None else None,
            "warnings": self.warnings,
            "shards": self._shards_dict(),
            "import": {
                "possible": self.import_possible,
                "table_status": self.table.status,
                "staged_bytes": round(self.staged_bytes),
                "staged_objects": self.staged_objects,
                "items_per_object": self.items_per_object,
                "price_per_gb_import": self.price_per_gb_import,
                "import_cost_usd": round(self.import_cost_usd, 4),
            },
        }

    def _shards_dict(self) -> dict[str, Any] | None:
        if self.shards is None:
            return None
        loads = [
            {
                "shard": str(load.shard),
                "objects": load.objects,
                "bytes": load.bytes,
                "object_share": round(load.object_share, 4),
                "byte_share": round(load.byte_share, 4),
            }
            for load in self.shards
        ]
        return {"count": len(self.shards), "imbalance": round(imbalance(self.shards), 4), "loads": loads}


async def make_plan(job: BackfillJob, options: PlanOptions = PlanOptions()) -> Plan:
    """List, sample and describe; writes nothing. Raises UsageError for what a user can fix."""
    now = options.now if options.now is not None else time.time()
    async with contextlib.AsyncExitStack() as stack:
        clients = await open_clients(job, stack)
        runs, listing = await guard(
            _listing(job, clients.s3, options),
            action=f"listing {job.location}",
            permission="s3:ListBucket",
            identity=clients.s3_identity,
            archive=str(job.location),
            endpoints=clients.reach("S3"),
        )
        chosen = choose_streamed(listing.samples, options.sample_objects)
        samples = await guard(
            sample_heads(job.location, chosen, options.sample_kib * 1024, clients.s3),
            action=f"reading {job.location}",
            permission="s3:GetObject",
            identity=clients.s3_identity,
            archive=str(job.location),
            endpoints=clients.reach("S3"),
        )
        table = await describe_table(job, clients.dynamodb)
    lines = estimate(samples)
    run_plans = _run_plans(runs, listing, lines, now)
    rate, basis = planned_rate(job, table)
    provisioned = table.status != "unknown" and "WCU" in basis
    plan = Plan(
        archive=str(job.location),
        since=job.pipeline.since,
        now=datetime.fromtimestamp(now, UTC),
        runs=run_plans,
        samples=samples,
        estimate=lines,
        table=table,
        include_expired=job.pipeline.include_expired,
        on_demand=job.on_demand,
        price_per_million=options.price_per_million,
        write_rate=rate,
        rate_basis=basis,
        provisioned_rate=provisioned,
        sample_kib=options.sample_kib,
        shards=listing.shards.loads() if listing.shards is not None else None,
        items_per_object=options.items_per_object,
        price_per_gb_import=options.price_per_gb_import,
    )
    plan.warnings.extend(warnings(plan))
    return plan


@dataclass
class _RunSums:
    objects: int = 0
    bytes: int = 0
    bytes_by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class _Listing:
    """What the plan keeps of a listing as it streams by: sums per run, an even sample of each
    kind of object, the shard tallies. Nothing per object: a million-object archive is planned in
    the memory of its run folders."""

    runs: dict[str, _RunSums] = field(default_factory=dict)
    samples: dict[str, EvenSample] = field(default_factory=dict)
    shards: ShardTally | None = None

    def add(self, obj: ArchiveObject, shard_key: str, sample_count: int) -> None:
        sums = self.runs.setdefault(obj.run, _RunSums())
        kind = kind_of(obj)
        sums.objects += 1
        sums.bytes += obj.size
        sums.bytes_by_kind[kind] = sums.bytes_by_kind.get(kind, 0) + obj.size
        self.samples.setdefault(kind, EvenSample(sample_count)).add(obj)
        if self.shards is not None:
            self.shards.add(shard_key, obj.size)


async def _listing(job: BackfillJob, s3: Any, options: PlanOptions) -> tuple[list[RunFolder], _Listing]:
    shard = getattr(job.pipeline, "shard", None)
    if shard is not None:
        runs, found = await list_archive(job.location, job.pipeline.since, s3, shard)
    else:
        runs, found = await list_archive(job.location, job.pipeline.since, s3)
    listing = _Listing(shards=ShardTally(options.shards) if options.shards is not None else None)
    async for obj in found:
        listing.add(obj, job.location.relative_key(obj.key), options.sample_objects)
    return runs, listing


def _run_plans(runs: list[RunFolder], listing: _Listing, lines: LineEstimate, now: float) -> list[RunPlan]:
    # Objects read whole have exact counts; the rest of a run's bytes go by the ratio of their kind.
    exact_by_run: dict[str, list[ObjectSample]] = {}
    for sample in lines.exact.values():
        exact_by_run.setdefault(sample.obj.run, []).append(sample)
    plans = []
    for run in runs:
        sums = listing.runs.get(run.name, _RunSums())
        estimated_bytes = dict(sums.bytes_by_kind)
        exact_lines = exact_events = 0.0
        for sample in exact_by_run.get(run.name, []):
            estimated_bytes[kind_of(sample.obj)] -= sample.obj.size
            exact_lines += sample.lines
            exact_events += sample.events
        estimated = sum(lines.lines_of(kind, size) for kind, size in estimated_bytes.items())
        plans.append(
            RunPlan(
                run=run.name,
                started=run.started,
                objects=sums.objects,
                bytes=sums.bytes,
                lines=estimated + exact_lines,
                events=estimated * lines.event_share + exact_events,
                expired=run.started.timestamp() + TTL_SECONDS < now,
            )
        )
    return plans


async def describe_table(job: BackfillJob, dynamodb: Any) -> TableView:
    """DescribeTable, and nothing else: a missing table or a refusal is a status, not an error."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    from ..errors import aws_error_code, describe_failure
    from ..sink.manifest import key_schema_problem, table_info

    name, region = job.storage.table, job.storage.region
    try:
        table = (await dynamodb.describe_table(TableName=name))["Table"]
    except ClientError as exc:
        if aws_error_code(exc) == "ResourceNotFoundException":
            return TableView(name, region, "missing", created_capacity=job.provisioned)
        return TableView(name, region, "unknown", reason=describe_failure(exc))
    except (NoCredentialsError, PartialCredentialsError):
        return TableView(name, region, "unknown", reason="no AWS credentials found")
    except BotoCoreError as exc:
        from ..config.aws import Endpoint, connection_failure

        # A table that cannot be reached at all is not a status: no run from here could work.
        unreachable = connection_failure(exc, [Endpoint.of("DynamoDB", dynamodb)])
        if unreachable is not None:
            raise unreachable from None
        return TableView(name, region, "unknown", reason=str(exc))
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    throughput = table.get("ProvisionedThroughput", {})
    provisioned = billing == "PROVISIONED"
    info = table_info(name, table)
    try:
        described = (await dynamodb.describe_time_to_live(TableName=name)).get("TimeToLiveDescription", {})
        on = described.get("AttributeName") == "ttl" and described.get("TimeToLiveStatus") in (
            "ENABLED",
            "ENABLING",
        )
        ttl = "enabled" if on else "off"
    except ClientError as exc:
        ttl = f"unknown ({describe_failure(exc)})"
    return TableView(
        name,
        region,
        "exists",
        billing_mode=billing,
        write_capacity=throughput.get("WriteCapacityUnits") if provisioned else None,
        read_capacity=throughput.get("ReadCapacityUnits") if provisioned else None,
        item_count=table.get("ItemCount"),
        problem=key_schema_problem(table),
        max_write_units=info.max_write_units,
        warm_write_units=info.warm_write_units,
        ttl=ttl,
    )


def planned_rate(job: BackfillJob, table: TableView) -> tuple[float | None, str]:
    """The items/s a run would be held to, and in words why."""
    options = job.throughput
    percent = f"{options.write_capacity_percent:g}%"
    if table.status == "exists":
        info = TableInfo(
            table.name,
            False,
            table.billing_mode or "PROVISIONED",
            table.write_capacity,
            table.max_write_units,
            table.warm_write_units,
        )
    elif table.status == "missing":
        info = TableInfo(
            table.name,
            True,
            "PAY_PER_REQUEST" if job.provisioned is None else "PROVISIONED",
            None if job.provisioned is None else job.provisioned[1],
        )
    else:
        if options.max_write_rate:
            return options.max_write_rate, "--max-write-rate; the table's capacity is unknown"
        return None, "unknown: the table cannot be described; pass --max-write-rate to plan for a rate"
    ceiling = write_ceiling(info, options)
    of_new = " of the table run would create" if table.status == "missing" else ""
    if ceiling is None:
        if info.warm_write_units:
            return float(info.warm_write_units), (
                "the table's warm throughput (what it takes at once); it grows from there as it is used"
            )
        return (
            UNKNOWN_CAPACITY_START,
            "assumed: what a new on-demand table takes at once, doubling its peak every 30 minutes; "
            "one used before takes up to twice its previous peak. Pass --max-write-rate to plan for "
            "another rate",
        )
    if options.max_write_rate is not None and ceiling == options.max_write_rate:
        return ceiling, "--max-write-rate"
    if info.max_write_units and ceiling == info.max_write_units:
        return ceiling, "the table's on-demand maximum (MaxWriteRequestUnits)"
    return ceiling, f"{percent} (--write-capacity-percent) of {info.write_capacity:,} WCU{of_new}"


def about(value: float) -> str:
    """An estimate, to 3 significant figures: `≈ 49,100`."""
    if value <= 0:
        return "0"
    digits = len(str(int(value)))
    rounded = round(value, 3 - digits) if digits > 3 else round(value)
    return f"≈ {rounded:,.0f}"


NO_FINGERPRINT_WARNING_SHARE = 0.5  # more sampled events than this without a fingerprint: warn


def warnings(plan: Plan) -> list[str]:
    found = []
    if not plan.runs:
        found.append("no run folder is selected: check the archive path and --since.")
    expired = [run for run in plan.runs if run.expired]
    if expired:
        names = expired[0].run if len(expired) == 1 else f"{expired[0].run} to {expired[-1].run}"
        what = "run is" if len(expired) == 1 else "runs are"
        action = (
            "run writes them anyway (--include-expired), and DynamoDB deletes them within days"
            if plan.include_expired
            else "run skips them unless --include-expired"
        )
        found.append(
            f"{len(expired)} {what} more than 180 days old ({names}): their items "
            f"({about(plan.expired_events)} events) would already be expired by TTL; {action}."
        )
    if plan.estimate.no_fingerprint_share > NO_FINGERPRINT_WARNING_SHARE:
        found.append(
            f"{plan.estimate.no_fingerprint_share:.0%} of the sampled events have no event_fingerprint: "
            f"is the event fingerprint enrichment enabled? Run skips them ({NO_FINGERPRINT_WHY})."
        )
    if plan.table.problem:
        found.append(
            f"table {plan.table.name} is not an event manifest ({plan.table.problem}); run would refuse it."
        )
    if plan.provisioned_rate and plan.duration_s is not None and plan.duration_s > 24 * 3600:
        found.append(
            "at this rate the run takes more than a day: raise the table's write capacity (or make "
            "it on demand) for the backfill, or pass a higher --write-capacity-percent."
        )
    return found
