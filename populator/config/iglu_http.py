"""Iglu's HTTP repositories: one schema fetched by GET, with retries, a size cap and no leaked apikey.

`fetch_schema` asks one URL for one schema and says, in the user's terms, why nothing usable came
back and how long it took (`Fetched`); `redact_uri` drops any user:password@ from a URI before it
is shown. The resolver (`iglu.py`) decides which repository to ask, checks what comes back and
remembers it (`iglu_cache.py`).

Lookups are synchronous (`urllib.request`, a short timeout, two retries): configuration is read
once, before the job's event loop starts, and a resolution is at most a few small GETs in order,
so there is nothing to gain from asyncio here and it works from any caller, loop running or not.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from functools import cache
from typing import IO, TYPE_CHECKING

import orjson

from .secret import Secret

if TYPE_CHECKING:  # imported when first used (see _opener)
    import urllib.request
    from http.client import HTTPMessage

HTTP_TIMEOUT = 3.0  # seconds, per attempt
HTTP_RETRIES = 2  # after the first attempt: connection errors, timeouts, 408, 429 and 5xx
HTTP_BACKOFF = 0.2  # seconds before the first retry, doubled each time
MAX_SCHEMA_BYTES = 1 << 20

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Fetched:
    """What one schema's GET came to, retries included."""

    document: object  # the JSON document, or None
    problem: str  # why nothing usable came back; empty with a document
    seconds: float  # the time it took, retries and their pauses included
    access_refused: bool = False  # 401 or 403: an apikey the user may be correcting right now


def longest_wait() -> float:
    """How long a repository that never answers holds a lookup up: every attempt times out."""
    pauses: float = sum(HTTP_BACKOFF * 2**n for n in range(HTTP_RETRIES))
    return (1 + HTTP_RETRIES) * HTTP_TIMEOUT + pauses


@cache
def _opener() -> urllib.request.OpenerDirector:
    """urllib's opener, built on first use: only a resolver with an HTTP repository needs
    urllib.request and http.client (15 ms of imports on every start otherwise)."""
    import urllib.request

    class NoCredentialLeakRedirect(urllib.request.HTTPRedirectHandler):
        """Follow redirects, but carry the apikey only to the same host and port, never https → http."""

        def redirect_request(
            self,
            req: urllib.request.Request,
            fp: IO[bytes],
            code: int,
            msg: str,
            headers: HTTPMessage,
            newurl: str,
        ) -> urllib.request.Request | None:
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            old, target = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
            downgrade = old.scheme == "https" and target.scheme != "https"
            if new is not None and (target.netloc != old.netloc or downgrade):
                for name in list(new.headers):
                    if name.lower() == "apikey":
                        del new.headers[name]
            return new

    return urllib.request.build_opener(NoCredentialLeakRedirect)


def fetch_schema(url: str, apikey: Secret | None) -> Fetched:
    """GET `url` (with the repository's `apikey`, if any): the JSON document, or why not."""
    started = time.monotonic()
    document, problem, refused = _fetch(url, apikey)
    return Fetched(document, problem, time.monotonic() - started, refused)


def _fetch(url: str, apikey: Secret | None) -> tuple[object, str, bool]:
    import http.client
    import urllib.error
    import urllib.request

    headers = {"Accept": "application/json", "User-Agent": "populator"}
    if apikey is not None:
        headers["apikey"] = apikey.reveal()
    problem = ""
    attempts = 1 + HTTP_RETRIES
    for attempt in range(attempts):
        if attempt:
            time.sleep(HTTP_BACKOFF * 2 ** (attempt - 1))
        try:
            request = urllib.request.Request(url, headers=headers)
            with _opener().open(request, timeout=HTTP_TIMEOUT) as response:
                announced = response.length  # Content-Length, None when chunked
                if announced is not None and announced > MAX_SCHEMA_BYTES:
                    return None, "the response is larger than 1 MiB, not a schema", False
                # read() without a size checks the body against Content-Length (IncompleteRead).
                body = response.read() if announced is not None else response.read(MAX_SCHEMA_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return None, "not found (HTTP 404)", False
            if exc.code in (401, 403):
                return None, f"HTTP {exc.code}, access refused (check the repository's apikey)", True
            problem = f"HTTP {exc.code}"
            if exc.code not in _RETRYABLE_STATUS:
                return None, problem, False
            continue
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            # refused, DNS, timeout, reset, a truncated or garbled response…
            problem = _network_problem(exc)
            continue
        if len(body) > MAX_SCHEMA_BYTES:
            return None, "the response is larger than 1 MiB, not a schema", False
        try:
            return orjson.loads(body), "", False
        except orjson.JSONDecodeError:
            return None, "the response is not JSON", False
    return None, f"{problem} ({attempts} attempts)", False


def _network_problem(exc: BaseException) -> str:
    import http.client
    import urllib.error

    reason: str | BaseException = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {HTTP_TIMEOUT:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    if isinstance(reason, http.client.HTTPException):
        return f"a broken HTTP response ({type(reason).__name__})"
    return str(reason) or type(reason).__name__


def redact_uri(uri: str) -> str:
    """`uri` without any user:password@, for messages."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))
