"""events.parse_line: the TSV line → manifest item contract, one rule at a time; triage: a block
of lines sorted the same way."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from populator.events import (
    KEPT_PREFIX,
    TTL_SECONDS,
    BadLine,
    BadRowReason,
    ManifestItem,
    TooLongLine,
    Triage,
    _triage_uniform,
    parse_etl_tstamp,
    parse_line,
    triage,
)

EVENT_ID = "c6ef3124-b53a-4b13-a233-0088f79dcbcb"
FINGERPRINT = "e3dbfa9cca0412c3d4052863cefb547f"


def line(
    etl: str = "2026-06-01 10:20:30.456",
    event_id: str = EVENT_ID,
    fingerprint: str = FINGERPRINT,
    fields: int = 131,
) -> bytes:
    values = [f"f{i}" for i in range(max(fields, 131))]
    values[2] = etl
    values[6] = event_id
    values = values[:fields]
    if fields > 129:
        values[129] = fingerprint
    return "\t".join(values).encode()


def test_valid_line_gives_the_manifest_item():
    item = parse_line(line())
    expected_time = calendar.timegm((2026, 6, 1, 10, 20, 30, 0, 0, 0))
    assert item == ManifestItem(EVENT_ID, FINGERPRINT, expected_time)
    assert item.ttl == expected_time + TTL_SECONDS == expected_time + 180 * 86400


def test_etl_tstamp_without_milliseconds_is_accepted_and_truncated_the_same():
    with_millis = parse_line(line(etl="2026-06-01 10:20:30.999"))
    without = parse_line(line(etl="2026-06-01 10:20:30"))
    assert isinstance(without, ManifestItem)
    assert with_millis.etl_time == without.etl_time


@pytest.mark.parametrize("fields", [130, 132, 1])
def test_wrong_field_count(fields):
    assert parse_line(line(fields=fields)) is BadRowReason.FIELD_COUNT


def test_no_tab_at_all():
    assert parse_line(b"x" * 5000) is BadRowReason.FIELD_COUNT


@pytest.mark.parametrize("event_id", ["not-a-uuid", "", "c6ef3124b53a4b13a2330088f79dcbcb", EVENT_ID + "0"])
def test_event_id_must_be_a_uuid(event_id):
    assert parse_line(line(event_id=event_id)) is BadRowReason.EVENT_ID


@pytest.mark.parametrize(
    "etl",
    [
        "",
        "yesterday",
        "2017-13-45 99:00:00",
        "2026-02-30 00:00:00",
        "2026-06-01T10:20:30.000",
        "2026-06-01 24:00:00",
    ],
)
def test_etl_tstamp_must_be_a_valid_time(etl):
    assert parse_line(line(etl=etl)) is BadRowReason.ETL_TSTAMP


def test_fingerprint_must_not_be_empty():
    assert parse_line(line(fingerprint="")) is BadRowReason.FINGERPRINT


def test_fingerprint_must_be_utf8():
    raw = line().replace(FINGERPRINT.encode(), b"\xff\xfe")
    assert parse_line(raw) is BadRowReason.ENCODING


def test_line_longer_than_a_mebibyte_is_a_bad_row():
    long = line(fingerprint="a" * (1024 * 1024))
    assert parse_line(long) is BadRowReason.LINE_TOO_LONG


def test_other_fields_may_hold_unicode_and_json():
    values = [""] * 131
    values[2], values[6], values[129] = "2026-06-01 00:00:00.000", EVENT_ID, FINGERPRINT
    values[52] = '{"schema":"iglu:x/y/jsonschema/1-0-0","data":[{"title":"Café – 日本語 🚀"}]}'
    assert isinstance(parse_line("\t".join(values).encode()), ManifestItem)


def test_expiry_is_relative_to_now():
    item = parse_line(line(etl="2026-01-01 00:00:00"))
    assert not item.is_expired(item.ttl - 1)
    assert item.is_expired(item.ttl + 1)


def test_parse_etl_tstamp_is_utc():
    assert parse_etl_tstamp(b"1970-01-01 00:00:01.000") == 1
    assert parse_etl_tstamp(b"2024-02-29 23:59:59") == calendar.timegm((2024, 2, 29, 23, 59, 59, 0, 0, 0))


# --- triage: a whole block at once must sort lines exactly as one line at a time does ----------

# Each kind of line the block path must either parse right or hand to the line-by-line path.
_LINE_KINDS = {
    "good": line(),
    "good, newline": line() + b"\n",
    "good, other etl_tstamp": line(etl="2026-07-02 11:00:00") + b"\n",
    "good, expired": line(etl="2025-01-01 00:00:00") + b"\n",
    "good, unicode fingerprint": line(fingerprint="é-指纹") + b"\n",
    "good, 200-byte fingerprint": line(fingerprint="f" * 200) + b"\n",
    "good, 300-byte fingerprint": line(fingerprint="f" * 300) + b"\n",  # past the tail window
    "blank": b"",
    "blank, newline": b"\n",
    "130 fields": line(fields=130) + b"\n",
    "132 fields": line(fields=132) + b"\n",
    "no tab": b"x" * 300 + b"\n",
    "event_id not a uuid": line(event_id="not-a-uuid") + b"\n",
    "bad etl_tstamp": line(etl="2026-02-30 00:00:00") + b"\n",
    "empty fingerprint": line(fingerprint="") + b"\n",
    "fingerprint not utf-8": line().replace(FINGERPRINT.encode(), b"\xff\xfe") + b"\n",
    "too long": TooLongLine(line()[:KEPT_PREFIX]),
}


def _one_at_a_time(lines: list[bytes], cutoff: int | None) -> Triage:
    """The contract, spelled out with parse_line."""
    items, bad, blank, expired = [], [], 0, 0
    for offset, raw in enumerate(lines):
        if raw in (b"", b"\n"):
            blank += 1
            continue
        parsed = BadRowReason.LINE_TOO_LONG if isinstance(raw, TooLongLine) else parse_line(raw)
        if isinstance(parsed, BadRowReason):
            bad.append(BadLine(offset, parsed, raw[:KEPT_PREFIX].removesuffix(b"\n")))
        elif cutoff is not None and parsed.etl_time < cutoff:
            expired += 1
        else:
            items.append(parsed)
    return Triage(items, blank, expired, bad)


@given(
    kinds=st.lists(st.sampled_from(sorted(_LINE_KINDS)), max_size=40),
    cutoff=st.sampled_from([None, calendar.timegm((2026, 1, 1, 0, 0, 0, 0, 0, 0))]),
)
def test_triage_of_a_block_equals_parsing_it_line_by_line(kinds: list[str], cutoff: int | None) -> None:
    lines = [_LINE_KINDS[kind] for kind in kinds]
    assert triage(lines, cutoff) == _one_at_a_time(lines, cutoff)


def test_triage_of_good_lines_takes_the_block_path() -> None:
    lines = [line(etl=f"2026-06-01 10:20:{second:02d}") + b"\n" for second in range(30)]
    assert _triage_uniform(lines, None) == _one_at_a_time(lines, None)
    assert _triage_uniform([*lines, b"\n"], None) is None  # a blank line: left to the line path
