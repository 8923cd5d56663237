"""Enriched-event TSV line → manifest item, or the reason it is a bad row.

Pure functions, no I/O. The hot path of the whole tool runs through `parse_line`, so it avoids
splitting all 131 fields: counting tabs checks the shape, and two bounded splits pull out the
three fields the manifest needs.
"""

from __future__ import annotations

import calendar
import re
from enum import StrEnum
from functools import partial
from itertools import compress, repeat
from operator import getitem, is_, itemgetter, methodcaller
from typing import NamedTuple, cast

FIELD_COUNT = 131
ETL_TSTAMP_INDEX = 2
EVENT_ID_INDEX = 6
FINGERPRINT_INDEX = 129
TTL_SECONDS = 15_552_000  # 180 days, as Snowplow's DynamoDB manifest sets it
MAX_LINE_BYTES = 1024 * 1024

_TABS = FIELD_COUNT - 1
BLANK_LINES = (b"", b"\n")  # a blank line, without or with its newline
_UUID = rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Fields 0-6 in one match. Cheaper than split(b"\t", 7), which copies the whole rest of the line
# (measured: 0.65 vs 1.4 us). event_id (6) is captured only when it is a UUID. Of etl_tstamp (2)
# only the first 19 bytes are captured, and only when a valid fraction or none follows them (the
# fraction is dropped anyway): they are the key of its etlTime in `_ETL_TIMES`, where only valid
# seconds are ever kept (`parse_etl_tstamp` checks them on a miss). `[^\t]{19}` rather than the
# digits spelled out, and possessive fields: ~1.4k fewer sre instructions a line (callgrind).
_FRACTION = rb"(?:\.\d{1,9})?"
_FIELD = rb"[^\t]*+\t"
_HEAD = re.compile(
    _FIELD * 2 + rb"(?:([^\t]{19})" + _FRACTION + rb"|[^\t]*+)\t" + _FIELD * 3 + rb"(" + _UUID + rb")\t"
)
_TSTAMP = re.compile(rb"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})" + _FRACTION)
MIN_YEAR, MAX_YEAR = 1, 9999  # the years an etl_tstamp may name (see parse_etl_tstamp)


class BadRowReason(StrEnum):
    """Why a line was not turned into a manifest item. Values appear in summaries and reports."""

    FIELD_COUNT = "field_count"
    EVENT_ID = "event_id"
    ETL_TSTAMP = "etl_tstamp"
    ENCODING = "encoding"
    LINE_TOO_LONG = "line_too_long"

    def describe(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    BadRowReason.FIELD_COUNT: f"not exactly {FIELD_COUNT} tab-separated fields",
    BadRowReason.EVENT_ID: "event_id (field 7) is not a UUID",
    BadRowReason.ETL_TSTAMP: (
        "etl_tstamp (field 3) is not a 'yyyy-MM-dd HH:mm:ss[.fraction]' UTC time of years 0001-9999"
    ),
    BadRowReason.ENCODING: "event_fingerprint is not valid UTF-8",
    BadRowReason.LINE_TOO_LONG: f"line longer than {MAX_LINE_BYTES} bytes",
}


class SkipReason(StrEnum):
    """Why a valid event is deliberately not written. Not a bad row: never in `--bad-rows`, never
    counted by `--max-bad-rows`. Values appear in summaries and reports."""

    # The event fingerprint enrichment was off (or the line predates it). The shredder gives such
    # an event a random fingerprint (`event_fingerprint.getOrElse(UUID.randomUUID())`) before it
    # asks the manifest, so no item written for it could ever be matched.
    NO_FINGERPRINT = "no_fingerprint"


NO_FINGERPRINT = SkipReason.NO_FINGERPRINT
# Why, in words, for summaries and plans.
NO_FINGERPRINT_WHY = (
    "the shredder gives an event without an event_fingerprint a random one, so no manifest item "
    "could ever match it: such events are skipped, neither written nor counted as bad rows"
)


class ManifestItem(NamedTuple):
    """One row of the event manifest: an event already shredded, keyed by id and fingerprint.

    A NamedTuple rather than a frozen dataclass: one is built per line, and tuple construction
    is several times cheaper.
    """

    event_id: str
    fingerprint: str
    etl_time: int  # epoch seconds of etl_tstamp, truncated

    @property
    def key(self) -> tuple[str, str]:
        return (self.event_id, self.fingerprint)

    @property
    def ttl(self) -> int:
        return self.etl_time + TTL_SECONDS

    def is_expired(self, now: float) -> bool:
        """True when DynamoDB's TTL would already delete this item."""
        return self.ttl < now


def parse_etl_tstamp(raw: bytes) -> int | None:
    """`yyyy-MM-dd HH:mm:ss[.f]` (UTC, 1 to 9 fraction digits or none) → epoch seconds, the
    fraction dropped; None for anything that is not a real instant. Never raises.

    Years 0001-9999 only. Every Snowplow writer prints a four-digit unsigned `yyyy` (Hadoop
    Enrich's Joda `yyyy-MM-dd HH:mm:ss.SSS`, the analytics SDK's ISO_INSTANT with `T`/`Z`
    dropped, which prints 0, 3, 6 or 9 fraction digits), so a sign or a fifth digit is not an
    etl_tstamp. Year 0000 would parse in Java's proleptic calendar, but it is no time any
    enrichment ran: snowplow-rdb-loader's own specs feed `0000-01-01 09:06:35.493256951` as the
    bad input its transformer rejects. 0001-9999 is also what Python's datetime holds, and any of
    its epoch seconds fits a DynamoDB Number.

    The fraction is dropped, as the shredder does (`toEpochMilli / 1000`). Java's division
    truncates towards zero, so for a stamp before 1970 with a fraction it writes one second more
    than this floor; those items expired by TTL decades ago (run skips them). The shredder keeps
    etlTime in a 32-bit Int, which wraps after 2038-01-19 03:14:07; this keeps the true value.
    """
    match = _TSTAMP.fullmatch(raw)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (MIN_YEAR <= year <= MAX_YEAR and 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


# The etlTime of each valid etl_tstamp's whole seconds (`yyyy-MM-dd HH:mm:ss`, as `_HEAD`
# captures them) already parsed. Every event of a batch enrichment run shares one stamp; a stream
# enricher stamps each collector payload anew (snowplow/enrich `Enrich.enrichWith` reads the
# clock per payload), so nearly every line of a stream archive has a stamp of its own, but
# hundreds or thousands of lines share a second. Keyed by the whole stamp, this cache missed on
# such lines and their stamps were parsed one by one: 27k instructions a line, 2.9 us (callgrind,
# cProfile; a part of benchmarks/varied.py). A plain dict lookup is several times cheaper than
# lru_cache (which builds a key tuple and reorders its list on every hit).
_ETL_TIMES: dict[bytes, int] = {}
_ETL_TIMES_KEPT = 4096


def _parse_and_remember(seconds: bytes) -> int | None:
    """An etl_tstamp's whole seconds not in `_ETL_TIMES` yet: parsed, and kept when valid."""
    etl_time = parse_etl_tstamp(seconds)
    if etl_time is not None:
        if len(_ETL_TIMES) >= _ETL_TIMES_KEPT:
            _ETL_TIMES.clear()
        _ETL_TIMES[seconds] = etl_time
    return etl_time


_new_tuple = tuple.__new__


def parse_line(line: bytes) -> ManifestItem | BadRowReason | SkipReason:
    """Turn one enriched-event line, with or without its newline, into a manifest item, a
    bad-row reason, or `NO_FINGERPRINT` for a valid event without a fingerprint. Never raises.
    (The newline sits in the last field, true_tstamp, which is not read.)"""
    if len(line) > MAX_LINE_BYTES and len(line.removesuffix(b"\n")) > MAX_LINE_BYTES:
        return BadRowReason.LINE_TOO_LONG
    if line.count(b"\t") != _TABS:
        return BadRowReason.FIELD_COUNT
    head = _HEAD.match(line)
    if head is None:  # the shape is right, so only event_id can fail to match
        return BadRowReason.EVENT_ID
    seconds, event_id = head.groups()  # seconds is None when etl_tstamp has no stamp's shape
    etl_time = _ETL_TIMES.get(seconds)
    if etl_time is None and (seconds is None or (etl_time := _parse_and_remember(seconds)) is None):
        return BadRowReason.ETL_TSTAMP
    # event_fingerprint is the second-to-last field: between the last two tabs.
    end = line.rfind(b"\t")
    fingerprint = line[line.rfind(b"\t", 0, end) + 1 : end]
    if not fingerprint:
        return NO_FINGERPRINT
    try:
        fingerprint_text = fingerprint.decode("utf-8")
    except UnicodeDecodeError:
        return BadRowReason.ENCODING
    # tuple.__new__ directly: NamedTuple's generated __new__ is a Python-level call per line.
    return _new_tuple(ManifestItem, (event_id.decode("ascii"), fingerprint_text, etl_time))


class TooLongLine(bytes):
    """Stands for a line longer than the limit: holds only its first `KEPT_PREFIX` bytes."""

    __slots__ = ()


KEPT_PREFIX = 1024


class BadLine(NamedTuple):
    offset: int  # index of the line in its block
    reason: BadRowReason
    head: bytes  # the line's first KiB


class Triage(NamedTuple):
    """A block of lines sorted out: items to write, and what else was there."""

    items: list[ManifestItem]
    blank: int
    expired: int
    bad: list[BadLine]
    no_fingerprint: int = 0  # valid events without a fingerprint (not bad rows, not written)


def triage(lines: list[bytes], expiry_cutoff: int | None) -> Triage:
    """Parse a block of lines, each with or without its newline. Items whose etlTime is before
    `expiry_cutoff` (their TTL has passed) are counted, not kept; None keeps them all.

    The hottest code of the tool. A block where every line is a valid event, with a fingerprint
    or without one (nearly all of them), is parsed a step at a time over all its lines, each
    step one C-level `map`; any other block is parsed line by line, which sorts out what is
    wrong with which line. Both give the same result for any input, and neither raises.
    """
    return _triage_uniform(lines, expiry_cutoff) or _triage_each(lines, expiry_cutoff)


_TAB = b"\t"
_ONLY_BYTES = {bytes}
# The fingerprint is found in a line's last bytes: true_tstamp (at most 23 bytes and a newline)
# after it, so any fingerprint up to ~230 bytes (a SHA-512 in hex is 128) is inside the window.
# (Two C-level rfinds instead cost more: rfind parses its arguments the slow way.)
_TAIL = slice(-256, None)
_last_three_fields = methodcaller("rsplit", _TAB, 2)
_second = itemgetter(1)
_count = bytes.count
_decode = bytes.decode
_groups = re.Match.groups
_is_none = partial(is_, None)


def _triage_uniform(lines: list[bytes], expiry_cutoff: int | None) -> Triage | None:
    """The whole block's items when every line is a valid event line (with a fingerprint or
    without); None as soon as one is not (then `_triage_each` tells which and why). Each step
    checks one rule for all lines."""
    count = len(lines)
    if not count or b"\n" in lines or b"" in lines or set(map(type, lines)) != _ONLY_BYTES:
        return None  # blank or too-long lines
    if max(map(len, lines)) > MAX_LINE_BYTES:
        return None  # a long line not yet cut by the reader: parse_line measures it exactly
    if list(map(_count, lines, repeat(_TAB))).count(_TABS) != count:
        return None
    matched = list(map(_HEAD.match, lines))
    if not all(matched):
        return None
    heads = cast(list[re.Match[bytes]], matched)  # every one matched; one cast for the block
    # Both groups of every line in one pass; seconds is None where etl_tstamp has no stamp's shape.
    seconds, raw_event_ids = zip(*map(_groups, heads), strict=True)
    del heads  # fewer objects for the cyclic collector to visit while the items are made
    etl_times = list(map(_ETL_TIMES.get, seconds))
    if None in etl_times:  # seconds not seen yet (or no stamp at all): each parsed once
        fresh = {}
        for raw in set(compress(seconds, map(_is_none, etl_times))):
            if raw is None or (etl_time := _parse_and_remember(raw)) is None:
                return None
            fresh[raw] = etl_time
        etl_times = list(map(fresh.get, seconds, etl_times))  # the time already found, or the new one
    known_times = cast(list[int], etl_times)  # every one found by now
    tails = list(map(_last_three_fields, map(getitem, lines, repeat(_TAIL))))
    if set(map(len, tails)) != {3}:
        return None  # a fingerprint longer than the window: leave it to the line-by-line path
    fingerprints = list(map(_second, tails))
    try:
        fingerprint_texts = list(map(_decode, fingerprints))  # b"" decodes to "", cheaply
    except UnicodeDecodeError:
        return None
    event_ids = map(_decode, raw_event_ids)
    fields = zip(event_ids, fingerprint_texts, known_times, strict=True)
    items = list(map(_new_tuple, repeat(ManifestItem), fields))
    missing = fingerprints.count(b"")
    if missing:  # events without a fingerprint: counted, not kept (an empty bytes is false)
        items = list(compress(items, fingerprints))
    if expiry_cutoff is None or min(known_times) >= expiry_cutoff:
        return Triage(items, 0, 0, [], missing)
    kept = [item for item in items if item[2] >= expiry_cutoff]
    return Triage(kept, 0, len(items) - len(kept), [], missing)


_BEFORE_ANY_ETL_TIME = -(1 << 63)  # no cutoff: before year 0001 (-62,135,596,800), not -1 (1969)


def _triage_each(lines: list[bytes], expiry_cutoff: int | None) -> Triage:
    """`triage` one line at a time: locals only, one type check per outcome."""
    items: list[ManifestItem] = []
    keep = items.append
    bad: list[BadLine] = []
    blank = expired = no_fingerprint = 0
    parse = parse_line
    item_type = ManifestItem
    skipped = NO_FINGERPRINT
    too_long = TooLongLine
    blank_lines = BLANK_LINES
    cutoff = expiry_cutoff if expiry_cutoff is not None else _BEFORE_ANY_ETL_TIME
    for offset, line in enumerate(lines):
        if line in blank_lines:
            blank += 1
            continue
        if type(line) is too_long:
            bad.append(BadLine(offset, BadRowReason.LINE_TOO_LONG, line))
            continue
        parsed = parse(line)
        if type(parsed) is item_type:
            if parsed.etl_time < cutoff:
                expired += 1
            else:
                keep(parsed)
        elif parsed is skipped:
            no_fingerprint += 1
        else:
            # A BadRowReason by now, but mypy does not narrow on `type(parsed) is item_type` (a local
            # alias, read to spare a global lookup a line), so to it `parsed` may be an item still.
            bad.append(BadLine(offset, parsed, line[:KEPT_PREFIX].removesuffix(b"\n")))  # type: ignore[arg-type]
    return Triage(items, blank, expired, bad, no_fingerprint)
