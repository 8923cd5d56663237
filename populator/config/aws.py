"""AWS sessions and clients, created the standard way, and AWS errors in the user's terms.

Nothing here sets an endpoint: botocore resolves `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`,
`AWS_ENDPOINT_URL_DYNAMODB`, profiles, regions and the credential chain on its own, and that is
exactly what a user of the AWS CLI expects.
"""

from __future__ import annotations

import email.utils
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidProxiesConfigError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from ..errors import (
    ACCESS_DENIED_CODES,
    AwsAccessError,
    AwsRefused,
    EndpointUnreachable,
    UsageError,
    aws_error_code,
    is_clock_skew,
    retry_later,
)
from .storage import AwsSettings

# aiobotocore ships no annotations (pyproject's mypy overrides): its sessions and clients are `Any`.

DEFAULT_S3_REGION = "us-east-1"
S3_ATTEMPTS = 6  # a first try and botocore's 5 retries
# Seconds without a byte of answer before a request is given up (`--request-timeout` sets both):
# a DynamoDB write answers in milliseconds, where an S3-compatible store under load may not.
S3_READ_TIMEOUT = 60.0
DYNAMODB_READ_TIMEOUT = 20.0
CONNECT_TIMEOUT = 10.0
OPERATION_PERMISSIONS = {
    "ListObjectsV2": "s3:ListBucket on the archive's bucket",
    "GetObject": "s3:GetObject on the archive's objects",
    "HeadObject": "s3:GetObject on the archive's objects",
    "DescribeTable": "dynamodb:DescribeTable on the table",
    "CreateTable": "dynamodb:CreateTable (the table does not exist yet)",
    "UpdateTimeToLive": "dynamodb:UpdateTimeToLive on the new table",
    "BatchWriteItem": "dynamodb:BatchWriteItem on the table",
    "PutItem": "dynamodb:PutItem on the table (--conditional)",
    "BatchGetItem": "dynamodb:BatchGetItem on the table",
}


def new_session(profile: str | None) -> AioSession:
    try:
        return AioSession(profile=profile)
    except ProfileNotFound:
        raise UsageError(f"AWS profile {profile!r} is not in your AWS config or credentials file.") from None


def s3_client(session: AioSession, settings: AwsSettings, *, attempts: int | None = None) -> Any:
    """An async S3 client context manager; botocore's standard retries cover GET and LIST.

    Six attempts a request, unless the user set their own (`AWS_MAX_ATTEMPTS`, or `max_attempts`
    in the profile), as for the AWS CLI; `attempts` overrides both (a status snapshot, replaced
    seconds later, is not worth long retries).
    """
    attempts = attempts or session.get_config_variable("max_attempts") or S3_ATTEMPTS
    config = AioConfig(
        max_pool_connections=settings.pool_size,
        retries={"mode": "standard", "total_max_attempts": int(attempts)},
        read_timeout=settings.request_timeout or S3_READ_TIMEOUT,
        connect_timeout=min(CONNECT_TIMEOUT, settings.request_timeout or CONNECT_TIMEOUT),
    )
    region = session.get_config_variable("region") or DEFAULT_S3_REGION
    return session.create_client("s3", region_name=region, config=config)


def s3_client_for(profile: str | None, connections: int, *, attempts: int | None = None) -> Any:
    """`s3_client` for work that needs S3 alone (the run's record under `--log-path`, status
    snapshots, a stored report): its own session of `profile`, `connections` at most."""
    settings = AwsSettings(profile=profile, dynamodb_region="", dynamodb_keys=None, pool_size=connections)
    return s3_client(new_session(profile), settings, attempts=attempts)


def dynamodb_client(session: AioSession, settings: AwsSettings) -> Any:
    """An async DynamoDB client context manager.

    botocore's own retries are switched off: the writers retry with their own budget, and every
    throttle must reach them (and the rate controller) instead of being absorbed silently.
    """
    config = AioConfig(
        max_pool_connections=settings.pool_size,
        retries={"mode": "standard", "total_max_attempts": 1},
        read_timeout=settings.request_timeout or DYNAMODB_READ_TIMEOUT,
        connect_timeout=min(CONNECT_TIMEOUT, settings.request_timeout or CONNECT_TIMEOUT),
    )
    keys = settings.dynamodb_keys
    return session.create_client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        aws_access_key_id=keys.access_key_id if keys else None,
        aws_secret_access_key=keys.secret_access_key.reveal() if keys else None,
        config=config,
    )


def translate(
    exc: BaseException,
    *,
    action: str,
    permission: str,
    identity: str,
    endpoints: Sequence[Endpoint] = (),
) -> UsageError | None:
    """An AWS error a user can fix → a UsageError that says what to fix; None otherwise.

    `endpoints` are the services the failed work talks to, the likeliest first: they name the
    service and endpoint when this machine cannot reach it.
    """
    unreachable = connection_failure(exc, endpoints)
    if unreachable is not None:
        return unreachable
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsAccessError(
            f"No AWS credentials found for {action} ({identity}). Configure the default chain "
            "(environment, ~/.aws, instance profile), pass --profile, or put keys in the storage config."
        )
    if isinstance(exc, ProfileNotFound):
        return UsageError(f"{exc}. List your profiles with `aws configure list-profiles`.")
    if isinstance(exc, NoRegionError):
        return UsageError(f"No AWS region is configured for {action}. Set AWS_REGION or pass --profile.")
    if isinstance(exc, ClientError):
        code = aws_error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if is_clock_skew(code, message):
            return UsageError(
                f"AWS refused {action}: {clock_offset(exc)}, and AWS refuses requests signed more than "
                f"5 minutes off its time ({code} on {exc.operation_name}: {message}). Fix this "
                "machine's time (NTP: chrony or systemd-timesyncd, or the Amazon Time Sync Service at "
                "169.254.169.123), then run the same command."
            )
        if code in ACCESS_DENIED_CODES:
            # The refused call says exactly which permission is missing.
            permission = OPERATION_PERMISSIONS.get(exc.operation_name, permission)
            return AwsAccessError(
                f"AWS refused {action} for {identity} ({code} on {exc.operation_name}). Check the "
                f"credentials, and that the identity is allowed {permission}."
            )
    return None


def clock_offset(exc: ClientError) -> str:
    """How far this machine's clock is from AWS's, from the answer's Date header, in words."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    raw = headers.get("date") if isinstance(headers, dict) else None
    try:
        aws_time = email.utils.parsedate_to_datetime(str(raw)).timestamp() if raw else None
    except (TypeError, ValueError):
        aws_time = None
    if aws_time is None:
        return "this machine's clock is off AWS's (the answer carried no Date to say by how much)"
    offset = time.time() - aws_time
    minutes = abs(offset) / 60
    direction = "ahead of" if offset > 0 else "behind"
    return f"this machine's clock is {minutes:.0f} minutes {direction} AWS's (from the answer's Date)"


def refusal(exc: ClientError, action: str, *, resource: str = "") -> AwsRefused:
    """Any other answer from AWS, in the user's terms: the operation, the resource, AWS's code and
    message, and what to do. Never "a bug": AWS answered, populator understood."""
    code = aws_error_code(exc) or "an error"
    message = str(exc.response.get("Error", {}).get("Message", "")).strip() or "(no message)"
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    where = f" on {resource}" if resource else ""
    if retry_later(code, int(status or 0)):
        advice = (
            "AWS kept answering so after populator's retries with backoff: it is throttling or an "
            "outage on AWS's side. Run the same command later: it resumes where this one stopped."
        )
    elif code == "UnknownOperationException":
        advice = (
            "This endpoint or region does not offer that operation: check the region (awsRegion in the "
            "storage config) and AWS_ENDPOINT_URL* settings."
        )
    else:
        advice = "Fix what AWS names, then run the same command."
    return AwsRefused(
        f"{action}: AWS answered {exc.operation_name}{where} with {code} (HTTP {status}): {message}. {advice}"
    )


@dataclass(frozen=True)
class Endpoint:
    """A service as one client reaches it: for naming it when it cannot be reached."""

    service: str  # "S3" or "DynamoDB"
    url: str  # the endpoint the client resolved (AWS_ENDPOINT_URL* included)
    region: str

    @classmethod
    def of(cls, service: str, client: Any) -> Endpoint:
        return cls(service, str(client.meta.endpoint_url), str(client.meta.region_name))


# What failed, in words, by the kind of error (the first match wins: subclasses first).
_FAILURES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((InvalidProxiesConfigError,), "could not use the proxy configuration"),
    (
        (ProxyConnectionError, aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError),
        "could not connect through the proxy",
    ),
    ((SSLError, aiohttp.ClientSSLError, ssl.SSLError), "the TLS handshake failed"),
    ((socket.gaierror, aiohttp.ClientConnectorDNSError), "the host name does not resolve in DNS"),
    ((ConnectTimeoutError, aiohttp.ConnectionTimeoutError), "the connection timed out"),
    (
        (ReadTimeoutError, aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError),
        "it connected, but no answer came in time",
    ),
    (
        (ConnectionClosedError, ResponseStreamingError, aiohttp.ServerDisconnectedError),
        "the connection was closed before a complete answer came",
    ),
    ((EndpointConnectionError, BotocoreConnectionError, aiohttp.ClientConnectionError), "could not connect"),
)
_TLS = "the TLS handshake failed"
_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")


def connection_failure(exc: BaseException, endpoints: Sequence[Endpoint] = ()) -> EndpointUnreachable | None:
    """A connection, DNS, TLS, timeout or proxy failure (after botocore's retries) → one paragraph
    naming the service, the endpoint tried, what failed and what to check; None for other errors."""
    what = _what_failed(exc)
    if what is None:
        return None
    inner = _inner(exc)
    # The underlying error may say more than botocore's wrapper: a DNS failure under "could not connect".
    below = _what_failed(inner) if inner is not exc else None
    if below is not None and below != "could not connect":
        what = below
    proxy = _origin(str(_kwargs(exc).get("proxy_url") or ""))
    if proxy:
        what = f"{what} {proxy}"
    tried = _origin(str(_kwargs(exc).get("endpoint_url") or ""))
    endpoint = _matching(tried, endpoints)
    service = endpoint.service if endpoint else "AWS"
    url = tried or (_origin(endpoint.url) if endpoint else "")
    where = f" at {url}" if url else ""
    region = f" (region {endpoint.region})" if endpoint and endpoint.region else ""
    cause = _reason(inner)
    variable = f"AWS_ENDPOINT_URL_{service.upper()}" if endpoint else "AWS_ENDPOINT_URL_<SERVICE>"
    vpc = f"a VPC endpoint for {service}" if endpoint else "a VPC endpoint"
    tls = (
        ", that AWS_CA_BUNDLE names the CA of a TLS-inspecting proxy if there is one" if what == _TLS else ""
    )
    return EndpointUnreachable(
        f"Cannot reach {service}{where}{region}: {what}{f' ({cause})' if cause else ''}. This is the "
        "network or this machine's AWS configuration, not the data: check that this machine has a "
        f"route to the endpoint (a private subnet needs a NAT gateway or {vpc}), "
        f"that the region is right, that AWS_ENDPOINT_URL and {variable} are unset or name a reachable "
        f"endpoint{tls}, and, if the network needs one, that HTTPS_PROXY (and NO_PROXY) name a "
        "working proxy."
    )


def _what_failed(exc: BaseException) -> str | None:
    return next((what for types, what in _FAILURES if isinstance(exc, types)), None)


def _kwargs(exc: BaseException) -> dict[str, object]:
    kwargs = getattr(exc, "kwargs", None)  # botocore keeps what its message was made of
    return kwargs if isinstance(kwargs, dict) else {}


def _inner(exc: BaseException) -> BaseException:
    """The lowest-level error: what botocore wrapped, and the OS error under aiohttp's."""
    error = _kwargs(exc).get("error")
    inner = error if isinstance(error, BaseException) else exc
    os_error = getattr(inner, "os_error", None)
    return os_error if isinstance(os_error, OSError) else inner


def _reason(inner: BaseException) -> str:
    """A short reason (`Connect call failed ...`, `Name or service not known`), never a credential
    (a proxy URL may carry a user and password)."""
    if _kwargs(inner):
        return ""  # still botocore's own wrapper: its message only repeats the URL
    text = getattr(inner, "strerror", None) or str(inner)
    return _USERINFO.sub("", " ".join(str(text).split()))[:200]


def _origin(url: str) -> str:
    """`scheme://host[:port]` of a URL: no path, no query and never a user or password."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = _port(url)
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:  # not a number: shown without it
        return None


def _matching(tried: str, endpoints: Sequence[Endpoint]) -> Endpoint | None:
    """The endpoint the failed request went to (S3 may have put the bucket in front of its host),
    else the first one given."""
    host, port = urlsplit(tried).hostname or "", _port(tried)
    for endpoint in endpoints:
        their = urlsplit(endpoint.url).hostname or ""
        same_host = bool(host and their) and (host == their or host.endswith("." + their))
        if same_host and port == _port(endpoint.url):
            return endpoint
    return endpoints[0] if endpoints else None
