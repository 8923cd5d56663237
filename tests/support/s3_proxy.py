"""A fault-injecting reverse proxy for S3, in front of a moto server.

It speaks real HTTP on a loopback port (see :class:`~tests.support.loopback_proxy.LoopbackProxy`)
and forwards every request to moto unchanged, except the GetObject requests a fault knob
claims. Point only S3 at it, e.g. ``monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)``,
and upload test data straight to moto (faults are for the code under test).

Usage::

    proxy = S3Proxy(moto.url).start()
    proxy.reset_next = 1                   # the next GetObject breaks off mid-body (TCP reset)
    proxy.slowdown_next = 2                # then two 503 SlowDown
    ...
    assert proxy.gets == 4
    assert proxy.faults_injected["reset_next"] == 1
    proxy.stop()

Requests are classified from method, path and query. Against a loopback endpoint (an IP
address) botocore addresses buckets path-style, ``/<bucket>/<key>``; a virtual-hosted request
(bucket in the ``Host`` name) is not recognised and is simply forwarded. A *GetObject* is a
``GET`` with a key after the bucket and no sub-resource in the query: none of ``list-type``,
``prefix``, ``delimiter`` (listings) nor any other parameter that names another operation
(``acl``, ``tagging``, ``uploadId`` ...); the parameters GetObject itself takes (``versionId``,
``partNumber``, ``response-*``, botocore's ``x-id=GetObject``, presigned ``X-Amz-*``) are fine.

Fault knobs (all thread-safe, settable at any time, also while requests are in flight) are
budgets: each GetObject (of a key in :attr:`S3Proxy.targets`, when that is set) consumes one
unit of the first non-zero budget in this order and gets that fault instead of the object;
a budget at 0 is off. Other requests are never faulted and consume nothing; neither does a
reset or short body that cannot be applied (moto's answer is not a 200, or its body has fewer
than 2 bytes): that answer is passed on unchanged and the unit given back.

* ``slowdown_next``: 503 with S3's XML error ``SlowDown`` ("Please reduce your request rate.");
  botocore's standard retry mode retries it (as a throttle) on the same GET.
* ``server_error_next``: 500 with S3's XML error ``InternalError``; retried by botocore too.
* ``reset_next``: the object is fetched from moto and its real status and headers are sent
  (200, ``Content-Length`` of the whole object, ``ETag`` ...), then about half of the body,
  then the connection is reset (``SO_LINGER`` 0 and ``transport.abort()``: a TCP RST).
* ``short_body_next``: the same, but after half the body the connection is closed cleanly
  (a FIN): the body is shorter than its ``Content-Length``.
* ``drop_next``: the connection is aborted before a byte of answer (no status line): the GET
  got no answer at all, as when the network between goes away.

Reset and short body break off in the middle of the stream, after botocore has handed the
body to its caller, so only the caller's own read retry can get past them.

``targets`` (``None``, the default: every object) is a ``frozenset`` of object keys (without
the bucket) that faults are limited to; :meth:`S3Proxy.target` sets it from keys.

``deny_operations`` (``None``: off) is a ``frozenset`` of operation names (as ``calls`` counts
them: ``PutObject``, ``ListObjectsV2`` ...) answered 403 ``AccessDenied``, as S3 answers a
missing IAM permission; it applies to every request, not only GetObject, and takes no budget.

Counters: ``calls`` (operation -> requests received, faulted or not: ``GetObject``,
``HeadObject``, ``PutObject``, ``DeleteObject``, ``ListObjectsV2``, ``ListObjects``,
``CreateBucket``, ``HeadBucket``, ``ListBuckets``, otherwise ``"<METHOD> object|bucket|service"``),
:attr:`S3Proxy.gets` (GetObject requests), ``faults_injected`` (knob name -> faults answered)
and ``faulted_keys`` (object key -> faults answered). :meth:`S3Proxy.reset_counts` clears them;
:meth:`S3Proxy.reset_faults` turns every knob off.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import socket
import struct
import uuid
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from aiohttp import web

from tests.support.loopback_proxy import (
    DROP_RESPONSE_HEADERS,
    Knob,
    LoopbackProxy,
    check_budget,
    check_keys,
)

XML_CONTENT_TYPE = "application/xml"

#: Query parameters a GetObject request may carry; any other one names another operation.
GET_OBJECT_PARAMETERS = frozenset(
    {
        "versionId",
        "partNumber",
        "x-id",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
    }
)
#: How long a mid-body fault waits after sending the first half, so the client reads (and
#: parses) it before the connection breaks, as it would with a real network failure.
HALF_BODY_PAUSE_S = 0.05

_INTERNAL_ERROR_MESSAGE = "We encountered an internal error. Please try again."
_DROP_HEAD_RESPONSE_HEADERS = DROP_RESPONSE_HEADERS - {"content-length"}


class _Fault(enum.Enum):
    SLOWDOWN = "slowdown_next"
    SERVER_ERROR = "server_error_next"
    RESET = "reset_next"
    SHORT_BODY = "short_body_next"
    DROP = "drop_next"


class S3Proxy(LoopbackProxy):
    """Reverse proxy to ``upstream_url`` (a moto server) with S3 GetObject fault injection."""

    thread_name = "s3-proxy"

    slowdown_next: Knob[int] = Knob(0, check_budget)
    server_error_next: Knob[int] = Knob(0, check_budget)
    reset_next: Knob[int] = Knob(0, check_budget)
    short_body_next: Knob[int] = Knob(0, check_budget)
    drop_next: Knob[int] = Knob(0, check_budget)
    targets: Knob[frozenset[str] | None] = Knob(None, check_keys)
    deny_operations: Knob[frozenset[str] | None] = Knob(None, check_keys)
    #: operation → (HTTP status, error code, message): answered so (an answer populator has no
    #: special handling for)
    answer_operations: Knob[dict[str, tuple[int, str, str]] | None] = Knob(None, lambda name, value: None)

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self.calls: collections.Counter[str] = collections.Counter()
        self.faults_injected: collections.Counter[str] = collections.Counter()
        self.faulted_keys: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------ knobs, counters

    @property
    def gets(self) -> int:
        """GetObject requests received (faulted or not)."""
        with self._lock:
            return self.calls["GetObject"]

    def target(self, keys: Iterable[str] | None) -> None:
        """Limit faults to GetObject requests of these object keys (``None``: every object)."""
        self.targets = None if keys is None else frozenset(keys)

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faults_injected.clear()
            self.faulted_keys.clear()

    def reset_faults(self) -> None:
        with self._lock:
            self.slowdown_next = 0
            self.server_error_next = 0
            self.reset_next = 0
            self.short_body_next = 0
            self.drop_next = 0
            self.targets = None
            self.deny_operations = None

    def _admit(self, operation: str, key: str | None) -> _Fault | None:
        """Count the request and take one unit of the first fault budget that is set."""
        with self._lock:
            self.calls[operation] += 1
            if operation != "GetObject" or key is None:
                return None
            targets = self.targets
            if targets is not None and key not in targets:
                return None
            for fault in _Fault:
                remaining = getattr(self, fault.value)
                if remaining > 0:
                    setattr(self, fault.value, remaining - 1)
                    self.faults_injected[fault.value] += 1
                    self.faulted_keys[key] += 1
                    return fault
            return None

    # ------------------------------------------------------------------- serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        operation, key = classify(request.method, request.raw_path)
        fault = self._admit(operation, key)
        answers = self.answer_operations
        if answers is not None and operation in answers:
            status, code, message = answers[operation]
            return _error(status, code, message, request)
        denied = self.deny_operations
        if denied is not None and operation in denied:
            return _error(403, "AccessDenied", "Access Denied", request)
        if fault is _Fault.SLOWDOWN:
            return _error(503, "SlowDown", "Please reduce your request rate.", request)
        if fault is _Fault.SERVER_ERROR:
            return _error(500, "InternalError", _INTERNAL_ERROR_MESSAGE, request)
        if fault is _Fault.DROP:
            if request.transport is not None:
                request.transport.abort()  # not a byte of answer: as a request lost on the way
            return web.Response(status=503)  # never sent: the connection is gone
        if fault is _Fault.RESET or fault is _Fault.SHORT_BODY:
            assert key is not None
            return await self._break_off(request, body, fault, key)
        # HEAD answers carry the object's Content-Length without a body: keep moto's.
        drop = _DROP_HEAD_RESPONSE_HEADERS if request.method == "HEAD" else DROP_RESPONSE_HEADERS
        status, headers, payload = await self._upstream(request, body, drop_response_headers=drop)
        return web.Response(status=status, headers=headers, body=payload)

    def _refund(self, fault: _Fault, key: str) -> None:
        """Give back a unit of budget taken for a fault that could not be applied."""
        with self._lock:
            setattr(self, fault.value, getattr(self, fault.value) + 1)
            for counter, name in ((self.faults_injected, fault.value), (self.faulted_keys, key)):
                counter[name] -= 1
                if counter[name] <= 0:
                    del counter[name]

    async def _break_off(
        self, request: web.Request, body: bytes, fault: _Fault, key: str
    ) -> web.StreamResponse:
        """Send moto's real answer with only about half of its body, then break the connection."""
        status, headers, payload = await self._upstream(request, body)
        if status != 200 or len(payload) < 2:  # nothing to cut in half: answer as moto did
            self._refund(fault, key)
            return web.Response(status=status, headers=headers, body=payload)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        await asyncio.sleep(HALF_BODY_PAUSE_S)
        transport = request.transport
        if transport is not None:
            if fault is _Fault.RESET:
                sock = transport.get_extra_info("socket")
                if sock is not None:  # linger 0: close() sends a RST instead of a FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
        # The connection is gone: aiohttp's attempt to finish this response fails quietly.
        return response


def classify(method: str, raw_path: str) -> tuple[str, str | None]:
    """A path-style request -> (operation name, object key or None)."""
    path, _, query = raw_path.partition("?")
    bucket, _, key = path.lstrip("/").partition("/")
    params = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    object_key = unquote(key) if key else None
    if not bucket:
        return ("ListBuckets" if method == "GET" and not params else f"{method} service"), None
    if object_key is None:
        if method == "GET" and params & {"list-type", "prefix", "delimiter", "marker", "max-keys"}:
            return ("ListObjectsV2" if "list-type" in params else "ListObjects"), None
        if not params and method in _BUCKET_OPERATIONS:
            return _BUCKET_OPERATIONS[method], None
        if method == "GET" and not params:
            return "ListObjects", None
        return f"{method} bucket", None
    plain = all(name in GET_OBJECT_PARAMETERS or name.startswith("X-Amz-") for name in params)
    if plain and method in _OBJECT_OPERATIONS:
        return _OBJECT_OPERATIONS[method], object_key
    return f"{method} object", object_key


_BUCKET_OPERATIONS = {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}
_OBJECT_OPERATIONS = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}


def _error(status: int, code: str, message: str, request: web.Request) -> web.Response:
    """An error answered the way S3 answers it: an XML document and request ids."""
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(request.path)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    headers = {
        "Content-Type": XML_CONTENT_TYPE,
        "x-amz-request-id": request_id,
        "x-amz-id-2": uuid.uuid4().hex,
    }
    return web.Response(status=status, headers=headers, body=body)
