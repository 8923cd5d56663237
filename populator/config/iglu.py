"""Iglu, as Snowplow apps use it: schema keys, the resolver config, schema lookup, validation.

`parse_resolver_config` turns a resolver config document (validated against the bundled
`resolver-config` schema) into a `ResolverConfig`; `ResolverConfig.resolve` finds a schema in its
repositories the way Iglu clients do, falling back to the schemas bundled with populator only when
no repository answers; `validate` checks an instance against a schema and explains the problems
without ever quoting a value from the instance (a value may be a secret).

Lookups are synchronous (`urllib.request`, a short timeout, two retries): configuration is read
once, before the job's event loop starts, and a resolution is at most a few small GETs in order,
so there is nothing to gain from asyncio here and it works from any caller, loop running or not.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import orjson
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

from ..errors import ConfigError

logger = logging.getLogger("populator")

SELF_DESCRIBING_META_SCHEMA = (
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
)
RESOLVER_SCHEMA_PREFIX = "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/"
SUPPORTED_RESOLVER_VERSIONS = ("1-0-0", "1-0-1", "1-0-2", "1-0-3")
#: The package directory is itself an embedded Iglu repository: `<this>/schemas/<vendor>/...`.
BUNDLED_REGISTRY_PATH = Path(__file__).resolve().parent
BUNDLED = "the copy bundled with populator"

HTTP_TIMEOUT = 3.0  # seconds, per attempt
HTTP_RETRIES = 2  # after the first attempt: connection errors, timeouts, 408, 429 and 5xx
HTTP_BACKOFF = 0.2  # seconds before the first retry, doubled each time
MAX_SCHEMA_BYTES = 1 << 20

_SCHEMA_VER = r"[1-9][0-9]*-(?:0|[1-9][0-9]*)-(?:0|[1-9][0-9]*)"
_IGLU_URI = re.compile(rf"iglu:([a-zA-Z0-9\-_.]+)/([a-zA-Z0-9\-_]+)/([a-zA-Z0-9\-_]+)/({_SCHEMA_VER})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Secret:
    """A string that must never be printed: `repr`/`str` show only that it is set."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SchemaKey:
    """`iglu:vendor/name/format/version`."""

    vendor: str
    name: str
    format: str
    version: str

    @classmethod
    def parse(cls, uri: Any) -> SchemaKey | None:
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
        return f"{self.name!r} ({_redact_uri(self.location) if self.kind == 'http' else self.location})"

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

    def describe(self) -> str:
        return f"{self.repository.describe()}: {self.problem}"


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
        for repository in self.prioritized(key):
            yield lookup(repository, key)

    def resolve(self, key: SchemaKey) -> ResolvedSchema:
        """The first repository that answers wins; the bundled copy only when none does.

        Falling back logs one warning naming every repository tried and what it said. A schema no
        repository and no bundled copy has is a ConfigError naming the repositories tried.
        """
        tried: list[Attempt] = []
        for attempt in self.attempts(key):
            if attempt.found is not None:
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


def self_describing(document: Any, file_name: str, expected: str) -> tuple[SchemaKey, Any]:
    """`{"schema": "iglu:…", "data": …}` → (its key, its data), or a ConfigError saying what is wrong."""
    if not isinstance(document, dict) or "schema" not in document or "data" not in document:
        raise ConfigError(
            f'{file_name} is not a self-describing JSON: it needs a "schema" ({expected}) and a "data" '
            "object, as Snowplow apps expect."
        )
    key = SchemaKey.parse(document["schema"])
    if key is None:
        raise ConfigError(
            f'{file_name}: "schema" must be an Iglu URI such as {expected}; found '
            f"{_short(json.dumps(document['schema']))}."
        )
    return key, document["data"]


# --- lookups ----------------------------------------------------------------------------------


def bundled_schema(key: SchemaKey) -> dict[str, Any] | None:
    """A schema shipped in `populator/schemas/` (an embedded-repository layout), or None."""
    resource = resources.files(__package__).joinpath("schemas", key.vendor, key.name, key.format, key.version)
    try:
        return orjson.loads(resource.read_bytes())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def lookup(repository: Repository, key: SchemaKey) -> Attempt:
    """Ask one repository for one schema; a schema that comes back is checked before it counts."""
    if repository.kind == "embedded":
        document, problem = _lookup_embedded(repository, key)
    else:
        document, problem = _lookup_http(repository, key)
    if document is not None:
        problem = _schema_problem(document, key)
        if problem:
            document = None
    return Attempt(repository, document, problem)


def _lookup_embedded(repository: Repository, key: SchemaKey) -> tuple[Any, str]:
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


@cache
def _opener() -> Any:
    """urllib's opener, built on first use: only a resolver with an HTTP repository needs
    urllib.request and http.client (15 ms of imports on every start otherwise)."""
    import urllib.request

    class NoCredentialLeakRedirect(urllib.request.HTTPRedirectHandler):
        """Follow redirects, but carry the apikey only to the same host and port, never https → http."""

        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            old, target = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
            downgrade = old.scheme == "https" and target.scheme != "https"
            if new is not None and (target.netloc != old.netloc or downgrade):
                for name in list(new.headers):
                    if name.lower() == "apikey":
                        del new.headers[name]
            return new

    return urllib.request.build_opener(NoCredentialLeakRedirect)


def _lookup_http(repository: Repository, key: SchemaKey) -> tuple[Any, str]:
    import http.client
    import urllib.error
    import urllib.request

    url = repository.schema_url(key)
    headers = {"Accept": "application/json", "User-Agent": "populator"}
    if repository.apikey is not None:
        headers["apikey"] = repository.apikey.reveal()
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
                    return None, "the response is larger than 1 MiB, not a schema"
                # read() without a size checks the body against Content-Length (IncompleteRead).
                body = response.read() if announced is not None else response.read(MAX_SCHEMA_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return None, "not found (HTTP 404)"
            if exc.code in (401, 403):
                return None, f"HTTP {exc.code}, access refused (check the repository's apikey)"
            problem = f"HTTP {exc.code}"
            if exc.code not in _RETRYABLE_STATUS:
                return None, problem
            continue
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            # refused, DNS, timeout, reset, a truncated or garbled response…
            problem = _network_problem(exc)
            continue
        if len(body) > MAX_SCHEMA_BYTES:
            return None, "the response is larger than 1 MiB, not a schema"
        try:
            return orjson.loads(body), ""
        except orjson.JSONDecodeError:
            return None, "the response is not JSON"
    return None, f"{problem} ({attempts} attempts)"


def _network_problem(exc: BaseException) -> str:
    import http.client
    import urllib.error

    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {HTTP_TIMEOUT:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    if isinstance(reason, http.client.HTTPException):
        return f"a broken HTTP response ({type(reason).__name__})"
    return str(reason) or type(reason).__name__


def _schema_problem(document: Any, key: SchemaKey) -> str:
    """Why a document served for `key` is not usable as its schema, or ''."""
    if not isinstance(document, dict):
        return "what it serves is not a JSON Schema (not an object)"
    try:
        Draft4Validator.check_schema(document)
    except SchemaError as exc:
        where = _format_path(exc.absolute_path, "schema")
        return f"what it serves is not a valid JSON Schema ({where}: {_short(exc.message)})"
    described = document.get("self")
    if isinstance(described, dict):
        served = SchemaKey(*(str(described.get(part)) for part in ("vendor", "name", "format", "version")))
        if served != key:
            return f"it serves the schema of {served.uri} at that address"
    return ""


def _redact_uri(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


# --- the resolver config ----------------------------------------------------------------------


def parse_resolver_config(document: Any, path: Path) -> ResolverConfig:
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


# --- validation -------------------------------------------------------------------------------

_FORMATS = FormatChecker()


@_FORMATS.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or _UUID.fullmatch(value) is not None


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc or parts.path) and not any(c.isspace() for c in value)


MAX_LISTED_PROBLEMS = 5


def validate(data: Any, resolved: ResolvedSchema, file_name: str) -> None:
    """Check `data` against an Iglu schema (JSON Schema draft 4, as the self-describing meta-schema
    is); a ConfigError lists the problems as `file: data.path: rule`, never quoting a value."""
    try:
        validator = Draft4Validator(resolved.schema, format_checker=_FORMATS)
        problems = list(_problems(validator.iter_errors(data)))
    except Exception as exc:  # e.g. a $ref to somewhere we cannot follow
        raise ConfigError(
            f"{file_name}: cannot be validated against {resolved.describe()}: the schema cannot be "
            f"applied ({type(exc).__name__})."
        ) from None
    if not problems:
        return
    listed = "; ".join(f"{where}: {rule}" for where, rule in problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    if more > 0:
        listed += f"; and {more} more"
    raise ConfigError(f"{file_name}: {listed} (schema {resolved.describe()}).")


def _problems(errors: Iterator[ValidationError]) -> Iterator[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for error in errors:
        for path, rule in _explain(error):
            where = _format_path(path, "data")
            if (where, rule) not in seen:
                seen.add((where, rule))
                yield where, rule


def _explain(error: ValidationError) -> list[tuple[list[Any], str]]:
    """(absolute path, rule) pairs for one error, built from the schema side only."""
    path = list(error.absolute_path)
    validator, expected, instance = error.validator, error.validator_value, error.instance
    if validator == "required":
        present = instance if isinstance(instance, dict) else {}
        return [([*path, name], "required property is missing") for name in expected if name not in present]
    if validator == "type":
        return [(path, f"must be {_types(expected)} (found {_kind(instance)})")]
    if validator == "enum":
        return [(path, "must be " + " or ".join(_short(json.dumps(v)) for v in expected))]
    if validator == "format":
        return [(path, f"must be a valid {expected} (format {expected!r})")]
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extra = [k for k in instance if k not in allowed and not any(p.search(k) for p in patterns)]
        listed = ", ".join(sorted(allowed)) or "none"
        return [([*path, name], f"property is not allowed (allowed here: {listed})") for name in extra]
    if validator in ("oneOf", "anyOf"):
        return _explain_alternatives(error, path)
    rules = {
        "minLength": "must be at least {} characters long",
        "maxLength": "must be at most {} characters long",
        "pattern": "must match the pattern {}",
        "minimum": "must be at least {}",
        "maximum": "must be at most {}",
        "multipleOf": "must be a multiple of {}",
        "minItems": "must have at least {} items",
        "maxItems": "must have at most {} items",
        "minProperties": "must have at least {} properties",
        "maxProperties": "must have at most {} properties",
    }
    if validator in rules:
        rule = rules[validator].format(_short(str(expected)))
        if validator in ("minimum", "maximum") and error.schema.get(f"exclusive{validator.title()}"):
            rule = rule.replace("at least", "greater than").replace("at most", "less than")
        return [(path, rule)]
    if validator == "uniqueItems":
        return [(path, "must not repeat an item")]
    if validator == "not":
        return [(path, "must not match the schema's 'not' rule")]
    return [(path, f"breaks the schema's {validator!r} rule ({_short(json.dumps(expected, default=str))})")]


def _explain_alternatives(error: ValidationError, path: list[Any]) -> list[tuple[list[Any], str]]:
    """A oneOf/anyOf failure: explain the alternative the value was closest to matching."""
    if not error.context:  # oneOf matched more than one alternative
        return [(path, f"matches more than one of the {len(error.validator_value)} alternatives allowed")]
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    # An alternative whose own type does not fit the value is not what the user meant.
    fitting = {
        index: subs
        for index, subs in branches.items()
        if not any(s.validator == "type" and not s.relative_path for s in subs)
    }
    if not fitting:
        types = [
            alternative.get("type")
            for alternative in error.validator_value
            if isinstance(alternative, dict) and alternative.get("type")
        ]
        flat = [t for ty in types for t in (ty if isinstance(ty, list) else [ty])]
        wanted = _types(flat) if flat else "one of the alternatives the schema allows"
        return [(path, f"must be {wanted} (found {_kind(error.instance)})")]
    _, closest = min(
        fitting.items(),
        key=lambda item: (-max(len(s.relative_path) for s in item[1]), len(item[1]), item[0]),
    )
    return [explained for sub in closest for explained in _explain(sub)]


def _types(expected: Any) -> str:
    names = {
        "string": "a string",
        "object": "an object",
        "array": "an array",
        "number": "a number",
        "integer": "an integer",
        "boolean": "true or false",
        "null": "null",
    }
    listed = expected if isinstance(expected, list) else [expected]
    return " or ".join(names.get(str(t), str(t)) for t in listed)


def _kind(instance: Any) -> str:
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return "a boolean"
    if isinstance(instance, int):
        return "an integer"
    if isinstance(instance, float):
        return "a number"
    if isinstance(instance, str):
        return "an empty string" if not instance else "a string"
    if isinstance(instance, list):
        return "an array"
    return "an object"


def _format_path(parts: Any, root: str) -> str:
    text = root
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(str(part)):
            text += f".{part}"
        else:
            text += f"[{json.dumps(str(part))}]"
    return text


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
