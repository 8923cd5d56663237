"""A machine that cannot reach AWS: one paragraph and exit 2 at setup, failed objects mid-run.

Every AWS call path, through the real command line: the S3 listing, GetObject, DescribeTable,
CreateTable, the writes (signed and botocore transports, `--conditional`), verify's BatchGetItem,
plan's DescribeTable and ranged GETs, and the `--log-path s3://` upload. An endpoint is made
unreachable by a closed loopback port, a host name that cannot resolve (`.invalid`), TLS spoken
to a plain HTTP server, a proxy that is not there, or a proxy in front of moto that goes down in
the middle of the job (tests/support/outage_proxy.py). botocore's own retries are turned down
with `AWS_MAX_ATTEMPTS=1`, as a user would, so that the tests stay fast.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)

from populator.config.aws import Endpoint, connection_failure, translate
from populator.config.storage import STORAGE_SCHEMA_PREFIX
from populator.errors import EndpointUnreachable
from tests.support.backfill_helpers import event_line, run_populator, write_configs
from tests.support.outage_proxy import OutageProxy

SECRET = "wJalrXUtnFEMI-SECRET-UNREACHABLE-51c9"
KEY_ID = "AKIATESTKEYUNRE8C4"
PROXY_PASSWORD = "proxy-pass-DO-NOT-LEAK-7e1"
CHECKS = ("VPC endpoint", "the region", "AWS_ENDPOINT_URL", "HTTPS_PROXY")


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(aws) -> dict[str, str]:
    return dict(aws.env, AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard")


@pytest.fixture
def configs(tmp_path, unique_name) -> tuple[Path, Path]:
    """The storage config holds keys for DynamoDB: they must never be shown."""
    _, resolver = write_configs(tmp_path, unique_name)
    storage = tmp_path / "keys.json"
    data = {
        "name": "manifest",
        "accessKeyId": KEY_ID,
        "secretAccessKey": SECRET,
        "awsRegion": "us-east-1",
        "dynamodbTable": unique_name,
        "purpose": "DUPLICATE_TRACKING",
    }
    storage.write_bytes(orjson.dumps({"schema": STORAGE_SCHEMA_PREFIX + "1-0-0", "data": data}))
    return storage, resolver


@pytest.fixture
def archive(tmp_path) -> Path:
    """A local archive: one run, three objects of 20 events each."""
    run = tmp_path / "archive" / "run=2026-11-20-10-00-00"
    run.mkdir(parents=True)
    for index in range(3):
        lines = "".join(event_line(index * 100 + n) + "\n" for n in range(20))
        (run / f"part-{index:05d}").write_text(lines)
    return run.parent


@pytest.fixture
def s3_archive(aws, archive, unique_name) -> str:
    s3 = aws.boto3_client("s3")
    s3.create_bucket(Bucket=unique_name)
    for path in sorted(archive.rglob("part-*")):
        s3.put_object(Bucket=unique_name, Key=f"enriched/{path.relative_to(archive)}", Body=path.read_bytes())
    return f"s3://{unique_name}/enriched/"


@pytest.fixture
def outage(moto_server) -> Iterator[OutageProxy]:
    proxy = OutageProxy(moto_server.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def populator(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_populator(*args, env=env, timeout=180)


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    for secret in (SECRET, KEY_ID, PROXY_PASSWORD):
        assert secret not in output


def assert_unreachable(
    result: subprocess.CompletedProcess[str], service: str, url: str, *fragments: str
) -> None:
    """Exit 2, one paragraph naming the service, the endpoint, what failed and what to check."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "internal error" not in output and "bug in populator" not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: Cannot reach {service} at {url}"), errors[0]
    for fragment in (*CHECKS, *fragments):
        assert fragment in errors[0], errors[0]
    assert_no_secret(result)


def assert_objects_failed(result: subprocess.CompletedProcess[str], count: int, *fragments: str) -> None:
    """Exit 1: every object named as failed, with its reason; the run itself went to its end."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "internal error" not in output
    failed = [line for line in result.stdout.splitlines() if line.lstrip().startswith("FAILED ")]
    assert len(failed) == count, result.stdout
    for fragment in fragments:
        assert all(fragment in line for line in failed), failed
    assert f"objects: 0 done of {count}, {count} failed" in result.stdout
    assert_no_secret(result)


# ----------------------------------------------------------------------------- setup: exit 2


@pytest.mark.parametrize("processes", ["1", "2"])
def test_run_cannot_reach_dynamodb_describe_table(env, configs, archive, processes):
    url = f"http://127.0.0.1:{closed_port()}"
    result = populator(
        "run", str(archive), *map(str, configs), "--processes", processes,
        env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=url),
    )  # fmt: skip
    assert_unreachable(result, "DynamoDB", url, "could not connect", "(region us-east-1)")


def test_run_cannot_resolve_the_s3_endpoint_for_the_listing(env, configs, s3_archive):
    result = populator(
        "run", s3_archive, *map(str, configs), "--dry-run",
        env=dict(env, AWS_ENDPOINT_URL_S3="http://bucket-host.nonexistent.invalid"),
    )  # fmt: skip
    assert_unreachable(result, "S3", "http://bucket-host.nonexistent.invalid", "does not resolve", "for S3")


def test_run_cannot_reach_s3_after_the_table_is_ready(env, configs, s3_archive, aws, unique_name):
    url = f"http://127.0.0.1:{closed_port()}"
    result = populator("run", s3_archive, *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_S3=url))
    assert_unreachable(result, "S3", url, "could not connect")
    # The archive is proven readable before the table is created: none is left behind.
    assert unique_name not in aws.boto3_client("dynamodb").list_tables()["TableNames"]


def test_run_loses_dynamodb_at_create_table(env, configs, archive, outage):
    outage.down_at = frozenset({"CreateTable"})
    result = populator(
        "run", str(archive), *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=outage.url)
    )
    assert outage.calls["DescribeTable"] >= 1 and outage.is_down
    assert_unreachable(result, "DynamoDB", outage.url)


def test_tls_to_a_server_that_does_not_speak_it(env, configs, archive, moto_server):
    url = moto_server.url.replace("http://", "https://")
    result = populator("run", str(archive), *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=url))
    assert_unreachable(result, "DynamoDB", url, "TLS handshake failed", "AWS_CA_BUNDLE")


def test_a_proxy_that_is_not_there_is_named_without_its_password(env, configs, archive):
    proxy = f"http://populator:{PROXY_PASSWORD}@127.0.0.1:{closed_port()}"
    result = populator(
        "run", str(archive), *map(str, configs),
        env=dict(env, AWS_ENDPOINT_URL_DYNAMODB="http://dynamodb.nonexistent.invalid", HTTP_PROXY=proxy),
    )  # fmt: skip
    assert_unreachable(result, "DynamoDB", "http://dynamodb.nonexistent.invalid", "through the proxy")


def test_plan_cannot_list_the_archive(env, configs, s3_archive):
    url = f"http://127.0.0.1:{closed_port()}"
    result = populator("plan", s3_archive, *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_S3=url))
    assert_unreachable(result, "S3", url)


def test_plan_loses_s3_at_the_ranged_gets(env, configs, s3_archive, outage):
    outage.down_at = frozenset({"GetObject"})
    result = populator("plan", s3_archive, *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_S3=outage.url))
    assert outage.calls["ListObjectsV2"] >= 1 and outage.is_down
    assert_unreachable(result, "S3", outage.url)


def test_plan_cannot_describe_the_table(env, configs, archive):
    url = f"http://127.0.0.1:{closed_port()}"
    result = populator("plan", str(archive), *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=url))
    assert_unreachable(result, "DynamoDB", url)


def test_verify_cannot_describe_the_table(env, configs, archive):
    url = f"http://127.0.0.1:{closed_port()}"
    result = populator(
        "verify", str(archive), *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=url)
    )
    assert_unreachable(result, "DynamoDB", url)


def test_verify_loses_dynamodb_at_batch_get_item(env, configs, archive, outage):
    assert populator("run", str(archive), *map(str, configs), "--on-demand", env=env).returncode == 0
    outage.down_at = frozenset({"BatchGetItem"})
    result = populator(
        "verify", str(archive), *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=outage.url)
    )
    assert outage.calls["DescribeTable"] >= 1 and outage.is_down
    assert_unreachable(result, "DynamoDB", outage.url)


def test_verify_loses_s3_at_get_object(env, configs, s3_archive, outage, aws):
    assert populator("run", s3_archive, *map(str, configs), "--on-demand", env=env).returncode == 0
    outage.down_at = frozenset({"GetObject"})
    result = populator(
        "verify", s3_archive, *map(str, configs), env=dict(env, AWS_ENDPOINT_URL_S3=outage.url)
    )
    assert_unreachable(result, "S3", outage.url)


# ----------------------------------------------------------------------------- the run's own record


def test_a_log_path_upload_that_cannot_reach_s3_is_explained_and_the_run_stands(env, configs, archive):
    url = f"http://127.0.0.1:{closed_port()}"
    result = populator(
        "run", str(archive), *map(str, configs), "--dry-run", "--log-path", "s3://logs-bucket/populator/",
        env=dict(env, AWS_ENDPOINT_URL_S3=url),
    )  # fmt: skip
    # The backfill is done and its exit code stands; the upload's failure is one paragraph.
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    where = "--log-path s3://logs-bucket/populator/"
    assert f"cannot store the report and log under {where}: Cannot reach S3 at {url}" in result.stderr
    assert all(check in result.stderr for check in CHECKS)
    assert_no_secret(result)


# ----------------------------------------------------------------------------- mid-run: objects fail


@pytest.mark.parametrize("processes", ["1", "2"])
def test_reads_s3_does_not_answer_wait_then_stop_at_the_outage_budget(
    env, configs, s3_archive, outage, tmp_path, processes
):
    """S3 stops answering for good: the reads wait (they do not fail their objects one by one,
    whatever --read-attempts says), then the run stops at --max-outage with exit 5, the command
    to go on, and no object recorded as done that was not."""
    outage.down_at = frozenset({"GetObject"})
    journal = tmp_path / "journal.jsonl"
    result = populator(
        "run", s3_archive, *map(str, configs), "--on-demand", "--processes", processes,
        "--checkpoint", str(journal), "--read-attempts", "1", "--retry-base-delay", "0.001",
        "--max-outage", "2",
        env=dict(env, AWS_ENDPOINT_URL_S3=outage.url),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert outage.is_down
    assert result.returncode == 5, output
    assert "Traceback" not in output and "internal error" not in output
    assert "S3 does not answer" in result.stderr and "longer than --max-outage 2 s" in result.stderr
    assert "run the same command to go on" in result.stderr
    assert not [line for line in result.stdout.splitlines() if line.lstrip().startswith("FAILED ")]
    assert not [line for line in journal.read_text().splitlines() if '"type":"object"' in line]
    assert_no_secret(result)


def wait_out(process: subprocess.Popen[str], outage: OutageProxy, seconds: float) -> tuple[str, str]:
    """Let `process` meet the outage, keep the network away `seconds` longer, bring it back; the
    process's output once it ends."""
    import time

    deadline = time.monotonic() + 60
    while not outage.is_down:
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    time.sleep(seconds)
    assert process.poll() is None, process.communicate()  # still waiting, not failed
    outage.come_back()
    return process.communicate(timeout=120)


def start_populator(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "populator", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("hangs", "processes"),
    [(False, "2"), (True, "1")],
    ids=["refused-2-processes", "black-hole-1-process"],
)
def test_an_s3_that_stops_answering_for_a_while_is_waited_for_and_the_run_ends_exact(
    env, configs, s3_archive, outage, tmp_path, aws, unique_name, hangs, processes
):
    """Reads meet an S3 that refuses connections, or one that takes them and never answers (only
    --request-timeout ends each request): they wait, say so, and go on when S3 is back."""
    outage.down_at = frozenset({"GetObject"})
    outage.hangs = hangs
    report = tmp_path / "report.json"
    process = start_populator(
        "run", s3_archive, *map(str, configs), "--on-demand", "--processes", processes,
        "--read-attempts", "1", "--request-timeout", "1", "--max-outage", "60", "--report", str(report),
        env=dict(env, AWS_ENDPOINT_URL_S3=outage.url),
    )  # fmt: skip
    out, err = wait_out(process, outage, 3)
    assert process.returncode == 0, err
    assert "S3 does not answer" in err and "S3 answers again" in err
    assert "0 failed" in out
    data = json.loads(report.read_text())
    assert data["outages"] >= 1 and data["objects_failed"] == 0
    written = {
        item["eventId"]["S"] for item in aws.boto3_client("dynamodb").scan(TableName=unique_name)["Items"]
    }
    assert len(written) == 60  # three objects of twenty events, every one


def test_a_listing_that_loses_s3_waits_for_it(env, configs, s3_archive, outage):
    """The run folders are listed (S3 is there), then S3 goes away as the run's objects are
    listed: the listing waits and asks for the same page again."""
    outage.down_at = frozenset({"ListObjectsV2"})
    outage.spare = 1  # the listing of the run folders
    process = start_populator(
        "run", s3_archive, *map(str, configs), "--dry-run", "--processes", "1", "--max-outage", "60",
        env=dict(env, AWS_ENDPOINT_URL_S3=outage.url),
    )  # fmt: skip
    out, err = wait_out(process, outage, 2)
    assert process.returncode == 0, err
    assert "S3 does not answer" in err and "S3 answers again" in err
    assert "objects: 3 done of 3" in out, out


def test_an_s3_checkpoint_that_loses_s3_waits_for_it_and_records_everything(
    env, configs, s3_archive, outage, unique_name
):
    """The checkpoint's segments go to S3 as the run goes; S3 goes away at the first: the
    segments wait (the run is not stopped for an unwritable checkpoint), and all are written."""
    outage.down_at = frozenset({"PutObject"})
    checkpoint = f"s3://{unique_name}/checkpoints/"
    args = (
        "run",
        s3_archive,
        *map(str, configs),
        "--on-demand",
        "--processes",
        "1",
        "--checkpoint",
        checkpoint,
    )
    process = start_populator(*args, "--max-outage", "60", env=dict(env, AWS_ENDPOINT_URL_S3=outage.url))
    _, err = wait_out(process, outage, 2)
    assert process.returncode == 0, err
    assert "S3 does not answer" in err and "S3 answers again" in err
    again = populator(*args, env=env)  # every object was recorded: nothing to read again
    assert again.returncode == 0, again.stderr
    assert "objects skipped (already done): 3" in again.stdout and "items written: 0" in again.stdout


def test_an_import_whose_s3_stops_answering_while_staging_waits_for_it(
    env, configs, archive, outage, aws, unique_name, tmp_path
):
    """The staged objects' multipart uploads lose S3 (the first part): they wait for it, and the
    import goes on to a table holding every event once S3 is back."""
    aws.boto3_client("s3").create_bucket(Bucket=f"{unique_name}-staging")
    outage.down_at = frozenset({"PUT object"})  # UploadPart: the staging prefix was checked before
    process = start_populator(
        "import", str(archive), *map(str, configs), "--staging", f"s3://{unique_name}-staging/p/",
        "--processes", "1", "--max-outage", "60", "--poll-interval", "0.1",
        env=dict(env, AWS_ENDPOINT_URL_S3=outage.url),
    )  # fmt: skip
    _, err = wait_out(process, outage, 2)
    assert process.returncode == 0, err
    assert "S3 does not answer" in err and "S3 answers again" in err
    written = aws.boto3_client("dynamodb").scan(TableName=unique_name, Select="COUNT")["Count"]
    assert written == 60


@pytest.mark.parametrize(
    ("options", "operation"),
    [
        (("--processes", "1"), "BatchWriteItem"),  # --write-path signed, the default: our own transport
        # Workers are handed the table by their parent: none describes it once the network is gone.
        (("--processes", "2"), "BatchWriteItem"),
        (("--processes", "1", "--write-path", "botocore"), "BatchWriteItem"),
        (("--processes", "1", "--conditional"), "PutItem"),
    ],
    ids=["signed", "signed-2-processes", "botocore", "conditional"],
)
def test_writes_that_cannot_connect_wait_then_stop_at_the_outage_budget(
    env, configs, archive, outage, tmp_path, options, operation
):
    """The table stops answering for good: the run waits (it does not fail objects one by one),
    then stops at --max-outage with exit 5, what was acknowledged kept, the command to go on."""
    outage.down_at = frozenset({operation})
    journal = tmp_path / "journal.jsonl"
    result = populator(
        "run", str(archive), *map(str, configs), "--on-demand", *options, "--checkpoint", str(journal),
        "--max-attempts", "2", "--retry-base-delay", "0.001", "--max-outage", "2",
        env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=outage.url),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert outage.calls["CreateTable"] == 1 and outage.is_down
    assert result.returncode == 5, output
    assert "Traceback" not in output and "internal error" not in output
    assert "DynamoDB does not answer" in result.stderr and "longer than --max-outage 2 s" in result.stderr
    assert "run the same command to go on" in result.stderr
    assert "failed" not in [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert not [line for line in journal.read_text().splitlines() if '"type":"object"' in line]
    assert_no_secret(result)


@pytest.mark.parametrize("hangs", [False, True], ids=["refused", "black-hole"])
def test_a_table_that_stops_answering_for_a_while_is_waited_for_and_the_run_ends_exact(
    env, configs, archive, outage, tmp_path, aws, unique_name, hangs
):
    """The table refuses connections, or takes them and never answers (only --request-timeout
    ends each write): the writers wait, say so, and the run ends exact once it is back."""
    outage.down_at = frozenset({"BatchWriteItem"})
    outage.hangs = hangs
    report = tmp_path / "report.json"
    process = start_populator(
        "run", str(archive), *map(str, configs), "--on-demand", "--processes", "1", "--max-outage", "60",
        "--request-timeout", "1", "--report", str(report),
        env=dict(env, AWS_ENDPOINT_URL_DYNAMODB=outage.url),
    )  # fmt: skip
    out, err = wait_out(process, outage, 3)  # three seconds without a table
    assert process.returncode == 0, err
    assert "DynamoDB does not answer" in err and "DynamoDB answers again" in err
    assert "0 failed" in out
    data = json.loads(report.read_text())
    assert data["outages"] >= 1 and data["objects_failed"] == 0
    assert aws.boto3_client("dynamodb").scan(TableName=unique_name, Select="COUNT")["Count"] == 60


# ----------------------------------------------------------------------------- the translation itself

ENDPOINTS = [
    Endpoint("S3", "https://s3.us-east-1.amazonaws.com", "us-east-1"),
    Endpoint("DynamoDB", "https://dynamodb.eu-west-1.amazonaws.com", "eu-west-1"),
]


@pytest.mark.parametrize(
    ("error", "service", "url", "what"),
    [
        (
            EndpointConnectionError(
                endpoint_url="https://acme.s3.us-east-1.amazonaws.com/?list-type=2&prefix=enriched%2F",
                error=ConnectionRefusedError(111, "Connect call failed ('52.0.0.1', 443)"),
            ),
            "S3",
            "https://acme.s3.us-east-1.amazonaws.com",
            "could not connect (Connect call failed ('52.0.0.1', 443))",
        ),
        (
            EndpointConnectionError(
                endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/",
                error=socket.gaierror(-2, "Name or service not known"),
            ),
            "DynamoDB",
            "https://dynamodb.eu-west-1.amazonaws.com",
            "the host name does not resolve in DNS (Name or service not known)",
        ),
        (
            ConnectTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
            "DynamoDB",
            "https://dynamodb.eu-west-1.amazonaws.com",
            "the connection timed out",
        ),
        (
            ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
            "DynamoDB",
            "https://dynamodb.eu-west-1.amazonaws.com",
            "no answer came in time",
        ),
        (
            SSLError(
                endpoint_url="https://s3.us-east-1.amazonaws.com/acme",
                error=OSError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            ),
            "S3",
            "https://s3.us-east-1.amazonaws.com",
            "the TLS handshake failed",
        ),
        (
            ProxyConnectionError(
                proxy_url=f"http://me:{PROXY_PASSWORD}@proxy:3128", error=OSError("refused")
            ),
            "S3",  # no endpoint in the error: the first service the work talks to
            "https://s3.us-east-1.amazonaws.com",
            "could not connect through the proxy http://proxy:3128",
        ),
        (
            ConnectionClosedError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
            "DynamoDB",
            "https://dynamodb.eu-west-1.amazonaws.com",
            "the connection was closed",
        ),
    ],
    ids=["refused", "dns", "connect-timeout", "read-timeout", "tls", "proxy", "closed"],
)
def test_connection_failures_become_one_paragraph(error, service, url, what):
    usage = translate(error, action="x", permission="y", identity="z", endpoints=ENDPOINTS)
    assert isinstance(usage, EndpointUnreachable) and usage.exit_code == 2
    message = str(usage)
    assert message.startswith(f"Cannot reach {service} at {url} (region "), message
    assert what in message and "\n" not in message
    assert f"AWS_ENDPOINT_URL_{service.upper()}" in message and f"VPC endpoint for {service}" in message
    assert PROXY_PASSWORD not in message and "list-type" not in message


def test_raw_aiohttp_connection_errors_of_the_signed_transport_are_translated():
    import aiohttp
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("dynamodb.eu-west-1.amazonaws.com", 443, True, True, None, None, None)
    error = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connect call failed"))
    message = str(connection_failure(error, ENDPOINTS[1:]))
    assert message.startswith(
        "Cannot reach DynamoDB at https://dynamodb.eu-west-1.amazonaws.com (region eu-west-1)"
    )
    assert "could not connect (Connect call failed)" in message


def test_other_errors_are_not_connection_failures():
    assert connection_failure(NoCredentialsError(), ENDPOINTS) is None
    assert connection_failure(ValueError("year 0 is out of range"), ENDPOINTS) is None
    assert translate(NoCredentialsError(), action="x", permission="y", identity="z", endpoints=ENDPOINTS)


def test_a_request_with_both_clients_on_one_host_is_named_by_its_port():
    endpoints = [
        Endpoint("S3", "http://127.0.0.1:9000", "us-east-1"),
        Endpoint("DynamoDB", "http://127.0.0.1:8000", ""),
    ]
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:8000/", error=OSError("refused"))
    assert str(connection_failure(error, endpoints)).startswith(
        "Cannot reach DynamoDB at http://127.0.0.1:8000:"
    )


async def test_s3_tries_six_times_unless_the_user_says_otherwise(aws, monkeypatch):
    from populator.config.aws import new_session, s3_client
    from populator.config.storage import AwsSettings

    settings = AwsSettings(profile=None, dynamodb_region="us-east-1", dynamodb_keys=None, pool_size=4)
    async with s3_client(new_session(None), settings) as s3:
        assert s3.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    async with s3_client(new_session(None), settings) as s3:
        assert s3.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
