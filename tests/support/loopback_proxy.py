"""A reverse proxy on a loopback port, in front of a moto server: the base of the fault injectors.

:class:`LoopbackProxy` speaks real HTTP on ``127.0.0.1`` and an OS-chosen port. It runs an
aiohttp server in its own thread with its own event loop, so synchronous tests, subprocess
tests (point an ``AWS_ENDPOINT_URL*`` variable or an ``endpoint_url`` at :attr:`~LoopbackProxy.url`)
and async tests can all use it. A subclass decides what to do with each request by
implementing :meth:`LoopbackProxy._handle`, usually forwarding with :meth:`LoopbackProxy._upstream`
unless a fault knob says otherwise.

Fault knobs are :class:`Knob` class attributes: read and written under the proxy's lock,
validated on write (:func:`check_budget`, :func:`check_optional_budget`, :func:`check_share`,
:func:`check_keys`), so a test may set them at any time, also while requests are in flight.

Usage (a subclass)::

    class MyProxy(LoopbackProxy):
        fail_next: Knob[int] = Knob(0, check_budget)

        async def _handle(self, request: web.Request) -> web.StreamResponse:
            body = await request.read()
            status, headers, payload = await self._upstream(request, body)
            return web.Response(status=status, headers=headers, body=payload)

    with MyProxy(moto.url) as proxy:
        ...  # requests to proxy.url reach moto
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Collection
from typing import Any, Generic, Self, TypeVar

import aiohttp
from aiohttp import web
from yarl import URL

# Never forwarded in either direction (RFC 9110 hop-by-hop) or recomputed by aiohttp.
HOP_BY_HOP_HEADERS = frozenset(
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
DROP_REQUEST_HEADERS = HOP_BY_HOP_HEADERS | {"host", "content-length"}
DROP_RESPONSE_HEADERS = HOP_BY_HOP_HEADERS | {"content-length", "date", "server"}

_T = TypeVar("_T")


class Knob(Generic[_T]):
    """An attribute read and written under the owner's lock, validated on write.

    ``check(name, value)`` raises ``ValueError`` for a value the knob does not accept.
    """

    def __init__(self, default: _T, check: Callable[[str, Any], None]) -> None:
        self._default = default
        self._check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._attr = f"_knob_{name}"

    def __get__(self, obj: LoopbackProxy | None, objtype: type | None = None) -> _T:
        if obj is None:
            return self  # type: ignore[return-value]
        with obj._lock:
            return getattr(obj, self._attr, self._default)

    def __set__(self, obj: LoopbackProxy, value: _T) -> None:
        self._check(self._name, value)
        with obj._lock:
            setattr(obj, self._attr, value)


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def check_budget(name: str, value: object) -> None:
    """A count-down: an int >= 0 (0 is off)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")


def check_optional_budget(name: str, value: object) -> None:
    """A budget, or ``None``."""
    if value is not None:
        check_budget(name, value)


def check_share(name: str, value: object) -> None:
    """A number in [0.0, 1.0]."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0.0, 1.0], got {value!r}")


def check_keys(name: str, value: object) -> None:
    """``None``, or a frozenset of strings."""
    if value is None:
        return
    if not isinstance(value, frozenset) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be None or a frozenset of str, got {value!r}")


class LoopbackProxy:
    """Reverse proxy to ``upstream_url`` (a moto server); subclasses implement :meth:`_handle`."""

    #: name of the thread serving the proxy (shows up in thread dumps)
    thread_name = "loopback-proxy"

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self._lock = threading.RLock()
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__}.url is only known after start()")
        return self._url

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
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
        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"{type(self).__name__} failed to start") from failure[0]
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

    def __enter__(self) -> Self:
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

    # ------------------------------------------------------------------- serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request (runs on the proxy's event loop)."""
        raise NotImplementedError

    async def _upstream(
        self,
        request: web.Request,
        body: bytes,
        *,
        identity: bool = False,
        drop_response_headers: Collection[str] = DROP_RESPONSE_HEADERS,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send ``request`` (with ``body``) to the upstream and read its whole response.

        Returns status, headers (without those in ``drop_response_headers``) and body.
        ``identity`` asks for an uncompressed body (for a caller that rewrites it).
        If the upstream cannot be reached: 502 with a plain-text explanation.
        """
        assert self._session is not None
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in DROP_REQUEST_HEADERS
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
                    if name.lower() not in drop_response_headers
                ]
                return response.status, response_headers, payload
        except aiohttp.ClientError as exc:  # upstream down: say so, like a gateway would
            message = f"{type(self).__name__} could not reach {self.upstream_url}: {exc!r}".encode()
            return 502, [("Content-Type", "text/plain")], message
