"""The stamps on a generated event: ids, fingerprints and timestamps as the enriched format writes them.

Ids are drawn from the caller's `random.Random`, so an archive stays deterministic for its seed.
"""

from __future__ import annotations

import calendar
import functools
import random
import time
from datetime import datetime


def random_uuid(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (4 << 76)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_fingerprint(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


@functools.lru_cache(maxsize=1 << 16)
def second_text(s: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s))


def format_ms(ms: int) -> str:
    """Epoch milliseconds -> `yyyy-MM-dd HH:mm:ss.SSS`."""
    s, milli = divmod(ms, 1000)
    return f"{second_text(s)}.{milli:03d}"


def parse_etl_ms(text: str) -> int:
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            dt = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000
    raise ValueError(f"not an etl_tstamp: {text!r}")


def epoch_ms(dt: datetime) -> int:
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000
