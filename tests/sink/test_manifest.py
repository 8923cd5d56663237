"""manifest: which errors are retried, which are throttles, and the table's shape."""

from __future__ import annotations

import aiohttp
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from populator.events import TTL_SECONDS, ManifestItem
from populator.sink.manifest import is_retryable, is_throttle, key_schema_problem, wire_item
from populator.sink.transport import ResponseCorrupted, _client_error


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("InternalServerError", 500),
        client_error("ServiceUnavailable", 503),
        client_error("SomethingNew", 502),
        TimeoutError(),
        aiohttp.ServerTimeoutError(),
        aiohttp.ServerDisconnectedError(),
        ResponseCorrupted("crc"),
        ReadTimeoutError(endpoint_url="http://x"),
        ConnectionClosedError(endpoint_url="http://x"),
        EndpointConnectionError(endpoint_url="http://x"),
    ],
)
def test_transient_failures_are_retried(exc):
    assert is_retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ValidationException"),
        client_error("AccessDeniedException"),
        client_error("ResourceNotFoundException"),
        ValueError("x"),
    ],
)
def test_permanent_failures_are_not(exc):
    assert not is_retryable(exc)


def test_only_throttles_are_throttles():
    assert is_throttle(client_error("ProvisionedThroughputExceededException"))
    assert is_throttle(client_error("ThrottlingException"))
    assert not is_throttle(client_error("InternalServerError", 500))


def test_signed_transport_errors_look_like_botocores():
    error = _client_error(
        "BatchWriteItem",
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "slow down",
        },
    )
    assert isinstance(error, ClientError)
    assert is_throttle(error) and error.response["Error"]["Message"] == "slow down"
    assert error.operation_name == "BatchWriteItem"


def test_wire_item_is_snowplows_manifest_item():
    item = ManifestItem("c6ef3124-b53a-4b13-a233-0088f79dcbcb", "fp", 1_780_000_000)
    assert wire_item(item) == {
        "eventId": {"S": "c6ef3124-b53a-4b13-a233-0088f79dcbcb"},
        "fingerprint": {"S": "fp"},
        "etlTime": {"N": "1780000000"},
        "ttl": {"N": str(1_780_000_000 + TTL_SECONDS)},
    }


def test_key_schema_check():
    good = {
        "KeySchema": [
            {"AttributeName": "eventId", "KeyType": "HASH"},
            {"AttributeName": "fingerprint", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "eventId", "AttributeType": "S"},
            {"AttributeName": "fingerprint", "AttributeType": "S"},
        ],
    }
    assert key_schema_problem(good) is None
    numeric = {
        **good,
        "AttributeDefinitions": [
            {"AttributeName": "eventId", "AttributeType": "N"},
            {"AttributeName": "fingerprint", "AttributeType": "S"},
        ],
    }
    assert "eventId HASH (N)" in key_schema_problem(numeric)
