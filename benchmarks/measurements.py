"""The measurements, each one function returning table rows: same archive, same endpoints, one run.

Every populator run is a real `python -m populator run` process with `--concurrency 64` and
`--include-expired` (the archive's dates are fixed; this keeps "what gets written" independent of
the day the benchmark runs). Rates are items (or lines) over the wall time of the whole process,
start-up included: what a user waits for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .children import ChildRun, Endpoint, run_child
from .fixtures import TABLE, Archive, child_env
from .report import Row

CONCURRENCY = 64
BASELINES_SCRIPT = Path(__file__).resolve().parent / "baselines.py"
# Targets from issue 5 (ratios measured in the same run).
DRY_RUN_TARGET = 1.5
BATCH_WRITER_TARGET = 10.0
PUT_ITEM_TARGET = 100.0
CAPACITY_USED_TARGET = 0.90
THROTTLED_TARGET = 0.05
MAXIMUM_THROTTLED_TARGET = 0.02  # a hidden on-demand maximum, named by ThrottlingReasons
RSS_TARGET_MB = 256.0


@dataclass
class Settings:
    """Sizes and knobs of one benchmark run (`--quick` shrinks them)."""

    parts: int
    events_per_part: int
    wide_parts: int
    wide_events_per_part: int
    dry_run_parts: int  # parts of the long archive the dry-run row reads (same events per part)
    latency_ms: float
    capacity: float
    budget: float  # seconds each baseline writes before it stops
    repeats: int  # dry-run and zcat|cut runs; the best counts
    timeout: float  # seconds before a populator run is killed
    scale_objects: tuple[int, int] = (10_000, 100_000)  # the two sizes of the many-objects rows
    varied_scale: float = 1.0  # events per part of the varied archive, against benchmarks/varied.py
    only: list[str] = field(default_factory=list)  # names of the steps to measure (all when empty)
    populator_args: list[str] = field(default_factory=list)  # every populator run
    capacity_args: list[str] = field(default_factory=list)  # the capacity-limited run only

    def describe(self) -> str:
        extra = f"; extra populator args `{' '.join(self.populator_args)}`" if self.populator_args else ""
        extra += f"; capacity-run args `{' '.join(self.capacity_args)}`" if self.capacity_args else ""
        return (
            f"archive {self.parts} gzip parts × {self.events_per_part:,} events (one run; "
            f"{self.dry_run_parts} parts for the dry-run row); "
            f"endpoint latency {self.latency_ms:g} ms; capacity C = {self.capacity:,.0f} items/s; "
            f"baselines stop after {self.budget:g} s; best of {self.repeats} for dry-run and zcat|cut; "
            f"populator `--concurrency {CONCURRENCY} --include-expired`{extra}"
        )


@dataclass
class Bench:
    """Shared state: inputs, where logs go, and every child run so far (for the report)."""

    settings: Settings
    archive: Archive
    wide: Archive
    dry_archive: Archive  # the long archive of the dry-run row
    storage: Path
    resolver: Path
    log_dir: Path
    runs: list[ChildRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    varied: Archive | None = None  # parts that differ as real archives do (benchmarks/varied.py)

    def run(
        self,
        name: str,
        command: Sequence[str],
        endpoint: Endpoint | None,
        timeout: float,
        *,
        extra_env: dict[str, str] | None = None,
    ) -> ChildRun:
        env = child_env(endpoint.url if endpoint else None) | (extra_env or {})
        result = run_child(name, command, env=env, timeout=timeout, log_dir=self.log_dir)
        self.runs.append(result)
        if not result.ok:
            self.notes.append(result.problem())
        return result

    def populator(self, archive: Archive, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "populator",
            "run",
            str(archive.root),
            str(self.storage),
            str(self.resolver),
            "--quiet",
            "--include-expired",
            f"--concurrency={CONCURRENCY}",
            *self.settings.populator_args,
            *extra,
        ]


# --------------------------------------------------------------------------- dry run


def dry_run_vs_zcat(bench: Bench) -> list[Row]:
    """Reading and parsing alone: `--dry-run` against `zcat | cut -f3,7,130`, best of N each.

    The target row reads the long archive: populator's start-up (interpreter, imports, config
    validation) is a fixed cost that a real backfill spends once, and it is about a third of a
    run over the 4-part archive. That archive's row is kept beside it, without a target, with
    the start-up measured on its own (the same command over an archive with no object). The
    varied archive's row holds populator to the same target on lines that are not
    those of `populator.samples`: stream-enriched stamps, fingerprint-less shares, short and
    long lines, 4:1 to 11:1 compression, small and large objects.
    """
    long_dry, long_zcat = _best_dry_and_zcat(bench, bench.dry_archive, "long")
    short_dry, short_zcat = _best_dry_and_zcat(bench, bench.archive, "short")
    start_up = _best_start_up(bench)
    repeats = bench.settings.repeats
    varied_rows = []
    if bench.varied is not None:  # the same target over lines generated independently of populator/samples/
        varied_dry, varied_zcat = _best_dry_and_zcat(bench, bench.varied, "varied")
        varied_archive = f"{len(bench.varied.parts)} parts, {bench.varied.lines:,} lines"
        varied_rows.append(
            ratio_row(
                f"`--dry-run` lines/s, varied archive (`benchmarks/varied.py`), {varied_archive}, "
                f"best of {repeats}",
                varied_dry,
                varied_zcat,
                "zcat | cut -f3,7,130",
                DRY_RUN_TARGET,
                unit="lines/s",
            )
        )
    long_archive = f"{len(bench.dry_archive.parts)} parts, {bench.dry_archive.lines:,} lines"
    short_archive = f"{len(bench.archive.parts)} parts, {bench.archive.lines:,} lines"
    short = ratio_row(
        f"`--dry-run` lines/s, {short_archive}, best of {repeats}",
        short_dry,
        short_zcat,
        "zcat | cut -f3,7,130",
        DRY_RUN_TARGET,
        unit="lines/s",
    )
    share = start_up * short_dry / bench.archive.lines if short_dry > 0 else 0.0
    return [
        ratio_row(
            f"`--dry-run` lines/s, {long_archive}, best of {repeats}",
            long_dry,
            long_zcat,
            "zcat | cut -f3,7,130",
            DRY_RUN_TARGET,
            unit="lines/s",
        ),
        *varied_rows,
        dataclasses.replace(
            short, target=f"(start-up {start_up:.2f} s: {share:.0%} of the run)", passed=None
        ),
    ]


def _best_start_up(bench: Bench) -> float:
    """Seconds of the best `populator run --dry-run` over an archive without objects."""
    empty = bench.archive.root.parent.parent / "empty" / "archive"
    (empty / "run=2026-11-27-12-00-00").mkdir(parents=True, exist_ok=True)
    command = bench.populator(dataclasses.replace(bench.archive, root=empty), "--dry-run")
    runs = [
        bench.run(f"populator-start-up-{n}", command, None, 120) for n in range(1, bench.settings.repeats + 1)
    ]
    return min((run.seconds for run in runs if run.ok), default=0.0)


def _best_dry_and_zcat(bench: Bench, archive: Archive, label: str) -> tuple[float, float]:
    """Lines/s of the best `--dry-run` and the best `zcat | cut` over `archive`, alternating."""
    zcat = ["bash", "-c", 'set -o pipefail; zcat -- "$@" | cut -f3,7,130 >/dev/null', "zcat-cut"]
    zcat += [str(part) for part in archive.parts]
    timeout = bench.settings.timeout
    best_zcat = best_dry = float("inf")  # stays infinite if every run failed: the rate shows as 0
    for attempt in range(1, bench.settings.repeats + 1):
        z = bench.run(f"zcat-cut-{label}-{attempt}", zcat, None, timeout)
        d = bench.run(
            f"populator-dry-run-{label}-{attempt}", bench.populator(archive, "--dry-run"), None, timeout
        )
        best_zcat = min(best_zcat, z.seconds if z.ok else float("inf"))
        best_dry = min(best_dry, d.seconds if d.ok else float("inf"))
    return archive.lines / best_dry, archive.lines / best_zcat


# --------------------------------------------------------------------------- end to end


def end_to_end(bench: Bench, null: Endpoint) -> list[Row]:
    """Archive → null endpoint: populator against a batch_writer script and one PutItem at a time."""
    null.reset()
    run = bench.run("populator-end-to-end", bench.populator(bench.archive), null, bench.settings.timeout)
    stats = null.stats()
    rate = stats["items_written"] / run.seconds if run.ok else 0.0
    if run.ok and stats["distinct_keys"] != bench.archive.distinct_keys:
        bench.notes.append(
            f"end-to-end: the null endpoint received {stats['distinct_keys']:,} distinct keys, "
            f"expected {bench.archive.distinct_keys:,}"
        )
    budget = bench.settings.budget
    batch_rate = baseline_rate(bench, null, "batch-writer")
    put_rate = baseline_rate(bench, null, "put-item")
    return [
        ratio_row(
            "end-to-end items/s, null endpoint",
            rate,
            batch_rate,
            f"boto3 batch_writer, first {budget:g} s",
            BATCH_WRITER_TARGET,
        ),
        ratio_row(
            "end-to-end items/s, null endpoint",
            rate,
            put_rate,
            f"one conditional PutItem at a time, first {budget:g} s",
            PUT_ITEM_TARGET,
        ),
    ]


def design_choices(bench: Bench, null: Endpoint) -> list[Row]:
    """The measurements behind design choices (no targets): the signed write path over
    botocore's, worker processes (writing, and reading alone), isal over zlib for inflating
    gzip, and our SigV4 signer."""

    def items_per_second(name: str, *extra: str) -> float:
        null.reset()
        run = bench.run(name, bench.populator(bench.archive, *extra), null, bench.settings.timeout)
        return null.stats()["items_written"] / run.seconds if run.ok else 0.0

    signed = items_per_second("populator-signed-1-process", "--processes=1")
    botocore = items_per_second("populator-botocore-1-process", "--processes=1", "--write-path=botocore")
    several = items_per_second("populator-default-processes")
    lines = bench.archive.lines

    def dry_run_lines_per_second(name: str, *extra: str) -> float:
        command = bench.populator(bench.archive, "--dry-run", *extra)
        run = bench.run(name, command, None, bench.settings.timeout)
        return lines / run.seconds if run.ok else 0.0

    dry_one = dry_run_lines_per_second("populator-dry-run-1-process", "--processes=1")
    dry_several = dry_run_lines_per_second("populator-dry-run-default-processes")
    isal_rate, zlib_rate = inflate_rates(bench.archive.parts)
    ours, botocores = signing_rates()
    return [
        choice_row("write path, one process: orjson + SigV4 + aiohttp", signed, botocore, "botocore client"),
        choice_row(f"worker processes: {os.cpu_count()} (the default)", several, signed, "one process"),
        choice_row(
            f"worker processes, `--dry-run`: {os.cpu_count()} (the default)",
            dry_several,
            dry_one,
            "one process",
            unit="lines/s",
        ),
        choice_row(
            "gzip inflate, MB/s of output: isal IgzipDecompressor", isal_rate, zlib_rate, "zlib", unit="MB/s"
        ),
        choice_row(
            "SigV4 signing of a BatchWriteItem: populator.sink.sigv4",
            ours,
            botocores,
            "botocore SigV4Auth",
            unit="requests/s",
        ),
    ]


def signing_rates(requests: int = 3000) -> tuple[float, float]:
    """Best-of-3 signing speed of a 25-item BatchWriteItem body: our signer and botocore's
    (`tests/sink/test_sigv4.py` checks both give the same headers)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    from populator.sink.sigv4 import RequestSigner

    url, region = "https://dynamodb.us-east-1.amazonaws.com/", "us-east-1"
    target = "DynamoDB_20120810.BatchWriteItem"
    content_type = "application/x-amz-json-1.0"
    body = b"x" * 4000  # the size of a 25-item request body
    creds = ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)
    signer = RequestSigner(url, region, "dynamodb", content_type)

    def ours() -> None:
        signer.headers(creds, target, body)

    def botocore() -> None:
        request = AWSRequest(
            method="POST", url=url, data=body, headers={"Content-Type": content_type, "X-Amz-Target": target}
        )
        SigV4Auth(creds, "dynamodb", region).add_auth(request)

    def rate(sign: Any) -> float:
        best = 0.0
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(requests):
                sign()
            best = max(best, requests / (time.perf_counter() - started))
        return best

    return rate(ours), rate(botocore)


def inflate_rates(parts: Sequence[Path]) -> tuple[float, float]:
    """Best-of-3 streaming inflate speed of the archive's parts in 64 KiB reads, output bounded
    per call as the reader bounds it: the reader's isal IgzipDecompressor stream, and zlib's
    decompressobj."""
    import zlib

    from populator.job.runtime import keep_freed_memory
    from populator.source.reader import MAX_INFLATE_BYTES, _GzipStream

    keep_freed_memory()  # as `populator run` does, for both

    def isal_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
        stream = _GzipStream()
        for chunk in chunks:
            yield from stream.feed(chunk)
        stream.close()

    def zlib_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
        inflater = zlib.decompressobj(31)
        for chunk in chunks:
            while chunk:
                yield inflater.decompress(chunk, MAX_INFLATE_BYTES)
                chunk = inflater.unconsumed_tail

    def read(part: Path) -> Iterator[bytes]:
        with open(part, "rb") as handle:
            while chunk := handle.read(64 * 1024):
                yield chunk

    def rate(stream: Callable[[Iterator[bytes]], Iterator[bytes]]) -> float:
        best = 0.0
        for _ in range(3):
            started = time.perf_counter()
            produced = sum(len(piece) for part in parts for piece in stream(read(part)))
            best = max(best, produced / (time.perf_counter() - started) / 1e6)
        return best

    return rate(isal_stream), rate(zlib_stream)


def choice_row(metric: str, chosen: float, other: float, other_name: str, unit: str = "items/s") -> Row:
    ratio = f"{chosen / other:.2f}×" if chosen > 0 and other > 0 else "n/a"
    return Row(
        metric, f"{chosen:,.0f} {unit}", f"{other_name}: {other:,.0f} {unit}", ratio, "(design choice)", None
    )


def baseline_rate(bench: Bench, endpoint: Endpoint, writer: str) -> float:
    """Items/s a baseline script got through: items the endpoint admitted over the script's clock."""
    endpoint.reset()
    command = [sys.executable, str(BASELINES_SCRIPT), writer, TABLE, *map(str, bench.archive.parts)]
    command.append(f"--budget={bench.settings.budget}")
    run = bench.run(f"baseline-{writer}", command, endpoint, bench.settings.budget * 4 + 120)
    if not run.ok:
        return 0.0
    reported = json.loads(run.stdout.strip().splitlines()[-1])
    return endpoint.stats()["items_written"] / reported["seconds"] if reported["seconds"] else 0.0


# --------------------------------------------------------------------------- capacity


def capacity_limited(bench: Bench, limited: Endpoint) -> list[Row]:
    """Against a C items/s table: capacity used, requests throttled, items lost."""
    settings = bench.settings
    capacity = limited.capacity
    limited.reset()
    timeout = bench.archive.distinct_keys / capacity * 5 + 120
    # A provisioned table: populator may use --write-capacity-percent of it (50 by default, the
    # share that leaves the live shredder room); the row asks how much of 100% it really uses.
    # A table of unknown capacity (on demand, throttling at C): only the AIMD controller helps.
    allowance = [] if limited.on_demand else ["--write-capacity-percent", "100"]
    command = bench.populator(bench.archive, *allowance, *settings.capacity_args)
    label = "unknown capacity" if limited.on_demand else "provisioned"
    run = bench.run(f"populator-capacity-{label.replace(' ', '-')}", command, limited, timeout)
    stats = limited.stats(with_keys=True)
    window = stats["write_window_seconds"]
    available = capacity * window + capacity  # the bucket starts with one second banked
    used = stats["items_written"] / available if available else 0.0
    writes = stats["write_requests"]
    throttled = stats["throttled_requests"] / writes if writes else 0.0
    missing = bench.archive.distinct_keys - stats["distinct_keys"]
    exact = stats["keys_digest"] == bench.archive.keys_digest
    per_second = stats["items_written"] / window if window else 0.0
    status = "" if run.ok else f" ({'timeout' if run.timed_out else f'exit {run.returncode}'})"
    return [
        Row(
            f"capacity used, {label} table, C = {capacity:,.0f} items/s",
            f"{used:.1%} ({per_second:,.0f} items/s over {window:.1f} s){status}",
            "",
            "",
            f"≥ {CAPACITY_USED_TARGET:.0%}",
            used >= CAPACITY_USED_TARGET,
        ),
        Row(
            f"write requests throttled, {label} table (UnprocessedItems or 400)",
            f"{throttled:.1%} ({stats['throttled_requests']:,} of {writes:,})",
            "",
            "",
            f"≤ {THROTTLED_TARGET:.0%}",
            writes > 0 and throttled <= THROTTLED_TARGET,
        ),
        Row(
            f"items lost, {label} table",
            _lost_text(missing, exact, bench.archive.distinct_keys),
            "",
            "",
            "0",
            exact,
        ),
    ]


def on_demand_maximum(bench: Bench, with_reason: Endpoint, without_reason: Endpoint) -> list[Row]:
    """A table that DescribeTable says nothing about, capped at C by an on-demand maximum (or an
    account quota) that refuses whole requests: throttled requests when the 400s name the reason,
    against the same endpoint without ThrottlingReasons, where the controller keeps probing."""
    results = []
    for endpoint in (with_reason, without_reason):
        endpoint.reset()
        timeout = bench.archive.distinct_keys / endpoint.capacity * 5 + 120
        command = bench.populator(bench.archive, *bench.settings.capacity_args)
        run = bench.run(f"populator-{endpoint.name}", command, endpoint, timeout)
        stats = endpoint.stats(with_keys=True)
        writes = stats["write_requests"]
        throttled = stats["throttled_requests"] / writes if writes else 0.0
        window = stats["write_window_seconds"]
        used = stats["items_written"] / (endpoint.capacity * window + endpoint.capacity) if window else 0.0
        exact = stats["keys_digest"] == bench.archive.keys_digest
        results.append((run, throttled, stats, used, exact))
    (run, throttled, stats, used, exact), (_, other, other_stats, other_used, _) = results
    status = "" if run.ok else f" ({'timeout' if run.timed_out else f'exit {run.returncode}'})"
    capacity = with_reason.capacity
    return [
        Row(
            f"write requests throttled, hidden on-demand maximum C = {capacity:,.0f} items/s, "
            "ThrottlingReasons named",
            f"{throttled:.1%} ({stats['throttled_requests']:,} of {stats['write_requests']:,}), "
            f"{used:.0%} of C used{status}",
            f"no reason given: {other:.1%} ({other_stats['throttled_requests']:,} of "
            f"{other_stats['write_requests']:,}), {other_used:.0%} of C used",
            f"{other / throttled:.1f}× fewer" if throttled else "none throttled",
            f"≤ {MAXIMUM_THROTTLED_TARGET:.0%}",
            bool(stats["write_requests"]) and throttled <= MAXIMUM_THROTTLED_TARGET and exact,
        )
    ]


def _lost_text(missing: int, exact: bool, expected: int) -> str:
    if exact:
        return f"0 of {expected:,}"
    if missing > 0:
        return f"{missing:,} of {expected:,}"
    return f"stored key set differs from the expected {expected:,} keys"


# --------------------------------------------------------------------------- memory


def peak_memory(bench: Bench, null: Endpoint) -> list[Row]:
    """Peak RSS at --concurrency 64, on an archive with enough parts to keep 64 readers busy."""
    wide = bench.wide
    null.reset()
    run = bench.run(f"populator-{len(wide.parts)}-parts", bench.populator(wide), null, bench.settings.timeout)
    worst = max((r for r in bench.runs if r.name.startswith("populator-")), key=lambda r: r.peak_rss_mb)
    peak = worst.peak_rss_mb
    return [
        Row(
            f"peak RSS of one process, `--concurrency {CONCURRENCY}`, every populator run",
            f"{peak:.0f} MB ({worst.name}; {len(wide.parts)}-part run: {run.peak_rss_mb:.0f} MB)",
            "",
            "",
            f"≤ {RSS_TARGET_MB:.0f} MB",
            peak <= RSS_TARGET_MB,
        )
    ]


# --------------------------------------------------------------------------- rows


def ratio_row(
    metric: str, ours: float, theirs: float, baseline: str, target: float, unit: str = "items/s"
) -> Row:
    """A row comparing two rates; a failed run shows as 0 and fails its target."""
    if ours <= 0 or theirs <= 0:
        return Row(metric, _rate(ours), f"{baseline}: {_rate(theirs)}", "n/a", f"≥ {target:g}×", False)
    ratio = ours / theirs
    return Row(
        metric,
        f"{ours:,.0f} {unit}",
        f"{baseline}: {theirs:,.0f} {unit}",
        f"{ratio:.2f}×",
        f"≥ {target:g}×",
        ratio >= target,
    )


def _rate(value: float) -> str:
    return "error" if value <= 0 else f"{value:,.0f}"


def as_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows for `latest.json`, so a later script can compare runs without parsing markdown."""
    return [dataclasses.asdict(row) | {"result": row.result} for row in rows]
