"""`populator plan`: an estimate within 20% of the truth, the table as DynamoDB describes it, and no write."""

from __future__ import annotations

import gzip
import json
import re
import subprocess

import pytest

from populator.commands.demo import demo_spec
from populator.samples.archive import SampleSpec, write_archive
from populator.source.archive import ArchiveObject
from populator.source.estimate import choose_sample, count_head, estimate, kind_of
from tests.support.backfill_helpers import run_populator, upload, write_configs


def plan(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_populator("plan", *args, env=env)


def plan_json(*args: str, env: dict[str, str]) -> dict:
    result = plan(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=3, parts_per_run=4, events_per_part=2500, expired_runs=1))
    return root, expected


def within(estimate: float, truth: float, share: float = 0.2) -> bool:
    return abs(estimate - truth) <= share * truth


def test_estimate_is_within_20_percent_and_nothing_is_written(aws, unique_name, tmp_path, archive):
    root, expected = archive
    storage, resolver = write_configs(tmp_path, unique_name)
    result = plan_json(str(root), str(storage), str(resolver), env=aws.env)
    assert within(result["estimated_lines"], expected.lines), (result["estimated_lines"], expected.lines)
    assert within(result["estimated_events"], expected.good_lines)  # the events with a fingerprint
    share = expected.no_fingerprint / (expected.no_fingerprint + expected.good_lines)
    assert within(result["sample"]["no_fingerprint_share"], share)
    assert not any("fingerprint" in w for w in result["warnings"])  # a fifth: no warning
    assert result["objects"] == len(expected.objects)
    assert [r["run"] for r in result["runs"]] == expected.runs
    assert sum(r["objects"] for r in result["runs"]) == len(expected.objects)
    # Nothing written: no table, no checkpoint, no journal directory.
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]
    assert not (tmp_path / ".populator").exists()
    assert result["table"]["status"] == "missing"


def test_estimate_holds_for_the_demo_archive_with_its_long_lines(tmp_path, aws, unique_name):
    root = tmp_path / "archive"
    expected = write_archive(root, demo_spec(20_000))
    storage, resolver = write_configs(tmp_path, unique_name)
    result = plan_json(str(root), str(storage), str(resolver), env=aws.env)
    assert within(result["estimated_events"], expected.good_lines), (
        result["estimated_events"],
        expected.good_lines,
    )


def test_expired_runs_are_named_and_left_out_of_the_writes(aws, unique_name, tmp_path, archive):
    root, expected = archive
    storage, resolver = write_configs(tmp_path, unique_name)
    result = plan_json(str(root), str(storage), str(resolver), env=aws.env)
    expired = [r for r in result["runs"] if r["expired"]]
    assert [r["run"] for r in expired] == expected.runs[:1]
    left = result["estimated_events"] - result["estimated_expired_events"]
    assert result["items_to_write"] == pytest.approx(left, abs=1)  # each figure rounded on its own
    assert within(result["estimated_expired_events"], len(expected.expired))
    assert any("180 days" in w and expected.runs[0] in w for w in result["warnings"])
    included = plan_json(str(root), str(storage), str(resolver), "--include-expired", env=aws.env)
    assert included["items_to_write"] == included["estimated_events"]


def test_cost_and_duration_at_the_capacity_of_a_provisioned_table(aws, unique_name, tmp_path, archive):
    root, _ = archive
    aws.boto3_client("dynamodb").create_table(
        TableName=unique_name,
        KeySchema=[
            {"AttributeName": "eventId", "KeyType": "HASH"},
            {"AttributeName": "fingerprint", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "eventId", "AttributeType": "S"},
            {"AttributeName": "fingerprint", "AttributeType": "S"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 1000},
    )
    storage, resolver = write_configs(tmp_path, unique_name)
    result = plan_json(str(root), str(storage), str(resolver), "--price-per-million", "1.25", env=aws.env)
    table = result["table"]
    assert (table["status"], table["billing_mode"], table["write_capacity"]) == (
        "exists",
        "PROVISIONED",
        1000,
    )
    assert result["write_rate"] == 500.0  # 50 % (--write-capacity-percent) of 1000 WCU
    assert result["duration_s"] == pytest.approx(result["items_to_write"] / 500, rel=0.01)
    assert result["write_units"] == result["items_to_write"]
    assert result["on_demand_cost_usd"] == pytest.approx(result["write_units"] / 1e6 * 1.25, abs=1e-4)
    capped = plan_json(str(root), str(storage), str(resolver), "--max-write-rate", "100", env=aws.env)
    assert capped["write_rate"] == 100.0


def test_a_missing_table_is_planned_as_run_would_create_it(aws, unique_name, tmp_path, archive):
    root, _ = archive
    storage, resolver = write_configs(tmp_path, unique_name)
    on_demand = plan_json(str(root), str(storage), str(resolver), env=aws.env)  # the default
    assert on_demand["write_rate"] == 4000.0 and "assumed" in on_demand["write_rate_basis"]
    assert on_demand["table"]["created_capacity"] is None
    asked = plan_json(str(root), str(storage), str(resolver), "--on-demand", env=aws.env)  # still accepted
    assert asked["write_rate"] == on_demand["write_rate"]
    assert asked["write_rate_basis"] == on_demand["write_rate_basis"]
    provisioned = plan_json(str(root), str(storage), str(resolver), "--provisioned", "100/100", env=aws.env)
    assert provisioned["write_rate"] == 50.0  # 50 % of the 100 WCU run would provision
    text = plan(str(root), str(storage), str(resolver), env=aws.env)
    assert "does not exist: run would create it on demand (PAY_PER_REQUEST" in " ".join(text.stdout.split())
    text = plan(str(root), str(storage), str(resolver), "--provisioned", "100/100", env=aws.env)
    assert "run would create it provisioned, 100 WCU / 100 RCU" in " ".join(text.stdout.split())


def test_without_credentials_the_table_is_unknown_and_the_plan_goes_on(tmp_path, archive):
    root, _ = archive
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    storage, resolver = write_configs(tmp_path, "t")
    result = plan_json(str(root), str(storage), str(resolver), env=env)
    assert result["table"]["status"] == "unknown" and "credentials" in result["table"]["reason"]
    assert result["duration_s"] is None and result["estimated_events"] > 0
    capped = plan_json(str(root), str(storage), str(resolver), "--max-write-rate", "250", env=env)
    assert capped["duration_s"] == pytest.approx(capped["items_to_write"] / 250, rel=0.01)
    text = plan(str(root), str(storage), str(resolver), env=env)
    assert text.returncode == 0
    assert "billing mode and capacity unknown (no AWS credentials found)" in " ".join(text.stdout.split())


def test_plan_of_an_s3_archive_reads_only_object_heads(aws, unique_name, tmp_path, archive):
    root, expected = archive
    upload(aws.boto3_client("s3"), root, unique_name, "enriched")
    storage, resolver = write_configs(tmp_path, unique_name)
    result = plan_json(
        f"s3://{unique_name}/enriched/", str(storage), str(resolver), "--sample-kib", "64", env=aws.env
    )
    assert result["sample"]["bytes_read"] <= result["sample"]["objects"] * 64 * 1024
    assert within(result["estimated_events"], expected.good_lines)
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]


def test_the_plan_on_screen_names_every_figure(aws, unique_name, tmp_path, archive):
    root, expected = archive
    storage, resolver = write_configs(tmp_path, unique_name)
    result = plan(str(root), str(storage), str(resolver), env=aws.env)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for fragment in (
        "selected runs",
        expected.runs[0],
        "expired by TTL",
        "sample",
        "events",
        "no fingerprint",
        "of the sampled events, skipped by run",
        "random one, so no manifest item could ever match it",
        "to write",
        "write units",
        "on-demand cost",
        "$0.625 per million write request units",
        "write rate",
        "duration",
        "warning: 1 run is more than 180 days old",
        "Nothing was written",
    ):
        assert fragment in text, fragment
    assert "\x1b[" not in result.stdout


def test_a_warning_when_most_sampled_events_have_no_fingerprint(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(
        root, SampleSpec(runs=1, parts_per_run=2, events_per_part=500, no_fingerprint_share=0.7)
    )
    storage, resolver = write_configs(tmp_path, unique_name)
    result = plan_json(str(root), str(storage), str(resolver), env=aws.env)
    assert result["sample"]["no_fingerprint"] == expected.no_fingerprint  # both parts read whole
    assert result["sample"]["no_fingerprint_share"] > 0.5
    assert result["estimated_events"] == expected.good_lines  # exact: only those are written
    [warning] = [w for w in result["warnings"] if "fingerprint" in w]
    assert "is the event fingerprint enrichment enabled?" in warning
    screen = " ".join(plan(str(root), str(storage), str(resolver), env=aws.env).stdout.split())
    assert re.search(r"warning: \d+% of the sampled events have no event_fingerprint: is the event", screen)


def test_a_bad_archive_path_is_a_usage_error(tmp_path):
    storage, resolver = write_configs(tmp_path, "t")
    result = plan(str(tmp_path / "nope"), str(storage), str(resolver), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ estimate.py


def part(key: str, size: int = 1000) -> ArchiveObject:
    return ArchiveObject(key, size, "etag", "run=2026-11-01-00-00-00")


async def test_a_head_cut_inside_gzip_counts_the_cut_line_as_a_fraction():
    lines = [b"x" * 99 for _ in range(1000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    whole = await count_head(part("a.gz", len(data)), data)
    assert whole.whole and whole.lines == 1000 and whole.bad == 1000
    cut = await count_head(part("a.gz", len(data)), data[: len(data) // 2])
    assert not cut.whole and 0 < cut.lines < 1000
    assert cut.lines == pytest.approx(cut.complete_lines + (cut.lines - cut.complete_lines))


async def test_a_plain_part_and_a_gzip_part_get_their_own_ratio():
    text = b"".join(b"line %d\n" % i for i in range(2000))
    packed = gzip.compress(text)
    plain = await count_head(part("run/part-00000", len(text) * 2), text)
    zipped = await count_head(part("run/part-00001.gz", len(packed) * 2), packed)
    lines = estimate([plain, zipped])
    assert lines.ratios["gzip"] > 3 * lines.ratios["plain"]
    assert lines.lines(part("run/part-00002.gz", len(packed))) == pytest.approx(2000, rel=0.01)
    assert lines.lines(part("run/part-00003", len(text))) == pytest.approx(2000, rel=0.01)


def test_the_sample_spreads_over_the_list_and_takes_every_kind():
    objects = [part(f"run/part-{i:05d}.gz") for i in range(100)] + [part("run/part-plain")]
    chosen = choose_sample(objects, 8)
    assert {kind_of(o) for o in chosen} == {"gzip", "plain"}
    indices = [objects.index(o) for o in chosen if kind_of(o) == "gzip"]
    assert indices == sorted(indices) and indices[0] < 15 and indices[-1] > 85
    assert choose_sample(objects[:3], 8) == objects[:3]


def test_every_command_has_examples_in_its_help_and_shells_get_completion():
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}

    def cli(*args: str) -> str:
        result = run_populator(*args, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "populator plan s3://" in cli("--help") and "populator verify s3://" in cli("--help")
    for command in ("run", "plan", "verify", "demo"):
        assert f"populator {command} " in cli(command, "--help").split("Example")[1], command
    run_help = cli("run", "--help")
    for option in ("--report", "--log-path", "--log-level", "--json-logs", "--progress-interval", "--quiet"):
        assert option in run_help
    assert "0.625" in cli("plan", "--help")
    assert "populator_completion()" in cli("--show-completion", "bash")  # typer's bash completion
