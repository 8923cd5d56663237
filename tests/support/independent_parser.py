"""A deliberately simple reference reader of enriched archives, independent of `populator`.

Tests use it to check the sample generator's expectations (and the tool) against the files
actually on disk. It shares no code with the package: slow and obvious on purpose.
"""

from __future__ import annotations

import calendar
import gzip
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

MAX_LINE_BYTES = 1024 * 1024
ETL_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


@dataclass
class ParsedArchive:
    items: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    bad_rows: Counter[str] = field(default_factory=Counter)
    blank_lines: int = 0
    good_lines: int = 0
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
    for fmt in ETL_FORMATS:
        try:
            dt = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return calendar.timegm(dt.timetuple())
    return None


def classify(line: bytes) -> tuple[str, str, int] | str | None:
    """(event_id, fingerprint, etlTime) for a good line, a reason for a bad one, None if blank."""
    if len(line) > MAX_LINE_BYTES:
        return "line_too_long"
    if line == b"":
        return None
    fields = line.decode("utf-8").split("\t")
    if len(fields) != 131:
        return "field_count"
    event_id, etl, fingerprint = fields[6], fields[2], fields[129]
    try:
        uuid.UUID(event_id)
    except ValueError:
        return "event_id"
    seconds = etl_time(etl)
    if seconds is None:
        return "etl_tstamp"
    if fingerprint == "":
        return "fingerprint"
    return event_id, fingerprint, seconds


def parse_archive(root: Path) -> ParsedArchive:
    result = ParsedArchive()
    for path in part_files(root):
        result.objects.append(path.relative_to(root).as_posix())
        for line in read_lines(path):
            result.lines += 1
            outcome = classify(line)
            if outcome is None:
                result.blank_lines += 1
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
