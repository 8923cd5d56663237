"""A stand-in DynamoDB endpoint for the benchmarks: null (always accepts) or capacity-limited.

Run it as a script, in its own process, so its CPU never competes with the measured client's
event loop: `python benchmarks/endpoint.py [--latency-ms 5] [--capacity ITEMS_PER_S]`. It binds a
free loopback port and prints that port on the first line of stdout once it is listening.

It answers every call populator and the boto3 baselines make (DescribeTable, CreateTable,
UpdateTimeToLive, DescribeTimeToLive, BatchWriteItem, PutItem) after `--latency-ms`, with the
headers botocore checks (`x-amz-crc32`, `application/x-amz-json-1.0`). With `--capacity C` a token
bucket of C items/s (depth: one second of capacity, full at start) admits writes: a BatchWriteItem
takes the tokens there are and returns the rest in `UnprocessedItems`; at zero tokens the whole
request gets 400 ProvisionedThroughputExceededException. Conditions are never evaluated: every
admitted PutItem succeeds, as on an empty table.

Counters for the harness: `GET /__stats` (JSON; `?keys=1` adds a digest of the distinct keys
stored, see `keys_digest`), `POST /__reset` (clears counters and stored keys, refills the bucket).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "DynamoDB_20120810."
WRITE_OPERATIONS = frozenset({"BatchWriteItem", "PutItem"})
THROUGHPUT_EXCEEDED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
UNKNOWN_OPERATION = "com.amazon.coral.service#UnknownOperationException"
NULL_WRITE_CAPACITY = 1_000_000  # WCU a null endpoint reports: "more than any client can use"


def keys_digest(keys: Iterable[tuple[str, str]]) -> str:
    """A digest of a set of (eventId, fingerprint) keys, independent of order and repeats.

    The harness computes it from the generator's expectation and the endpoint from what it
    stored; equal digests mean exactly the expected items arrived, without shipping 200k keys.
    """
    digest = hashlib.sha256()
    for event_id, fingerprint in sorted(set(keys)):
        digest.update(f"{event_id}\t{fingerprint}\n".encode())
    return digest.hexdigest()


class TokenBucket:
    """C tokens a second, at most `depth` banked; one token admits one item (≤ 1 KB = 1 WCU)."""

    def __init__(self, rate: float, depth: float) -> None:
        self.rate = rate
        self.depth = depth
        self._tokens = depth
        self._last = time.monotonic()

    def refill(self) -> None:
        """Start full again (between measurements)."""
        self._tokens = self.depth
        self._last = time.monotonic()

    def take(self, wanted: int) -> int:
        """Take up to `wanted` whole tokens; return how many were granted (0 means throttled)."""
        now = time.monotonic()
        self._tokens = min(self.depth, self._tokens + (now - self._last) * self.rate)
        self._last = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def give_back(self, tokens: int) -> None:
        self._tokens = min(self.depth, self._tokens + tokens)


@dataclass
class Stats:
    """What the endpoint saw since the last reset."""

    requests: Counter[str] = field(default_factory=Counter)
    write_requests: int = 0
    throttled_requests: int = 0  # got some UnprocessedItems, or a 400 throttle
    rejected_requests: int = 0  # the 400s alone
    items_written: int = 0  # items admitted (a key written twice counts twice)
    unprocessed_items: int = 0
    first_write: float | None = None  # monotonic time a write request arrived first
    last_write: float | None = None  # monotonic time a write request was last answered
    keys: set[tuple[str, str]] = field(default_factory=set)

    def as_json(self, with_digest: bool) -> dict[str, Any]:
        window = (
            self.last_write - self.first_write
            if self.first_write is not None and self.last_write is not None
            else 0.0
        )
        report: dict[str, Any] = {
            "requests": dict(self.requests),
            "write_requests": self.write_requests,
            "throttled_requests": self.throttled_requests,
            "rejected_requests": self.rejected_requests,
            "items_written": self.items_written,
            "unprocessed_items": self.unprocessed_items,
            "write_window_seconds": window,
            "distinct_keys": len(self.keys),
        }
        if with_digest:
            report["keys_digest"] = keys_digest(self.keys)
        return report


class FakeDynamo:
    """The request handlers; one instance per process."""

    def __init__(self, latency: float, bucket: TokenBucket | None, write_capacity: int) -> None:
        self.latency = latency
        self.bucket = bucket
        self.write_capacity = write_capacity
        self.on_demand = False  # DescribeTable then says PAY_PER_REQUEST
        # An on-demand maximum: a request that cannot be admitted whole is refused whole (400),
        # naming `throttling_reason` in ThrottlingReasons when set (as DynamoDB does since 2025).
        self.whole_requests = False
        self.throttling_reason = ""
        self.stats = Stats()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/", self.handle)
        app.router.add_get("/__stats", self.handle_stats)
        app.router.add_post("/__reset", self.handle_reset)
        return app

    async def handle_stats(self, request: web.Request) -> web.Response:
        body = orjson.dumps(self.stats.as_json(with_digest=request.query.get("keys") == "1"))
        return web.Response(body=body, content_type="application/json")

    async def handle_reset(self, request: web.Request) -> web.Response:
        self.stats = Stats()
        if self.bucket is not None:
            self.bucket.refill()
        return web.Response(body=b"{}", content_type="application/json")

    async def handle(self, request: web.Request) -> web.Response:
        operation = request.headers.get("X-Amz-Target", "").removeprefix(TARGET_PREFIX)
        payload = orjson.loads(await request.read() or b"{}")
        stats = self.stats
        stats.requests[operation] += 1
        is_write = operation in WRITE_OPERATIONS
        if is_write:
            stats.write_requests += 1
            if stats.first_write is None:
                stats.first_write = time.monotonic()
        if self.latency:
            await asyncio.sleep(self.latency)
        status, body = self._answer(operation, payload)
        if is_write:
            self.stats.last_write = time.monotonic()
        return _response(status, body)

    def _answer(self, operation: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if operation == "BatchWriteItem":
            return self._batch_write(payload["RequestItems"])
        if operation == "PutItem":
            return self._put(payload["Item"])
        if operation == "DescribeTable":
            return 200, {"Table": self._table(payload["TableName"])}
        if operation == "CreateTable":
            return 200, {"TableDescription": self._table(payload["TableName"])}
        if operation == "UpdateTimeToLive":
            return 200, {"TimeToLiveSpecification": payload["TimeToLiveSpecification"]}
        if operation == "DescribeTimeToLive":
            return 200, {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}}
        return 400, {"__type": UNKNOWN_OPERATION, "message": f"not simulated: {operation!r}"}

    def _admit(self, wanted: int) -> int:
        return wanted if self.bucket is None else self.bucket.take(wanted)

    def _batch_write(self, request_items: dict[str, list[dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
        wanted = sum(len(requests) for requests in request_items.values())
        granted = self._admit(wanted)
        if self.whole_requests and 0 < granted < wanted and self.bucket is not None:
            self.bucket.give_back(granted)
            granted = 0
        if granted == 0 and wanted:
            return self._throttle(wanted)
        unprocessed: dict[str, list[dict[str, Any]]] = {}
        budget = granted
        for table, requests in request_items.items():
            for index, write in enumerate(requests):
                if budget == 0:
                    unprocessed[table] = requests[index:]
                    break
                budget -= 1
                self._store(write.get("PutRequest", {}).get("Item"))
        self.stats.items_written += granted
        if granted < wanted:
            self.stats.throttled_requests += 1
            self.stats.unprocessed_items += wanted - granted
        return 200, {"UnprocessedItems": unprocessed}

    def _put(self, item: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._admit(1) == 0:
            return self._throttle(1)
        self._store(item)
        self.stats.items_written += 1
        return 200, {}

    def _throttle(self, items: int) -> tuple[int, dict[str, Any]]:
        self.stats.throttled_requests += 1
        self.stats.rejected_requests += 1
        self.stats.unprocessed_items += items
        message = "The level of configured provisioned throughput for the table was exceeded."
        body: dict[str, Any] = {"__type": THROUGHPUT_EXCEEDED, "message": message}
        if self.throttling_reason:
            resource = "arn:aws:dynamodb:us-east-1:000000000000:table/bench"
            body["ThrottlingReasons"] = [{"reason": self.throttling_reason, "resource": resource}]
        return 400, body

    def _store(self, item: dict[str, Any] | None) -> None:
        if item is not None:  # a DeleteRequest is admitted but stores nothing
            self.stats.keys.add((item["eventId"]["S"], item["fingerprint"]["S"]))

    def _table(self, name: str) -> dict[str, Any]:
        return {
            "TableName": name,
            "TableStatus": "ACTIVE",
            "TableArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}",
            "CreationDateTime": 1_700_000_000,
            "AttributeDefinitions": [
                {"AttributeName": "eventId", "AttributeType": "S"},
                {"AttributeName": "fingerprint", "AttributeType": "S"},
            ],
            "KeySchema": [
                {"AttributeName": "eventId", "KeyType": "HASH"},
                {"AttributeName": "fingerprint", "KeyType": "RANGE"},
            ],
            "ProvisionedThroughput": {
                "ReadCapacityUnits": self.write_capacity,
                "WriteCapacityUnits": self.write_capacity,
                "NumberOfDecreasesToday": 0,
            },
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST" if self.on_demand else "PROVISIONED"},
            "ItemCount": 0,
            "TableSizeBytes": 0,
        }


def _response(status: int, body: dict[str, Any]) -> web.Response:
    raw = orjson.dumps(body)
    headers = {"x-amz-crc32": str(zlib.crc32(raw)), "x-amzn-RequestId": "bench"}
    return web.Response(status=status, body=raw, headers=headers, content_type=JSON_CONTENT_TYPE)


async def serve(fake: FakeDynamo) -> None:
    """Listen on a free loopback port, announce it on stdout, serve until killed."""
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, backlog=1024).start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=5.0, help="delay before every answer")
    parser.add_argument("--capacity", type=float, default=0, help="items/s admitted (0: unlimited)")
    parser.add_argument(
        "--write-capacity", type=int, default=0, help="WCU DescribeTable reports (default: --capacity)"
    )
    parser.add_argument(
        "--on-demand",
        action="store_true",
        help="DescribeTable reports PAY_PER_REQUEST: the client cannot know the capacity, only meet it",
    )
    parser.add_argument(
        "--whole-requests",
        action="store_true",
        help="refuse a request that cannot be admitted whole with a 400, never UnprocessedItems",
    )
    parser.add_argument("--throttling-reason", default="", help="ThrottlingReasons of every 400 throttle")
    args = parser.parse_args(argv)
    bucket = TokenBucket(args.capacity, depth=args.capacity) if args.capacity > 0 else None
    wcu = args.write_capacity or (round(args.capacity) if bucket else NULL_WRITE_CAPACITY)
    fake = FakeDynamo(args.latency_ms / 1000, bucket, wcu)
    fake.on_demand = args.on_demand
    fake.whole_requests = args.whole_requests
    fake.throttling_reason = args.throttling_reason
    try:
        asyncio.run(serve(fake))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
