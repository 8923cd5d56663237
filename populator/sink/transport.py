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
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from botocore.exceptions import ClientError

from .sigv4 import Credentials, RequestSigner

# aiobotocore ships no annotations (pyproject's mypy overrides): its DynamoDB client is `Any` here.

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
_SNAKE = {"BatchWriteItem": "batch_write_item", "PutItem": "put_item"}


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
    ) -> None:
        self._url = endpoint_url.rstrip("/") + "/"
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
        headers = await self._signed_headers(operation, body)
        async with self._session.post(self._url, data=body, headers=headers, proxy=self._proxy) as response:
            payload = await response.read()
            status = response.status
            crc = response.headers.get("x-amz-crc32")
        if crc is not None and int(crc) != zlib.crc32(payload) & 0xFFFFFFFF:
            raise ResponseCorrupted(f"{operation} response failed its CRC32 check")
        document = orjson.loads(payload) if payload else {}
        if status >= 300:
            raise _client_error(operation, status, document)
        return document

    async def _signed_headers(self, operation: str, body: bytes) -> dict[str, str]:
        # Frozen per request: a refreshable provider hands out new keys before the old expire.
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(frozen, TARGET_PREFIX + operation, body)
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


def _client_error(operation: str, status: int, document: object) -> ClientError:
    """A DynamoDB JSON error → the ClientError botocore would have raised."""
    kind = str(document.get("__type", "")) if isinstance(document, dict) else ""
    code = kind.rpartition("#")[2] or f"HTTP{status}"
    message = ""
    if isinstance(document, dict):
        message = str(document.get("message") or document.get("Message") or "")
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if isinstance(document, dict) and isinstance(document.get("ThrottlingReasons"), list):
        response["ThrottlingReasons"] = document["ThrottlingReasons"]  # modelled: botocore keeps it too
    # botocore takes any error dict; its stubs' TypedDict wants every ResponseMetadata field, and
    # has no ThrottlingReasons.
    return ClientError(response, operation)  # type: ignore[arg-type]
