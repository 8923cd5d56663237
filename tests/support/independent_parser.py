"""A deliberately simple reference reader of enriched archives, independent of `populator`.

Tests use it to check the sample generator's expectations (and the tool) against the files
actually on disk. It shares no code with the package: slow and obvious on purpose.
"""

from __future__ import annotations

import gzip
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MAX_LINE_BYTES = 1024 * 1024
# yyyy-MM-dd HH:mm:ss, then an optional fraction of 1 to 9 digits (strptime's %f takes 6 at most
# and %m or %H a single digit, so the shape is checked here and the calendar by datetime).
ETL_SHAPE = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d{1,9})?", re.ASCII)
NO_FINGERPRINT = "no_fingerprint"  # a valid event without a fingerprint: skipped, not a bad row


@dataclass
class ParsedArchive:
    items: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    bad_rows: Counter[str] = field(default_factory=Counter)
    blank_lines: int = 0
    good_lines: int = 0
    no_fingerprint: int = 0
    lines: int = 0
    objects: list[str] = field(default_factory=list)


def part_files(root: Path) -> list[Path]:
    """Non-empty `part-*` files directly inside `run=*` folders of `root`."""
    found = []
    for run in sorted(root.iterdir()):
        if not (run.is_dir() and run.name.startswith("run=")):
            continue
        for part in sorted(run.iterdir()):
            if part.is_file() and part.name.startswith("part-") and part.stat().st_size > 0:
                found.append(part)
    return found


def read_lines(path: Path) -> list[bytes]:
    """The lines of a part, gunzipped when it starts with the gzip magic (any member count)."""
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        with gzip.open(path, "rb") as f:
            data = f.read()
    else:
        data = path.read_bytes()
    # Split on "\n" only: enriched fields may legally contain U+2028 and friends, which
    # str.splitlines() would treat as line breaks.
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def etl_time(text: str) -> int | None:
    """Whole epoch seconds of a UTC `yyyy-MM-dd HH:mm:ss[.f]` in years 1-9999 (what datetime
    holds), or None."""
    match = ETL_SHAPE.fullmatch(text)
    if match is None:
        return None
    try:
        dt = datetime(*map(int, match.groups()), tzinfo=UTC)
    except ValueError:  # year 0, month 13, Feb 29 of a common year, hour 24, second 60...
        return None
    return int(dt.timestamp())  # no fraction in dt: exact whole seconds


def is_uuid(text: str) -> bool:
    """The canonical 8-4-4-4-12 hex form, in either case (uuid.UUID alone also takes braces,
    `urn:uuid:` and no hyphens)."""
    try:
        return len(text) == 36 and str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def classify(line: bytes) -> tuple[str, str, int] | str | None:
    """(event_id, fingerprint, etlTime) for a good line, a reason for a bad one, `NO_FINGERPRINT`
    for a valid event without a fingerprint, None if blank. Any bytes: only the fingerprint must
    be UTF-8 (it is the only text kept besides the ASCII id)."""
    if len(line.removesuffix(b"\n")) > MAX_LINE_BYTES:
        return "line_too_long"
    if line in (b"", b"\n"):
        return None
    fields = line.removesuffix(b"\n").split(b"\t")
    if len(fields) != 131:
        return "field_count"
    event_id, etl, fingerprint = fields[6].decode("latin-1"), fields[2].decode("latin-1"), fields[129]
    if not is_uuid(event_id):
        return "event_id"
    seconds = etl_time(etl)
    if seconds is None:
        return "etl_tstamp"
    if fingerprint == b"":
        return NO_FINGERPRINT
    try:
        return event_id, fingerprint.decode("utf-8"), seconds
    except UnicodeDecodeError:
        return "encoding"


def parse_archive(root: Path) -> ParsedArchive:
    result = ParsedArchive()
    for path in part_files(root):
        result.objects.append(path.relative_to(root).as_posix())
        for line in read_lines(path):
            result.lines += 1
            outcome = classify(line)
            if outcome is None:
                result.blank_lines += 1
            elif outcome == NO_FINGERPRINT:
                result.no_fingerprint += 1
            elif isinstance(outcome, str):
                result.bad_rows[outcome] += 1
            else:
                event_id, fingerprint, seconds = outcome
                result.good_lines += 1
                result.items.setdefault((event_id, fingerprint), set()).add(seconds)
    return result


def derive_manifest(root: Path) -> dict[tuple[str, str], set[int]]:
    """(event_id, fingerprint) -> every etlTime it occurs with, read from the files."""
    return parse_archive(root).items
