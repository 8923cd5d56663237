"""The sample archive generator says exactly what it wrote."""

from __future__ import annotations

import calendar
import itertools
import re
import statistics
import zlib
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from populator.samples.archive import SampleSpec, run_id, write_archive
from populator.samples.expected import TTL_SECONDS, ExpectedManifest
from tests.support.independent_parser import classify, parse_archive, part_files, read_lines

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
NOW_S = calendar.timegm(NOW.utctimetuple())
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ETL_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{3})?$")

FULL = SampleSpec(
    runs=3,
    expired_runs=2,
    parts_per_run=4,  # 20 parts: every format four times
    events_per_part=300,
    now=NOW,
    cross_run_duplicates=20,
    same_id_other_fingerprint=10,
    long_line_every=97,
    overlong_lines=2,
    millis_absent_runs=2,
    plain_named_gz=True,
)
N_PARTS = (FULL.runs + FULL.expired_runs) * FULL.parts_per_run
N_ORIGINALS = N_PARTS * FULL.events_per_part


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExpectedManifest]:
    root = tmp_path_factory.mktemp("full")
    return root, write_archive(root, FULL)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def gzip_members(data: bytes) -> list[bytes]:
    """Decompressed content of each gzip member, in order."""
    members = []
    while data:
        d = zlib.decompressobj(31)
        members.append(d.decompress(data) + d.flush())
        assert d.eof
        data = d.unused_data
    return members


def good_fields(root: Path) -> list[list[str]]:
    """The fields of every valid event line, with a fingerprint or without."""
    out = []
    for path in part_files(root):
        for line in read_lines(path):
            outcome = classify(line)
            if not isinstance(outcome, str | None) or outcome == "no_fingerprint":
                out.append(line.decode().split("\t"))
    return out


# --------------------------------------------------------------------------- run folders


def test_run_id() -> None:
    assert run_id(datetime(2017, 6, 1, 9, 5, 3, tzinfo=UTC)) == "run=2017-06-01-09-05-03"


# --------------------------------------------------------------------------- whole archives


def test_deterministic(tmp_path: Path) -> None:
    spec = replace(FULL, runs=2, expired_runs=1, events_per_part=50, overlong_lines=1)
    a = write_archive(tmp_path / "a", spec)
    b = write_archive(tmp_path / "b", spec)
    assert a == b
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    c = write_archive(tmp_path / "c", replace(spec, seed=8))
    assert set(c.items).isdisjoint(a.items)


def test_independent_parser_agrees(full: tuple[Path, ExpectedManifest]) -> None:
    root, expected = full
    parsed = parse_archive(root)
    assert parsed.items == expected.items
    assert parsed.objects == expected.objects
    assert parsed.bad_rows == expected.bad_rows
    assert parsed.good_lines == expected.good_lines
    assert parsed.no_fingerprint == expected.no_fingerprint
    assert parsed.blank_lines == expected.blank_lines
    assert parsed.lines == expected.lines


def test_bad_and_blank_line_counts(full: tuple[Path, ExpectedManifest]) -> None:
    _, expected = full
    assert set(expected.bad_rows) == {"field_count", "event_id", "etl_tstamp", "line_too_long"}
    assert expected.bad_rows["line_too_long"] == FULL.overlong_lines
    assert expected.bad_rows.total() == N_PARTS * FULL.bad_lines_per_part + FULL.overlong_lines
    assert expected.blank_lines == N_PARTS * FULL.blank_lines_per_part
    assert expected.lines == (
        expected.good_lines + expected.no_fingerprint + expected.blank_lines + expected.bad_rows.total()
    )


def test_a_share_of_the_events_has_no_fingerprint_and_is_expected_as_such(full, tmp_path) -> None:
    root, expected = full
    without = [
        line for o in expected.objects for line in read_lines(root / o) if classify(line) == "no_fingerprint"
    ]
    assert len(without) == expected.no_fingerprint
    assert 0.1 < expected.no_fingerprint / (expected.no_fingerprint + expected.good_lines) < 0.3
    assert all(line.endswith(b"\t\t") for line in without)  # fingerprint and true_tstamp both empty
    assert not any(key[1] == "" for key in expected.items)  # never a manifest item
    none = write_archive(tmp_path / "none", replace(FULL, runs=1, expired_runs=0, no_fingerprint_share=0.0))
    assert none.no_fingerprint == 0
    with pytest.raises(ValueError, match="no_fingerprint_share"):
        write_archive(tmp_path / "bad", replace(FULL, no_fingerprint_share=1.5))


def test_markers_and_strays_are_not_objects(full: tuple[Path, ExpectedManifest]) -> None:
    root, expected = full
    assert expected.runs == sorted(p.name for p in root.glob("run=*") if p.is_dir())
    for run in expected.runs:
        assert (root / run / "_SUCCESS").stat().st_size == 0
        assert (root / f"{run}_$folder$").is_file()
    empty = root / expected.runs[0] / f"part-{FULL.parts_per_run:05d}"
    assert empty.stat().st_size == 0
    stray = root / "stray" / "part-00000.gz"
    stray_keys = {classify(line)[:2] for line in read_lines(stray)}
    assert len(stray_keys) == 5 and stray_keys.isdisjoint(expected.items)
    every_file = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert set(expected.objects) < every_file
    assert all(re.fullmatch(r"run=[\d-]+/part-[^/]+", o) for o in expected.objects)
    assert len(expected.objects) == N_PARTS


def test_file_formats(full: tuple[Path, ExpectedManifest]) -> None:
    root, expected = full
    names = [o.split("/")[1] for o in expected.objects]
    assert any(re.fullmatch(r"part-\d{5}\.gzip", n) for n in names)
    assert any(re.fullmatch(r"part-\d{5}-[0-9a-f-]{36}\.txt\.gz", n) for n in names)
    assert any(re.fullmatch(r"part-\d{5}", n) for n in names)
    magic = {o: (root / o).read_bytes()[:2] == b"\x1f\x8b" for o in expected.objects}
    plain_named_gz = [o for o, gz in magic.items() if o.endswith(".gz") and not gz]
    assert len(plain_named_gz) == 1
    assert all(gz for o, gz in magic.items() if o.endswith((".gzip", ".txt.gz")))


def test_multimember_parts(full: tuple[Path, ExpectedManifest]) -> None:
    root, expected = full
    member_counts = []
    cut_mid_line = 0
    for o in expected.objects:
        data = (root / o).read_bytes()
        if data[:2] != b"\x1f\x8b":
            continue
        members = gzip_members(data)
        member_counts.append(len(members))
        cut_mid_line += sum(1 for m in members[:-1] if m and not m.endswith(b"\n"))
    assert max(member_counts) >= 3
    assert sum(1 for n in member_counts if n >= 3) == N_PARTS // len(FULL.formats)
    assert cut_mid_line == 1


def test_expired_runs(full: tuple[Path, ExpectedManifest]) -> None:
    _, expected = full
    assert expected.expired
    for key, times in expected.items.items():
        all_expired = all(t + TTL_SECONDS < NOW_S for t in times)
        assert (key in expected.expired) == all_expired
    live = expected.live_items()
    assert live and set(live).isdisjoint(expected.expired)
    assert len(live) + len(expected.expired) == len(expected.items)
    # Two expired runs of 4 x 300 events, less those without a fingerprint (a fifth) and those
    # repeated in a live run.
    with_fingerprint = 2 * 4 * 300 * (1 - FULL.no_fingerprint_share)
    assert (
        0.9 * with_fingerprint - FULL.cross_run_duplicates <= len(expected.expired) <= 1.1 * with_fingerprint
    )


def test_duplicates(full: tuple[Path, ExpectedManifest]) -> None:
    root, expected = full
    multi = {k: v for k, v in expected.items.items() if len(v) > 1}
    assert len(multi) == FULL.cross_run_duplicates
    assert all(len(v) == 2 for v in multi.values())
    for key, times in multi.items():
        assert expected.first_etl_time(key) == min(times)
    fingerprints = Counter(event_id for event_id, _ in expected.items)
    assert sum(1 for n in fingerprints.values() if n > 1) == FULL.same_id_other_fingerprint
    distinct_lines = N_ORIGINALS + FULL.cross_run_duplicates + FULL.same_id_other_fingerprint
    natural = expected.good_lines + expected.no_fingerprint - distinct_lines  # duplicated alike
    assert 0.01 * N_ORIGINALS < natural < 0.03 * N_ORIGINALS
    adjacent = 0
    for path in part_files(root):
        lines = read_lines(path)
        adjacent += sum(1 for x, y in itertools.pairwise(lines) if x and x == y)
    assert adjacent == natural


def test_each_run_has_one_etl_tstamp(full: tuple[Path, ExpectedManifest]) -> None:
    root, expected = full
    stamps: dict[str, set[str]] = {}
    for path in part_files(root):
        for line in read_lines(path):
            if not isinstance(classify(line), str | None):
                stamps.setdefault(path.parent.name, set()).add(line.split(b"\t")[2].decode())
    assert list(stamps) == expected.runs
    without_millis = 0
    for run, values in stamps.items():
        assert len(values) == 1
        (etl,) = values
        assert ETL_RE.match(etl)
        without_millis += "." not in etl
        folder = datetime.strptime(run, "run=%Y-%m-%d-%H-%M-%S")
        lag = (datetime.strptime(etl[:19], "%Y-%m-%d %H:%M:%S") - folder).total_seconds()
        assert 0 < lag < 15 * 60
    assert without_millis == FULL.millis_absent_runs


def test_line_lengths(full: tuple[Path, ExpectedManifest]) -> None:
    root, _ = full
    lengths = sorted(len("\t".join(f).encode()) for f in good_fields(root))
    plain = [n for n in lengths if n < 10_000]
    assert 900 <= statistics.mean(plain) <= 1600
    long = [n for n in lengths if n >= 10_000]
    assert all(20_000 <= n <= 70_000 for n in long)
    assert len(long) >= N_ORIGINALS // FULL.long_line_every
    overlong = [line for path in part_files(root) for line in read_lines(path) if len(line) > 1 << 20]
    assert len(overlong) == FULL.overlong_lines


def test_small_default_spec(tmp_path: Path) -> None:
    spec = SampleSpec(runs=1, parts_per_run=1, events_per_part=10, markers=False)
    expected = write_archive(tmp_path, spec)
    assert len(expected.runs) == 1 and len(expected.objects) == 1
    assert not any(len(v) > 1 for v in expected.items.values())  # no later run to repeat in
    assert parse_archive(tmp_path).items == expected.items
    assert not (tmp_path / "stray").exists()
    assert not list(tmp_path.glob("*_$folder$"))


@pytest.mark.parametrize(
    "bad",
    [
        {"runs": 0},
        {"parts_per_run": 0},
        {"events_per_part": -1},
        {"formats": ("zip",)},
        {"duplicate_rate": 1.5},
    ],
)
def test_invalid_spec(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError):
        write_archive(tmp_path, replace(SampleSpec(now=NOW), **bad))
