"""S3 faults, end to end: a fault-injecting proxy between populator and moto's S3, over real HTTP.

DynamoDB stays on moto directly (``AWS_ENDPOINT_URL``); only S3 goes through the
:class:`~tests.support.s3_proxy.S3Proxy` (``AWS_ENDPOINT_URL_S3``). The archive is uploaded
straight to moto before any fault is set.

* 500 InternalError and 503 SlowDown arrive before the body: botocore's standard retry mode
  retries the GET itself; past its attempts, populator reads the object again.
* A connection reset or a body shorter than its Content-Length break off mid-stream, after
  lines were parsed: only populator's read retry gets past them, from the object's first
  byte, taking back the counts of the broken attempt.
* Past ``--read-attempts``, the object is failed (not recorded as finished), the others
  finish, and rerunning the same job reads only that object.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.config
import orjson
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import ExponentialBackoff

from populator.commands.build import build_job
from populator.job.backfill import run_backfill
from populator.job.pipeline import ReadRetryPolicy
from populator.observe.hub import Hub, ObjectRestarted
from populator.observe.report import Tally
from populator.samples.archive import SampleSpec, write_archive
from populator.samples.expected import ExpectedManifest
from populator.sink.manifest import RetryPolicy
from tests.conftest import AwsTestEnv
from tests.support.backfill_helpers import NOW, run_job, table_items, upload, write_configs
from tests.support.independent_parser import classify, read_lines
from tests.support.s3_proxy import S3Proxy

PREFIX = "enriched/archive"
SPEC = SampleSpec(runs=1, parts_per_run=3, events_per_part=300, formats=("gz",), now=NOW, seed=11)
NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})


@dataclass
class Archive:
    """A sample archive in moto's S3, a job's configs, and S3 pointed at the proxy."""

    root: Path
    uri: str
    storage: Path
    resolver: Path
    expected: ExpectedManifest
    aws: AwsTestEnv
    table: str

    def key(self, relative: str) -> str:
        return f"{PREFIX}/{relative}"

    def run(self, *, read_attempts: int = 5, **options: Any) -> Tally:
        options.setdefault("concurrency", 4)
        options.setdefault("writers", 2)
        options.setdefault("on_demand", True)  # no provisioned WCU to pace writes by: S3 is the subject
        return run_job(
            self.uri,
            self.storage,
            self.resolver,
            read_retry=ReadRetryPolicy(attempts=read_attempts, base_delay=0.01, max_delay=0.05),
            retry=RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.2),
            **options,
        )

    def run_watching_restarts(self, **options: Any) -> tuple[Tally, list[ObjectRestarted]]:
        """Like :meth:`run` (built by ``build_job`` as ``run_job`` does), also collecting restarts."""
        restarts: list[ObjectRestarted] = []
        job = build_job(
            self.uri,
            self.storage,
            self.resolver,
            now=NOW.timestamp(),
            concurrency=4,
            writers=2,
            on_demand=True,
            read_retry=ReadRetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05),
            retry=RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.2),
            **options,
        )

        def watch(event: object) -> None:
            if isinstance(event, ObjectRestarted):
                restarts.append(event)

        tally = asyncio.run(run_backfill(job, Hub(), extra_subscribers=[watch]))
        return tally, restarts

    def table_keys(self) -> set[tuple[str, str]]:
        return set(table_items(self.aws.boto3_client("dynamodb"), self.table))

    def live_keys(self) -> set[tuple[str, str]]:
        return set(self.expected.live_items())


@pytest.fixture
def archive(
    aws: AwsTestEnv, s3_proxy: S3Proxy, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Archive:
    root = tmp_path / "archive"
    expected = write_archive(root, SPEC)
    upload(aws.boto3_client("s3"), root, unique_name, PREFIX)  # straight to moto
    storage, resolver = write_configs(tmp_path, unique_name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_proxy.url)  # DynamoDB stays on AWS_ENDPOINT_URL
    return Archive(root, f"s3://{unique_name}/{PREFIX}/", storage, resolver, expected, aws, unique_name)


def assert_complete(archive: Archive, tally: Tally) -> None:
    assert tally.failures == {}
    assert archive.table_keys() == archive.live_keys()
    assert tally.objects_done == tally.objects_total
    assert tally.lines_read == archive.expected.lines
    assert tally.blank_lines == archive.expected.blank_lines
    assert tally.bad_rows_by_reason == archive.expected.bad_rows
    assert tally.no_fingerprint == archive.expected.no_fingerprint  # taken back on each restart too


# ------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("knob", ["reset_next", "short_body_next"], ids=["connection-reset", "short-body"])
def test_a_read_broken_off_mid_stream_reads_the_object_again_from_its_start(
    archive: Archive, s3_proxy: S3Proxy, knob: str
) -> None:
    setattr(s3_proxy, knob, 1)

    tally, restarts = archive.run_watching_restarts()

    assert s3_proxy.faults_injected == {knob: 1}
    assert tally.object_restarts == len(restarts) == 1
    if knob == "short_body_next":  # half the body always arrives before the FIN: lines were parsed
        assert restarts[0].lines > 0
    # One more GET than objects: botocore cannot retry a body already handed over, populator did.
    assert s3_proxy.gets == tally.objects_done + 1
    # The lines of the broken attempt were counted and then taken back: each line counts once.
    assert_complete(archive, tally)


@pytest.mark.parametrize(
    ("knob", "budget"),
    [("server_error_next", 2), ("slowdown_next", 2)],
    ids=["500-InternalError", "503-SlowDown"],
)
def test_5xx_on_get_are_retried_by_botocore_on_the_same_get(
    archive: Archive, s3_proxy: S3Proxy, knob: str, budget: int
) -> None:
    setattr(s3_proxy, knob, budget)

    tally = archive.run()

    assert s3_proxy.faults_injected == {knob: budget}
    assert tally.object_restarts == 0  # absorbed below the read: the object was never restarted
    assert s3_proxy.gets == tally.objects_done + budget
    assert_complete(archive, tally)


@pytest.fixture
def fast_botocore_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff between attempts, 100 times shorter (same jitter, same growth): its
    6 attempts of one GET would otherwise sleep ~15 s on average. Nothing else changes."""
    original = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, context: original(self, context) / 100
    )


@pytest.mark.usefixtures("fast_botocore_backoff")
def test_5xx_past_botocores_attempts_are_survived_by_reading_the_object_again(
    archive: Archive, s3_proxy: S3Proxy
) -> None:
    first = archive.key(archive.expected.objects[0])
    s3_proxy.target([first])
    s3_proxy.server_error_next = 10  # more than botocore's attempts for one GET (6 today)

    tally = archive.run()

    assert s3_proxy.faults_injected == {"server_error_next": 10}
    assert s3_proxy.faulted_keys == {first: 10}
    assert tally.object_restarts >= 1  # botocore gave up on a GET: populator read the object again
    assert s3_proxy.gets == tally.objects_done + 10
    assert_complete(archive, tally)


def test_faults_past_the_read_attempts_fail_that_object_and_a_rerun_completes(
    archive: Archive, s3_proxy: S3Proxy, tmp_path: Path
) -> None:
    objects = archive.expected.objects
    assert len(objects) >= 3
    broken = archive.key(objects[1])
    s3_proxy.target([broken])
    s3_proxy.short_body_next = 50

    tally = archive.run(read_attempts=3)

    # That object is failed, with the reason; it was read exactly `read_attempts` times.
    assert list(tally.failures) == [broken]
    assert "read failed after 3 attempts" in tally.failures[broken]
    assert s3_proxy.faults_injected == {"short_body_next": 3}
    assert s3_proxy.faulted_keys == {broken: 3}
    assert tally.object_restarts == 2
    # Every other object is finished and in the table (of the broken one, the batches written
    # before a read broke off may be there too: at-least-once); the broken one is not recorded.
    assert tally.objects_done == tally.objects_total - 1
    found = archive.table_keys()
    assert archive.live_keys() & _keys_outside(archive, objects[1]) <= found <= archive.live_keys()
    assert found != archive.live_keys()
    assert tally.checkpoint is not None
    recorded = _recorded_keys(Path(tally.checkpoint))
    assert broken not in recorded
    assert len(recorded) == tally.objects_done

    # The faults clear: the same job reads only the object that failed.
    s3_proxy.reset_faults()
    s3_proxy.reset_counts()
    rerun = archive.run(read_attempts=3)

    assert rerun.failures == {}
    assert rerun.objects_skipped == tally.objects_done
    assert rerun.objects_done == 1
    assert s3_proxy.gets == 1
    assert _recorded_keys(Path(tally.checkpoint)) == recorded | {broken}
    assert archive.table_keys() == archive.live_keys()


def test_gets_s3_does_not_answer_while_it_answers_nobody_spend_no_read_attempt(
    archive: Archive, s3_proxy: S3Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every object's first GET gets no answer at all (the network went away for a moment):
    that is an outage, waited out, not a failed read; one read attempt is enough."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # else botocore's own retries absorb the drops
    # aiohttp sends a GET dropped on a kept-alive connection once more, on a new one: two drops
    # an object make sure each of them meets the outage.
    s3_proxy.drop_next = 2 * len(archive.expected.objects)

    tally = archive.run(read_attempts=1)

    assert s3_proxy.faults_injected == {"drop_next": 2 * len(archive.expected.objects)}
    assert tally.object_restarts == 0 and tally.outages >= 1 and tally.waiting_for is None
    assert_complete(archive, tally)


def test_an_object_s3_never_answers_while_it_answers_the_others_fails_after_its_attempts(
    aws: AwsTestEnv, s3_proxy: S3Proxy, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only one object's GETs go unanswered, while the others' are answered: not an outage but
    that read's own trouble. It spends its attempts and fails; it does not wait forever."""
    import populator.config.outage

    monkeypatch.setattr(populator.config.outage, "FIRST_WAIT", 0.01)  # the others take longer
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    root = tmp_path / "archive"
    spec = SampleSpec(runs=1, parts_per_run=80, events_per_part=3, formats=("gz",), now=NOW, seed=5)
    expected = write_archive(root, spec)
    upload(aws.boto3_client("s3"), root, unique_name, PREFIX)
    storage, resolver = write_configs(tmp_path, unique_name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_proxy.url)
    cursed = f"{PREFIX}/{expected.objects[0]}"
    s3_proxy.target([cursed])
    s3_proxy.drop_next = 1000

    tally = run_job(
        f"s3://{unique_name}/{PREFIX}/", storage, resolver, concurrency=2, writers=2, on_demand=True,
        read_retry=ReadRetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05),
    )  # fmt: skip

    assert list(tally.failures) == [cursed]
    assert "read failed after 2 attempts" in tally.failures[cursed]
    assert tally.objects_done == len(expected.objects) - 1
    # Each attempt: one GET taken for an outage, one more that others were answered around; each
    # GET perhaps sent twice by aiohttp (once more on a new connection when a kept-alive one drops).
    assert s3_proxy.faulted_keys[cursed] <= 2 * 2 * 2


def _keys_outside(archive: Archive, relative: str) -> set[tuple[str, str]]:
    """Manifest keys found in the archive's parts other than `relative` (independent parser)."""
    others = archive.root.parent / "others"
    shutil.copytree(archive.root, others)
    (others / relative).unlink()
    keys: set[tuple[str, str]] = set()
    for path in sorted(others.rglob("part-*")):
        for line in read_lines(path):
            parsed = classify(line)
            if isinstance(parsed, tuple):
                keys.add(parsed[:2])
    return keys


def _recorded_keys(journal: Path) -> set[str]:
    records = [orjson.loads(line) for line in journal.read_bytes().splitlines() if line.strip()]
    return {record["key"] for record in records if record.get("type") == "object"}


# ----------------------------------------------------------------------- the proxy itself


@pytest.fixture
def bucket(aws: AwsTestEnv, unique_name: str) -> str:
    s3 = aws.boto3_client("s3")
    s3.create_bucket(Bucket=unique_name)
    s3.put_object(Bucket=unique_name, Key="run=1/part a+b.gz", Body=bytes(range(256)) * 400)
    s3.put_object(Bucket=unique_name, Key="run=1/other", Body=b"x" * 1000)
    return unique_name


@pytest.fixture
def via_proxy(aws: AwsTestEnv, s3_proxy: S3Proxy) -> Any:
    return aws.boto3_client("s3", endpoint_url=s3_proxy.url, config=NO_RETRIES)


def test_requests_are_forwarded_and_classified(via_proxy: Any, s3_proxy: S3Proxy, bucket: str) -> None:
    listed = via_proxy.list_objects_v2(Bucket=bucket, Prefix="run=1/")
    assert [entry["Key"] for entry in listed["Contents"]] == ["run=1/other", "run=1/part a+b.gz"]
    head = via_proxy.head_object(Bucket=bucket, Key="run=1/part a+b.gz")
    assert head["ContentLength"] == 256 * 400  # HEAD keeps moto's Content-Length
    body = via_proxy.get_object(Bucket=bucket, Key="run=1/part a+b.gz")["Body"].read()
    assert body == bytes(range(256)) * 400
    via_proxy.put_object(Bucket=bucket, Key="run=1/new", Body=b"new")
    assert s3_proxy.calls == {"ListObjectsV2": 1, "HeadObject": 1, "GetObject": 1, "PutObject": 1}
    assert s3_proxy.gets == 1


def test_error_faults_answer_like_s3_and_only_on_get_object(
    via_proxy: Any, s3_proxy: S3Proxy, bucket: str
) -> None:
    s3_proxy.slowdown_next = 1
    s3_proxy.server_error_next = 1
    via_proxy.list_objects_v2(Bucket=bucket)  # not a GetObject: consumes nothing
    via_proxy.head_object(Bucket=bucket, Key="run=1/other")
    errors = []
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            via_proxy.get_object(Bucket=bucket, Key="run=1/other")
        errors.append((caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]))
    assert [(code, meta["HTTPStatusCode"]) for code, meta in errors] == [
        ("SlowDown", 503),
        ("InternalError", 500),
    ]
    assert all(meta["HTTPHeaders"]["content-type"] == "application/xml" for _, meta in errors)
    assert via_proxy.get_object(Bucket=bucket, Key="run=1/other")["Body"].read() == b"x" * 1000
    assert s3_proxy.faults_injected == {"slowdown_next": 1, "server_error_next": 1}


@pytest.mark.parametrize("knob", ["reset_next", "short_body_next"])
def test_mid_body_faults_send_real_headers_then_half_the_body(
    via_proxy: Any, s3_proxy: S3Proxy, bucket: str, knob: str
) -> None:
    real = via_proxy.head_object(Bucket=bucket, Key="run=1/part a+b.gz")
    setattr(s3_proxy, knob, 1)
    response = via_proxy.get_object(Bucket=bucket, Key="run=1/part a+b.gz")
    assert response["ContentLength"] == real["ContentLength"]
    assert response["ETag"] == real["ETag"]
    with pytest.raises(BotoCoreError):
        response["Body"].read()
    assert s3_proxy.faults_injected == {knob: 1}
    assert (
        via_proxy.get_object(Bucket=bucket, Key="run=1/part a+b.gz")["Body"].read() == bytes(range(256)) * 400
    )


def test_targets_limit_faults_to_those_keys(via_proxy: Any, s3_proxy: S3Proxy, bucket: str) -> None:
    s3_proxy.target(["run=1/part a+b.gz"])
    s3_proxy.server_error_next = 1
    assert via_proxy.get_object(Bucket=bucket, Key="run=1/other")["Body"].read() == b"x" * 1000
    with pytest.raises(ClientError):
        via_proxy.get_object(Bucket=bucket, Key="run=1/part a+b.gz")
    assert s3_proxy.faulted_keys == {"run=1/part a+b.gz": 1}


def test_knobs_are_validated(s3_proxy: S3Proxy) -> None:
    with pytest.raises(ValueError, match="reset_next"):
        s3_proxy.reset_next = -1
    with pytest.raises(ValueError, match="slowdown_next"):
        s3_proxy.slowdown_next = True
    with pytest.raises(ValueError, match="targets"):
        s3_proxy.targets = ["a"]  # type: ignore[assignment]
    s3_proxy.short_body_next = 2
    s3_proxy.reset_faults()
    assert (s3_proxy.short_body_next, s3_proxy.targets) == (0, None)
