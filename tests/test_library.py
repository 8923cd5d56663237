"""The library surface at work: a program that imports `populator` runs a backfill and an import
against moto, with nothing but the names `populator` exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import populator
from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, table_items, upload, write_configs


def a_job(
    archive: str, table: str, folder: Path, staging: populator.Staging | None = None
) -> populator.BackfillJob:
    """A job as a library caller makes one: the configs loaded, the options given."""
    folder.mkdir(parents=True, exist_ok=True)
    storage, resolver_path = write_configs(folder, table)
    resolver = populator.load_resolver_config(resolver_path)
    location = populator.parse_location(archive)
    return populator.BackfillJob(
        location=location,
        storage=populator.load_storage_config(storage, resolver),
        pipeline=populator.PipelineOptions(location=location, now=NOW.timestamp()),
        checkpoint=folder / f"{table}.jsonl",
        staging=staging,
    )


async def test_a_library_caller_imports_and_backfills_the_same_manifest(
    aws: Any, unique_name: str, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=2, parts_per_run=2, events_per_part=300, now=NOW))
    s3 = aws.boto3_client("s3")
    upload(s3, root, unique_name, "enriched")
    s3.create_bucket(Bucket=f"{unique_name}-staging")
    archive = f"s3://{unique_name}/enriched/"

    staging = populator.Staging(bucket=f"{unique_name}-staging", prefix="lib/", poll_seconds=0.05)
    imported = a_job(archive, f"{unique_name}-imported", tmp_path / "import", staging)
    tally, imports = await populator.run_import(imported, populator.Hub())

    assert not tally.failures
    assert imports.status == "COMPLETED" and imports.ttl_enabled
    assert imports.sample_checked and imports.sample_missing == 0
    assert imports.staging_deleted
    assert imports.items_staged == len(expected.live_items())

    written = a_job(archive, f"{unique_name}-written", tmp_path / "run")
    tally = await populator.run_backfill(written, populator.Hub())
    assert not tally.failures and tally.items_written >= len(expected.live_items())

    dynamodb = aws.boto3_client("dynamodb")
    assert set(table_items(dynamodb, f"{unique_name}-imported")) == set(expected.live_items())
    assert set(table_items(dynamodb, f"{unique_name}-written")) == set(expected.live_items())


async def test_run_import_refuses_a_job_without_staging(tmp_path: Path) -> None:
    job = a_job(str(tmp_path), "t", tmp_path / "cfg")
    try:
        await populator.run_import(job, populator.Hub())
    except ValueError as exc:
        assert "staging" in str(exc)
    else:
        raise AssertionError("run_import ran a job without a staging prefix")


async def test_run_backfill_refuses_an_import_job(tmp_path: Path) -> None:
    staging = populator.Staging(bucket="b")
    job = a_job(str(tmp_path), "t", tmp_path / "cfg", staging)
    try:
        await populator.run_backfill(job, populator.Hub())
    except ValueError as exc:
        assert "run_import" in str(exc)
    else:
        raise AssertionError("run_backfill ran an import job")
