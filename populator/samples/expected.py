"""What a generated archive holds, as a correct populator run over it must find it.

The expectation comes from what the generator chose to write (event ids, fingerprints, run times),
never from reading the files back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

TTL_SECONDS = 15_552_000  # 180 days, as the Snowplow shredder sets it


@dataclass
class ExpectedManifest:
    """The manifest and the line tallies a correct run over the archive must produce."""

    items: dict[tuple[str, str], set[int]]
    expired: set[tuple[str, str]]
    bad_rows: Counter[str]
    blank_lines: int
    good_lines: int  # lines that give a manifest item (a valid event with a fingerprint)
    lines: int
    objects: list[str]
    runs: list[str]
    no_fingerprint: int = 0  # lines that are valid events without a fingerprint: skipped, not bad

    def live_items(self) -> dict[tuple[str, str], set[int]]:
        """Items not expired by TTL as of the spec's `now`."""
        return {k: v for k, v in self.items.items() if k not in self.expired}

    def first_etl_time(self, key: tuple[str, str]) -> int:
        """Earliest etlTime of a key."""
        return min(self.items[key])
