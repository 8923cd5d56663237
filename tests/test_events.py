"""events.parse_line: the TSV line → manifest item contract, one rule at a time; triage: a block
of lines sorted the same way."""

from __future__ import annotations

import calendar
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from populator import events
from populator.events import (
    KEPT_PREFIX,
    MAX_LINE_BYTES,
    NO_FINGERPRINT,
    TTL_SECONDS,
    BadLine,
    BadRowReason,
    ManifestItem,
    SkipReason,
    TooLongLine,
    Triage,
    _triage_each,
    _triage_uniform,
    parse_etl_tstamp,
    parse_line,
    triage,
)
from populator.samples.lines import enriched_line
from tests.support import snowplow_lines
from tests.support.independent_parser import classify
from tests.support.independent_parser import etl_time as independent_etl_time

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


@pytest.mark.parametrize(
    "etl",
    [
        "0000-01-01 09:06:35.493256951",  # the bad input of snowplow-rdb-loader's transformer specs
        "0000-01-01 00:00:00",
        "-2006-10-15 09:06:35.493256951",  # a negative year
        "-0001-01-01 00:00:00",
        "+2026-06-01 10:20:30",
        "12026-06-01 10:20:30",  # five digits
        "2026-00-01 10:20:30",  # month 0
        "2026-13-01 10:20:30",  # month 13
        "2026-06-00 10:20:30",  # day 0
        "2026-06-31 10:20:30",  # June has 30
        "2025-02-29 10:20:30",  # a common year
        "1900-02-29 10:20:30",  # a century, not a leap year
        "2026-06-01 24:00:00",  # hour 24
        "2026-06-01 10:60:30",  # minute 60
        "2026-06-01 23:59:60",  # second 60 (a leap second is not an etl_tstamp)
        "2026-06-01 10:20:30.",  # a point without a fraction
        "2026-06-01 10:20:30.1234567890",  # ten fraction digits
        "2026-06-01 10:20:30.45Z",
        "2026-06-01 10:20:30 ",
        " 2026-06-01 10:20:30",
        "2026-6-01 10:20:30",
        "2026-06-01 1:20:30",
        "２０２６-06-01 10:20:30",  # full-width digits
    ],
)
def test_an_etl_tstamp_that_is_no_real_utc_instant_is_a_bad_row_never_an_error(etl):
    assert parse_etl_tstamp(etl.encode()) is None
    assert parse_line(line(etl=etl)) is BadRowReason.ETL_TSTAMP
    assert triage([line(etl=etl) + b"\n"], None).bad[0].reason is BadRowReason.ETL_TSTAMP


@pytest.mark.parametrize(
    ("etl", "seconds"),
    [
        ("0001-01-01 00:00:00", calendar.timegm((1, 1, 1, 0, 0, 0, 0, 0, 0))),  # the first year taken
        ("9999-12-31 23:59:59.999999999", calendar.timegm((9999, 12, 31, 23, 59, 59, 0, 0, 0))),  # the last
        ("2024-02-29 12:00:00", calendar.timegm((2024, 2, 29, 12, 0, 0, 0, 0, 0))),  # a leap year
        ("2000-02-29 12:00:00", calendar.timegm((2000, 2, 29, 12, 0, 0, 0, 0, 0))),  # a leap century
        ("2026-06-01 10:20:30.4", calendar.timegm((2026, 6, 1, 10, 20, 30, 0, 0, 0))),
        ("2026-06-01 10:20:30.456", calendar.timegm((2026, 6, 1, 10, 20, 30, 0, 0, 0))),
        ("2026-06-01 10:20:30.456789", calendar.timegm((2026, 6, 1, 10, 20, 30, 0, 0, 0))),
        ("2026-06-01 10:20:30.999999999", calendar.timegm((2026, 6, 1, 10, 20, 30, 0, 0, 0))),
        ("2026-06-01 10:20:30", calendar.timegm((2026, 6, 1, 10, 20, 30, 0, 0, 0))),
        ("1969-12-31 23:59:59.500", -1),  # before 1970: the floor (the shredder's Java gives 0)
    ],
)
def test_an_etl_tstamp_takes_1_to_9_fraction_digits_or_none_and_drops_the_fraction(etl, seconds):
    assert parse_etl_tstamp(etl.encode()) == seconds
    assert parse_line(line(etl=etl)).etl_time == seconds


def test_an_event_without_a_fingerprint_is_skipped_not_a_bad_row():
    assert parse_line(line(fingerprint="")) is NO_FINGERPRINT
    assert isinstance(NO_FINGERPRINT, SkipReason) and not isinstance(NO_FINGERPRINT, BadRowReason)
    assert NO_FINGERPRINT.value == "no_fingerprint"
    assert "fingerprint" not in {reason.value for reason in BadRowReason}
    # Only an otherwise valid event counts as one: whatever else is wrong comes first.
    assert parse_line(line(fingerprint="", etl="0000-01-01 00:00:00")) is BadRowReason.ETL_TSTAMP
    assert parse_line(line(fingerprint="", event_id="x")) is BadRowReason.EVENT_ID
    sorted_out = triage([line(fingerprint="") + b"\n", line() + b"\n", line(fingerprint="")], None)
    assert sorted_out == Triage([parse_line(line())], 0, 0, [], 2)


def test_an_expired_event_without_a_fingerprint_counts_as_without_a_fingerprint():
    old = [line(etl="2020-01-01 00:00:00", fingerprint=fp) + b"\n" for fp in ("", FINGERPRINT)]
    cutoff = calendar.timegm((2026, 1, 1, 0, 0, 0, 0, 0, 0))
    assert triage(old, cutoff) == _triage_each(old, cutoff) == Triage([], 0, 1, [], 1)


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
    "empty fingerprint, expired": line(etl="2025-01-01 00:00:00", fingerprint="") + b"\n",
    "empty fingerprint, no newline": line(fingerprint=""),
    "etl_tstamp in year 0000": line(etl="0000-01-01 09:06:35.493256951") + b"\n",
    "over a MiB, not cut by a reader": line(fingerprint="f" * MAX_LINE_BYTES) + b"\n",
    "fingerprint not utf-8": line().replace(FINGERPRINT.encode(), b"\xff\xfe") + b"\n",
    "too long": TooLongLine(line()[:KEPT_PREFIX]),
}


def _one_at_a_time(lines: list[bytes], cutoff: int | None) -> Triage:
    """The contract, spelled out with parse_line."""
    items, bad, blank, expired, no_fingerprint = [], [], 0, 0, 0
    for offset, raw in enumerate(lines):
        if raw in (b"", b"\n"):
            blank += 1
            continue
        parsed = BadRowReason.LINE_TOO_LONG if isinstance(raw, TooLongLine) else parse_line(raw)
        if isinstance(parsed, BadRowReason):
            bad.append(BadLine(offset, parsed, raw[:KEPT_PREFIX].removesuffix(b"\n")))
        elif parsed is NO_FINGERPRINT:
            no_fingerprint += 1
        elif cutoff is not None and parsed.etl_time < cutoff:
            expired += 1
        else:
            items.append(parsed)
    return Triage(items, blank, expired, bad, no_fingerprint)


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


def test_a_block_of_events_with_and_without_fingerprints_takes_the_block_path() -> None:
    lines = [line(fingerprint="" if n % 2 else f"{n:032x}") + b"\n" for n in range(30)]
    sorted_out = _triage_uniform(lines, None)
    assert sorted_out is not None and sorted_out.no_fingerprint == 15 and len(sorted_out.items) == 15
    assert sorted_out == _one_at_a_time(lines, None)


# --- lines as Snowplow's own fixtures have them (tests/support/snowplow_lines.py) ----------------


def _expected(outcome: ManifestItem | BadRowReason | SkipReason) -> tuple[str, str, int] | str:
    """parse_line's answer in the independent parser's terms: a key and etlTime, or a reason."""
    return tuple(outcome) if isinstance(outcome, ManifestItem) else outcome.value  # type: ignore[return-value]


@pytest.mark.parametrize("name", sorted(snowplow_lines.CASES))
def test_snowplow_like_lines_parse_as_expected(name):
    case = snowplow_lines.CASES[name]
    for raw in (case.line, case.line + b"\n"):
        assert _expected(parse_line(raw)) == case.expected == classify(raw)


def test_snowplow_like_lines_sort_the_same_in_one_block():
    lines = [raw + b"\n" for raw in snowplow_lines.LINES]
    sorted_out = triage(lines, None)
    assert sorted_out == _one_at_a_time(lines, None)
    assert sorted_out.no_fingerprint == 1
    assert sorted(reason.value for _, reason, _ in sorted_out.bad) == sorted(
        case.expected
        for case in snowplow_lines.CASES.values()
        if case.expected in set(map(str, BadRowReason))
    )
    # One event id with two fingerprints is two manifest items; case is kept as read.
    keys = [item.key for item in sorted_out.items]
    assert len(keys) == len(set(keys)) and len({event_id for event_id, _ in keys}) == len(keys) - 1
    assert ("E2B7C9D0-1A3F-4E5B-8C6D-7F8A9B0C1D2E", "D41D8CD98F00B204E9800998ECF8427E") in keys
    valid = [raw + b"\n" for raw, expected in snowplow_lines.CASES.values() if expected != "etl_tstamp"]
    valid = [raw for raw in valid if raw.count(b"\t") == 130]
    assert _triage_uniform(valid, None) == _one_at_a_time(valid, None)  # no fallback for them


# --- no input raises, and every path agrees ---------------------------------------------------

_SEEDS = [
    *(case.line for case in snowplow_lines.CASES.values() if isinstance(case.expected, tuple)),
    enriched_line(
        random.Random(3), event_id=EVENT_ID, etl_tstamp="2026-06-01 10:20:30.456", fingerprint=""
    ).encode(),
    line(),
]
_NOT_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\x80")
_STAMPS = st.builds(
    lambda sign, year, month, day, hour, minute, second, fraction: (
        f"{sign}{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}{fraction}".encode()
    ),
    st.sampled_from(["", "", "", "-", "+"]),
    st.integers(0, 9999) | st.sampled_from([0, 1, 1900, 1969, 1970, 2000, 2024, 2025, 9999, 10000]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["", ".", ".5", ".123", ".123456", ".493256951", ".1234567890", "Z"]),
)  # every part one past its range too: year 0000, month 13, day 32, hour 24, second 60
_INSERTS = (b"\t", b"\n", b"\r", b"\r\n", b"\x00", *_NOT_UTF8)


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    """A valid line, then one to three changes to its fields: emptied, swapped, over-long, or
    with a tab, a newline or bytes that are not UTF-8 put in. Sometimes with its newline."""
    fields = draw(st.sampled_from(_SEEDS)).split(b"\t")
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.sampled_from([2, 6, 129, 130, *range(131)]))  # the fields read, most often
        index = min(index, len(fields) - 1)
        kind = draw(
            st.sampled_from(["empty", "swap", "long", "very long", "insert", "truncate", "stamp", "stamp"])
        )
        if kind == "stamp":  # any digits in the shape of a stamp: month 00-99, year 0000...
            fields[2 if draw(st.booleans()) else index] = draw(_STAMPS)
        elif kind == "empty":
            fields[index] = b""
        elif kind == "swap":
            other = draw(st.integers(0, len(fields) - 1))
            fields[index], fields[other] = fields[other], fields[index]
        elif kind == "long":
            fields[index] = fields[index] * draw(st.integers(2, 300)) or b"x" * 300
        elif kind == "very long":
            fields[index] = b"x" * (MAX_LINE_BYTES + draw(st.integers(-2, 2)))
        elif kind == "insert":
            at = draw(st.integers(0, len(fields[index])))
            fields[index] = fields[index][:at] + draw(st.sampled_from(_INSERTS)) + fields[index][at:]
        else:
            fields[index] = fields[index][: draw(st.integers(0, max(len(fields[index]) - 1, 0)))]
    return b"\t".join(fields) + draw(st.sampled_from([b"", b"\n"]))


@st.composite
def stamped_lines(draw: st.DrawFn) -> bytes:
    """A valid line whose etl_tstamp is any stamp-shaped text (often no real instant)."""
    fields = draw(st.sampled_from(_SEEDS)).split(b"\t")
    fields[2] = draw(_STAMPS)
    return b"\t".join(fields) + b"\n"


_ANY_LINE = st.one_of(
    stamped_lines(),
    st.binary(max_size=400),
    st.lists(st.sampled_from([b"\t", b"\n", b"x", b"\xff", b"2026-06-01 10:20:30", EVENT_ID.encode()]),
             max_size=300).map(b"".join),
    mutated_lines(),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(raw=_ANY_LINE)
def test_no_line_raises_and_the_independent_parser_agrees(raw: bytes) -> None:
    outcome = parse_line(raw)
    assert isinstance(outcome, ManifestItem | BadRowReason | SkipReason)
    if raw not in (b"", b"\n"):  # a blank line is the block's to count, not parse_line's
        assert _expected(outcome) == classify(raw)


@settings(max_examples=500, deadline=None)
@given(stamp=_STAMPS)
def test_every_etl_tstamp_is_parsed_as_datetime_would_or_refused_never_raised(stamp: bytes) -> None:
    assert parse_etl_tstamp(stamp) == independent_etl_time(stamp.decode())


_CUTOFFS = st.sampled_from([None, calendar.timegm((2021, 10, 1, 0, 0, 0, 0, 0, 0))])


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.one_of(_ANY_LINE, st.sampled_from([b"", b"\n", TooLongLine(line()[:KEPT_PREFIX])])), max_size=25
    ),
    cutoff=_CUTOFFS,
)
def test_a_mixed_block_never_raises_and_sorts_as_its_lines_one_by_one(lines: list[bytes], cutoff) -> None:
    assert triage(lines, cutoff) == _triage_each(lines, cutoff) == _one_at_a_time(lines, cutoff)


@st.composite
def valid_event_lines(draw: st.DrawFn) -> bytes:
    """A valid event, its fingerprint kept or emptied, its etl_tstamp one of a few (some new to
    the cache of parsed stamps), with or without its newline."""
    fields = draw(st.sampled_from(_SEEDS)).split(b"\t")
    if draw(st.booleans()):
        fields[129] = b""
    fields[2] = draw(
        st.sampled_from(
            [b"2021-09-17 09:05:52.076", b"2019-03-04 05:12:40", b"2021-10-14 07:41:03.918204377"]
        )
        | st.datetimes().map(lambda t: f"{t.year:04d}-{t:%m-%d %H:%M:%S.%f}".encode())
    )
    return b"\t".join(fields) + draw(st.sampled_from([b"", b"\n"]))


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(valid_event_lines(), min_size=1, max_size=25), cutoff=_CUTOFFS)
def test_a_block_of_valid_events_takes_the_block_path_and_agrees(lines: list[bytes], cutoff) -> None:
    uniform = _triage_uniform(lines, cutoff)
    assert uniform is not None  # events without a fingerprint do not send it line by line
    assert uniform == _triage_each(lines, cutoff) == _one_at_a_time(lines, cutoff)
    assert uniform.no_fingerprint == sum(1 for raw in lines if classify(raw) == "no_fingerprint")


# --- etlTimes are remembered by the stamp's whole seconds -------------------------------------

_SECOND = "2026-06-01 10:20:30"
_SECOND_TIME = calendar.timegm((2026, 6, 1, 10, 20, 30, 0, 0, 0))


def test_stamps_of_one_second_share_one_parse_whatever_their_fraction():
    events._ETL_TIMES.clear()
    fractions = ["", ".1", ".123456", ".493256951", *(f".{n:03d}" for n in range(500))]
    lines = [line(etl=_SECOND + fraction) + b"\n" for fraction in fractions]
    sorted_out = _triage_uniform(lines, None)
    assert sorted_out is not None
    assert [item.etl_time for item in sorted_out.items] == [_SECOND_TIME] * len(lines)
    assert list(events._ETL_TIMES) == [_SECOND.encode()]  # a stream archive's stamps: one entry a second
    assert [parse_line(raw).etl_time for raw in lines[:5]] == [_SECOND_TIME] * 5


@pytest.mark.parametrize("fraction", [".1234567890", ".", "Z", " ", ".12a", ".-1", ",123", "\t"])
def test_a_bad_fraction_is_a_bad_row_even_when_its_second_is_known(fraction):
    known = line(etl=_SECOND + ".5") + b"\n"
    assert parse_line(known).etl_time == _SECOND_TIME  # the second is now remembered
    bad = line(etl=_SECOND + fraction) + b"\n"
    expected = BadRowReason.FIELD_COUNT if fraction == "\t" else BadRowReason.ETL_TSTAMP
    assert parse_line(bad) is expected
    assert triage([known, bad, known], None) == _one_at_a_time([known, bad, known], None)
    assert triage([known, bad, known], None).bad[0].reason is expected


def test_a_block_of_more_new_seconds_than_are_remembered_agrees(monkeypatch):
    monkeypatch.setattr(events, "_ETL_TIMES_KEPT", 8)
    events._ETL_TIMES.clear()
    lines = [line(etl=f"2026-06-01 10:{n // 60:02d}:{n % 60:02d}.{n:03d}") + b"\n" for n in range(100)]
    assert _triage_uniform(lines, None) == _one_at_a_time(lines, None)
    assert len(events._ETL_TIMES) <= 8


# Whole seconds, valid or not, and fractions, valid or not: any of them may be remembered first.
_SECOND_TEXTS = [
    _SECOND,
    "2026-06-01 10:20:31",
    "2024-02-29 23:59:59",
    "2026-02-30 00:00:00",
    "0000-01-01 00:00:00",
    "2026-06-01 24:00:00",
    "yesterday at noon!!",
    "2026-06-01T10:20:30",
]
_FRACTIONS = ["", ".0", ".5", ".999", ".123456789", ".1234567890", ".", "Z", "x", " "]


@settings(max_examples=200, deadline=None)
@given(
    stamps=st.lists(st.tuples(st.sampled_from(_SECOND_TEXTS), st.sampled_from(_FRACTIONS)), min_size=1),
    warm=st.lists(st.sampled_from(_SECOND_TEXTS), max_size=3),
    fingerprint=st.sampled_from([FINGERPRINT, ""]),
    cutoff=_CUTOFFS,
)
def test_stamps_sharing_seconds_sort_the_same_in_a_block_and_one_by_one(stamps, warm, fingerprint, cutoff):
    events._ETL_TIMES.clear()
    for second in warm:  # seconds already remembered from earlier blocks
        parse_line(line(etl=second) + b"\n")
    lines = [line(etl=second + fraction, fingerprint=fingerprint) + b"\n" for second, fraction in stamps]
    assert triage(lines, cutoff) == _triage_each(lines, cutoff) == _one_at_a_time(lines, cutoff)
    for raw in lines:
        assert _expected(parse_line(raw)) == classify(raw)
