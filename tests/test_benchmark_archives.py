"""benchmarks/varied.py, the second archive generator: what it writes is what it says it writes."""

from __future__ import annotations

import gzip
import json

import pytest

from benchmarks import varied
from populator.events import triage
from tests.support.independent_parser import classify

START_MS = 1_795_168_800_000  # 2026-11-20 10:00:00 UTC


@pytest.mark.parametrize("mix", varied._MIXES)
@pytest.mark.parametrize("etl", varied._ETL_MODES)
def test_every_line_is_a_valid_event_with_the_expected_fingerprint(mix, etl):
    profile = varied.Profile(300, etl=etl, mix=mix, fingerprinted=0.5, fingerprint_hex=64, true_tstamp=0.5)
    lines, fingerprinted, keys = varied.part_lines(profile, 7, START_MS)
    assert len(lines) == 300 and all(line.endswith(b"\n") and line.count(b"\t") == 130 for line in lines)
    sorted_out = triage(lines, None)
    assert not sorted_out.bad and len(sorted_out.items) == fingerprinted == len(keys)
    assert sorted_out.no_fingerprint == 300 - fingerprinted and 0 < fingerprinted < 300
    assert {item.key for item in sorted_out.items} == keys
    assert all(len(item.fingerprint) == 64 for item in sorted_out.items)
    for line in lines[:50]:
        assert classify(line) in ("no_fingerprint", *(tuple(item) for item in sorted_out.items))
        fields = line.decode().split("\t")
        for json_field in (fields[52], fields[58], fields[122]):  # contexts, unstruct, derived
            if json_field:
                json.loads(json_field)


def test_stream_stamps_change_every_few_lines_and_a_run_keeps_one():
    stream, _, _ = varied.part_lines(varied.Profile(1000, etl="ms"), 1, START_MS)
    run, _, _ = varied.part_lines(varied.Profile(1000, etl="run"), 1, START_MS)
    assert len({line.split(b"\t")[2] for line in stream}) > 300
    assert len({line.split(b"\t")[2] for line in run}) == 1


def test_an_archive_is_reproducible_and_its_expectation_matches(tmp_path):
    profiles = (varied.Profile(200, level=1), varied.Profile(100, mix="server", fingerprinted=0.0, level=9))
    expected, keys = varied.write_archive(tmp_path / "a", profiles)
    again, _ = varied.write_archive(tmp_path / "b", profiles)
    parts = [(tmp_path / "a" / name).read_bytes() for name in expected.objects]
    assert parts == [(tmp_path / "b" / name).read_bytes() for name in again.objects]
    inflated = [gzip.decompress(part) for part in parts]
    assert expected.lines == 300 == sum(part.count(b"\n") for part in inflated)
    assert expected.items == 200 == expected.distinct_keys == len(keys) and expected.no_fingerprint == 100
    assert expected.inflated_bytes == sum(map(len, inflated))
    assert expected.compressed_bytes == sum(map(len, parts))


def test_the_quick_archive_is_the_same_parts_with_fewer_events():
    small = varied.scaled(varied.VARIED, 0.04)
    assert len(small) == len(varied.VARIED) and all(profile.events >= 50 for profile in small)
    assert [profile.mix for profile in small] == [profile.mix for profile in varied.VARIED]
