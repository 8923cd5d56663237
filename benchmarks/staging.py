"""`populator import`'s staging against `run --dry-run`: items/s over the same archive (issue 15).

Staging is the dry run's work (list, read, inflate, parse, the TTL rule, batches) plus turning
each item into a line of DynamoDB JSON, keeping keys unique within a staged object, gzip and
multipart uploads. The row runs `populator import` over the long archive (the dry-run row's)
into a local endpoint, and `populator run --dry-run` over the same archive, alternating, best
of `--repeats` each.

Two rates for each. *Throughput* (the target's): items ÷ the wall time after the command's own
start-up, which is the best time of the same command over a one-object archive (the first
1,000 lines of the long archive's first part) and is subtracted with its items. An import's
start-up is fixed and large next to a dry run's over a local archive (about a second: importing
botocore, an S3 and a DynamoDB client, the pre-flight calls, ImportTable, TTL), and a real
backfill spends it once over 10⁸–10⁹ items, not over 800,000. *Whole process*: items ÷ the
wall time, start-up included, shown beside it without a target, as the dry-run row shows its
start-up share.

The endpoint is `benchmarks/staging_endpoint.py`, a script: one aiohttp process
on a free loopback port (printed on its first stdout line) that is S3 and DynamoDB at once, just
enough for an import: S3 (path-style) creates multipart uploads, takes parts (read and
discarded, so memory stays flat; their bytes are counted), completes and aborts them, takes the
job's marker object and answers every listing empty; DynamoDB answers `DescribeTable` with
`ResourceNotFoundException` (the table is new), and `ImportTable`, `DescribeImport` with a
completed import, `UpdateTimeToLive` with success. `GET /__stats` returns the parts, bytes and
completed uploads it saw. The import runs with `--keep-staging --verify-sample 0`, so nothing is
listed, read back or deleted: what is timed is staging.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from .children import ChildRun, Endpoint
from .fixtures import Archive
from .measurements import CONCURRENCY, Bench, ratio_row
from .report import Row

SCRIPT = Path(__file__).resolve().parent / "staging_endpoint.py"
BUCKET = "bench-staging"
# Staging does more than reading: the issue asks that it cost "little more". At least two thirds
# of the dry run's items/s: staging takes at most half as long again as reading.
STAGING_TARGET = 0.67
START_UP_LINES = 1_000
_ITEMS = re.compile(r"^items (?:to write|staged by this run): ([\d,]+)$", re.MULTILINE)


class StagingEndpoint(Endpoint):
    """`staging_endpoint.py`, running; `url` for both AWS_ENDPOINT_URL_S3 and _DYNAMODB, `stats()`
    its counters."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__("staging", 0, 0, log_dir, script=SCRIPT, args=())


def _items(stdout: str) -> int:
    """Items to write (a dry run) or staged (an import), from populator's plain summary."""
    match = _ITEMS.search(stdout)
    return int(match.group(1).replace(",", "")) if match else 0


@dataclass
class _Best:
    """The fastest run of one command over one archive: its wall seconds and items."""

    seconds: float = math.inf
    items: int = 0

    def add(self, run: ChildRun) -> None:
        if run.ok and 0 < run.seconds < self.seconds:
            self.seconds, self.items = run.seconds, _items(run.stdout)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if math.isfinite(self.seconds) else 0.0

    def after(self, start_up: _Best) -> float:
        """Items/s once started: this run less the start-up run, items and seconds."""
        seconds = self.seconds - start_up.seconds
        if not math.isfinite(seconds) or seconds <= 0:
            return 0.0
        return (self.items - start_up.items) / seconds


def start_up_archive(archive: Archive, lines: int = START_UP_LINES) -> Path:
    """A one-object archive: the first `lines` lines of `archive`'s first part, in its run folder."""
    first = archive.parts[0]
    root = archive.root.parent.parent / f"start-up-{archive.root.parent.name}-{lines}" / "archive"
    part = root / first.parent.relative_to(archive.root) / first.name
    if not part.exists():
        with gzip.open(first, "rb") as source:
            head = b"".join(source.readline() for _ in range(lines))
        part.parent.mkdir(parents=True, exist_ok=True)
        scratch = part.with_name(part.name + ".tmp")
        scratch.write_bytes(gzip.compress(head))
        scratch.rename(part)
    return root


def staging_vs_dry_run(bench: Bench) -> list[Row]:
    """Items/s of `populator import`'s staging against `populator run --dry-run`, same archive."""
    archive = bench.dry_archive
    small = dataclasses.replace(archive, root=start_up_archive(archive))
    settings = bench.settings
    stage, dry, stage_start, dry_start = _Best(), _Best(), _Best(), _Best()
    with StagingEndpoint(bench.log_dir) as endpoint:
        both = {"AWS_ENDPOINT_URL_S3": endpoint.url, "AWS_ENDPOINT_URL_DYNAMODB": endpoint.url}

        def staged(name: str, over: Archive) -> ChildRun:
            command = [
                sys.executable,
                "-m",
                "populator",
                "import",
                str(over.root),
                str(bench.storage),
                str(bench.resolver),
                f"--staging=s3://{BUCKET}/{name}-{uuid.uuid4().hex[:8]}/",
                "--quiet",
                "--include-expired",
                f"--concurrency={CONCURRENCY}",
                "--keep-staging",
                "--verify-sample=0",
                "--poll-interval=0.05",
                *settings.populator_args,
            ]
            return bench.run(name, command, None, settings.timeout, extra_env=both)

        def dry_run(name: str, over: Archive) -> ChildRun:
            return bench.run(name, bench.populator(over, "--dry-run"), None, settings.timeout)

        for attempt in range(1, settings.repeats + 1):
            stage.add(staged(f"populator-import-staging-{attempt}", archive))
            dry.add(dry_run(f"populator-dry-run-for-staging-{attempt}", archive))
            stage_start.add(staged(f"populator-import-start-up-{attempt}", small))
            dry_start.add(dry_run(f"populator-dry-run-start-up-{attempt}", small))
        stats = endpoint.stats()
    parts = f"{len(archive.parts)} parts, {archive.lines:,} lines"
    mean_part = stats["bytes"] / stats["parts"] / 2**20 if stats["parts"] else 0.0
    starts = (
        f"start-up {stage_start.seconds:.2f} s against {dry_start.seconds:.2f} s"
        if math.isfinite(stage_start.seconds) and math.isfinite(dry_start.seconds)
        else "start-up: a run failed"
    )
    throughput = ratio_row(
        f"`import` staging throughput, {parts}, best of {settings.repeats} (gzip DynamoDB JSON, "
        f"multipart parts of {mean_part:.1f} MiB on average, to a local S3 endpoint; each command's "
        f"own start-up over one object subtracted: {starts})",
        stage.after(stage_start),
        dry.after(dry_start),
        "`run --dry-run`",
        STAGING_TARGET,
    )
    whole = ratio_row(
        f"`import` staging items/s, whole process (start-up included), {parts}, best of {settings.repeats}",
        stage.rate,
        dry.rate,
        "`run --dry-run`",
        STAGING_TARGET,
    )
    return [throughput, dataclasses.replace(whole, target="", passed=None)]
