"""The two writers populator is compared with, as a user would write them with boto3.

- `batch-writer`: boto3's `Table.batch_writer()` (25-item BatchWriteItem, one request in flight,
  UnprocessedItems resent), the usual "just script it" answer.
- `put-item`: one conditional `PutItem` at a time with the shredder's condition, the original
  Event Manifest Populator's pattern on each core.

Both read the same gzip parts with Python's `gzip` and pull the three fields out of each line.
They stop after `--budget` seconds or at the end of the archive, and print one JSON line:
`{"items": <items handed to boto3>, "seconds": <from the first write to the last answer>}`.
The clock starts once the boto3 client exists, so interpreter start-up, imports and client
creation are not counted (this favours the baselines: populator's time is measured around its
whole process). Reading and parsing the archive is inside the clock, as it is for populator.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import gzip
import json
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3

FIELD_COUNT = 131
ETL_TSTAMP, EVENT_ID, FINGERPRINT = 2, 6, 129
TTL_SECONDS = 15_552_000
CONDITION = "(attribute_not_exists(eventId) AND attribute_not_exists(fingerprint)) OR etlTime = :tst"


@lru_cache(maxsize=1024)
def etl_time(text: str) -> int:
    """`yyyy-MM-dd HH:mm:ss[.SSS]` → epoch seconds (cached: a run shares one etl_tstamp)."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S"))


def manifest_items(paths: list[Path]) -> Iterator[tuple[str, str, int]]:
    """(event_id, fingerprint, etl_time) of every well-formed line, in file order."""
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                fields = line.rstrip("\n").split("\t")
                if len(fields) == FIELD_COUNT:
                    yield fields[EVENT_ID], fields[FINGERPRINT], etl_time(fields[ETL_TSTAMP])


Items = Iterator[tuple[str, str, int]]


def write_with_batch_writer(table_name: str, items: Items, budget: float) -> tuple[int, float]:
    """Put items through `Table.batch_writer()` until the archive or the budget runs out.

    Returns (items handed to boto3, seconds from the first write to the final flush).
    """
    table = boto3.resource("dynamodb").Table(table_name)
    count = 0
    start = time.perf_counter()
    deadline = start + budget
    with table.batch_writer(overwrite_by_pkeys=["eventId", "fingerprint"]) as writer:
        for event_id, fingerprint, etl in items:
            writer.put_item(
                Item={
                    "eventId": event_id,
                    "fingerprint": fingerprint,
                    "etlTime": etl,
                    "ttl": etl + TTL_SECONDS,
                }
            )
            count += 1
            if count % 25 == 0 and time.perf_counter() > deadline:
                break
    return count, time.perf_counter() - start


def write_one_put_at_a_time(table_name: str, items: Items, budget: float) -> tuple[int, float]:
    """Conditional PutItem per item, waiting for each answer, until the archive or budget ends.

    Returns (items written, seconds from the first write to the last answer).
    """
    client: Any = boto3.client("dynamodb")
    count = 0
    start = time.perf_counter()
    deadline = start + budget
    for event_id, fingerprint, etl in items:
        # An item already there with another etlTime is the shredder's "first writer wins".
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.put_item(
                TableName=table_name,
                Item={
                    "eventId": {"S": event_id},
                    "fingerprint": {"S": fingerprint},
                    "etlTime": {"N": str(etl)},
                    "ttl": {"N": str(etl + TTL_SECONDS)},
                },
                ConditionExpression=CONDITION,
                ExpressionAttributeValues={":tst": {"N": str(etl)}},
            )
        count += 1
        if time.perf_counter() > deadline:
            break
    return count, time.perf_counter() - start


WRITERS = {"batch-writer": write_with_batch_writer, "put-item": write_one_put_at_a_time}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("writer", choices=sorted(WRITERS))
    parser.add_argument("table")
    parser.add_argument("parts", nargs="+", type=Path, help="gzip parts, read in this order")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds of writing before stopping")
    args = parser.parse_args(argv)
    count, seconds = WRITERS[args.writer](args.table, manifest_items(args.parts), args.budget)
    print(json.dumps({"items": count, "seconds": seconds}))


if __name__ == "__main__":
    main()
