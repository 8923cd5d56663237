"""Iglu lookups remembered between invocations, as Snowplow's resolvers remember them.

What an HTTP repository said about one schema (the schema, or why not: not found, no answer, a
server error) is kept for the resolver config's `cacheTtl` seconds, or `DEFAULT_TTL` when the
config has none (resolver-config 1-0-0 and 1-0-1, or `null`), so that a repository that does not
answer holds up one start, not every start. `cacheSize` 0 or `cacheTtl` 0 turns it off, as it
turns off Snowplow's cache.

One small JSON file per repository URI and schema key, in `cache_root()/iglu`: the directory of
`$POPULATOR_CACHE_DIR`, else `$XDG_CACHE_HOME/populator`, else `~/.cache/populator`; never the
working directory. An entry holds the repository's URI without user:password, the schema key,
when it was stored, and the schema or the problem; never the apikey. A file that cannot be read or
is not an entry is ignored (the next lookup replaces it); an entry is written to a temporary file
and renamed into place, so no reader sees half of one. Nothing here fails a run: `write` says why
it could not remember, and the caller tells the user when it matters.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .iglu_http import redact_uri
from .secret import Secret

logger = logging.getLogger("populator")

CACHE_DIR_ENV = "POPULATOR_CACHE_DIR"
DEFAULT_TTL = 600  # seconds: what Snowplow's documented resolver configs set
ENTRY_FORMAT = 1
MAX_ENTRY_BYTES = 2 << 20  # a schema is at most 1 MiB (iglu_http.MAX_SCHEMA_BYTES)


def cache_root() -> Path | None:
    """populator's cache directory, or None when there is no sensible one (no home directory)."""
    explicit = os.environ.get(CACHE_DIR_ENV, "")
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():  # a relative XDG_CACHE_HOME is invalid: ignored, as the spec says
        return Path(xdg) / "populator"
    try:
        home = Path.home()
    except (RuntimeError, KeyError):
        return None
    return home / ".cache" / "populator" if home.is_absolute() else None


def span(seconds: float) -> str:
    """A duration for people: `45 s`, `10 min`, `3 h`, `2 days`."""
    whole = max(0, round(seconds))
    if whole < 120:
        return f"{whole} s"
    if whole < 120 * 60:
        return f"{round(whole / 60)} min"
    if whole < 48 * 3600:
        return f"{round(whole / 3600)} h"
    return f"{round(whole / 86400)} days"


@dataclass(frozen=True)
class Entry:
    """What one repository said about one schema, and when (`time.time()`)."""

    stored_at: float
    schema: dict[str, Any] | None
    problem: str  # why there is no schema; empty with one


@dataclass(frozen=True)
class IgluCache:
    """Where and for how long lookups are remembered; `directory` None: they are not (`off` says why)."""

    directory: Path | None
    ttl: float
    off: str = ""

    @classmethod
    def for_resolver(cls, cache_size: float, cache_ttl: int | None) -> IgluCache:
        """The cache a resolver config asks for, in this environment's cache directory."""
        if not cache_size > 0:
            return cls(None, 0, "the resolver config's cacheSize is 0")
        if cache_ttl == 0:
            return cls(None, 0, "the resolver config's cacheTtl is 0")
        ttl = DEFAULT_TTL if cache_ttl is None else cache_ttl
        root = cache_root()
        if root is None:
            return cls(None, ttl, f"no home directory to keep a cache in; set {CACHE_DIR_ENV}")
        return cls(root / "iglu", ttl)

    def path(self, repository_uri: str, schema_key: str) -> Path | None:
        if self.directory is None:
            return None
        name = f"{_repository(repository_uri)}\n{schema_key}".encode()
        return self.directory / f"{hashlib.sha256(name).hexdigest()}.json"

    def fresh(self, entry: Entry, now: float) -> bool:
        """Stored less than `ttl` ago (an entry from the future, after the clock went back, is not)."""
        return 0 <= now - entry.stored_at < self.ttl

    def read(self, repository_uri: str, schema_key: str) -> Entry | None:
        """The entry kept for this repository and schema, fresh or not; None when there is none,
        or when the file cannot be read or is not an entry (it is ignored, and replaced later)."""
        path = self.path(repository_uri, schema_key)
        if path is None:
            return None
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_ENTRY_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return _ignored(path, f"cannot be read ({exc.strerror or type(exc).__name__})")
        if len(raw) > MAX_ENTRY_BYTES:
            return _ignored(path, "too large")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _ignored(path, "not JSON")
        entry = _entry(document, _repository(repository_uri), schema_key)
        return entry if entry is not None else _ignored(path, "not an entry for this repository and schema")

    def write(self, repository_uri: str, schema_key: str, entry: Entry, apikey: Secret | None) -> str:
        """Keep `entry` (a temporary file renamed into place): '' when kept, or why not."""
        path = self.path(repository_uri, schema_key)
        if path is None:
            return self.off
        body = orjson.dumps(
            {
                "format": ENTRY_FORMAT,
                "repository": _repository(repository_uri),
                "schema_key": schema_key,
                "stored_at": entry.stored_at,
                "schema": entry.schema,
                "problem": entry.problem,
            }
        )
        if apikey is not None and apikey.reveal() and apikey.reveal().encode() in body:
            return "what the repository served holds its apikey, which is never stored"
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(body)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            return f"cannot write {path.parent}: {exc.strerror or type(exc).__name__}"
        return ""


def _repository(uri: str) -> str:
    """A repository's URI as the cache knows it: no user:password, no trailing slash."""
    return redact_uri(uri).rstrip("/")


def _entry(document: Any, repository: str, schema_key: str) -> Entry | None:
    if not isinstance(document, dict):
        return None
    stored_at, schema, problem = document.get("stored_at"), document.get("schema"), document.get("problem")
    if (
        document.get("format") != ENTRY_FORMAT
        or document.get("repository") != repository
        or document.get("schema_key") != schema_key
        or isinstance(stored_at, bool)
        or not isinstance(stored_at, int | float)
        or not isinstance(problem, str)
        or not ((isinstance(schema, dict) and not problem) or (schema is None and problem))
    ):
        return None
    return Entry(float(stored_at), schema, problem)


def _ignored(path: Path, why: str) -> Entry | None:
    """No entry: the file at `path` is `why` (said at info level; the next lookup replaces it)."""
    logger.info("populator's Iglu cache file %s: %s; ignored, and replaced by the next lookup.", path, why)
    return None
