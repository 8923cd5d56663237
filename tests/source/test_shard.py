"""--shard K/N: a stable partition of the archive's objects, auto/N from the batch engine's index,
and three shards against one table writing the whole manifest once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from aiobotocore.session import AioSession
from hypothesis import given
from hypothesis import strategies as st

from populator.commands.build import build_job
from populator.errors import UsageError
from populator.events import TTL_SECONDS
from populator.job.checkpoint import default_path
from populator.samples.archive import SampleSpec, write_archive
from populator.sink.manifest import _create_table, ensure_table, ensure_ttl
from populator.source.archive import ArchiveLocation, list_archive, parse_location
from populator.source.shard import Shard, imbalance, parse_shard, shard_distribution, shard_of
from tests.support.backfill_helpers import NOW, run_job, table_items, upload, write_configs

INDEX_VARIABLES = ("AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX")
ARCHIVE = SampleSpec(
    runs=2, parts_per_run=5, events_per_part=80, now=NOW, expired_runs=1, cross_run_duplicates=6
)


# ----------------------------------------------------------------------------- the partition


@given(keys=st.sets(st.text(max_size=80), max_size=60), count=st.integers(min_value=1, max_value=16))
def test_shards_partition_any_set_of_keys(keys, count):
    shards = [Shard(index, count) for index in range(count)]
    for key in keys:
        assert sum(shard.holds(key) for shard in shards) == 1
    loads = shard_distribution(((key, 1) for key in keys), count)
    assert [load.shard for load in loads] == shards
    assert sum(load.objects for load in loads) == len(keys)


@pytest.mark.parametrize(
    ("key", "shards"),
    [
        ("run=2026-06-01-13-45-00/part-00000.gz", [0, 1, 0, 8]),
        ("run=2017-03-28-00-00-00/part-00000-4c2a.txt.gz", [1, 2, 1, 5]),
        ("run=2026-06-01-13-45-00/part-00001", [1, 0, 1, 5]),
        ("ü/é", [0, 0, 2, 14]),
    ],
)
def test_a_key_always_falls_in_the_same_shard(key, shards):
    # Pinned: these must never change, or a fleet mixing versions would skip and repeat objects.
    assert [shard_of(key, n) for n in (2, 3, 4, 16)] == shards


def test_more_pinned_shards_and_no_shard_outside_the_range():
    assert shard_of("run=2026-06-01-13-45-00/part-00000.gz", 10_000) == 9928
    # A local file name that is not UTF-8 (os.walk gives it with surrogate escapes) hashes as its bytes.
    assert shard_of("run=2026-06-01-13-45-00/part-\udcff", 10_000) == 2800
    for index, count in ((3, 3), (-1, 3), (0, 0)):
        with pytest.raises(ValueError):
            Shard(index, count)


def test_hash_is_the_same_in_another_interpreter():
    code = (
        "from populator.source.shard import shard_of; "
        "print(shard_of('run=2026-06-01-13-45-00/part-00001', 16))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "5"


def test_distribution_counts_objects_and_bytes_per_shard():
    objects = [(f"run=2026-06-01-00-00-00/part-{i:05d}.gz", 100 + i) for i in range(400)]
    loads = shard_distribution(objects, 4)
    assert sum(load.objects for load in loads) == 400
    assert sum(load.bytes for load in loads) == sum(size for _, size in objects)
    assert sum(load.byte_share for load in loads) == pytest.approx(1.0)
    assert all(0.15 < load.object_share < 0.35 for load in loads)  # 400 keys hash about evenly
    assert 1.0 <= imbalance(loads) < 1.4
    assert [load.objects for load in shard_distribution([], 3)] == [0, 0, 0]
    assert imbalance(shard_distribution([], 3)) == 1.0


def test_shard_key_is_relative_to_the_archive_root():
    s3 = ArchiveLocation("acme", "enriched/archive/")
    local = ArchiveLocation(None, "/mnt/data/archive")
    key = "run=2026-06-01-13-45-00/part-00000.gz"
    assert s3.relative_key(f"enriched/archive/{key}") == key
    assert local.relative_key(f"/mnt/data/archive/{key}") == key
    assert ArchiveLocation("acme", "").relative_key(key) == key


async def test_s3_and_local_copies_of_an_archive_shard_alike(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, ARCHIVE)
    upload(aws.boto3_client("s3"), root, unique_name, "enriched/archive")
    local = parse_location(str(root))
    s3_location = parse_location(f"s3://{unique_name}/enriched/archive/")
    found: dict[str, list[set[str]]] = {"local": [], "s3": []}
    async with AioSession().create_client("s3", region_name="us-east-1") as client:
        for index in range(3):
            for name, location in (("local", local), ("s3", s3_location)):
                runs, objects = await list_archive(location, None, client, shard=Shard(index, 3))
                assert len(runs) == len(expected.runs)  # every run is still selected
                found[name].append({location.relative_key(obj.key) async for obj in objects})
    assert found["local"] == found["s3"]
    assert all(found["local"])  # no shard is empty in this archive
    assert set().union(*found["local"]) == set(expected.objects)
    assert sum(map(len, found["local"])) == len(expected.objects)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("raw", "shard"), [("0/1", Shard(0, 1)), ("2/3", Shard(2, 3)), (" 7/16 ", Shard(7, 16))]
)
def test_explicit_shards(raw, shard):
    assert parse_shard(raw, environ={}) == shard
    assert str(shard) == raw.strip()


def test_auto_reads_the_aws_batch_index_then_the_kubernetes_one():
    assert parse_shard("auto/4", {"AWS_BATCH_JOB_ARRAY_INDEX": "3"}) == Shard(3, 4)
    assert parse_shard("auto/4", {"JOB_COMPLETION_INDEX": "1"}) == Shard(1, 4)
    assert parse_shard("auto/4", {"AWS_BATCH_JOB_ARRAY_INDEX": "0", "JOB_COMPLETION_INDEX": "2"}) == Shard(
        0, 4
    )


@pytest.mark.parametrize(
    ("raw", "environ", "fragment"),
    [
        ("3", {}, "is not a shard: use K/N"),
        ("a/b", {}, "is not a shard"),
        ("1/2/3", {}, "is not a shard"),
        ("3/3", {}, "K must be from 0 to 2"),
        ("-1/3", {}, "K must be from 0 to 2"),
        ("0/0", {}, "N must be from 1 to 10,000"),
        ("auto/0", {}, "N must be from 1 to 10,000"),
        ("auto/3", {}, "neither AWS_BATCH_JOB_ARRAY_INDEX"),
        ("auto/3", {"JOB_COMPLETION_INDEX": "3"}, "JOB_COMPLETION_INDEX=3 is out of range (0 to 2)"),
        ("auto/3", {"AWS_BATCH_JOB_ARRAY_INDEX": "-1"}, "AWS_BATCH_JOB_ARRAY_INDEX=-1 is out of range"),
        ("auto/3", {"AWS_BATCH_JOB_ARRAY_INDEX": "one"}, "'one', not a shard index"),
    ],
)
def test_bad_shards_are_usage_errors(raw, environ, fragment):
    with pytest.raises(UsageError) as caught:
        parse_shard(raw, environ)
    assert fragment in str(caught.value)


def test_the_shard_is_part_of_the_job_identity(tmp_path, monkeypatch):
    storage, resolver = write_configs(tmp_path, "manifest")
    for name in INDEX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    paths = {
        shard: build_job(str(tmp_path), storage, resolver, shard=shard).checkpoint for shard in ("0/3", "1/3")
    }
    paths[None] = build_job(str(tmp_path), storage, resolver).checkpoint
    assert len(set(paths.values())) == 3
    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "1")
    auto = build_job(str(tmp_path), storage, resolver, shard="auto/3")
    assert auto.shard == Shard(1, 3)
    assert auto.checkpoint == paths["1/3"] == default_path(auto.identity)  # same job: resumable either way


# ----------------------------------------------------------------------------- the command line


def populator(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "populator", *args], env=env, capture_output=True, text=True, timeout=300
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in INDEX_VARIABLES}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("shard", "environ", "fragments"),
    [
        ("auto/4", {}, ("--shard auto/4: neither AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX")),
        (
            "auto/4",
            {"AWS_BATCH_JOB_ARRAY_INDEX": "4"},
            ("AWS_BATCH_JOB_ARRAY_INDEX=4 is out of range (0 to 3)",),
        ),
        ("auto/4", {"JOB_COMPLETION_INDEX": "x"}, ("JOB_COMPLETION_INDEX is 'x', not a shard index",)),
        ("5/4", {}, ("--shard '5/4': K must be from 0 to 3",)),
        ("half", {}, ("--shard 'half' is not a shard: use K/N",)),
    ],
)
def test_bad_shard_on_the_command_line_exits_2_with_a_message(tmp_path, shard, environ, fragments):
    root = tmp_path / "archive"
    root.mkdir()
    storage, resolver = write_configs(tmp_path, "manifest")
    result = populator(
        "run", str(root), str(storage), str(resolver), "--shard", shard, env=clean_env(**environ)
    )
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert "error: --shard" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_plan_shows_how_the_objects_fall_across_shards(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, ARCHIVE)
    storage, resolver = write_configs(tmp_path, unique_name)
    result = populator("plan", str(root), str(storage), str(resolver), "--shards", "3", "--json", env=aws.env)
    assert result.returncode == 0, result.stderr
    shards = orjson.loads(result.stdout)["shards"]
    assert shards["count"] == 3
    assert [load["shard"] for load in shards["loads"]] == ["0/3", "1/3", "2/3"]
    assert [load["objects"] for load in shards["loads"]] == [
        sum(shard_of(key, 3) == index for key in expected.objects) for index in range(3)
    ]
    sizes = {path.relative_to(root).as_posix(): path.stat().st_size for path in root.rglob("part-*")}
    assert sum(load["bytes"] for load in shards["loads"]) == sum(sizes[key] for key in expected.objects)
    assert shards["imbalance"] >= 1.0

    table = populator("plan", str(root), str(storage), str(resolver), "--shards", "3", env=aws.env)
    assert table.returncode == 0, table.stderr
    assert "across 3 shards" in table.stdout
    assert "2/3" in table.stdout


# ----------------------------------------------------------------------------- three machines, one table


async def test_a_shard_that_lost_the_race_to_create_the_table_goes_on(aws, unique_name):
    # DynamoDB refuses to enable TTL twice ("TimeToLive is already enabled"), moto does not: the
    # late shard's client is told so, as it would be by DynamoDB.
    def already_enabled(**_: object) -> tuple[object, dict[str, object]]:
        error = {"Code": "ValidationException", "Message": "TimeToLive is already enabled"}
        return SimpleNamespace(status_code=400, headers={}), {"Error": error, "ResponseMetadata": {}}

    session = AioSession()
    async with (
        session.create_client("dynamodb", region_name="us-east-1") as first,
        session.create_client("dynamodb", region_name="us-east-1") as late,
    ):
        await ensure_table(first, unique_name)
        late.meta.events.register("before-call.dynamodb.UpdateTimeToLive", already_enabled)
        table = await _create_table(late, unique_name, provisioned=None)  # ResourceInUse
        assert table["TableName"] == unique_name
        assert await ensure_ttl(late, unique_name) is None  # on, by the first shard
        # Had nobody enabled TTL, the error would stand, and the run would say so.
        await first.update_time_to_live(
            TableName=unique_name, TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"}
        )
        problem = await ensure_ttl(late, unique_name)
        assert problem is not None and "already enabled" in problem


def journal(path: Path) -> tuple[str, set[str]]:
    """The shard a checkpoint journal belongs to, and the objects it records as finished."""
    records = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    keys = {record["key"] for record in records[1:] if record["type"] == "object"}
    return records[0]["identity"]["shard"], keys


def test_three_shards_write_the_whole_manifest_once(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, ARCHIVE)
    upload(aws.boto3_client("s3"), root, unique_name, "enriched/archive")
    storage, resolver = write_configs(tmp_path, unique_name)
    archive = f"s3://{unique_name}/enriched/archive/"
    # The third machine as Kubernetes would start it: auto/3, its index in the environment, and
    # the multi-process path (the parent lists, workers read); it runs while the other two do.
    options = [
        "--shard",
        "auto/3",
        "--processes",
        "2",
        "--include-expired",
        "--on-demand",
        "--concurrency",
        "4",
    ]
    third_machine = subprocess.Popen(
        [sys.executable, "-m", "populator", "run", archive, str(storage), str(resolver), *options],
        env={**aws.env, "JOB_COMPLETION_INDEX": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # --include-expired: the command line runs on the real clock, these two at NOW.
        done = [
            run_job(
                archive, storage, resolver, shard=f"{index}/3", include_expired=True, concurrency=4, writers=4
            )
            for index in (0, 1)
        ]
        stdout, stderr = third_machine.communicate(timeout=300)
    finally:
        third_machine.kill()
    assert all(not tally.failures for tally in done)
    assert third_machine.returncode == 0, stderr
    third = re.search(r"objects: (\d+) done of (\d+), 0 failed", stdout)
    assert third is not None, stdout
    assert third.group(1) == third.group(2)

    counts = [tally.objects_done for tally in done] + [int(third.group(1))]
    assert all(counts)
    assert sum(counts) == len(expected.objects)
    journals = dict(journal(path) for path in Path(".populator").glob("*.jsonl"))
    assert set(journals) == {"0/3", "1/3", "2/3"}
    finished = {
        shard: {key.removeprefix("enriched/archive/") for key in keys} for shard, keys in journals.items()
    }
    assert [len(finished[f"{index}/3"]) for index in range(3)] == counts
    assert sum(map(len, finished.values())) == len(set().union(*finished.values()))  # disjoint
    assert set().union(*finished.values()) == set(expected.objects)
    for shard, keys in finished.items():
        assert {shard_of(key, 3) for key in keys} == {int(shard[0])}

    found = table_items(aws.boto3_client("dynamodb"), unique_name)
    assert set(found) == set(expected.items)
    for key, values in found.items():
        assert values["etlTime"] in expected.items[key]
        assert values["ttl"] == values["etlTime"] + TTL_SECONDS
