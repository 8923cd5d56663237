"""A fault-injecting reverse proxy for DynamoDB, in front of a moto server.

It speaks real HTTP on a loopback port and forwards every request to moto unchanged,
except when a fault knob says otherwise. It runs an aiohttp server in its own thread with
its own event loop, so synchronous tests, subprocess tests (point ``AWS_ENDPOINT_URL`` or
an ``endpoint_url`` at :attr:`DynamoProxy.url`) and async tests can all use it.

Usage::

    proxy = DynamoProxy(moto.url).start()
    proxy.unprocessed_share = 0.4          # every BatchWriteItem: 40 % of items come back
    proxy.throttle_next = 2                # the next 2 writes: ProvisionedThroughputExceeded
    ...
    assert proxy.calls["BatchWriteItem"] == 3
    proxy.stop()

Fault knobs (all thread-safe, settable at any time, also while requests are in flight):

* Write faults (``drop_next``, ``server_error_next``, ``throttling_exception_next``,
  ``throttle_next``) are budgets: each *write request* (an operation in
  :data:`WRITE_OPERATIONS`: BatchWriteItem, PutItem) consumes one unit of the first
  non-zero budget in that order and gets that fault instead of being forwarded; a budget
  at 0 is off. Other operations are never faulted and consume nothing. ``drop_next``
  reads the whole request, then closes the connection without a byte of response (botocore
  and aiobotocore raise ``ConnectionClosedError``); the error faults answer like DynamoDB
  (JSON ``__type``/``message``, ``x-amz-crc32``): 400 ProvisionedThroughputExceededException,
  400 ThrottlingException, 500 InternalServerError.
* ``unprocessed_share`` (0.0 .. 1.0) applies to BatchWriteItem requests that got no write
  fault. For a request of ``n`` items, ``k`` items are withheld from moto and returned in
  ``UnprocessedItems``; the rest is forwarded in a rewritten body:

  - share 1.0: ``k = n`` (nothing forwarded, a 200 with everything unprocessed);
  - 0 < share < 1 and ``n > 1``: ``k = share * n`` rounded half up, clamped to ``1 .. n - 1``, so
    every request is partially processed: a client that resubmits unprocessed items
    always makes progress and terminates;
  - 0 < share < 1 and ``n == 1``: ``k = 0`` (the item is forwarded);
  - the withheld items are the *last* ``k`` of the request (tables in request order).

* ``unprocessed_requests`` limits how many requests get that treatment: ``None``
  (default) means every BatchWriteItem while ``unprocessed_share > 0``; an integer ``N``
  is a budget: the next ``N`` requests that have at least one item withheld, after
  which (budget 0) the treatment stops until the budget is raised or set back to ``None``.
  (Deviation from the original sketch, where 0 meant "all": with a count-down, 0 must mean
  "spent", otherwise a spent budget would switch the treatment on for everything.)
  :meth:`unprocess_next` sets both knobs at once.

If moto rejects a rewritten BatchWriteItem, its error is returned as is (nothing counted
as unprocessed). If moto cannot be reached, the proxy answers 502.

Counters: ``calls`` (operation name from ``X-Amz-Target`` -> requests received, faulted or
not; requests without the header count under ``""``) and ``unprocessed_items_returned``.
:meth:`reset_counts` clears both; :meth:`reset_faults` turns every knob off.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import math
import threading
import uuid
import zlib
from typing import Any, Generic, TypeVar

import aiohttp
from aiohttp import web
from yarl import URL

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
WRITE_OPERATIONS = frozenset({"BatchWriteItem", "PutItem"})

_THROUGHPUT_TYPE = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
_THROTTLING_TYPE = "com.amazon.coral.availability#ThrottlingException"
_SERVER_ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#InternalServerError"

# Never forwarded in either direction (RFC 9110 hop-by-hop) or recomputed by aiohttp.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_DROP_REQUEST_HEADERS = _HOP_BY_HOP | {"host", "content-length"}
_DROP_RESPONSE_HEADERS = _HOP_BY_HOP | {"content-length", "date", "server"}

_T = TypeVar("_T")


class _Fault(enum.Enum):
    DROP = "drop_next"
    SERVER_ERROR = "server_error_next"
    THROTTLING_EXCEPTION = "throttling_exception_next"
    THROTTLE = "throttle_next"


class _Knob(Generic[_T]):
    """An attribute read and written under the owner's lock, validated on write."""

    def __init__(self, default: _T, check: Any) -> None:
        self._default = default
        self._check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._attr = f"_knob_{name}"

    def __get__(self, obj: DynamoProxy | None, objtype: type | None = None) -> _T:
        if obj is None:
            return self  # type: ignore[return-value]
        with obj._lock:
            return getattr(obj, self._attr, self._default)

    def __set__(self, obj: DynamoProxy, value: _T) -> None:
        self._check(self._name, value)
        with obj._lock:
            setattr(obj, self._attr, value)


def _budget(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")


def _optional_budget(name: str, value: object) -> None:
    if value is not None:
        _budget(name, value)


def _share(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0.0, 1.0], got {value!r}")


class DynamoProxy:
    """Reverse proxy to ``upstream_url`` (a moto server) with DynamoDB fault injection."""

    unprocessed_share: _Knob[float] = _Knob(0.0, _share)
    unprocessed_requests: _Knob[int | None] = _Knob(None, _optional_budget)
    throttle_next: _Knob[int] = _Knob(0, _budget)
    throttling_exception_next: _Knob[int] = _Knob(0, _budget)
    server_error_next: _Knob[int] = _Knob(0, _budget)
    drop_next: _Knob[int] = _Knob(0, _budget)

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self._lock = threading.RLock()
        self.calls: collections.Counter[str] = collections.Counter()
        #: access key ids seen in SigV4 ``Authorization`` headers, with how many requests used each
        self.access_keys: collections.Counter[str] = collections.Counter()
        self._unprocessed_items_returned = 0
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("DynamoProxy.url is only known after start()")
        return self._url

    def start(self) -> DynamoProxy:
        if self._thread is not None:
            raise RuntimeError("DynamoProxy already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve_start())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="dynamo-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError("DynamoProxy failed to start") from failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._serve_stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> DynamoProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve_start(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,  # bodies and Content-Encoding pass through untouched
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def _serve_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------ knobs, counters

    @property
    def unprocessed_items_returned(self) -> int:
        with self._lock:
            return self._unprocessed_items_returned

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.access_keys.clear()
            self._unprocessed_items_returned = 0

    def reset_faults(self) -> None:
        self.unprocessed_share = 0.0
        self.unprocessed_requests = None
        self.throttle_next = 0
        self.throttling_exception_next = 0
        self.server_error_next = 0
        self.drop_next = 0

    def unprocess_next(self, requests: int | None, share: float = 1.0) -> None:
        """Withhold ``share`` of the items of the next ``requests`` BatchWriteItem requests
        (``None``: of every one)."""
        with self._lock:
            self.unprocessed_share = share
            self.unprocessed_requests = requests

    def _admit(self, operation: str) -> _Fault | None:
        """Count the request and take one unit of the first write fault budget that is set."""
        with self._lock:
            self.calls[operation] += 1
            if operation not in WRITE_OPERATIONS:
                return None
            for fault in _Fault:
                remaining = getattr(self, fault.value)
                if remaining > 0:
                    setattr(self, fault.value, remaining - 1)
                    return fault
            return None

    def _take_unprocessed_count(self, item_count: int) -> int:
        """How many of a BatchWriteItem's ``item_count`` items to withhold (budget taken)."""
        with self._lock:
            share = self.unprocessed_share
            budget = self.unprocessed_requests
            if share <= 0.0 or item_count == 0 or budget == 0:
                return 0
            if share >= 1.0:
                count = item_count
            elif item_count == 1:
                count = 0
            else:
                count = min(max(math.floor(share * item_count + 0.5), 1), item_count - 1)
            if count and budget is not None:
                self.unprocessed_requests = budget - 1
            return count

    # ------------------------------------------------------------------- serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        operation = target.rpartition(".")[2]
        credential = request.headers.get("Authorization", "").partition("Credential=")[2]
        if credential:
            with self._lock:
                self.access_keys[credential.partition("/")[0]] += 1
        fault = self._admit(operation)
        if fault is _Fault.DROP:
            return self._drop(request)
        if fault is _Fault.SERVER_ERROR:
            return _error(500, _SERVER_ERROR_TYPE, "Internal server error (injected)")
        if fault is _Fault.THROTTLING_EXCEPTION:
            return _error(400, _THROTTLING_TYPE, "Rate of requests exceeds the allowed throughput.")
        if fault is _Fault.THROTTLE:
            return _error(
                400,
                _THROUGHPUT_TYPE,
                "The level of configured provisioned throughput for the table was exceeded. "
                "Consider increasing your provisioning level with the UpdateTable API.",
            )
        if operation == "BatchWriteItem" and self.unprocessed_share > 0.0:
            return await self._batch_write_with_unprocessed(request, body)
        return await self._forward(request, body)

    async def _forward(self, request: web.Request, body: bytes, *, identity: bool = False) -> web.Response:
        status, headers, payload = await self._upstream(request, body, identity=identity)
        return web.Response(status=status, headers=headers, body=payload)

    async def _upstream(
        self, request: web.Request, body: bytes, *, identity: bool = False
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._session is not None
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _DROP_REQUEST_HEADERS
        ]
        if identity:  # we must read and rewrite the response body
            headers = [(n, v) for n, v in headers if n.lower() != "accept-encoding"]
            headers.append(("Accept-Encoding", "identity"))
        url = URL(self.upstream_url + request.raw_path, encoded=True)
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=body, allow_redirects=False
            ) as response:
                payload = await response.read()
                response_headers = [
                    (name, value)
                    for name, value in response.headers.items()
                    if name.lower() not in _DROP_RESPONSE_HEADERS
                ]
                return response.status, response_headers, payload
        except aiohttp.ClientError as exc:  # upstream down: say so, like a gateway would
            message = f"DynamoProxy could not reach {self.upstream_url}: {exc!r}".encode()
            return 502, [("Content-Type", "text/plain")], message

    async def _batch_write_with_unprocessed(self, request: web.Request, body: bytes) -> web.Response:
        try:
            document = json.loads(body)
            request_items: dict[str, list[Any]] = document["RequestItems"]
            flat = [(table, entry) for table, entries in request_items.items() for entry in entries]
        except (ValueError, KeyError, TypeError, AttributeError):
            return await self._forward(request, body)  # let moto reject it
        withheld_count = self._take_unprocessed_count(len(flat))
        if withheld_count == 0:
            return await self._forward(request, body)
        kept, withheld = flat[: len(flat) - withheld_count], flat[len(flat) - withheld_count :]
        unprocessed = _group(withheld)

        if not kept:
            result: dict[str, Any] = {"UnprocessedItems": unprocessed}
            self._count_unprocessed(withheld_count)
            return _json_response(200, result)

        document["RequestItems"] = _group(kept)
        new_body = json.dumps(document, separators=(",", ":")).encode()
        status, headers, payload = await self._upstream(request, new_body, identity=True)
        if status != 200:  # the whole request failed: nothing was "unprocessed"
            return web.Response(status=status, headers=headers, body=payload)
        result = json.loads(payload) if payload else {}
        merged: dict[str, list[Any]] = result.get("UnprocessedItems") or {}
        for table, entries in unprocessed.items():
            merged.setdefault(table, []).extend(entries)
        result["UnprocessedItems"] = merged
        self._count_unprocessed(withheld_count)
        passthrough = [
            (name, value)
            for name, value in headers
            if name.lower() not in {"content-type", "content-encoding", "x-amz-crc32"}
        ]
        return _json_response(200, result, passthrough)

    def _count_unprocessed(self, count: int) -> None:
        with self._lock:
            self._unprocessed_items_returned += count

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without sending a byte of response."""
        transport = request.transport
        if transport is not None:
            transport.close()
        # Nothing reaches the client: the transport is closed, aiohttp discards this.
        return web.Response(status=599)


def _group(entries: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for table, entry in entries:
        grouped.setdefault(table, []).append(entry)
    return grouped


def _json_response(status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> web.Response:
    body = json.dumps(document, separators=(",", ":")).encode()
    out = list(headers or [])
    names = {name.lower() for name, _ in out}
    if "x-amzn-requestid" not in names:
        out.append(("x-amzn-RequestId", uuid.uuid4().hex.upper()))
    out.append(("Content-Type", JSON_CONTENT_TYPE))
    out.append(("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF)))
    return web.Response(status=status, headers=out, body=body)


def _error(status: int, error_type: str, message: str) -> web.Response:
    return _json_response(status, {"__type": error_type, "message": message})
