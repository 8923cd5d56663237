"""Our SigV4 for the write path gives exactly the headers botocore's signer gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from populator.sink.sigv4 import Credentials, RequestSigner

CONTENT_TYPE = "application/x-amz-json-1.0"
URLS = [
    "https://dynamodb.eu-west-1.amazonaws.com/",
    "http://127.0.0.1:4566/",
    "https://vpce-0abc.dynamodb.us-east-1.vpce.amazonaws.com:443/",
    "http://localhost:8000/some/prefix/",
    "https://proxy.example.com/dynamo db/~x/",
    "http://[::1]:8000/",
    "https://[2001:db8::1]/",
    "HTTPS://DynamoDB.EU-West-1.AmazonAWS.com/",
]


def botocore_headers(
    url: str, region: str, creds: Credentials, target: str, body: bytes, now: datetime
) -> dict:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": target, "User-Agent": "populator"},
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        SigV4Auth(ReadOnlyCredentials(*creds), "dynamodb", region).add_auth(request)
    headers = dict(request.headers.items())
    del headers["User-Agent"]  # sent, never signed
    return headers


@given(
    url=st.sampled_from(URLS),
    region=st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"]),
    access_key=st.from_regex(r"\A(AKIA|ASIA)[A-Z0-9]{16}\Z"),
    secret_key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    token=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=60),
    target=st.sampled_from(["DynamoDB_20120810.BatchWriteItem", "DynamoDB_20120810.PutItem"]),
    body=st.binary(max_size=300),
    seconds=st.integers(0, 10 * 365 * 86400),
)
@settings(max_examples=300, deadline=None)
def test_headers_equal_botocores(url, region, access_key, secret_key, token, target, body, seconds):
    now = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    creds = Credentials(access_key, secret_key, token)
    ours = RequestSigner(url, region, "dynamodb", CONTENT_TYPE).headers(creds, target, body, now)
    assert ours == botocore_headers(url, region, creds, target, body, now)


def test_the_signing_key_follows_the_day_and_the_secret():
    signer = RequestSigner(URLS[0], "eu-west-1", "dynamodb", CONTENT_TYPE)
    before = datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC)
    after = before + timedelta(seconds=2)  # another day: another signing key
    for now in (before, after, after):
        for creds in (Credentials("AKIAEXAMPLE", "s1", None), Credentials("ASIAEXAMPLE", "s2", "tok")):
            ours = signer.headers(creds, "DynamoDB_20120810.BatchWriteItem", b"{}", now)
            assert ours == botocore_headers(
                URLS[0], "eu-west-1", creds, "DynamoDB_20120810.BatchWriteItem", b"{}", now
            )


def test_a_query_string_is_refused():
    with pytest.raises(ValueError):
        RequestSigner("https://example.com/?a=b", "us-east-1", "dynamodb", CONTENT_TYPE)


class _FrozenSource:
    """Stands for botocore's credentials object: the transport asks it for frozen keys."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds

    async def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return ReadOnlyCredentials(*self.creds)


@pytest.mark.parametrize("token", [None, "session-token"])
async def test_requests_on_the_wire_verify_as_botocore_signs_them(token):
    """A server recomputes each received request's signature with botocore from what actually
    arrived (method, path, headers as sent by aiohttp, body) and the known secret."""
    from aiohttp import web

    from populator.sink.transport import SignedHttpTransport

    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    verdicts: list[bool] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        sent = request.headers
        url = f"http://{sent['Host']}{request.path_qs}"
        # As AWS does: only the headers the Authorization header says were signed count.
        signed = sent["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        headers = {
            k: v for k, v in sent.items() if k.lower() in signed and k.lower() not in ("host", "x-amz-date")
        }
        when = datetime.strptime(sent["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        replay = AWSRequest(method=request.method, url=url, data=body, headers=headers)
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            SigV4Auth(ReadOnlyCredentials(*creds), "dynamodb", "eu-west-1").add_auth(replay)
        verdicts.append(replay.headers["Authorization"] == sent["Authorization"])
        return web.json_response({"UnprocessedItems": {}}, content_type="application/x-amz-json-1.0")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    transport = SignedHttpTransport(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="eu-west-1",
        credentials=_FrozenSource(creds),
        connections=4,
    )
    try:
        item = {"eventId": {"S": "e"}, "fingerprint": {"S": "f ü"}, "etl_tstamp": {"N": "1"}}
        for _ in range(3):
            answer = await transport.call(
                "BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": item}}]}}
            )
            assert answer == {"UnprocessedItems": {}}
    finally:
        await transport.close()
        await runner.cleanup()
    assert verdicts == [True, True, True]


async def test_a_write_refused_for_a_skewed_clock_is_signed_again_with_aws_time_once(dynamo_proxy):
    """The proxy checks signing times as DynamoDB does, its clock 20 minutes ahead: the first
    request is refused, signed again with the time of the refusal's Date and answered; later
    requests keep the offset. An endpoint that refuses the corrected request too is believed."""
    from botocore.exceptions import ClientError

    from populator.sink.transport import SignedHttpTransport

    told: list[float] = []
    transport = SignedHttpTransport(
        endpoint_url=dynamo_proxy.url,
        region="us-east-1",
        credentials=_FrozenSource(Credentials("testing", "testing", None)),
        connections=4,
        on_clock_skew=told.append,
    )
    dynamo_proxy.clock_ahead = 20 * 60
    try:
        for _ in range(3):
            with pytest.raises(ClientError) as answer:  # past the signature check: moto's own answer
                await transport.call("DescribeTable", {"TableName": "no-such-table"})
            assert answer.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert dynamo_proxy.skew_refusals == 1
        assert len(told) == 1 and abs(told[0] - 1200) < 5

        # Refused for its time again, with a Date that says the clocks agree: nothing to correct.
        dynamo_proxy.clock_ahead = None
        expired = "Signature expired: 20261202T041000Z is now earlier than 20261202T042500Z"
        dynamo_proxy.answer_operations = {"DescribeTable": (400, "InvalidSignatureException", expired, 1200)}
        calls = dynamo_proxy.calls["DescribeTable"]
        with pytest.raises(ClientError) as refused:
            await transport.call("DescribeTable", {"TableName": "no-such-table"})
        assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert dynamo_proxy.calls["DescribeTable"] == calls + 1 and len(told) == 1
    finally:
        await transport.close()
