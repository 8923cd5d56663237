"""Iglu, as Snowplow apps use it: schema keys, the resolver config, the repositories' lookup order.

`parse_resolver_config` turns a resolver config document (validated against the bundled
`resolver-config` schema) into a `ResolverConfig`; `ResolverConfig.resolve` finds a schema in its
repositories the way Iglu clients do, falling back to the schemas bundled with populator only when
no repository answers. An HTTP repository is asked through `iglu_http`, and what it said is
remembered for the config's `cacheTtl` through `iglu_cache` (so a repository that does not answer
holds up one start, not every start; a lookup that waits on the network says so); an embedded one
is read here. `validation` checks an instance against the schema found and words the problems.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import orjson
from jsonschema import Draft4Validator
from jsonschema.exceptions import SchemaError

from ..errors import ConfigError
from . import iglu_http
from .iglu_cache import Entry, IgluCache, span
from .iglu_http import Fetched, fetch_schema, redact_uri
from .secret import Secret
from .validation import format_path, shorten, validate

logger = logging.getLogger("populator")

SELF_DESCRIBING_META_SCHEMA = (
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
)
RESOLVER_SCHEMA_PREFIX = "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/"
SUPPORTED_RESOLVER_VERSIONS = ("1-0-0", "1-0-1", "1-0-2", "1-0-3")
#: The package directory is itself an embedded Iglu repository: `<this>/schemas/<vendor>/...`.
BUNDLED_REGISTRY_PATH = Path(__file__).resolve().parent
BUNDLED = "the copy bundled with populator"
#: An HTTP lookup that has not answered after this long is announced while it waits.
WAIT_NOTICE_SECONDS = 1.0

_SCHEMA_VER = r"[1-9][0-9]*-(?:0|[1-9][0-9]*)-(?:0|[1-9][0-9]*)"
_IGLU_URI = re.compile(rf"iglu:([a-zA-Z0-9\-_.]+)/([a-zA-Z0-9\-_]+)/([a-zA-Z0-9\-_]+)/({_SCHEMA_VER})")


@dataclass(frozen=True)
class SchemaKey:
    """`iglu:vendor/name/format/version`."""

    vendor: str
    name: str
    format: str
    version: str

    @classmethod
    def of(cls, uri: str) -> SchemaKey:
        """A key this package writes down itself: it parses, or the package is broken."""
        key = cls.parse(uri)
        if key is None:
            raise ValueError(f"not an Iglu schema URI: {uri!r}")
        return key

    @classmethod
    def parse(cls, uri: object) -> SchemaKey | None:
        if not isinstance(uri, str):
            return None
        match = _IGLU_URI.fullmatch(uri)
        return cls(*match.groups()) if match else None

    @property
    def uri(self) -> str:
        return f"iglu:{self.path}"

    @property
    def path(self) -> str:
        return f"{self.vendor}/{self.name}/{self.format}/{self.version}"

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class Repository:
    """One entry of the resolver config's `repositories`."""

    name: str
    priority: float
    vendor_prefixes: tuple[str, ...]
    kind: Literal["embedded", "http"]
    location: str  # embedded: an absolute directory; http: the base URI
    apikey: Secret | None = field(default=None, repr=False)

    @property
    def class_priority(self) -> int:
        """Iglu clients look in embedded repositories before HTTP ones."""
        return 1 if self.kind == "embedded" else 100

    def matches(self, vendor: str) -> bool:
        return any(vendor.startswith(prefix) for prefix in self.vendor_prefixes)

    def describe(self) -> str:
        """Name and location, for messages (an HTTP URI loses any user:password@)."""
        return f"{self.name!r} ({redact_uri(self.location) if self.kind == 'http' else self.location})"

    def schema_url(self, key: SchemaKey) -> str:
        return f"{self.location.rstrip('/')}/schemas/{key.path}"


@dataclass(frozen=True)
class ResolvedSchema:
    """A schema and where it came from."""

    key: SchemaKey
    schema: dict[str, Any]
    source: str  # the repository's name, or BUNDLED
    bundled: bool = False

    def describe(self) -> str:
        return f"{self.key.uri} from {BUNDLED if self.bundled else 'repository ' + repr(self.source)}"


@dataclass(frozen=True)
class Attempt:
    """What one repository said about one schema."""

    repository: Repository
    found: dict[str, Any] | None
    problem: str  # why nothing usable came back; empty when found
    waited: float = 0.0  # seconds spent, when the lookup was slow enough to be announced
    remember: bool = True  # False for an apikey refused: the user may be correcting it
    note: str = ""  # where the answer came from, when not from the repository just now

    def describe(self) -> str:
        text = f"{self.repository.describe()}: {self.problem}"
        return f"{text}, {self.note}" if self.note else text


@dataclass(frozen=True)
class ResolverConfig:
    """The validated Iglu resolver config."""

    schema: str
    cache_size: float
    cache_ttl: int | None
    repositories: tuple[Repository, ...]
    source: Path | None = None

    @property
    def file_name(self) -> str:
        return self.source.name if self.source else "the resolver config"

    def prioritized(self, key: SchemaKey) -> list[Repository]:
        """Iglu's order: vendor prefix match first, then embedded before HTTP, then `priority`.

        The sort is stable, so repositories equal on all three keep the config's order.
        """
        return sorted(
            self.repositories,
            key=lambda repo: (not repo.matches(key.vendor), repo.class_priority, repo.priority),
        )

    def attempts(self, key: SchemaKey) -> Iterator[Attempt]:
        """Each repository's answer in order; HTTP ones through the cache (`cacheSize`, `cacheTtl`)."""
        cache = IgluCache.for_resolver(self.cache_size, self.cache_ttl)
        for repository in self.prioritized(key):
            yield remembered(repository, key, cache) if repository.kind == "http" else lookup(repository, key)

    def resolve(self, key: SchemaKey) -> ResolvedSchema:
        """The first repository that answers wins; the bundled copy only when none does.

        Falling back logs one warning naming every repository tried and what it said. A schema no
        repository and no bundled copy has is a ConfigError naming the repositories tried.
        """
        tried: list[Attempt] = []
        for attempt in self.attempts(key):
            if attempt.found is not None:
                found_in = attempt.repository.name
                for waited in (a for a in tried if a.waited):  # a wait is told once, here or below
                    logger.warning("looking up %s in %s; found in %r.", key.uri, waited.describe(), found_in)
                return ResolvedSchema(key, attempt.found, attempt.repository.name)
            tried.append(attempt)
        summary = "; ".join(a.describe() for a in tried)
        bundled = bundled_schema(key)
        if bundled is not None:
            logger.warning(
                "warning: no repository of %s has %s (%s); using %s.",
                self.file_name,
                key.uri,
                summary,
                BUNDLED,
            )
            return ResolvedSchema(key, bundled, BUNDLED, bundled=True)
        raise ConfigError(
            f"schema {key.uri} cannot be resolved: no repository of {self.file_name} has it "
            f"({summary}), nor do the schemas bundled with populator."
        )


# --- self-describing JSON ---------------------------------------------------------------------


def self_describing(document: object, file_name: str, expected: str) -> tuple[SchemaKey, Any]:
    """`{"schema": "iglu:…", "data": …}` → (its key, its data), or a ConfigError saying what is wrong.

    The data is any JSON value, for the caller to validate against the schema the key names.
    """
    if not isinstance(document, dict) or "schema" not in document or "data" not in document:
        raise ConfigError(
            f'{file_name} is not a self-describing JSON: it needs a "schema" ({expected}) and a "data" '
            "object, as Snowplow apps expect."
        )
    key = SchemaKey.parse(document["schema"])
    if key is None:
        raise ConfigError(
            f'{file_name}: "schema" must be an Iglu URI such as {expected}; found '
            f"{shorten(json.dumps(document['schema']))}."
        )
    return key, document["data"]


# --- lookups ----------------------------------------------------------------------------------


def bundled_schema(key: SchemaKey) -> dict[str, Any] | None:
    """A schema shipped in `populator/schemas/` (an embedded-repository layout), or None."""
    resource = resources.files(__package__).joinpath("schemas", key.vendor, key.name, key.format, key.version)
    try:
        schema: dict[str, Any] = orjson.loads(resource.read_bytes())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return schema


def lookup(repository: Repository, key: SchemaKey) -> Attempt:
    """Ask one repository for one schema; a schema that comes back is checked before it counts."""
    waited, refused = 0.0, False
    if repository.kind == "embedded":
        document, problem = _lookup_embedded(repository, key)
    else:
        fetched, announced = _fetch_announced(repository, key)
        document, problem, refused = fetched.document, fetched.problem, fetched.access_refused
        waited = fetched.seconds if announced else 0.0
    found: dict[str, Any] | None = None
    if document is not None:
        problem = _schema_problem(document, key)
        if not problem and isinstance(document, dict):  # no problem: it is an object, a JSON Schema
            found = document
    return Attempt(repository, found, problem, waited=waited, remember=not refused)


def remembered(repository: Repository, key: SchemaKey, cache: IgluCache) -> Attempt:
    """An HTTP repository's answer: from the cache while it is fresh, otherwise asked and remembered.

    As Snowplow's resolvers do, a schema the repository served before (its entry expired) beats a
    failure now, and is stamped again so that a repository that stopped answering is not waited
    for at every start. An answer that had to be waited for notes the time spent and whether it
    was remembered; one from the cache notes how old it is.
    """
    now = time.time()
    entry = cache.read(repository.location, key.uri)
    if entry is not None and entry.schema is not None and _schema_problem(entry.schema, key):
        entry = None  # not this key's schema: a damaged entry, replaced below
    if entry is not None and cache.fresh(entry, now):
        age, left = span(now - entry.stored_at), span(cache.ttl - (now - entry.stored_at))
        note = f"as remembered from {age} ago (asked again in {left}, or at once without {cache.directory})"
        return Attempt(repository, entry.schema, entry.problem, note=note)
    attempt = lookup(repository, key)
    spent = f"{attempt.waited:.1f} s spent" if attempt.waited else ""
    if attempt.found is None and entry is not None and entry.schema is not None:
        age = span(now - entry.stored_at)
        kept = cache.write(repository.location, key.uri, Entry(now, entry.schema, ""), repository.apikey)
        again = f"not remembered: {kept}" if kept else f"remembered again for {span(cache.ttl)}"
        logger.warning(
            "looking up %s in %s: %s%s; using the schema it served %s ago (%s).",
            key.uri, repository.describe(), attempt.problem, f", {spent}" if spent else "", age, again,
        )  # fmt: skip
        return Attempt(repository, entry.schema, "", note=f"served {age} ago")
    kept = "an apikey refused is asked about again at every start"
    if attempt.remember:
        fresh = Entry(now, attempt.found, attempt.problem)
        kept = cache.write(repository.location, key.uri, fresh, repository.apikey)
    if attempt.waited and attempt.found is not None:
        logger.info("looking up %s in %s: found, %s.", key.uri, repository.describe(), spent)
    elif attempt.waited:
        outcome = (
            f"not remembered ({kept}): the next start waits again"
            if kept
            else f"remembered for {span(cache.ttl)} in {cache.directory}: starts until then do not wait"
        )
        return replace(attempt, note=f"{spent}; {outcome}")
    return attempt


def _fetch_announced(repository: Repository, key: SchemaKey) -> tuple[Fetched, bool]:
    """The GET, announced when it has not answered after WAIT_NOTICE_SECONDS: (what came, announced)."""
    announced = threading.Event()

    def announce() -> None:
        announced.set()
        logger.warning(
            "looking up %s in %s: no answer after %g s; waiting up to %.0f s in all (%d attempts, %g s "
            "each) before going on without it.",
            key.uri, repository.describe(), WAIT_NOTICE_SECONDS, iglu_http.longest_wait(),
            1 + iglu_http.HTTP_RETRIES, iglu_http.HTTP_TIMEOUT,
        )  # fmt: skip

    timer = threading.Timer(WAIT_NOTICE_SECONDS, announce)
    timer.daemon = True
    timer.start()
    try:
        fetched = fetch_schema(repository.schema_url(key), repository.apikey)
    finally:
        timer.cancel()
        timer.join()
    return fetched, announced.is_set()


def _lookup_embedded(repository: Repository, key: SchemaKey) -> tuple[object, str]:
    path = Path(repository.location, "schemas", key.vendor, key.name, key.format, key.version)
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None, "not found" if Path(repository.location).is_dir() else "no such directory"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or type(exc).__name__}"
    try:
        return orjson.loads(raw), ""
    except orjson.JSONDecodeError as exc:
        return None, f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"


def _schema_problem(document: object, key: SchemaKey) -> str:
    """Why a document served for `key` is not usable as its schema, or ''."""
    if not isinstance(document, dict):
        return "what it serves is not a JSON Schema (not an object)"
    try:
        Draft4Validator.check_schema(document)
    except SchemaError as exc:
        where = format_path(exc.absolute_path, "schema")
        return f"what it serves is not a valid JSON Schema ({where}: {shorten(exc.message)})"
    described = document.get("self")
    if isinstance(described, dict):
        served = SchemaKey(*(str(described.get(part)) for part in ("vendor", "name", "format", "version")))
        if served != key:
            return f"it serves the schema of {served.uri} at that address"
    return ""


# --- the resolver config ----------------------------------------------------------------------


def parse_resolver_config(document: object, path: Path) -> ResolverConfig:
    """Validate a resolver config document against its (bundled) schema; build the ResolverConfig.

    Relative embedded paths are taken relative to the resolver file's directory.
    """
    expected = RESOLVER_SCHEMA_PREFIX + "1-0-x"
    key, data = self_describing(document, path.name, expected)
    prefix_key = SchemaKey.parse(RESOLVER_SCHEMA_PREFIX + "1-0-0")
    assert prefix_key is not None
    supported = ", ".join(RESOLVER_SCHEMA_PREFIX + v for v in SUPPORTED_RESOLVER_VERSIONS)
    if (key.vendor, key.name, key.format) != (prefix_key.vendor, prefix_key.name, prefix_key.format):
        raise ConfigError(
            f"{path.name}: schema {key.uri} is not an Iglu resolver config. Supported: {supported}."
        )
    if key.version not in SUPPORTED_RESOLVER_VERSIONS:
        raise ConfigError(f"{path.name}: schema {key.uri} is not supported. Supported: {supported}.")
    schema = bundled_schema(key)
    assert schema is not None, key
    validate(data, ResolvedSchema(key, schema, BUNDLED, bundled=True), path.name)
    if not data["repositories"]:
        raise ConfigError(
            f"{path.name}: data.repositories is empty: the resolver has no repository to look schemas up "
            'in. Add Iglu Central, for instance {"name": "Iglu Central", "priority": 0, "vendorPrefixes": '
            '["com.snowplowanalytics"], "connection": {"http": {"uri": "http://iglucentral.com"}}}.'
        )
    repositories = tuple(_repository(entry, index, path) for index, entry in enumerate(data["repositories"]))
    return ResolverConfig(
        schema=key.uri,
        cache_size=data["cacheSize"],
        cache_ttl=data.get("cacheTtl"),
        repositories=repositories,
        source=path,
    )


def _repository(entry: dict[str, Any], index: int, path: Path) -> Repository:
    connection = entry["connection"]
    common = {
        "name": entry["name"],
        "priority": entry["priority"],
        "vendor_prefixes": tuple(entry["vendorPrefixes"]),
    }
    if "embedded" in connection:
        location = Path(connection["embedded"]["path"]).expanduser()
        if not location.is_absolute():
            location = path.parent / location
        return Repository(kind="embedded", location=str(location.resolve()), **common)
    http = connection["http"]
    uri = http["uri"]
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{path.name}: data.repositories[{index}].connection.http.uri: must be an http:// or https:// "
            "URL such as http://iglucentral.com."
        )
    apikey = http.get("apikey")
    return Repository(kind="http", location=uri, apikey=Secret(apikey) if apikey else None, **common)
