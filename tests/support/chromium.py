"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, no driver needed.

    with Chromium() as browser:
        view = browser.look(Path("run.html"), width=390, height=844, mobile=True,
                            evaluate={"fits": "document.documentElement.scrollWidth <= innerWidth"})
        assert not view.console_errors and view.values["fits"]

`look` opens the page in a new tab at that viewport, waits for its load event, evaluates each
expression (results by value, promises awaited), takes a screenshot of the whole page and
closes the tab. Console errors, uncaught exceptions and the browser's own error entries (a
resource that did not load, a blocked request) are collected as `console_errors`.

The browser is started with `--remote-debugging-port=0` and talked to through its websocket
with aiohttp. When `chromium` is not installed the test fails (never skips) and says how to
install it: `.ci/run` installs it, so that CI always runs these tests.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

INSTALL_HINT = "apt-get install -y chromium (.ci/run installs it when it is missing)"
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_binary() -> str:
    """The browser's path; fails the test (not skips it) when there is none."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"headless Chromium is needed to check the HTML report and is not installed: {INSTALL_HINT}")


@dataclass
class PageView:
    """What one look at a page found."""

    values: dict[str, Any]
    screenshot: bytes  # PNG, the whole page at the viewport's width
    console_errors: list[str] = field(default_factory=list)


class Chromium:
    def __init__(self, timeout: float = 60.0) -> None:
        self._timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="populator-chromium-")
        self._process: subprocess.Popen[str] | None = None
        self._url = ""

    def __enter__(self) -> Chromium:
        self._process = subprocess.Popen(
            [
                chromium_binary(),
                "--headless",
                "--no-sandbox",  # as root (CI), Chromium refuses to start with its sandbox
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + self._timeout
        assert self._process.stderr is not None
        seen = []
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            if not line and self._process.poll() is not None:
                break
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                self._url = match.group(1)
                # Keep reading stderr so that the browser never blocks on a full pipe.
                threading.Thread(target=self._process.stderr.read, daemon=True).start()
                return self
        self.__exit__()
        pytest.fail("chromium did not start its DevTools endpoint:\n" + "".join(seen[-20:]))

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        self._profile.cleanup()

    def look(
        self,
        page: Path,
        *,
        width: int,
        height: int,
        mobile: bool = False,
        evaluate: dict[str, str] | None = None,
        down_to: str | None = None,
    ) -> PageView:
        """`down_to`: a CSS selector; the screenshot ends at the bottom of that element."""
        return asyncio.run(
            asyncio.wait_for(self._look(page, width, height, mobile, evaluate or {}, down_to), self._timeout)
        )

    async def _look(
        self, page: Path, width: int, height: int, mobile: bool, evaluate: dict[str, str], down_to: str | None
    ) -> PageView:
        async with aiohttp.ClientSession() as http, http.ws_connect(self._url, max_msg_size=0) as ws:
            devtools = _DevTools(ws)
            target = (await devtools.call("Target.createTarget", url="about:blank"))["targetId"]
            attached = await devtools.call("Target.attachToTarget", targetId=target, flatten=True)
            session = attached["sessionId"]
            try:
                for domain in ("Page", "Runtime", "Log"):
                    await devtools.call(f"{domain}.enable", session=session)
                await devtools.call(
                    "Emulation.setDeviceMetricsOverride",
                    session=session,
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=mobile,
                )
                await devtools.call("Page.navigate", session=session, url=page.resolve().as_uri())
                await devtools.event("Page.loadEventFired", session)
                values = {name: await devtools.evaluate(session, code) for name, code in evaluate.items()}
                metrics = await devtools.call("Page.getLayoutMetrics", session=session)
                bottom = metrics["cssContentSize"]["height"]
                if down_to is not None:
                    where = f"document.querySelector({down_to!r}).getBoundingClientRect().bottom + 16"
                    bottom = min(bottom, await devtools.evaluate(session, where))
                shot = await devtools.call(
                    "Page.captureScreenshot",
                    session=session,
                    format="png",
                    captureBeyondViewport=True,
                    clip={"x": 0, "y": 0, "width": width, "height": bottom, "scale": 1},
                )
                return PageView(values, base64.b64decode(shot["data"]), devtools.console_errors(session))
            finally:
                await devtools.call("Target.closeTarget", targetId=target)


class _DevTools:
    """Commands and their answers over one websocket; events kept as they come."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self._ws.send_json(message)
        while True:
            answer = await self._receive()
            if answer.get("id") == ident:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))

    async def event(self, method: str, session: str) -> dict[str, Any]:
        for seen in self.events:
            if seen.get("method") == method and seen.get("sessionId") == session:
                return seen
        while True:
            message = await self._receive()
            if message.get("method") == method and message.get("sessionId") == session:
                return message

    async def evaluate(self, session: str, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", session=session, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self, session: str) -> list[str]:
        errors = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                said = (arg.get("value", arg.get("description")) for arg in params["args"])
                errors.append(" ".join(map(str, said)))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(str(details.get("exception", {}).get("description") or details.get("text")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(f"{params['entry'].get('source')}: {params['entry'].get('text')}")
        return errors

    async def _receive(self) -> dict[str, Any]:
        message = await self._ws.receive_json()
        if "method" in message:
            self.events.append(message)
        return dict(message)
