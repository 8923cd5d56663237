"""What writing costs and why it is slow: consumed capacity, throttling reasons, the table's ceilings.

The AWS side is moto behind the DynamoDB proxy, which answers ConsumedCapacity, ThrottlingReasons
and the on-demand fields of DescribeTable as DynamoDB documents them (moto does not).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from populator.config.aws import dynamodb_client, new_session
from populator.config.storage import AwsSettings
from populator.errors import UsageError
from populator.events import ManifestItem
from populator.job.limits import Limits, parse_duration
from populator.observe.report import Tally
from populator.observe.summary import summary_rows, throttle_advice
from populator.sink.manifest import BatchWriter, ConditionalWriter, table_info
from populator.sink.ratelimit import HOLD_SECONDS, AdaptiveRateLimiter
from populator.sink.throughput import ThroughputOptions, start_rate, write_ceiling
from populator.sink.transport import BotocoreTransport
from populator.sink.writes import RetryPolicy, WriteFailed, consumed_units, throttle_reason

FAST = RetryPolicy(attempts=6, base_delay=0.001, max_delay=0.01)


def items(count: int, prefix: int = 0) -> list[ManifestItem]:
    return [
        ManifestItem(f"{prefix:08x}-0000-4000-8000-{n:012x}", f"fp-{n}", 1_764_000_000 + n)
        for n in range(count)
    ]


@pytest.fixture
def dynamo_proxy(aws, dynamo_proxy, monkeypatch):
    """The proxy, with this process's DynamoDB clients pointed at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    return dynamo_proxy


async def with_writer(proxy_url, table, writer_type, work, reasons=None):
    settings = AwsSettings(profile=None, dynamodb_region="us-east-1", dynamodb_keys=None, pool_size=32)
    reasons = [] if reasons is None else reasons
    async with dynamodb_client(new_session(None), settings) as client:
        assert client.meta.endpoint_url == proxy_url
        await client.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "eventId", "AttributeType": "S"},
                {"AttributeName": "fingerprint", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "eventId", "KeyType": "HASH"},
                {"AttributeName": "fingerprint", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        writer = writer_type(BotocoreTransport(client), table, FAST, on_throttle=reasons.append)
        return await work(writer), reasons


# ------------------------------------------------------------------- pure parts


def test_consumed_units_reads_both_shapes_and_says_none_when_absent():
    assert consumed_units({"ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 25.0}]}, "t") == 25.0
    assert consumed_units({"ConsumedCapacity": [{"TableName": "other", "CapacityUnits": 3.0}]}, "t") is None
    assert consumed_units({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}, "t") == 1.0
    assert consumed_units({}, "t") is None
    assert consumed_units({"ConsumedCapacity": "garbage"}, "t") is None


def test_throttle_reason_is_the_first_reason_else_the_error_code():
    class Error(Exception):
        def __init__(self, response):
            self.response = response

    reasons = [{"reason": "TableWriteKeyRangeThroughputExceeded", "resource": "arn:table/t"}]
    assert throttle_reason(Error({"Error": {"Code": "X"}, "ThrottlingReasons": reasons})) == (
        "TableWriteKeyRangeThroughputExceeded"
    )
    assert throttle_reason(Error({"Error": {"Code": "ThrottlingException"}})) == "ThrottlingException"
    assert throttle_reason(Error({"Error": {"Code": "X"}, "ThrottlingReasons": [{"reason": ""}]})) == "X"


def test_table_info_reads_the_on_demand_maximum_and_warm_throughput():
    described = {
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "OnDemandThroughput": {"MaxWriteRequestUnits": 900, "MaxReadRequestUnits": -1},
        "WarmThroughput": {"WriteUnitsPerSecond": 700, "Status": "ACTIVE"},
    }
    info = table_info("t", described)
    assert (info.max_write_units, info.warm_write_units) == (900, 700)
    assert write_ceiling(info, ThroughputOptions()) == 900
    assert write_ceiling(info, ThroughputOptions(max_write_rate=500)) == 500
    assert start_rate(info, ThroughputOptions()) == 700
    unlimited = table_info("t", {**described, "OnDemandThroughput": {"MaxWriteRequestUnits": -1}})
    assert unlimited.max_write_units is None and write_ceiling(unlimited, ThroughputOptions()) is None
    provisioned = table_info(
        "t",
        {"ProvisionedThroughput": {"WriteCapacityUnits": 100}, "WarmThroughput": described["WarmThroughput"]},
    )
    assert start_rate(provisioned, ThroughputOptions()) is None  # paced by its capacity instead


@pytest.mark.parametrize(
    "raw, seconds",
    [
        ("90m", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("45s", 45),
        ("3600", 3600),
        ("1.5h", 5400),
        ("2m30s", 150),
        (" 10M ", 600),
    ],
)
def test_durations(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "h", "90x", "-5", "0", "1h-30m", "m30"])
def test_bad_durations_are_usage_errors(raw):
    with pytest.raises(UsageError, match="--max-duration"):
        parse_duration(raw)


def test_the_units_limit_is_the_lower_of_units_and_cost():
    assert Limits(max_write_units=1000).units_limit() == (1000, "max_write_units")
    assert Limits(max_cost_usd=0.01, price_per_million=1.0).units_limit() == (10_000, "max_cost")
    assert Limits(max_write_units=500, max_cost_usd=0.01, price_per_million=1.0).units_limit() == (
        500,
        "max_write_units",
    )
    assert Limits(max_duration_s=60).units_limit() is None


@pytest.mark.parametrize(
    "reason, advice",
    [
        ("TableWriteProvisionedThroughputExceeded", "raise its WCU"),
        ("ProvisionedThroughputExceededException", "--write-capacity-percent"),
        ("TableWriteAccountLimitExceeded", "higher per-table write quota"),
        ("TableWriteMaxOnDemandThroughputExceeded", "MaxWriteRequestUnits"),
        ("TableWriteKeyRangeThroughputExceeded", "share one event id"),
        ("UnprocessedItems", "gave no reason"),
    ],
)
def test_a_throttled_run_ends_with_what_to_do_about_its_main_reason(reason, advice):
    tally = Tally()
    tally.throttled_by_reason = Counter({reason: 7})
    if reason != "UnprocessedItems":
        tally.throttled_by_reason["UnprocessedItems"] = 1  # the main reason wins
    sentence = throttle_advice(tally)
    assert sentence is not None and advice in sentence and reason in sentence
    assert throttle_advice(Tally()) is None


def test_the_summary_shows_units_dollars_and_reasons():
    tally = Tally(price_per_million=0.625)
    tally.items_written = 2_000_000
    tally.write_units_reported = 2_000_000
    tally.throttle_events = 3
    tally.throttled_by_reason = Counter({"TableWriteKeyRangeThroughputExceeded": 3})
    rows = dict(summary_rows(tally))
    assert rows["write units consumed"] == "2,000,000 (≈ $1.25 at $0.625 per million)"
    assert rows["  TableWriteKeyRangeThroughputExceeded"] == "3"
    tally.write_units_counted = 10
    assert "counted" in dict(summary_rows(tally))["write units consumed"]
    report = tally.as_dict()
    assert report["write_units_consumed"] == 2_000_010 and report["write_units_source"] == "counted"
    assert report["estimated_cost_usd"] == pytest.approx(2_000_010 / 1e6 * 0.625)
    assert report["throttled_by_reason"] == {"TableWriteKeyRangeThroughputExceeded": 3}


# ----------------------------------------------- the rate controller and a ceiling's reason


def simulate(wall: float, reason: str | None, seconds: float = 600.0, step: float = 0.05) -> tuple[int, int]:
    """A table that takes `wall` items/s and throttles everything above it, as an on-demand
    maximum does; returns (requests, throttled requests) of a writer sending 25-item batches."""
    now = [0.0]
    limiter = AdaptiveRateLimiter(clock=lambda: now[0])
    requests = throttled = 0
    while now[0] < seconds:
        offered = limiter.rate * step
        batches = max(1, round(offered / 25))
        admitted_share = min(1.0, wall / limiter.rate)
        for _ in range(batches):
            requests += 1
            got = round(25 * admitted_share)
            if got < 25:
                throttled += 1
                limiter.on_throttle(got, 25, reason=reason)
            else:
                limiter.on_success(25)
        now[0] += step
    return requests, throttled


def test_a_reason_naming_a_maximum_holds_the_rate_where_probing_keeps_throttling():
    held_requests, held_throttled = simulate(1000.0, "TableWriteMaxOnDemandThroughputExceeded")
    _, probe_throttled = simulate(1000.0, None)
    assert held_throttled / held_requests <= 0.02, (held_throttled, held_requests)
    assert probe_throttled > 3 * held_throttled  # without the reason, probing meets the wall again


def test_a_held_ceiling_is_let_go_a_while_after_the_last_throttle_or_when_the_table_changes():
    now = [0.0]
    limiter = AdaptiveRateLimiter(clock=lambda: now[0], initial=2000)
    limiter.on_throttle(1000, 2000, reason="TableWriteAccountLimitExceeded")
    assert limiter.state().held == pytest.approx(1000)  # no window measured yet: a cut's worth
    for _ in range(int(HOLD_SECONDS) - 1):  # a minute of success: the wall is still there
        now[0] += 1
        limiter.on_success(100)
    assert limiter.rate <= 1000
    for _ in range(5):  # then no throttle has named it for HOLD_SECONDS: look for it again
        now[0] += 1
        limiter.on_success(100)
    assert limiter.state().held is None and limiter.rate > 1000

    limiter.on_throttle(500, 1000, reason="TableWriteMaxOnDemandThroughputExceeded")
    assert limiter.state().held is not None
    limiter.set_ceiling(5000)  # the table's MaxWriteRequestUnits was raised
    assert limiter.state().held is None


# ------------------------------------------------------------------ through the proxy


def test_batch_writes_sum_the_units_dynamodb_reports(aws, dynamo_proxy, unique_name):
    outcome, _ = asyncio.run(
        with_writer(dynamo_proxy.url, unique_name, BatchWriter, lambda writer: writer.write(items(25)))
    )
    assert outcome.written == 25
    assert (outcome.units_reported, outcome.units_counted) == (25.0, 0.0)  # moto alone says 1.0


def test_units_of_a_partly_unprocessed_batch_count_each_item_once(aws, dynamo_proxy, unique_name):
    dynamo_proxy.unprocess_next(2, share=0.4)
    outcome, reasons = asyncio.run(
        with_writer(dynamo_proxy.url, unique_name, BatchWriter, lambda writer: writer.write(items(25)))
    )
    assert outcome.units_reported == 25.0 and reasons == ["UnprocessedItems", "UnprocessedItems"]


def test_without_consumed_capacity_the_units_are_counted(aws, dynamo_proxy, unique_name):
    dynamo_proxy.strip_consumed_capacity = True

    async def both(writer):
        return await writer.write(items(20))

    outcome, _ = asyncio.run(with_writer(dynamo_proxy.url, unique_name, BatchWriter, both))
    assert (outcome.units_reported, outcome.units_counted) == (0.0, 20.0)


def test_conditional_puts_report_their_units_and_count_a_failed_condition(aws, dynamo_proxy, unique_name):
    async def twice(writer):
        first = await writer.write(items(5))
        again = [item._replace(etl_time=item.etl_time + 60) for item in items(5)]  # condition fails
        return first, await writer.write(again)

    (first, again), _ = asyncio.run(with_writer(dynamo_proxy.url, unique_name, ConditionalWriter, twice))
    assert (first.written, first.units_reported, first.units_counted) == (5, 5.0, 0.0)
    assert (again.already_present, again.units_reported, again.units_counted) == (5, 0.0, 5.0)


@pytest.mark.parametrize(
    "reason",
    [
        "TableWriteProvisionedThroughputExceeded",
        "TableWriteKeyRangeThroughputExceeded",
        "TableWriteAccountLimitExceeded",
        "TableWriteMaxOnDemandThroughputExceeded",
    ],
)
@pytest.mark.parametrize("writer_type", [BatchWriter, ConditionalWriter])
def test_throttling_reasons_reach_the_writer(aws, dynamo_proxy, unique_name, reason, writer_type):
    dynamo_proxy.throttling_reasons = (reason,)
    dynamo_proxy.throttle_next = 2
    outcome, reasons = asyncio.run(
        with_writer(dynamo_proxy.url, unique_name, writer_type, lambda writer: writer.write(items(3)))
    )
    assert outcome.written == 3
    assert reasons == [reason, reason]


def test_a_write_that_stays_throttled_fails_with_every_throttle_counted(aws, dynamo_proxy, unique_name):
    dynamo_proxy.throttling_reasons = ("TableWriteAccountLimitExceeded",)
    dynamo_proxy.throttle_next = 100
    reasons: list[str] = []
    with pytest.raises(WriteFailed, match="BatchWriteItem after 6 attempts"):
        asyncio.run(
            with_writer(
                dynamo_proxy.url, unique_name, BatchWriter, lambda writer: writer.write(items(3)), reasons
            )
        )
    assert reasons == ["TableWriteAccountLimitExceeded"] * FAST.attempts


def test_the_proxy_answers_describe_table_with_the_on_demand_fields(aws, dynamo_proxy, unique_name):
    dynamo_proxy.describe_table_extra = {
        "OnDemandThroughput": {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 900},
        "WarmThroughput": {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 700, "Status": "ACTIVE"},
    }

    async def describe(writer):
        return None

    asyncio.run(with_writer(dynamo_proxy.url, unique_name, BatchWriter, describe))
    client = aws.boto3_client("dynamodb", endpoint_url=dynamo_proxy.url)
    info = table_info(unique_name, client.describe_table(TableName=unique_name)["Table"])
    assert (info.max_write_units, info.warm_write_units) == (900, 700)
    assert json.dumps(info.__dict__)  # plain data: it crosses to worker processes
