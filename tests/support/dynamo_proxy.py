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

Where moto differs from DynamoDB, the proxy answers as DynamoDB documents:

* ``ConsumedCapacity``: moto answers a BatchWriteItem that asks for it with 1.0 unit whatever
  it stored. The proxy answers, as DynamoDB does, one write unit per 1 KB (rounded up) of each
  item stored, one entry per table; a PutItem gets its item's units. ``strip_consumed_capacity``
  removes the field altogether (an endpoint that never reports it).
* ``ThrottlingReasons``: every throttling error the proxy makes (the budgets above and
  ``limit_capacity``) carries ``throttling_reasons`` when that knob is set, each as
  ``{"reason": ..., "resource": <the table's ARN>}``, as DynamoDB has since 2025.
* ``describe_table_extra``: fields merged into every DescribeTable's ``Table``, for what moto
  does not model (``OnDemandThroughput``, ``WarmThroughput``).
* ``ImportTable`` / ``DescribeImport`` (always on): moto ignores ``ClientToken``, accepts an
  import into a table that exists (its import thread then fails), answers a 500 for an unknown
  ARN, and ends an import with any item error ``FAILED``. The proxy answers as DynamoDB
  documents: a token seen before with the same parameters returns that import (it is not
  started again; with other parameters, 400 ``IdempotentParameterMismatchException``); an
  existing table is 400 ``ResourceInUseException``; an unknown ARN 400
  ``ImportNotFoundException``; item errors without a failure code leave the import
  ``COMPLETED`` with its ``ErrorCount`` (the errors go to CloudWatch). ``imports_started``
  counts the imports moto was asked to start.
* ``ImportTable``'s answer is ``IN_PROGRESS`` (DynamoDB answers as the import starts; moto's
  import may be over before its answer is made).
* ``hold_imports``: while True, every import is reported ``IN_PROGRESS`` with nothing processed
  (a DynamoDB import takes minutes at least; moto's is over at once), to test waiting on one
  and reattaching to it; set it back to False and the next DescribeImport tells moto's outcome.

* ``clock_ahead`` (seconds, None: off): the proxy's clock, as AWS's, is this far ahead of this
  machine's, and it checks every request's signing time as DynamoDB does (moto checks none): a
  request whose ``X-Amz-Date`` is more than 5 minutes from it is refused, 400
  ``InvalidSignatureException`` with DynamoDB's own message ("Signature expired: … is now earlier
  than … (… - 5 min.)", or "Signature not yet current: …"), and the answer's ``Date`` is that clock.
  ``skew_refusals`` counts them. ``skew_operations`` (None: all) limits the check to those
  operations: a clock that steps after the run's setup, when only writes are left to make.

Counters: ``calls`` (operation name from ``X-Amz-Target`` -> requests received, faulted or
not; requests without the header count under ``""``) and ``unprocessed_items_returned``.
:meth:`reset_counts` clears both; :meth:`reset_faults` turns every knob off.
"""

from __future__ import annotations

import calendar
import collections
import email.utils
import enum
import json
import math
import time
import uuid
import zlib
from typing import Any

from aiohttp import web

from tests.support.loopback_proxy import (
    Knob,
    LoopbackProxy,
    check_bool,
    check_budget,
    check_keys,
    check_optional_budget,
    check_share,
)

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
WRITE_OPERATIONS = frozenset({"BatchWriteItem", "PutItem"})

_THROUGHPUT_TYPE = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
_THROTTLING_TYPE = "com.amazon.coral.availability#ThrottlingException"
_SERVER_ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#InternalServerError"


SKEW_ALLOWED_SECONDS = 300  # DynamoDB refuses a request signed more than 5 minutes off its clock


class _Fault(enum.Enum):
    DROP = "drop_next"
    SERVER_ERROR = "server_error_next"
    THROTTLING_EXCEPTION = "throttling_exception_next"
    THROTTLE = "throttle_next"


def _check_reasons(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, tuple) or not all(isinstance(v, str) for v in value)):
        raise ValueError(f"{name} must be None or a tuple of str, got {value!r}")


def _check_seconds(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ValueError(f"{name} must be None or a number of seconds, got {value!r}")


def _check_mapping(name: str, value: object) -> None:
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be None or a dict, got {value!r}")


class DynamoProxy(LoopbackProxy):
    """Reverse proxy to ``upstream_url`` (a moto server) with DynamoDB fault injection."""

    thread_name = "dynamo-proxy"

    unprocessed_share: Knob[float] = Knob(0.0, check_share)
    unprocessed_requests: Knob[int | None] = Knob(None, check_optional_budget)
    throttle_next: Knob[int] = Knob(0, check_budget)
    throttling_exception_next: Knob[int] = Knob(0, check_budget)
    server_error_next: Knob[int] = Knob(0, check_budget)
    drop_next: Knob[int] = Knob(0, check_budget)
    #: operations answered 400 AccessDeniedException, as DynamoDB does for a missing IAM permission
    deny_operations: Knob[frozenset[str] | None] = Knob(None, check_keys)
    strip_consumed_capacity: Knob[bool] = Knob(False, check_bool)
    throttling_reasons: Knob[tuple[str, ...] | None] = Knob(None, _check_reasons)
    describe_table_extra: Knob[dict[str, Any] | None] = Knob(None, _check_mapping)
    hold_imports: Knob[bool] = Knob(False, check_bool)
    #: operation → (HTTP status, error code, message): answered so, whatever the request (an
    #: answer populator has no special handling for, as AWS may give one any day)
    answer_operations: Knob[dict[str, Any] | None] = Knob(None, _check_mapping)
    #: seconds this DynamoDB's clock is ahead of the machine's, signing times checked (None: off)
    clock_ahead: Knob[float | None] = Knob(None, _check_seconds)
    skew_operations: Knob[frozenset[str] | None] = Knob(None, check_keys)

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self.calls: collections.Counter[str] = collections.Counter()
        #: access key ids seen in SigV4 ``Authorization`` headers, with how many requests used each
        self.access_keys: collections.Counter[str] = collections.Counter()
        self._unprocessed_items_returned = 0
        self.skew_refusals = 0  # requests refused for their signing time (see ``clock_ahead``)
        self._items_stored = 0
        #: token bucket of items/s for writes (None: unlimited); see ``limit_capacity``
        self._capacity: float | None = None
        self._tokens = 0.0
        self._refilled = time.monotonic()
        #: ImportTable's ClientToken → (its other parameters, the import's ARN)
        self._import_tokens: dict[str, tuple[str, str]] = {}
        self._imports_started = 0

    # ------------------------------------------------------------ knobs, counters

    @property
    def unprocessed_items_returned(self) -> int:
        with self._lock:
            return self._unprocessed_items_returned

    @property
    def imports_started(self) -> int:
        """ImportTable requests forwarded to moto (a repeated token is answered here)."""
        with self._lock:
            return self._imports_started

    @property
    def items_stored(self) -> int:
        """Items moto acknowledged through this proxy (BatchWriteItem puts and PutItems)."""
        with self._lock:
            return self._items_stored

    def limit_capacity(self, items_per_second: float | None) -> None:
        """A token bucket of ``items_per_second`` (one second deep) in front of every write:
        a BatchWriteItem gets as many items stored as there are tokens, the rest back in
        ``UnprocessedItems``; with no token at all, ProvisionedThroughputExceededException."""
        with self._lock:
            self._capacity = items_per_second
            self._tokens = items_per_second or 0.0
            self._refilled = time.monotonic()

    def _take_tokens(self, wanted: int) -> int | None:
        """How many of ``wanted`` items the bucket admits now (None: no limit)."""
        with self._lock:
            if self._capacity is None:
                return None
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self._capacity)
            self._refilled = now
            granted = min(wanted, int(self._tokens))
            self._tokens -= granted
            return granted

    def _count_stored(self, count: int) -> None:
        with self._lock:
            self._items_stored += count

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.access_keys.clear()
            self._unprocessed_items_returned = 0
            self._items_stored = 0
            self._imports_started = 0

    def reset_faults(self) -> None:
        self.unprocessed_share = 0.0
        self.unprocessed_requests = None
        self.throttle_next = 0
        self.throttling_exception_next = 0
        self.server_error_next = 0
        self.drop_next = 0
        self.deny_operations = None
        self.strip_consumed_capacity = False
        self.throttling_reasons = None
        self.describe_table_extra = None
        self.hold_imports = False

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
        ahead, checked = self.clock_ahead, self.skew_operations
        if (
            ahead is not None
            and (checked is None or operation in checked)
            and (refusal := self._signed_too_far_off(request, ahead)) is not None
        ):
            with self._lock:
                self.calls[operation] += 1
                self.skew_refusals += 1
            return refusal
        answers = self.answer_operations
        if answers is not None and operation in answers:
            with self._lock:
                self.calls[operation] += 1
            status, code, message, *clock = answers[operation]
            response = _error(status, f"com.amazonaws.dynamodb.v20120810#{code}", message)
            if clock:  # an AWS whose clock is this many seconds from ours
                response.headers["Date"] = email.utils.formatdate(time.time() + clock[0], usegmt=True)
            return response
        denied = self.deny_operations
        if denied is not None and operation in denied:
            with self._lock:
                self.calls[operation] += 1
            return _error(
                400,
                "com.amazon.coral.service#AccessDeniedException",
                f"User: arn:aws:iam::123456789012:user/test is not authorized to perform: "
                f"dynamodb:{operation} on resource: table (injected)",
            )
        fault = self._admit(operation)
        if fault is _Fault.DROP:
            return self._drop(request)
        if fault is _Fault.SERVER_ERROR:
            return _error(500, _SERVER_ERROR_TYPE, "Internal server error (injected)")
        if fault is _Fault.THROTTLING_EXCEPTION:
            return self._throttle_error(_THROTTLING_TYPE, "Rate of requests exceeds the allowed throughput.")
        if fault is _Fault.THROTTLE:
            return self._throughput_exceeded()
        if operation == "BatchWriteItem":
            response = await self._batch_write_with_unprocessed(request, body)
            return self._as_dynamodb_counts(body, response)
        if operation == "PutItem":
            if self._take_tokens(1) == 0:
                return self._throughput_exceeded()
            response = await self._forward(request, body)
            if response.status == 200:
                self._count_stored(1)
            return self._as_dynamodb_counts(body, response)
        if operation == "DescribeTable" and self.describe_table_extra:
            return self._describe_with_extra(await self._forward(request, body))
        if operation == "ImportTable":
            return await self._import_table(request, body)
        if operation == "DescribeImport":
            return await self._describe_import(request, body)
        return await self._forward(request, body)

    # ---------------------------------------------- where moto differs from DynamoDB

    @staticmethod
    def _signed_too_far_off(request: web.Request, ahead: float) -> web.Response | None:
        """DynamoDB's answer to a request signed more than 5 minutes from its clock, or None."""
        stamp = request.headers.get("X-Amz-Date", "")
        try:
            signed = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return None  # not signed this way: not this check's business
        now = time.time() + ahead

        def fmt(at: float) -> str:
            return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))

        if signed < now - SKEW_ALLOWED_SECONDS:
            message = f"Signature expired: {stamp} is now earlier than {fmt(now - 300)} ({fmt(now)} - 5 min.)"
        elif signed > now + SKEW_ALLOWED_SECONDS:
            later = f"{fmt(now + 300)} ({fmt(now)} + 5 min.)"
            message = f"Signature not yet current: {stamp} is still later than {later}"
        else:
            return None
        response = _error(400, "com.amazon.coral.service#InvalidSignatureException", message)
        response.headers["Date"] = email.utils.formatdate(now, usegmt=True)
        return response

    def _throttle_error(self, error_type: str, message: str) -> web.Response:
        document: dict[str, Any] = {"__type": error_type, "message": message}
        reasons = self.throttling_reasons
        if reasons:
            resource = "arn:aws:dynamodb:us-east-1:123456789012:table/manifest"
            document["ThrottlingReasons"] = [{"reason": reason, "resource": resource} for reason in reasons]
        return _json_response(400, document)

    def _throughput_exceeded(self) -> web.Response:
        return self._throttle_error(
            _THROUGHPUT_TYPE,
            "The level of configured provisioned throughput for the table was exceeded. "
            "Consider increasing your provisioning level with the UpdateTable API.",
        )

    def _as_dynamodb_counts(self, body: bytes, response: web.Response) -> web.Response:
        """ConsumedCapacity as DynamoDB reports it: one unit a KB of each item stored."""
        if response.status != 200:
            return response
        try:
            request = json.loads(body)
            answer = json.loads(response.body) if response.body else {}  # type: ignore[arg-type]
        except ValueError:
            return response
        answer.pop("ConsumedCapacity", None)
        if request.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES") and not self.strip_consumed_capacity:
            if "RequestItems" in request:
                unprocessed = answer.get("UnprocessedItems") or {}
                consumed = []
                for table, entries in request["RequestItems"].items():
                    left = {json.dumps(e, sort_keys=True) for e in unprocessed.get(table, [])}
                    units = sum(
                        write_units(entry["PutRequest"]["Item"])
                        for entry in entries
                        if "PutRequest" in entry and json.dumps(entry, sort_keys=True) not in left
                    )
                    consumed.append({"TableName": table, "CapacityUnits": float(units)})
                answer["ConsumedCapacity"] = consumed
            else:
                answer["ConsumedCapacity"] = {
                    "TableName": request["TableName"],
                    "CapacityUnits": float(write_units(request["Item"])),
                }
        return _json_response(200, answer)

    def _describe_with_extra(self, response: web.Response) -> web.Response:
        if response.status != 200:
            return response
        answer = json.loads(response.body)  # type: ignore[arg-type]
        answer["Table"].update(self.describe_table_extra or {})
        return _json_response(200, answer)

    async def _import_table(self, request: web.Request, body: bytes) -> web.Response:
        try:
            document = json.loads(body)
            table = document["TableCreationParameters"]["TableName"]
        except (ValueError, KeyError, TypeError):
            return await self._forward(request, body)  # let moto reject it
        token = document.get("ClientToken")
        parameters = json.dumps({k: v for k, v in document.items() if k != "ClientToken"}, sort_keys=True)
        with self._lock:
            known = self._import_tokens.get(token) if token else None
        if known is not None:
            if known[0] != parameters:
                return _error(
                    400,
                    "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                    "The client token was used before with other parameters.",
                )
            status, payload = await self._call(request, "DescribeImport", {"ImportArn": known[1]})
            if status != 200:
                return _json_response(status, json.loads(payload) if payload else {})
            return _json_response(200, self._as_dynamodb_import(json.loads(payload)))
        status, _ = await self._call(request, "DescribeTable", {"TableName": table})
        if status == 200:
            in_use = "com.amazonaws.dynamodb.v20120810#ResourceInUseException"
            return _error(400, in_use, f"Table already exists: {table}")
        response = await self._forward(request, body, identity=True)
        if response.status != 200:
            return response
        answer = json.loads(response.body)  # type: ignore[arg-type]
        with self._lock:
            self._imports_started += 1
            if token:
                self._import_tokens[token] = (parameters, answer["ImportTableDescription"]["ImportArn"])
        started = self._as_dynamodb_import(answer)
        # DynamoDB answers ImportTable as the import starts; moto's may be over already (its
        # thread raced the answer), which would leave a caller nothing to poll, now and then.
        description = started["ImportTableDescription"]
        description["ImportStatus"] = "IN_PROGRESS"
        for ended in ("FailureCode", "FailureMessage", "EndTime"):
            description.pop(ended, None)
        return _json_response(200, started)

    async def _describe_import(self, request: web.Request, body: bytes) -> web.Response:
        response = await self._forward(request, body, identity=True)
        if response.status >= 500:  # moto's KeyError for an ARN it does not know
            return _error(400, "com.amazonaws.dynamodb.v20120810#ImportNotFoundException", "Import not found")
        if response.status != 200:
            return response
        return _json_response(200, self._as_dynamodb_import(json.loads(response.body)))  # type: ignore[arg-type]

    def _as_dynamodb_import(self, answer: dict[str, Any]) -> dict[str, Any]:
        description = answer.get("ImportTableDescription", {})
        if self.hold_imports:
            description.update(
                ImportStatus="IN_PROGRESS",
                ProcessedItemCount=0,
                ImportedItemCount=0,
                ErrorCount=0,
                ProcessedSizeBytes=0,
            )
            description.pop("FailureCode", None)
            description.pop("FailureMessage", None)
        elif (
            description.get("ImportStatus") == "FAILED"
            and not description.get("FailureCode")
            and description.get("ErrorCount")
        ):
            description["ImportStatus"] = "COMPLETED"  # item errors: logged to CloudWatch, not a failure
            description.pop("FailureMessage", None)
        for field in ("FailureCode", "FailureMessage"):
            if description.get(field) is None:
                description.pop(field, None)
        return answer

    async def _call(
        self, request: web.Request, operation: str, document: dict[str, Any]
    ) -> tuple[int, bytes]:
        """Another DynamoDB operation sent to moto, with the request's credentials."""
        assert self._session is not None
        headers = {
            "Content-Type": JSON_CONTENT_TYPE,
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
            "Authorization": request.headers.get("Authorization", ""),
            "Accept-Encoding": "identity",
        }
        async with self._session.post(
            self.upstream_url + "/", data=json.dumps(document).encode(), headers=headers
        ) as response:
            return response.status, await response.read()

    async def _forward(self, request: web.Request, body: bytes, *, identity: bool = False) -> web.Response:
        status, headers, payload = await self._upstream(request, body, identity=identity)
        return web.Response(status=status, headers=headers, body=payload)

    async def _batch_write_with_unprocessed(self, request: web.Request, body: bytes) -> web.Response:
        try:
            document = json.loads(body)
            request_items: dict[str, list[Any]] = document["RequestItems"]
            flat = [(table, entry) for table, entries in request_items.items() for entry in entries]
        except (ValueError, KeyError, TypeError, AttributeError):
            return await self._forward(request, body)  # let moto reject it
        withheld_count = self._take_unprocessed_count(len(flat))
        granted = self._take_tokens(len(flat) - withheld_count)
        if granted == 0 and flat:
            return self._throughput_exceeded()
        if granted is not None:
            withheld_count = len(flat) - granted
        if withheld_count == 0:
            response = await self._forward(request, body)
            if response.status == 200:
                self._count_stored(len(flat) - _unprocessed_in(response))
            return response
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
        self._count_stored(len(kept) - sum(len(entries) for entries in merged.values()))
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


def write_units(item: dict[str, Any]) -> int:
    """DynamoDB's write units for storing `item` (attribute-value JSON): one a KB, rounded up.

    The size is the documented one: each attribute's name in UTF-8 bytes plus its value's size
    (a string's UTF-8 bytes; a number's (digits + 1) / 2 + 1 bytes).
    """
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            digits = len(value["N"].lstrip("-").replace(".", ""))
            size += (digits + 1) // 2 + 1
        else:
            size += len(json.dumps(value).encode())
    return max(1, math.ceil(size / 1024))


def _unprocessed_in(response: web.Response) -> int:
    """Items moto itself left unprocessed in a forwarded BatchWriteItem response."""
    try:
        document = json.loads(response.body) if response.body else {}  # type: ignore[arg-type]
    except ValueError:
        return 0
    return sum(len(entries) for entries in (document.get("UnprocessedItems") or {}).values())


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
