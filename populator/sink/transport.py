"""How a DynamoDB write request reaches the wire: through botocore, or signed and posted directly.

Both transports take an operation name and its JSON parameters and return the parsed response,
raising botocore's `ClientError` for an error response, so retry and throttle handling above
them is the same.

`SignedHttpTransport` exists because botocore's request machinery (parameter validation,
serialisation, event hooks) costs about 1.8 ms of CPU per BatchWriteItem, which caps one process
near 14k items/s. It keeps what botocore gives that matters: credentials come from botocore's
own provider chain (refreshed when they expire), the endpoint and region are the ones the
botocore client resolved (so `AWS_ENDPOINT_URL_DYNAMODB` and friends still apply), so is the
proxy (`HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` exempts the host, or the profile's), and requests
are signed with SigV4 exactly as botocore's signer signs them (`sigv4.py`, tested against it).
Bodies are serialised with orjson, responses are checked against DynamoDB's `x-amz-crc32` as
botocore does.

One thing botocore does not do, and the Java, JS and Go SDKs do: when DynamoDB refuses a request
because its signing time is too far from AWS's clock (this machine's clock stepped, a VM paused),
the request is signed again with AWS's time, taken from the refusal's `Date`, and sent once more;
later requests keep that offset. The caller is told (`on_clock_skew`), so the operator is asked
to fix NTP.
"""

from __future__ import annotations

import email.utils
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from botocore.exceptions import ClientError

from ..errors import is_clock_skew
from .sigv4 import Credentials, RequestSigner

# aiobotocore ships no annotations (pyproject's mypy overrides): its DynamoDB client is `Any` here.

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
_SNAKE = {"BatchWriteItem": "batch_write_item", "PutItem": "put_item"}
# An offset this close to the one a request was signed with is not news (Date has whole seconds).
_OFFSET_SLACK_SECONDS = 30.0


class Transport(Protocol):
    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class CredentialSource(Protocol):
    """aiobotocore's credentials, static or refreshable: the keys to sign one request with."""

    async def get_frozen_credentials(self) -> Credentials:
        """botocore's `ReadOnlyCredentials`, which has `Credentials`' fields."""
        ...


class BotocoreTransport:
    """Requests through an aiobotocore client: the reference path."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await getattr(self._client, _SNAKE[operation])(**params)
        return result

    async def close(self) -> None:
        return None


class ResponseCorrupted(aiohttp.ClientError):
    """The response body does not match its CRC32: treated like a dropped connection."""


class SignedHttpTransport:
    """Requests signed with SigV4 and posted on a shared aiohttp session."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        credentials: CredentialSource,
        connections: int,
        read_timeout: float = 20.0,
        connect_timeout: float = 10.0,
        user_agent: str = "populator",
        proxy: str | None = None,
        on_clock_skew: Callable[[float], None] | None = None,
    ) -> None:
        self._url = endpoint_url.rstrip("/") + "/"
        self._clock_offset = 0.0  # seconds AWS's clock is ahead of this machine's
        self._on_clock_skew = on_clock_skew
        self._proxy = proxy
        self._signer = RequestSigner(self._url, region, "dynamodb", CONTENT_TYPE)
        self._credentials = credentials
        self._user_agent = user_agent
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout),
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(params)
        resigned = False  # sent again once at most, with AWS's time
        while True:
            signed_with = self._clock_offset
            headers = await self._signed_headers(operation, body, signed_with)
            async with self._session.post(
                self._url, data=body, headers=headers, proxy=self._proxy
            ) as response:
                payload = await response.read()
                status = response.status
                crc = response.headers.get("x-amz-crc32")
                date = response.headers.get("Date")
            if crc is not None and int(crc) != zlib.crc32(payload) & 0xFFFFFFFF:
                raise ResponseCorrupted(f"{operation} response failed its CRC32 check")
            document = orjson.loads(payload) if payload else {}
            if status < 300:
                return document
            error = _client_error(operation, status, document, date)
            if resigned or not self._took_aws_time(error, date, signed_with):
                raise error
            resigned = True

    def _took_aws_time(self, error: ClientError, date: str | None, signed_with: float) -> bool:
        """A refusal for the signing time: take AWS's clock from its Date, unless the request was
        signed with that clock already (then the refusal stands). Requests in flight when the
        clock stepped are each signed again; the new offset is told once."""
        detail = error.response.get("Error", {})
        if not date or not is_clock_skew(str(detail.get("Code", "")), str(detail.get("Message", ""))):
            return False
        try:
            aws_now = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return False
        offset = aws_now - time.time()
        if abs(offset - signed_with) < _OFFSET_SLACK_SECONDS:
            return False  # signed with AWS's time already: something else is wrong
        if abs(offset - self._clock_offset) >= _OFFSET_SLACK_SECONDS:
            self._clock_offset = offset
            if self._on_clock_skew is not None:
                self._on_clock_skew(offset)
        return True

    async def _signed_headers(self, operation: str, body: bytes, clock_offset: float = 0.0) -> dict[str, str]:
        # Frozen per request: a refreshable provider hands out new keys before the old expire.
        frozen = await self._credentials.get_frozen_credentials()
        now = datetime.fromtimestamp(time.time() + clock_offset, UTC) if clock_offset else None
        headers = self._signer.headers(frozen, TARGET_PREFIX + operation, body, now)
        headers["User-Agent"] = self._user_agent
        return headers

    async def close(self) -> None:
        await self._session.close()


def proxy_for(endpoint_url: str, configured: dict[str, str] | None = None) -> str | None:
    """The proxy botocore would use for `endpoint_url`: the client config's `proxies`, else
    HTTP(S)_PROXY unless NO_PROXY exempts the host. Resolved once, not per request."""
    from botocore.utils import get_environ_proxies

    scheme = urlsplit(endpoint_url).scheme or "https"
    proxies = configured if configured else get_environ_proxies(endpoint_url)
    return proxies.get(scheme) or None


def _client_error(operation: str, status: int, document: object, date: str | None = None) -> ClientError:
    """A DynamoDB JSON error → the ClientError botocore would have raised."""
    kind = str(document.get("__type", "")) if isinstance(document, dict) else ""
    code = kind.rpartition("#")[2] or f"HTTP{status}"
    message = ""
    if isinstance(document, dict):
        message = str(document.get("message") or document.get("Message") or "")
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        # The Date: what a clock-skew refusal is measured by (config/aws.py), as botocore keeps it.
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {"date": date} if date else {}},
    }
    if isinstance(document, dict) and isinstance(document.get("ThrottlingReasons"), list):
        response["ThrottlingReasons"] = document["ThrottlingReasons"]  # modelled: botocore keeps it too
    # botocore takes any error dict; its stubs' TypedDict wants every ResponseMetadata field, and
    # has no ThrottlingReasons.
    return ClientError(response, operation)  # type: ignore[arg-type]
