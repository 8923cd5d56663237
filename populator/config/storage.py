"""The two configuration files a Snowplow user already has: storage config and Iglu resolver.

`load_resolver_config` reads the Iglu resolver config and validates it against its own schema
(bundled with populator, as Iglu clients bootstrap it); `load_storage_config` reads the
self-describing `amazon_dynamodb_config` JSON, resolves its schema through that resolver (see
`populator.config.iglu`), validates it, and returns a `StorageConfig`. Secrets are wrapped in
`Secret` (from `populator.config.secret`, re-exported here), whose repr and str never show the
value; no message quotes a value from either file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError
from .iglu import (
    BUNDLED,
    ResolvedSchema,
    ResolverConfig,
    SchemaKey,
    bundled_schema,
    parse_resolver_config,
    self_describing,
)
from .secret import Secret
from .validation import validate

__all__ = [
    "STORAGE_SCHEMA_PREFIX",
    "SUPPORTED_STORAGE_VERSIONS",
    "AwsKeys",
    "ResolverConfig",
    "Secret",
    "StorageConfig",
    "load_resolver_config",
    "load_storage_config",
    "read_json",
]

STORAGE_SCHEMA_PREFIX = "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/"
SUPPORTED_STORAGE_VERSIONS = ("1-0-0", "1-0-1", "2-0-0")
_STORAGE_KEY = SchemaKey.of(STORAGE_SCHEMA_PREFIX + "1-0-0")
assert _STORAGE_KEY is not None


@dataclass(frozen=True)
class AwsKeys:
    """An access key pair from the storage config."""

    access_key_id: str
    secret_access_key: Secret = field(repr=False)

    @property
    def hint(self) -> str:
        """What may be shown of the identity: the last 4 characters of the key id."""
        return (
            f"access key ending in {self.access_key_id[-4:]}" if self.access_key_id else "an empty access key"
        )

    def __repr__(self) -> str:
        return f"AwsKeys({self.hint}, secret_access_key=Secret('********'))"


@dataclass(frozen=True)
class StorageConfig:
    """What the tool needs from `amazon_dynamodb_config`."""

    schema: str
    name: str
    table: str
    region: str
    keys: AwsKeys | None  # None: use the default AWS credential chain
    schema_source: str = BUNDLED  # where the schema it was validated against came from


def read_json(path: Path, what: str) -> object:
    """Read a JSON file, turning every failure into a ConfigError that names file and position.

    Whatever JSON value it holds: the caller checks its shape (`iglu.self_describing`).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {str(path)!r} is a directory; pass the JSON file.") from None
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}.") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        line, column = exc.lineno, exc.colno
        raise ConfigError(
            f"{what} {path.name} is not valid JSON: {exc.msg} at line {line}, column {column}."
        ) from None


def load_resolver_config(path: Path) -> ResolverConfig:
    """Read and validate the Iglu resolver config (resolver-config 1-0-0 … 1-0-3).

    Embedded repository paths that are relative are taken relative to the file's directory.
    """
    return parse_resolver_config(read_json(path, "RESOLVER_CONFIG"), path)


def load_storage_config(path: Path, resolver: ResolverConfig | None = None) -> StorageConfig:
    """Read the DynamoDB storage config (any supported version) into a StorageConfig.

    Its schema is resolved through `resolver` (what `load_resolver_config` returned): the first of
    its repositories that has the schema wins, the copy bundled with populator is used (with a
    warning) only when none has it. Without a resolver the bundled schema is used directly.
    """
    document = read_json(path, "STORAGE_CONFIG")
    key, data = self_describing(document, path.name, STORAGE_SCHEMA_PREFIX + "<version>")
    supported = ", ".join(STORAGE_SCHEMA_PREFIX + v for v in SUPPORTED_STORAGE_VERSIONS)
    if (key.vendor, key.name, key.format) != (_STORAGE_KEY.vendor, _STORAGE_KEY.name, _STORAGE_KEY.format):
        raise ConfigError(
            f"{path.name}: schema {key.uri!r} is not a DynamoDB storage config. Supported: {supported}."
        )
    if key.version not in SUPPORTED_STORAGE_VERSIONS:
        raise ConfigError(_unsupported_version(path, key, resolver, supported))
    resolved = _resolve(key, resolver)
    validate(data, resolved, path.name)
    # The schema that answered may be a registry's own copy, looser than Snowplow's: the fields
    # this tool relies on are checked again, with the same kind of message.
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: data: must be an object (schema {resolved.describe()}).")
    table = _require_string(data, "dynamodbTable", path)
    region = _require_string(data, "awsRegion", path)
    name = data["name"] if isinstance(data.get("name"), str) and data["name"] else table
    keys: AwsKeys | None
    if key.version.startswith("1-"):
        keys = AwsKeys(
            _require_string(data, "accessKeyId", path),
            Secret(_require_string(data, "secretAccessKey", path)),
        )
    else:
        if "auth" not in data:
            raise ConfigError(
                f"{path.name}: data.auth: required property is missing "
                "(use null for the default credential chain)."
            )
        auth = data["auth"]
        if auth is None:
            keys = None
        elif isinstance(auth, dict):
            access = _require_string(auth, "accessKeyId", path, "data.auth")
            secret = _require_string(auth, "secretAccessKey", path, "data.auth")
            keys = AwsKeys(access, Secret(secret))
        else:
            raise ConfigError(
                f"{path.name}: data.auth: must be an object with accessKeyId and secretAccessKey, or null."
            )
    return StorageConfig(
        schema=key.uri, name=name, table=table, region=region, keys=keys, schema_source=resolved.source
    )


def _resolve(key: SchemaKey, resolver: ResolverConfig | None) -> ResolvedSchema:
    if resolver is not None:
        return resolver.resolve(key)
    schema = bundled_schema(key)
    assert schema is not None, key
    return ResolvedSchema(key, schema, BUNDLED, bundled=True)


def _unsupported_version(path: Path, key: SchemaKey, resolver: ResolverConfig | None, supported: str) -> str:
    """An amazon_dynamodb_config version populator cannot read: say whether it even exists."""
    if resolver is None:
        return f"{path.name}: schema {key.uri} is not supported. Supported: {supported}."
    try:
        resolved = resolver.resolve(key)
    except ConfigError as exc:
        return f"{path.name}: {exc} Supported by populator: {supported}."
    return (
        f"{path.name}: schema {key.uri} exists ({resolved.describe()}) but populator does not support "
        f"it. Supported: {supported}."
    )


def _require_string(data: dict[str, Any], key: str, path: Path, where: str = "data") -> str:
    if key not in data or data[key] is None:
        raise ConfigError(f"{path.name}: {where}.{key}: required property is missing.")
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f"{path.name}: {where}.{key}: must be a string.")
    if not value.strip():
        raise ConfigError(f"{path.name}: {where}.{key}: must not be empty.")
    return value


@dataclass(frozen=True)
class AwsSettings:
    """Who we are on AWS, and where."""

    profile: str | None
    dynamodb_region: str
    dynamodb_keys: AwsKeys | None
    pool_size: int  # HTTP connections per client
    #: seconds a request may wait for the next byte of its answer (None: each service's default)
    request_timeout: float | None = None


def identity_hint(keys: AwsKeys | None, profile: str | None) -> str:
    """The identity used, as far as it may be shown."""
    if keys is not None:
        return f"the storage config's {keys.hint}"
    if profile:
        return f"AWS profile {profile!r}"
    return "the default AWS credential chain"
