"""A static Iglu registry over real HTTP on a loopback port, for resolver tests.

Serves `GET {prefix}/schemas/<vendor>/<name>/<format>/<version>` from a directory laid out as an
Iglu repository (`<root>/schemas/<vendor>/...`), records every request's path and headers, and can
be told to answer with an error status or to require an apikey::

    with IgluServer(registry_root) as server:
        server.url            # http://127.0.0.1:<port>  (the repository's `uri`)
        server.requests       # [Request(path, headers), ...]
        server.fail_with = 500
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # names lower-cased

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class IgluServer:
    """A threading HTTP server serving `root` as an Iglu repository under `prefix` (e.g. "/api")."""

    def __init__(self, root: Path, *, prefix: str = "", apikey: str | None = None) -> None:
        self.root = Path(root)
        self.prefix = prefix.rstrip("/")
        self.apikey = apikey  # when set, a request without this apikey header gets 401
        self.fail_with: int | None = None  # when set, every request gets this status
        self.body_override: bytes | None = None  # when set, served instead of the file (status 200)
        # when set, a request outside `prefix` gets a 302 to this base URL + the request path
        self.redirect_to: str | None = None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="iglu-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def start(self) -> IgluServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> IgluServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()})
                with server._lock:
                    server.requests.append(request)
                if server.fail_with is not None:
                    return self._send(server.fail_with, b'{"message": "injected failure"}')
                if server.apikey is not None and request.header("apikey") != server.apikey:
                    return self._send(401, b'{"message": "Not authorized"}')
                inside_prefix = bool(server.prefix) and self.path.startswith(f"{server.prefix}/")
                if server.redirect_to is not None and not inside_prefix:
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if server.body_override is not None:
                    return self._send(200, server.body_override)
                if not self.path.startswith(f"{server.prefix}/schemas/"):
                    return self._send(404, b'{"message": "The resource could not be found."}')
                relative = self.path[len(server.prefix) + 1 :]
                target = (server.root / relative).resolve()
                if server.root.resolve() not in target.parents or not target.is_file():
                    return self._send(404, b'{"message": "The schema is not found"}')
                self._send(200, target.read_bytes())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler


def make_registry(root: Path, *, schemas: dict[str, dict[str, Any]] | None = None) -> Path:
    """Lay out an Iglu repository at `root`: `schemas` maps `vendor/name/format/version` → schema.

    Without `schemas`, it holds copies of the schemas bundled with populator.
    """
    import json
    import shutil

    from populator.config.iglu import BUNDLED_REGISTRY_PATH

    root.mkdir(parents=True, exist_ok=True)
    if schemas is None:
        shutil.copytree(BUNDLED_REGISTRY_PATH / "schemas", root / "schemas", dirs_exist_ok=True)
    for path, schema in (schemas or {}).items():
        target = root / "schemas" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, indent=2))
    return root
