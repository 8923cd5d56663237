"""A Snowplow enriched archive on disk: `write_archive` lays out its runs and parts and says what it holds.

`<root>/run=YYYY-MM-DD-HH-MM-SS/part-*` in every part format populator reads (`FORMATS`), with
duplicates, bad and blank lines, expired runs and the marker files a real archive has; it returns
the `ExpectedManifest` from what it chose to write. Everything is deterministic for a given
`SampleSpec` (including `now`).
"""

from __future__ import annotations

import gzip
import itertools
import os
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .expected import TTL_SECONDS, ExpectedManifest
from .lines import (
    BAD_KIND_REASON,
    BAD_KINDS,
    ETL_FIELD,
    FINGERPRINT_FIELD,
    bad_line,
    basket_context,
    event_line,
    overlong_context,
)
from .stamps import epoch_ms, format_ms, random_fingerprint, random_uuid

FORMATS = ("gz", "gzip", "spark", "plain", "multimember")

_GZIP_LEVEL = 1  # fast to write; the tool's decompression cost barely depends on the level


@dataclass(frozen=True)
class SampleSpec:
    """What to put in a generated archive."""

    runs: int = 3  # run= folders, spread from first_run_days_ago up to ~1 day before `now`
    parts_per_run: int = 4
    events_per_part: int = 2500  # distinct events per part, before any extra line
    seed: int = 7
    now: datetime | None = None  # "today" (UTC); default datetime.now(UTC)
    first_run_days_ago: float = 30.0
    expired_runs: int = 0  # extra runs > 180 days before `now` (their items expired by TTL)
    duplicate_rate: float = 0.02  # share of events written twice in a row (same line)
    cross_run_duplicates: int = 20  # events repeated (same id and fingerprint) in a later run
    same_id_other_fingerprint: int = 10  # event ids seen again with another fingerprint
    # Share of the events written without an event_fingerprint (valid events the populator skips:
    # the enrichment was off when they were enriched). Snowplow's own test fixtures leave about half
    # of their lines without one; a pipeline that keeps a manifest has it on, so fewer here.
    no_fingerprint_share: float = 0.2
    bad_lines_per_part: int = 3  # cycling over every bad kind (see lines.BAD_REASONS)
    blank_lines_per_part: int = 1
    long_line_every: int = 0  # if > 0, every Nth event carries a 20-60 KB context
    overlong_lines: int = 0  # lines over 1 MiB (bad rows, line_too_long), spread over parts
    millis_absent_runs: int = 1  # runs whose etl_tstamp has no `.SSS`
    formats: tuple[str, ...] = FORMATS  # cycled over parts (see FORMATS)
    markers: bool = True  # _SUCCESS, `_$folder$` keys, a 0-byte part, a stray/ folder
    plain_named_gz: bool = False  # one plain-text part named `.gz`


def run_id(dt: datetime) -> str:
    """The run folder name for a run started at `dt` (UTC)."""
    return dt.strftime("run=%Y-%m-%d-%H-%M-%S")


@dataclass
class _Run:
    id: str
    etl_ms: int
    etl_text: str
    etl_time: int
    spark_uuid: str
    parts: list[list[str]]  # part -> units: one line, or a line + "\n" + its duplicate


def _check(spec: SampleSpec) -> None:
    negative = [
        k
        for k, v in vars(spec).items()
        if isinstance(v, int) and not isinstance(v, bool) and k != "seed" and v < 0
    ]
    if negative:
        raise ValueError(f"SampleSpec fields must not be negative: {', '.join(negative)}")
    if spec.runs + spec.expired_runs < 1 or spec.parts_per_run < 1:
        raise ValueError("SampleSpec needs at least one run and one part per run")
    if not spec.formats or set(spec.formats) - set(FORMATS):
        raise ValueError(f"SampleSpec.formats must be a non-empty subset of {FORMATS}")
    if not 0.0 <= spec.duplicate_rate <= 1.0:
        raise ValueError("SampleSpec.duplicate_rate must be within [0, 1]")
    if not 0.0 <= spec.no_fingerprint_share <= 1.0:
        raise ValueError("SampleSpec.no_fingerprint_share must be within [0, 1]")


def _plan_runs(spec: SampleSpec, now: datetime, rng: random.Random) -> list[_Run]:
    starts: list[datetime] = []
    for i in range(spec.expired_runs):
        days = 200 + 7 * (spec.expired_runs - 1 - i)
        starts.append(now - timedelta(days=days, minutes=rng.randrange(600)))
    first = spec.first_run_days_ago
    spacing = (first - 1.0) / (spec.runs - 1) if spec.runs > 1 else 0.0
    jitter = min(1800.0, abs(spacing) * 86400 / 4)
    for i in range(spec.runs):
        days_ago = first - spacing * i
        starts.append(now - timedelta(days=days_ago, seconds=rng.uniform(-jitter, jitter)))
    starts.sort()
    absent = set(rng.sample(range(len(starts)), min(spec.millis_absent_runs, len(starts))))
    runs: list[_Run] = []
    previous_etl: datetime | None = None
    for i, start in enumerate(starts):
        start = start.replace(microsecond=0)
        if previous_etl is not None and start <= previous_etl:
            start = previous_etl.replace(microsecond=0) + timedelta(minutes=1)
        etl = start + timedelta(seconds=rng.randrange(120, 600))
        if i not in absent:
            etl += timedelta(milliseconds=rng.randrange(1000))
        previous_etl = etl
        etl_ms = epoch_ms(etl)
        text = format_ms(etl_ms)
        runs.append(
            _Run(
                id=run_id(start),
                etl_ms=etl_ms,
                etl_text=text[:-4] if i in absent else text,
                etl_time=etl_ms // 1000,
                spark_uuid=random_uuid(rng),
                parts=[[] for _ in range(spec.parts_per_run)],
            )
        )
    return runs


def _part_name(fmt: str, index: int, run: _Run, plain_as_gz: bool) -> str:
    if fmt == "gzip":
        return f"part-{index:05d}.gzip"
    if fmt == "spark":
        return f"part-{index:05d}-{run.spark_uuid}.txt.gz"
    if fmt == "plain":
        return f"part-{index:05d}.gz" if plain_as_gz else f"part-{index:05d}"
    return f"part-{index:05d}.gz"


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)


def _multimember(data: bytes, members: int, mid_line: bool) -> bytes:
    """`data` as `members` concatenated gzip members; optionally one cut falls mid-line."""
    cuts = [0]
    for k in range(1, members):
        target = max(len(data) * k // members, cuts[-1])
        nl = data.find(b"\n", target)
        cut = len(data) if nl < 0 else nl + 1
        if mid_line and k == 1:
            # Move the cut 40 bytes into a following line long enough to hold it.
            while 0 <= nl < len(data):
                nxt = data.find(b"\n", nl + 1)
                if nxt < 0:
                    break
                if nxt - nl > 41:
                    cut = nl + 41
                    break
                nl = nxt
        cuts.append(max(cut, cuts[-1]))
    cuts.append(len(data))
    return b"".join(_gzip(data[a:b]) for a, b in itertools.pairwise(cuts))


def _write_part(path: Path, fmt: str, units: list[str], members: int, mid_line: bool) -> int:
    """Encode, compress and write one part; return its size in bytes."""
    data = ("\n".join(units) + "\n").encode() if units else b""
    if fmt == "multimember":
        payload = _multimember(data, members, mid_line)
    elif fmt == "plain":
        payload = data
    else:
        payload = _gzip(data)
    path.write_bytes(payload)
    return len(payload)


def write_archive(root: Path, spec: SampleSpec = SampleSpec()) -> ExpectedManifest:
    """Write a sample archive under `root` (created if needed) and return what it holds."""
    _check(spec)
    now = spec.now or datetime.now(UTC)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    rng = random.Random(spec.seed)
    runs = _plan_runs(spec, now, rng)
    items: dict[tuple[str, str], set[int]] = {}
    originals: list[tuple[int, str, str, str]] = []  # (run index, event_id, fingerprint, line)
    good = blank = no_fingerprint = 0
    bad: Counter[str] = Counter()

    # Good events, with natural duplicates right after their original; a share of them without
    # a fingerprint (no draw at all when the share is 0: the archive stays what it was).
    n_good = 0
    every = spec.long_line_every
    share = spec.no_fingerprint_share
    for r, run in enumerate(runs):
        for part in run.parts:
            for _ in range(spec.events_per_part):
                event_id, fp = random_uuid(rng), random_fingerprint(rng)
                if share and rng.random() < share:
                    fp = ""
                extra = ""
                n_good += 1
                if every > 0 and n_good % every == 0:
                    extra = basket_context(rng, rng.randrange(20_000, 60_000))
                line = event_line(rng, run.etl_ms, run.etl_text, event_id, fp, extra)
                copies = 2 if rng.random() < spec.duplicate_rate else 1
                part.append("\n".join([line] * copies))
                if not fp:
                    no_fingerprint += copies
                    continue
                good += copies
                items[(event_id, fp)] = {run.etl_time}
                originals.append((r, event_id, fp, line))

    def insert(run: _Run, unit: str) -> None:
        part = rng.choice(run.parts)
        part.insert(rng.randrange(len(part) + 1), unit)

    # The same event (id and fingerprint) enriched again in a later run.
    earlier = [o for o in originals if o[0] < len(runs) - 1]
    for r, event_id, fp, line in rng.sample(earlier, min(spec.cross_run_duplicates, len(earlier))):
        target = runs[rng.randrange(r + 1, len(runs))]
        fields = line.split("\t")
        fields[ETL_FIELD] = target.etl_text
        insert(target, "\t".join(fields))
        items[(event_id, fp)].add(target.etl_time)
        good += 1

    # An event id seen again with another fingerprint: a distinct manifest item.
    picks = rng.sample(originals, min(spec.same_id_other_fingerprint, len(originals)))
    for r, event_id, _fp, line in picks:
        target = runs[rng.randrange(r, len(runs))]
        fp = random_fingerprint(rng)
        fields = line.split("\t")
        fields[ETL_FIELD], fields[FINGERPRINT_FIELD] = target.etl_text, fp
        fields[119] = format_ms(target.etl_ms - rng.randrange(60_000, 3_600_000))
        insert(target, "\t".join(fields))
        items.setdefault((event_id, fp), set()).add(target.etl_time)
        good += 1

    # Bad and blank lines in every part, overlong lines spread over the parts.
    all_parts = [(run, part) for run in runs for part in run.parts]
    k = 0
    for run, part in all_parts:
        for _ in range(spec.bad_lines_per_part):
            kind = BAD_KINDS[k % len(BAD_KINDS)]
            k += 1
            part.insert(rng.randrange(len(part) + 1), bad_line(rng, kind, run.etl_ms, run.etl_text))
            bad[BAD_KIND_REASON[kind]] += 1
        for _ in range(spec.blank_lines_per_part):
            part.insert(rng.randrange(len(part) + 1), "")
            blank += 1
    for i in range(spec.overlong_lines):
        run, part = all_parts[i * len(all_parts) // spec.overlong_lines]
        line = event_line(
            rng, run.etl_ms, run.etl_text, random_uuid(rng), random_fingerprint(rng), overlong_context()
        )
        part.insert(rng.randrange(len(part) + 1), line)
        bad["line_too_long"] += 1

    # Write the parts (compression releases the GIL, so a few threads help).
    root.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, str, list[str], int, bool]] = []
    mid_line_pending = True
    plain_as_gz_pending = spec.plain_named_gz
    for p, (run, part) in enumerate(all_parts):
        index = p % spec.parts_per_run
        fmt = spec.formats[p % len(spec.formats)]
        plain_as_gz = fmt == "plain" and plain_as_gz_pending
        plain_as_gz_pending = plain_as_gz_pending and not plain_as_gz
        mid_line = fmt == "multimember" and mid_line_pending
        mid_line_pending = mid_line_pending and not mid_line
        (root / run.id).mkdir(exist_ok=True)
        path = root / run.id / _part_name(fmt, index, run, plain_as_gz)
        jobs.append((path, fmt, part, 3 + index % 2, mid_line))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        sizes = list(pool.map(lambda job: _write_part(*job), jobs))
    objects = [job[0].relative_to(root).as_posix() for job, size in zip(jobs, sizes, strict=True) if size]

    if spec.markers:
        for run in runs:
            (root / run.id).mkdir(exist_ok=True)
            (root / run.id / "_SUCCESS").write_bytes(b"")
            (root / f"{run.id}_$folder$").write_bytes(b"")
        (root / runs[0].id / f"part-{spec.parts_per_run:05d}").write_bytes(b"")
        stray = root / "stray"
        stray.mkdir(exist_ok=True)
        stray_lines = [
            event_line(rng, runs[0].etl_ms, runs[0].etl_text, random_uuid(rng), random_fingerprint(rng))
            for _ in range(5)
        ]
        (stray / "part-00000.gz").write_bytes(_gzip(("\n".join(stray_lines) + "\n").encode()))
        (root / "stray_$folder$").write_bytes(b"")

    now_s = now.timestamp()
    expired = {k for k, times in items.items() if max(times) + TTL_SECONDS < now_s}
    return ExpectedManifest(
        items=items,
        expired=expired,
        bad_rows=bad,
        blank_lines=blank,
        good_lines=good,
        lines=good + blank + sum(bad.values()) + no_fingerprint,
        objects=sorted(objects),
        runs=[run.id for run in runs],
        no_fingerprint=no_fingerprint,
    )
