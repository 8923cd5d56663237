"""archive: locations, --since, run folders, and listings on disk and on S3 (moto)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiobotocore.session import AioSession

from populator.errors import ArchiveError, UsageError
from populator.source.archive import (
    ArchiveLocation,
    is_data_path,
    list_archive,
    parse_location,
    parse_since,
    select_runs,
)
from populator.source.shard import Shard


@pytest.mark.parametrize(
    ("raw", "bucket", "prefix"),
    [
        ("s3://acme/enriched/archive/", "acme", "enriched/archive/"),
        ("s3://acme/enriched/archive", "acme", "enriched/archive/"),
        ("s3n://acme/enriched/archive/", "acme", "enriched/archive/"),
        ("s3a://acme/a", "acme", "a/"),
        ("s3://acme", "acme", ""),
        ("s3://acme/", "acme", ""),
    ],
)
def test_s3_locations(raw, bucket, prefix):
    assert parse_location(raw) == ArchiveLocation(bucket, prefix)


def test_local_directory_location(tmp_path):
    location = parse_location(str(tmp_path) + "/")
    assert not location.is_s3
    assert location.prefix == str(tmp_path)


@pytest.mark.parametrize("raw", ["s3:///prefix", "gs://bucket/x", "/definitely/not/here"])
def test_bad_locations_are_usage_errors(raw):
    with pytest.raises(UsageError):
        parse_location(raw)


def test_since_accepts_both_formats():
    assert parse_since("2026-06-01") == datetime(2026, 6, 1, tzinfo=UTC)
    assert parse_since("2026-06-01-13-45-07") == datetime(2026, 6, 1, 13, 45, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["2026/06/01", "06-01-2026", "2026-06-01 13:45:07", "yesterday", "2026-13-01"]
)
def test_since_rejects_anything_else_naming_the_formats(raw):
    with pytest.raises(UsageError, match="YYYY-MM-dd-HH-mm-ss"):
        parse_since(raw)


def test_select_runs_sorts_filters_and_keeps_the_boundary():
    names = [
        "run=2026-06-02-00-00-00",
        "run=2026-05-31-23-59-59",
        "run=2026-06-01-00-00-00",
        "notarun",
        "run=2026-06-01",
        "run=2026-06-01-00-00-00_$folder$",
    ]
    runs = select_runs(names, parse_since("2026-06-01"))
    assert [r.name for r in runs] == ["run=2026-06-01-00-00-00", "run=2026-06-02-00-00-00"]
    exact = select_runs(names, parse_since("2026-06-01-00-00-00"))
    assert [r.name for r in exact] == ["run=2026-06-01-00-00-00", "run=2026-06-02-00-00-00"]
    assert len(select_runs(names, None)) == 3


def _layout(root):
    for name, data in _layout_dict().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


async def test_local_listing_keeps_parts_in_run_order(tmp_path):
    _layout(tmp_path)
    runs, objects = await list_archive(parse_location(str(tmp_path)), parse_since("2026-06-01"))
    keys = [o.key[len(str(tmp_path)) + 1 :] async for o in objects]
    assert [r.name for r in runs] == ["run=2026-06-01-00-00-00", "run=2026-06-02-00-00-00"]
    assert keys == [
        "run=2026-06-01-00-00-00/part-00000-3f1c.txt.gz",
        "run=2026-06-01-00-00-00/part-00001",
        "run=2026-06-02-00-00-00/part-00000.gz",
    ]


async def test_missing_local_directory_is_an_archive_error(tmp_path):
    with pytest.raises(ArchiveError):
        parse_location(str(tmp_path / "nope"))


async def test_s3_listing_pages_through_more_than_1000_keys_and_ignores_markers(aws, unique_name):
    s3 = aws.boto3_client("s3")
    s3.create_bucket(Bucket=unique_name)
    for name, data in _layout_dict().items():
        s3.put_object(Bucket=unique_name, Key=f"archive/{name}", Body=data)
    for i in range(1100):
        s3.put_object(Bucket=unique_name, Key=f"archive/run=2026-06-03-00-00-00/part-{i:05d}.gz", Body=b"p")
    session = AioSession()
    async with session.create_client("s3", region_name="us-east-1") as client:
        runs, objects = await list_archive(
            parse_location(f"s3://{unique_name}/archive"), parse_since("2026-06-01"), client
        )
        found = [o async for o in objects]
    assert [r.name for r in runs] == [
        "run=2026-06-01-00-00-00",
        "run=2026-06-02-00-00-00",
        "run=2026-06-03-00-00-00",
    ]
    keys = [o.key for o in found]
    assert keys[:3] == [
        "archive/run=2026-06-01-00-00-00/part-00000-3f1c.txt.gz",
        "archive/run=2026-06-01-00-00-00/part-00001",
        "archive/run=2026-06-02-00-00-00/part-00000.gz",
    ]
    assert len(keys) == 3 + 1100
    assert len(set(keys)) == len(keys)
    assert all(o.etag and o.size == 1 for o in found)


def _layout_dict():
    return {
        "run=2026-06-02-00-00-00/part-00000.gz": b"x",
        "run=2026-06-02-00-00-00/_SUCCESS": b"",
        "run=2026-06-01-00-00-00/part-00001": b"y",
        "run=2026-06-01-00-00-00/part-00000-3f1c.txt.gz": b"z",
        "run=2026-06-01-00-00-00/part-00002.gz": b"",
        "run=2026-06-01-00-00-00/part-00003_$folder$": b"w",
        "run=2026-06-01-00-00-00_$folder$": b"",
        "run=2026-05-01-00-00-00/part-00000.gz": b"old",  # before --since
        "stray/part-00000.gz": b"s",
        "part-00009.gz": b"t",
    }


# ----------------------------------------------------------------------------- which objects are read

RUN = "run=2019-03-04-05-00-00"
STREAM_ENRICH_NAME = "2019-03-04-04-50-29-49594479543466447225451425906541389451227893456563613698.gz"
# A batch run (part-*, Spark's part-<n>-<uuid>.txt.gz) and a Stream Enrich / S3 Loader run side by
# side, with everything Hadoop never reads as input.
MIXED_ARCHIVE = {
    f"{RUN}/part-00000": b"plain",
    f"{RUN}/part-00001.gz": b"gz",
    f"{RUN}/part-00000-7a0e1e5c-3b4e-4b6c-9d8a-2f2c1d1e9f00.txt.gz": b"spark",
    f"{RUN}/{STREAM_ENRICH_NAME}": b"stream enrich",
    f"{RUN}/sub/part-00002.gz": b"nested",
    f"{RUN}/sub/deeper/part-00003": b"nested twice",
    f"{RUN}/_SUCCESS": b"marker with bytes",
    f"{RUN}/.part-00000.gz.crc": b"crc",
    f"{RUN}/_temporary/0/part-00009": b"uncommitted",
    f"{RUN}/.hidden/part-00010.gz": b"hidden folder",
    f"{RUN}/sub/_SUCCESS": b"nested marker",
    f"{RUN}/sub_$folder$": b"folder placeholder",
    f"{RUN}/part-00004.gz": b"",  # empty
    f"{RUN}_$folder$": b"",
    "run=2019-03-04-06-00-00/part-00000.gz": b"next run",
    "stray/part-00000.gz": b"outside run folders",
    f"stray/{STREAM_ENRICH_NAME}": b"outside run folders",
    "part-00000.gz": b"outside run folders",
}
EXPECTED_DATA_FILES = [
    f"{RUN}/{STREAM_ENRICH_NAME}",
    f"{RUN}/part-00000",
    f"{RUN}/part-00000-7a0e1e5c-3b4e-4b6c-9d8a-2f2c1d1e9f00.txt.gz",
    f"{RUN}/part-00001.gz",
    f"{RUN}/sub/deeper/part-00003",
    f"{RUN}/sub/part-00002.gz",
    "run=2019-03-04-06-00-00/part-00000.gz",
]


@pytest.mark.parametrize(
    ("relative", "read"),
    [
        ("part-00000", True),
        ("part-00001.gz", True),
        ("part-00000-7a0e.txt.gz", True),
        (STREAM_ENRICH_NAME, True),
        ("events.gzip", True),
        ("sub/part-00002.gz", True),
        ("a_b/c.d", True),  # "_" and "." only count at the start of a name
        ("_SUCCESS", False),
        (".part-00000.gz.crc", False),
        ("_temporary/0/part-00009", False),
        ("sub/_temporary/part-00009", False),
        (".hidden/part-00000", False),
        ("sub_$folder$", False),
        ("part-00003_$folder$", False),
        ("sub/", False),  # a "directory" key
        ("", False),
    ],
)
def test_data_files_are_what_hadoop_reads(relative, read):
    assert is_data_path(relative) is read


async def test_a_local_mixed_archive_lists_every_data_file_and_nothing_else(tmp_path):
    for name, data in MIXED_ARCHIVE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    location = parse_location(str(tmp_path))
    runs, objects = await list_archive(location, None)
    found = [o async for o in objects]
    assert [r.name for r in runs] == [RUN, "run=2019-03-04-06-00-00"]
    assert [location.relative_key(o.key) for o in found] == EXPECTED_DATA_FILES
    assert {o.run for o in found[:-1]} == {RUN}
    assert all(o.size == len(MIXED_ARCHIVE[location.relative_key(o.key)]) for o in found)


async def test_an_s3_mixed_archive_lists_every_data_file_and_nothing_else(aws, unique_name, tmp_path):
    s3 = aws.boto3_client("s3")
    s3.create_bucket(Bucket=unique_name)
    for name, data in MIXED_ARCHIVE.items():
        s3.put_object(Bucket=unique_name, Key=f"enriched/{name}", Body=data)
    location = parse_location(f"s3://{unique_name}/enriched/")
    async with AioSession().create_client("s3", region_name="us-east-1") as client:
        runs, objects = await list_archive(location, None, client)
        found = [o async for o in objects]
    assert [r.name for r in runs] == [RUN, "run=2019-03-04-06-00-00"]
    assert [location.relative_key(o.key) for o in found] == EXPECTED_DATA_FILES
    assert all(o.etag for o in found)


async def test_nested_keys_shard_alike_on_s3_and_on_disk(aws, unique_name, tmp_path):
    """The shard key is the key below the archive root, nested folders included."""
    s3 = aws.boto3_client("s3")
    s3.create_bucket(Bucket=unique_name)
    for name, data in MIXED_ARCHIVE.items():
        s3.put_object(Bucket=unique_name, Key=f"deep/prefix/{name}", Body=data)
        path = tmp_path / "copy" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    s3_location = parse_location(f"s3://{unique_name}/deep/prefix")
    local_location = parse_location(str(tmp_path / "copy"))
    for index in range(3):
        shard = Shard(index, 3)
        async with AioSession().create_client("s3", region_name="us-east-1") as client:
            _, remote = await list_archive(s3_location, None, client, shard)
            remote_keys = [s3_location.relative_key(o.key) async for o in remote]
        _, local = await list_archive(local_location, None, shard=shard)
        local_keys = [local_location.relative_key(o.key) async for o in local]
        assert remote_keys == local_keys
        assert all(shard.holds(key) for key in local_keys)


def test_a_year_of_run_folders_is_listed_a_few_runs_ahead_of_the_readers(aws, unique_name):
    """More than 5,000 run folders on moto: at most RUN_LOOKAHEAD_S3 runs are listed ahead of the
    objects consumed, so memory holds a few runs' objects, not the archive's."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from populator.config.aws import new_session, s3_client
    from populator.config.storage import AwsSettings
    from populator.source.archive import RUN_LOOKAHEAD_S3, list_archive, parse_location

    aws.boto3_client("s3").create_bucket(Bucket=unique_name)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    runs = [f"run={start + timedelta(hours=n):%Y-%m-%d-%H-%M-%S}" for n in range(5_100)]
    # Set up in moto's own store (the server runs in this process): 5,100 PutObjects over HTTP
    # took 27 s. What is tested, the listing, goes over HTTP as ever.
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for run in runs:
        backend.put_object(unique_name, f"a/{run}/part-0", b"x")
    read = 300  # objects a slow reader takes before the run stops

    async def main():
        settings = AwsSettings(profile=None, dynamodb_region="us-east-1", dynamodb_keys=None, pool_size=16)
        async with s3_client(new_session(None), settings) as client:
            started: list[str] = []
            list_objects = client.list_objects_v2

            async def counted(**kwargs):
                if kwargs.get("Prefix", "").count("run=") == 1 and "ContinuationToken" not in kwargs:
                    started.append(kwargs["Prefix"])
                return await list_objects(**kwargs)

            client.list_objects_v2 = counted
            selected, objects = await list_archive(parse_location(f"s3://{unique_name}/a/"), None, client)
            consumed = most_ahead = 0
            async for _ in objects:
                consumed += 1
                for _ in range(5):
                    await asyncio.sleep(0)  # a slow reader: the listing gets every chance to run ahead
                most_ahead = max(most_ahead, len(started) - consumed)
                if consumed == read:
                    break
            await objects.aclose()
            return len(selected), most_ahead, list(started)

    count, most_ahead, started = asyncio.run(main())
    assert count == len(runs)
    assert most_ahead <= RUN_LOOKAHEAD_S3
    assert read <= len(started) <= read + RUN_LOOKAHEAD_S3  # not 5,100 listings held at once
    assert started == [f"a/{run}/" for run in runs[: len(started)]]  # in chronological order


def test_an_even_sample_of_a_stream_keeps_little_and_spreads_like_a_list_would():
    import itertools

    from populator.source.estimate import EvenSample, spread

    small = EvenSample(8)
    for n in range(1_000):
        small.add(n)
    assert spread(small.items, 8) == spread(list(range(1_000)), 8)  # up to `keep`, nothing is dropped
    big = EvenSample(8, keep=64)
    for n in range(1_000_000):
        big.add(n)
    assert big.total == 1_000_000 and len(big.items) <= 64
    picked = spread(big.items, 8)
    gaps = [b - a for a, b in itertools.pairwise(picked)]
    assert max(gaps) - min(gaps) <= 2 * 1_000_000 // 64  # evenly spaced, to within one stride
    assert picked[0] < 1_000_000 // 8 and picked[-1] > 1_000_000 * 7 // 8
