"""The test infrastructure does what it says: moto over HTTP, env isolation, DynamoProxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import zlib
from typing import Any

import botocore.config
import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError, ConnectionClosedError

from tests.conftest import AwsTestEnv
from tests.support.dynamo_proxy import DynamoProxy
from tests.support.moto_server import aws_child_env

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})


def _create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "eventId", "AttributeType": "S"},
            {"AttributeName": "fingerprint", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "eventId", "KeyType": "HASH"},
            {"AttributeName": "fingerprint", "KeyType": "RANGE"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 100, "WriteCapacityUnits": 100},
    )


def _item(i: int) -> dict[str, Any]:
    return {
        "eventId": {"S": f"event-{i:03d}"},
        "fingerprint": {"S": f"fp-{i:03d}"},
        "etlTime": {"N": "1500000000"},
    }


def _puts(table: str, items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {table: [{"PutRequest": {"Item": item}} for item in items]}


def _stored_event_ids(direct: Any, table: str) -> set[str]:
    pages = direct.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return {item["eventId"]["S"] for page in pages for item in page["Items"]}


@pytest.fixture
def direct(aws: AwsTestEnv) -> Any:
    """DynamoDB straight at moto: the ground truth."""
    return aws.boto3_client("dynamodb", config=NO_RETRIES)


@pytest.fixture
def proxied(aws: AwsTestEnv, dynamo_proxy: DynamoProxy) -> Any:
    return aws.boto3_client("dynamodb", endpoint_url=dynamo_proxy.url, config=NO_RETRIES)


@pytest.fixture
def table(proxied: Any, dynamo_proxy: DynamoProxy, unique_name: str) -> str:
    _create_table(proxied, unique_name)
    dynamo_proxy.reset_counts()
    return unique_name


# ------------------------------------------------------------------ moto + environment


def test_aws_env_points_default_clients_at_moto(aws: AwsTestEnv, unique_name: str) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == aws.url
    assert "AWS_PROFILE" not in os.environ
    assert not os.path.exists(os.environ["AWS_CONFIG_FILE"])
    assert not os.path.exists(os.environ["AWS_SHARED_CREDENTIALS_FILE"])
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"

    import boto3

    # A client built from the environment alone (what the CLI does) lands on moto.
    boto3.session.Session().client("s3").create_bucket(Bucket=unique_name)
    names = {b["Name"] for b in aws.boto3_client("s3").list_buckets()["Buckets"]}
    assert unique_name in names


def test_child_env_reaches_moto_from_a_subprocess(aws: AwsTestEnv, unique_name: str) -> None:
    assert "AWS_PROFILE" not in aws.env
    aws.boto3_client("s3").create_bucket(Bucket=unique_name)
    # A developer's own setup must not leak into a child process.
    polluted = dict(
        os.environ,
        AWS_PROFILE="someone-real",
        AWS_ENDPOINT_URL_S3="http://127.0.0.1:9",
        AWS_SESSION_TOKEN="real-token",
    )
    env = aws_child_env(aws.url, base=polluted)
    assert not {"AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"} & env.keys()
    code = "import boto3\nprint(','.join(b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert unique_name in out.stdout.strip().split(",")


# ----------------------------------------------------------------------- pass-through


def test_create_table_through_proxy_is_forwarded_and_counted(
    proxied: Any, direct: Any, dynamo_proxy: DynamoProxy, unique_name: str
) -> None:
    _create_table(proxied, unique_name)
    proxied.describe_table(TableName=unique_name)
    proxied.describe_table(TableName=unique_name)

    assert direct.describe_table(TableName=unique_name)["Table"]["TableStatus"] == "ACTIVE"
    assert dynamo_proxy.calls["CreateTable"] == 1
    assert dynamo_proxy.calls["DescribeTable"] == 2
    dynamo_proxy.reset_counts()
    assert dynamo_proxy.calls["CreateTable"] == 0


def test_moto_errors_pass_through(proxied: Any, unique_name: str) -> None:
    with pytest.raises(ClientError) as info:
        proxied.describe_table(TableName=unique_name)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_responses_carry_a_valid_crc32(dynamo_proxy: DynamoProxy, table: str) -> None:
    dynamo_proxy.unprocessed_share = 1.0
    request = urllib.request.Request(
        dynamo_proxy.url + "/",
        data=json.dumps({"RequestItems": _puts(table, [_item(1), _item(2)])}).encode(),
        headers={
            "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/"
            "dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        assert response.headers["Content-Type"] == "application/x-amz-json-1.0"
        assert int(response.headers["x-amz-crc32"]) == zlib.crc32(body)
    assert len(json.loads(body)["UnprocessedItems"][table]) == 2


# ------------------------------------------------------------------ UnprocessedItems


def test_partial_unprocessed_share(proxied: Any, direct: Any, dynamo_proxy: DynamoProxy, table: str) -> None:
    dynamo_proxy.unprocessed_share = 0.4
    items = [_item(i) for i in range(25)]

    response = proxied.batch_write_item(RequestItems=_puts(table, items))

    unprocessed = response["UnprocessedItems"][table]
    assert len(unprocessed) == 10
    returned = {entry["PutRequest"]["Item"]["eventId"]["S"] for entry in unprocessed}
    stored = _stored_event_ids(direct, table)
    assert len(stored) == 15
    assert stored.isdisjoint(returned)
    assert stored | returned == {item["eventId"]["S"] for item in items}
    assert dynamo_proxy.unprocessed_items_returned == 10
    assert dynamo_proxy.calls["BatchWriteItem"] == 1


def test_resubmitting_unprocessed_items_converges(
    proxied: Any, direct: Any, dynamo_proxy: DynamoProxy, table: str
) -> None:
    dynamo_proxy.unprocessed_share = 0.5
    pending = _puts(table, [_item(i) for i in range(25)])
    rounds = 0
    while pending:
        pending = proxied.batch_write_item(RequestItems=pending)["UnprocessedItems"]
        rounds += 1
        assert rounds < 30
    assert len(_stored_event_ids(direct, table)) == 25
    # withheld: 13 of 25, 7 of 13, 4 of 7, 2 of 4, 1 of 2, 0 of 1 (never withheld at share < 1)
    assert rounds == 6


def test_total_unprocessed_forwards_nothing(
    proxied: Any, direct: Any, dynamo_proxy: DynamoProxy, table: str, unique_name: str
) -> None:
    other = f"{unique_name}-b"
    _create_table(proxied, other)
    dynamo_proxy.unprocessed_share = 1.0
    request = {**_puts(table, [_item(i) for i in range(3)]), **_puts(other, [_item(9)])}

    response = proxied.batch_write_item(RequestItems=request)

    assert response["UnprocessedItems"] == request
    assert _stored_event_ids(direct, table) == set()
    assert _stored_event_ids(direct, other) == set()
    assert dynamo_proxy.unprocessed_items_returned == 4


def test_unprocessed_requests_budget(
    proxied: Any, direct: Any, dynamo_proxy: DynamoProxy, table: str
) -> None:
    dynamo_proxy.unprocess_next(1, share=1.0)
    first = proxied.batch_write_item(RequestItems=_puts(table, [_item(1), _item(2)]))
    second = proxied.batch_write_item(RequestItems=_puts(table, [_item(3), _item(4)]))

    assert len(first["UnprocessedItems"][table]) == 2
    assert second["UnprocessedItems"] == {}
    assert dynamo_proxy.unprocessed_requests == 0
    assert _stored_event_ids(direct, table) == {"event-003", "event-004"}


# ------------------------------------------------------------------------ write faults


@pytest.mark.parametrize(
    ("knob", "code", "status"),
    [
        ("throttle_next", "ProvisionedThroughputExceededException", 400),
        ("throttling_exception_next", "ThrottlingException", 400),
        ("server_error_next", "InternalServerError", 500),
    ],
)
def test_error_faults_then_recovery(
    proxied: Any,
    direct: Any,
    dynamo_proxy: DynamoProxy,
    table: str,
    knob: str,
    code: str,
    status: int,
) -> None:
    setattr(dynamo_proxy, knob, 2)

    # Reads are never faulted and do not consume the budget.
    proxied.get_item(TableName=table, Key={"eventId": {"S": "x"}, "fingerprint": {"S": "y"}})
    for call in (
        lambda: proxied.put_item(TableName=table, Item=_item(1)),
        lambda: proxied.batch_write_item(RequestItems=_puts(table, [_item(2)])),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status

    assert getattr(dynamo_proxy, knob) == 0
    assert _stored_event_ids(direct, table) == set()  # nothing was forwarded
    proxied.put_item(TableName=table, Item=_item(3))
    assert _stored_event_ids(direct, table) == {"event-003"}
    assert dynamo_proxy.calls["PutItem"] == 2


def test_dropped_connection(proxied: Any, direct: Any, dynamo_proxy: DynamoProxy, table: str) -> None:
    dynamo_proxy.drop_next = 1
    with pytest.raises(ConnectionClosedError):
        proxied.batch_write_item(RequestItems=_puts(table, [_item(1)]))
    assert _stored_event_ids(direct, table) == set()

    proxied.batch_write_item(RequestItems=_puts(table, [_item(2)]))
    assert _stored_event_ids(direct, table) == {"event-002"}
    assert dynamo_proxy.calls["BatchWriteItem"] == 2


def test_faults_apply_one_per_request_in_order(proxied: Any, dynamo_proxy: DynamoProxy, table: str) -> None:
    dynamo_proxy.throttle_next = 1
    dynamo_proxy.server_error_next = 1
    codes = []
    for i in range(2):
        with pytest.raises(ClientError) as info:
            proxied.put_item(TableName=table, Item=_item(i))
        codes.append(info.value.response["Error"]["Code"])
    assert codes == ["InternalServerError", "ProvisionedThroughputExceededException"]


def test_knobs_are_validated(dynamo_proxy: DynamoProxy) -> None:
    with pytest.raises(ValueError):
        dynamo_proxy.unprocessed_share = 1.5
    with pytest.raises(ValueError):
        dynamo_proxy.throttle_next = -1
    dynamo_proxy.unprocessed_share = 0.25
    dynamo_proxy.reset_faults()
    assert dynamo_proxy.unprocessed_share == 0.0


# --------------------------------------------------------------------- async clients


async def test_aiobotocore_client_through_proxy(
    aws: AwsTestEnv, direct: Any, dynamo_proxy: DynamoProxy, table: str
) -> None:
    dynamo_proxy.unprocessed_share = 0.4
    dynamo_proxy.drop_next = 1
    async with get_session().create_client(
        "dynamodb", endpoint_url=dynamo_proxy.url, config=NO_RETRIES
    ) as client:
        with pytest.raises(ConnectionClosedError):
            await client.put_item(TableName=table, Item=_item(0))
        response = await client.batch_write_item(RequestItems=_puts(table, [_item(i) for i in range(10)]))
    assert len(response["UnprocessedItems"][table]) == 4
    assert len(_stored_event_ids(direct, table)) == 6
