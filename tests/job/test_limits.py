"""A backfill's bill: units consumed and their cost, limits that stop a run cleanly (exit 4),
throttling explained by its reason, and the table's own ceilings obeyed.

Everything goes through the DynamoDB proxy in front of moto: it answers ConsumedCapacity,
ThrottlingReasons and DescribeTable's on-demand fields as DynamoDB does.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from aiohttp import ClientSession, web

from populator.commands.build import build_job
from populator.job.backfill import run_backfill
from populator.job.limits import Limits
from populator.observe.hub import Hub, RateChanged
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, run_populator, table_items, write_configs

ARCHIVE = SampleSpec(runs=2, parts_per_run=5, events_per_part=400, now=NOW, formats=("gz", "plain"))


@pytest.fixture
def setup(aws, dynamo_proxy, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, ARCHIVE)
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    args = [str(root), str(storage), str(resolver), "--checkpoint", str(tmp_path / "journal.jsonl")]
    return root, expected, env, args, tmp_path


def run(args: list[str], env: dict[str, str], tmp_path, name: str = "report.json"):
    report = tmp_path / name
    result = run_populator("run", *args, "--report", str(report), env=env, timeout=300)
    return result, json.loads(report.read_text())


def test_units_consumed_are_read_from_dynamodb_and_priced(setup, aws, unique_name):
    _root, expected, env, args, tmp_path = setup
    result, report = run([*args, "--price-per-million", "1.25"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    written = report["items_written"]  # a key repeated in two batches is written twice
    stored = table_items(aws.boto3_client("dynamodb"), unique_name)
    assert written >= len(stored) == len(expected.live_items())
    assert report["write_units_consumed"] == written  # one unit per item under 1 KB, as DynamoDB says
    assert report["write_units_source"] == "dynamodb"
    assert report["estimated_cost_usd"] == pytest.approx(written / 1e6 * 1.25, abs=1e-6)
    assert f"write units consumed: {written:,} (≈ $0.00 at $1.25 per million)" in result.stdout


def test_an_endpoint_without_consumed_capacity_is_counted_and_says_so(setup, dynamo_proxy):
    _root, _expected, env, args, tmp_path = setup
    dynamo_proxy.strip_consumed_capacity = True
    result, report = run(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert report["write_units_consumed"] == report["items_written"]
    assert report["write_units_source"] == "counted"
    assert "counted: one an item" in result.stdout


@pytest.mark.parametrize(
    "limit, name",
    [(["--max-write-units", "600"], "max_write_units"), (["--max-cost", "0.0006"], "max_cost")],
)
def test_a_units_or_cost_limit_stops_cleanly_and_the_same_command_goes_on(
    setup, aws, dynamo_proxy, unique_name, limit, name
):
    _root, expected, env, args, tmp_path = setup
    paced = [*args, "--max-write-rate", "800", "--concurrency", "2", "--writers", "4"]
    result, report = run([*paced, *limit, "--price-per-million", "1.0"], env, tmp_path)
    assert result.returncode == 4, result.stderr
    assert report["status"] == "limit_reached" and report["limit"] == name
    consumed = report["write_units_consumed"]
    total = len(expected.live_items())
    # Stopped at the limit, overshooting by at most the requests in flight (4 writers x 25 items,
    # a unit each): queued requests are left for the resume, with every object's prefix kept.
    assert 600 <= consumed <= 600 + 4 * 25
    assert "stopped at a limit" in result.stderr and "run the same command to go on" in result.stderr
    assert limit[0] in result.stderr
    assert report["objects_done"] < len(expected.objects)

    again, resumed = run([*paced, *limit, "--price-per-million", "1.0"], env, tmp_path, "again.json")
    assert again.returncode in (0, 4), again.stderr  # another budget's worth
    final, done = run(args, env, tmp_path, "final.json")  # without the limit: completes
    assert final.returncode == 0, final.stderr
    assert done["status"] == "ok" and done["limit"] is None
    items = table_items(aws.boto3_client("dynamodb"), unique_name)
    assert set(items) == set(expected.live_items())
    # Each run rewrote at most the objects it had in flight: never the whole archive again.
    assert report["items_written"] + resumed["items_written"] + done["items_written"] < 2 * total


def test_a_duration_limit_stops_with_exit_4_and_resumes(setup, aws, unique_name):
    _root, expected, env, args, tmp_path = setup
    slow = [*args, "--max-write-rate", "300", "--concurrency", "2", "--writers", "2"]
    result, report = run([*slow, "--max-duration", "2s"], env, tmp_path)
    assert result.returncode == 4, result.stderr
    assert (report["status"], report["limit"]) == ("limit_reached", "max_duration")
    assert report["duration_s"] < 30
    assert "--max-duration" in result.stderr
    final, _ = run(args, env, tmp_path, "final.json")
    assert final.returncode == 0, final.stderr
    assert set(table_items(aws.boto3_client("dynamodb"), unique_name)) == set(expected.live_items())


@pytest.mark.parametrize(
    "reason, advice",
    [
        ("TableWriteProvisionedThroughputExceeded", "raise its WCU"),
        ("TableWriteAccountLimitExceeded", "higher per-table write quota"),
        ("TableWriteMaxOnDemandThroughputExceeded", "MaxWriteRequestUnits"),
        ("TableWriteKeyRangeThroughputExceeded", "share one event id"),
    ],
)
def test_throttled_requests_are_counted_by_reason_with_what_to_do(setup, dynamo_proxy, reason, advice):
    _root, _expected, env, args, tmp_path = setup
    dynamo_proxy.throttling_reasons = (reason,)
    dynamo_proxy.throttle_next = 5
    result, report = run([*args, "--retry-base-delay", "0.001"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert report["throttled_by_reason"] == {reason: 5}
    assert f"{reason}: 5" in result.stdout
    assert advice in " ".join(result.stdout.split())


def test_the_tables_maximum_is_a_ceiling_and_its_warm_throughput_the_start(
    aws, dynamo_proxy, unique_name, tmp_path, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url)
    dynamo_proxy.describe_table_extra = {
        "OnDemandThroughput": {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 900},
        "WarmThroughput": {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 700, "Status": "ACTIVE"},
    }
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=2, events_per_part=200, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    states = []
    job = build_job(str(root), storage, resolver, checkpoint=tmp_path / "journal.jsonl", limits=Limits())

    def record(event):
        if isinstance(event, RateChanged):
            states.append(event.state)

    async def main():
        return await run_backfill(job, Hub(), extra_subscribers=[record])

    tally = asyncio.run(main())
    assert tally.write_ceiling == 900
    assert states and states[0].rate == 700  # started at the warm throughput, not 4,000/s
    assert all(state.rate <= 900 for state in states)


def test_the_signed_write_path_goes_through_the_proxy_botocore_would_use(aws, unique_name, tmp_path):
    """HTTP_PROXY reaches our own transport too: behind a proxy, every write goes through it."""
    seen: list[str] = []

    async def forward(request):
        seen.append(request.headers.get("X-Amz-Target", "").rpartition(".")[2])
        async with ClientSession() as session, session.request(
            request.method, str(request.url), headers=request.headers, data=await request.read()
        ) as answer:
            return web.Response(status=answer.status, body=await answer.read(), headers=answer.headers)

    async def main():
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        root = tmp_path / "archive"
        write_archive(root, SampleSpec(runs=1, parts_per_run=1, events_per_part=100, now=NOW))
        storage, resolver = write_configs(tmp_path, unique_name)
        env = {k: v for k, v in aws.env.items() if k.lower() != "no_proxy"}
        env["HTTP_PROXY"] = f"http://127.0.0.1:{port}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "populator", "run", str(root), str(storage), str(resolver), "--quiet",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await process.communicate()
        await runner.cleanup()
        return process.returncode, err.decode()

    code, err = asyncio.run(main())
    assert code == 0, err
    assert "BatchWriteItem" in seen and "DescribeTable" in seen  # ours and botocore's, both proxied
