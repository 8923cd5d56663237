"""One generated line: a valid 131-field event, with long contexts on demand, and no bad etl_tstamp."""

from __future__ import annotations

import calendar
import random
import re
from collections import Counter
from datetime import datetime

import pytest

from populator.samples.lines import enriched_line
from tests.support.independent_parser import classify

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


@pytest.mark.parametrize("etl", ["2017-06-01 10:17:42.123", "2017-06-01 10:17:42"])
def test_enriched_line_is_a_valid_event(etl: str) -> None:
    rng = random.Random(3)
    kinds = Counter()
    for i in range(2000):
        event_id = f"6b9e4f3a-2c1d-4e5f-8a7b-{i:012x}"
        line = enriched_line(rng, event_id=event_id, etl_tstamp=etl, fingerprint="f" * 32)
        assert "\n" not in line and "\r" not in line
        fields = line.split("\t")
        assert len(fields) == 131
        assert fields[2] == etl and fields[6] == event_id and fields[129] == "f" * 32
        assert fields[1] in {"web", "mob"} and fields[5]
        for index in (3, 4, 119, 124):
            assert TS_RE.match(fields[index]), fields[index]
        assert fields[4] < fields[3] < etl  # device time, then collector, then ETL
        assert fields[52].startswith('{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/')
        assert classify(line.encode()) == (
            event_id,
            "f" * 32,
            calendar.timegm(datetime(2017, 6, 1, 10, 17, 42).timetuple()),
        )
        kinds[fields[5]] += 1
    assert set(kinds) == {"page_view", "page_ping", "struct", "unstruct", "transaction"}


def test_enriched_line_long_contexts() -> None:
    rng = random.Random(5)
    for _ in range(20):
        line = enriched_line(
            rng,
            event_id="6b9e4f3a-2c1d-4e5f-8a7b-000000000001",
            etl_tstamp="2017-06-01 10:17:42.123",
            fingerprint="a" * 32,
            long_contexts=True,
        )
        assert 20_000 <= len(line.encode()) <= 70_000
        assert len(line.split("\t")) == 131


def test_enriched_line_rejects_a_bad_etl_tstamp() -> None:
    with pytest.raises(ValueError):
        enriched_line(random.Random(), event_id="x", etl_tstamp="yesterday", fingerprint="f")
