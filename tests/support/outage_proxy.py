"""A reverse proxy in front of moto that goes away: the network lost in the middle of a job.

It forwards every request to moto unchanged until a request of one of the operations in
:attr:`OutageProxy.down_at` arrives. Then it is down for good: that request's connection is
aborted without a byte of answer, every other connection is aborted at its next request, and
the listening socket is closed, so every new connection is refused (``ECONNREFUSED``), just as
an endpoint this machine has no route to any more. Point one service at it
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL_DYNAMODB``) to lose that service alone.

With :attr:`OutageProxy.hangs` set, it goes down as a black hole instead: connections are
still accepted and every request is read, but never a byte is answered (a route that drops
packets, a NAT gateway gone); only the client's read timeout ends each request. With
:attr:`OutageProxy.spare`, that many requests of the ``down_at`` operations pass before one
takes it down. :meth:`OutageProxy.come_back` ends either kind of outage.

Operations are named as the services name them: DynamoDB's from ``X-Amz-Target``
(``DescribeTable``, ``CreateTable``, ``BatchWriteItem``, ``PutItem``, ``BatchGetItem`` ...), S3's
as :func:`tests.support.s3_proxy.classify` names them (``ListObjectsV2``, ``GetObject``,
``PutObject`` ...).

Usage::

    proxy = OutageProxy(moto.url).start()
    proxy.down_at = frozenset({"BatchWriteItem"})   # DescribeTable, CreateTable pass; writes do not
    ...
    assert proxy.is_down and proxy.calls["BatchWriteItem"] >= 1
    proxy.stop()
"""

from __future__ import annotations

import asyncio
import collections

from aiohttp import web

from tests.support.loopback_proxy import Knob, LoopbackProxy, check_bool, check_budget, check_keys
from tests.support.s3_proxy import classify


class OutageProxy(LoopbackProxy):
    """Reverse proxy to ``upstream_url`` (a moto server) that goes down at the first request of
    an operation in :attr:`down_at`."""

    thread_name = "outage-proxy"

    #: operations whose first request takes the proxy down (None: never)
    down_at: Knob[frozenset[str] | None] = Knob(None, check_keys)
    #: requests of the ``down_at`` operations forwarded before the next one takes the proxy down
    spare: Knob[int] = Knob(0, check_budget)
    #: down as a black hole: requests are accepted and never answered (False: refused)
    hangs: Knob[bool] = Knob(False, check_bool)

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        #: operation -> requests received (forwarded or not)
        self.calls: collections.Counter[str] = collections.Counter()
        self._down = False
        self._back: asyncio.Event | None = None  # set on the proxy's loop when a black hole ends

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        operation = target.rpartition(".")[2] if target else classify(request.method, request.raw_path)[0]
        with self._lock:
            self.calls[operation] += 1
            going_down = not self._down and operation in (self.down_at or ())
            if going_down and self.spare > 0:
                self.spare, going_down = self.spare - 1, False
            self._down = self._down or going_down
            down, hangs = self._down, self.hangs
        if hangs and self._back is None:
            self._back = asyncio.Event()
        if going_down and not hangs:
            await self._stop_listening()
        if down:
            if hangs:
                assert self._back is not None
                await self._back.wait()  # the client gave up long ago: its connection is dropped
            if request.transport is not None:
                request.transport.abort()
            # The connection is gone: aiohttp's attempt to send this answer fails quietly.
            return web.Response(status=503)
        status, headers, payload = await self._upstream(request, body)
        return web.Response(status=status, headers=headers, body=payload)

    def come_back(self) -> None:
        """The network is back: listen again on the same port, and forward every request."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._listen_again(), self._loop).result(timeout=10)

    async def _listen_again(self) -> None:
        assert self._runner is not None
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        with self._lock:
            self.down_at = None
            self._down = False
            hangs = self.hangs
        if hangs:  # it never stopped listening: only the requests held are let go
            if self._back is not None:
                self._back.set()
            return
        await web.TCPSite(self._runner, host, int(port)).start()

    async def _stop_listening(self) -> None:
        """Close the listening sockets (new connections are refused) and every idle connection."""
        assert self._runner is not None
        for site in list(self._runner.sites):
            await site.stop()
        server = self._runner.server
        if server is not None:
            for handler in list(server.connections):
                handler.force_close()
