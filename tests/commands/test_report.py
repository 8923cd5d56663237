"""`populator report`: a run's JSON report, or what `--log-path` kept of it, made into the page."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from populator.samples.archive import SampleSpec, write_archive
from tests.support.backfill_helpers import NOW, run_populator, write_configs

DATA = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>')


def embedded(page: Path) -> dict[str, Any]:
    match = DATA.search(page.read_text(encoding="utf-8"))
    assert match, f"{page} embeds no report"
    return dict(json.loads(match.group(1)))


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=2, events_per_part=100, now=NOW))
    return root


def dry_run(archive: Path, tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> None:
    """A dry run over a local archive (no AWS at all), keeping what `options` say."""
    storage, resolver = write_configs(tmp_path, "t-report")
    result = run_populator(
        "run", str(archive), str(storage), str(resolver), "--dry-run", "--quiet", *options,
        env=env or {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def report(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return run_populator("report", *args, env=env or {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}, cwd=cwd)


def test_a_json_report_becomes_the_page_beside_it(archive: Path, tmp_path: Path) -> None:
    dry_run(archive, tmp_path, "--report", "run.json")
    result = report("run.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrote run.html, the report of run.json"
    assert embedded(tmp_path / "run.html") == json.loads((tmp_path / "run.json").read_text())


def test_the_latest_run_under_a_local_log_path_is_taken(archive: Path, tmp_path: Path) -> None:
    dry_run(archive, tmp_path, "--log-path", "logs")
    time.sleep(1.1)  # run folders are named to the second
    dry_run(archive, tmp_path, "--log-path", "logs", "--include-expired")
    first, latest = sorted((tmp_path / "logs").glob("populator-*"))  # (status/ holds the snapshots)
    result = report("logs", "-o", "latest.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(the latest of 2 runs there)" in result.stdout
    page = embedded(tmp_path / "latest.html")
    assert page == json.loads((latest / "report.json").read_text())
    assert "--include-expired" in page["command"]
    # A run's own folder: its page goes into that folder.
    assert report(str(first), cwd=tmp_path).returncode == 0
    assert embedded(first / "report.html") == json.loads((first / "report.json").read_text())


def test_a_log_path_on_s3_is_read_back(aws: Any, unique_name: str, archive: Path, tmp_path: Path) -> None:
    bucket = f"{unique_name}-logs"
    aws.boto3_client("s3").create_bucket(Bucket=bucket)
    dry_run(archive, tmp_path, "--log-path", f"s3://{bucket}/populator/", env=aws.env)
    result = report(f"s3://{bucket}/populator/", cwd=tmp_path, env=aws.env)
    assert result.returncode == 0, result.stderr
    (page,) = tmp_path.glob("populator-*-t-report.html")  # named for the run's folder, here
    (key,) = (o["Key"] for o in aws.boto3_client("s3").list_objects_v2(Bucket=bucket)["Contents"]
              if o["Key"].endswith("/report.json"))  # fmt: skip
    stored = json.loads(aws.boto3_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert embedded(page) == stored
    assert f"the report of s3://{bucket}/{key}" in result.stdout
    # The same with the report's own key, and a bucket that does not exist: said, exit 2.
    assert report(f"s3://{bucket}/{key}", "-o", "by-key.html", cwd=tmp_path, env=aws.env).returncode == 0
    assert embedded(tmp_path / "by-key.html") == stored
    missing = report(f"s3://{unique_name}-nowhere/populator/", cwd=tmp_path, env=aws.env)
    assert missing.returncode == 2 and "NoSuchBucket" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    "content, said",
    [
        (None, "does not exist"),
        ("{not json", "is not JSON"),
        ('{"a": 1}', "not the report of a populator run"),
        ("a folder", "holds no report.json"),
    ],
    ids=["missing", "not-json", "not-a-report", "empty-folder"],
)
def test_what_is_not_a_report_exits_2_and_says_why(tmp_path: Path, content: str | None, said: str) -> None:
    source = tmp_path / "source"
    if content == "a folder":
        source.mkdir()
    elif content is not None:
        source.write_text(content)
    result = report(str(source), cwd=tmp_path)
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.html"))


def test_run_report_html_that_cannot_be_made_leaves_the_json(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from rich.console import Console

    from populator.commands.build import build_job
    from populator.commands.execute import execute
    from populator.commands.outputs import RunOutputs
    from populator.observe import html_report

    def broken(report: dict[str, Any]) -> str:
        raise KeyError("a bug")

    monkeypatch.setattr(html_report, "render_html", broken)
    storage, resolver = write_configs(tmp_path, "t-report")
    job = build_job(str(archive), storage, resolver, dry_run=True, now=NOW.timestamp())
    quiet = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    assert execute(job, quiet, quiet, outputs=RunOutputs(quiet=True, report=tmp_path / "run.html")) == 0
    assert not (tmp_path / "run.html").exists()
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "ok"
    assert "cannot make the HTML report (a bug)" in caplog.text
