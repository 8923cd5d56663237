"""The two configuration files a Snowplow user already has: storage config and Iglu resolver.

`load_storage_config` reads the self-describing `amazon_dynamodb_config` JSON and returns a
`StorageConfig`; `load_resolver_config` checks the Iglu resolver file. Secrets are wrapped in
`Secret`, whose repr and str never show the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigError

STORAGE_SCHEMA_PREFIX = "iglu:com.snowplowanalytics.snowplow.storage/amazon_dynamodb_config/jsonschema/"
SUPPORTED_STORAGE_VERSIONS = ("1-0-0", "1-0-1", "2-0-0")
_IGLU_URI = re.compile(r"iglu:([a-zA-Z0-9\-_.]+)/([a-zA-Z0-9\-_]+)/([a-zA-Z0-9\-_]+)/(\d+-\d+-\d+)")


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


@dataclass(frozen=True)
class StorageConfig:
    """What the tool needs from `amazon_dynamodb_config`."""

    schema: str
    name: str
    table: str
    region: str
    keys: AwsKeys | None  # None: use the default AWS credential chain


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, turning every failure into a ConfigError that names file and position."""
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


def parse_schema_uri(uri: Any) -> tuple[str, str, str, str] | None:
    """`iglu:vendor/name/format/version` → its four parts, or None."""
    if not isinstance(uri, str):
        return None
    match = _IGLU_URI.fullmatch(uri)
    return match.groups() if match else None  # type: ignore[return-value]


def _require_string(data: dict[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if value is None:
        raise ConfigError(f"{path.name}: data.{key}: required property is missing.")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path.name}: data.{key}: must be a non-empty string.")
    return value


def load_storage_config(path: Path, resolver: dict[str, Any] | None = None) -> StorageConfig:
    """Read the DynamoDB storage config (any supported version) into a StorageConfig.

    `resolver` is what `load_resolver_config` returned; the storage config is validated
    against the schema it resolves.
    """
    document = read_json(path, "STORAGE_CONFIG")
    if not isinstance(document, dict) or "schema" not in document or "data" not in document:
        raise ConfigError(
            f'{path.name} is not a self-describing JSON: it needs a "schema" '
            f'({STORAGE_SCHEMA_PREFIX}<version>) and a "data" object.'
        )
    schema = document["schema"]
    supported = ", ".join(STORAGE_SCHEMA_PREFIX + v for v in SUPPORTED_STORAGE_VERSIONS)
    if not isinstance(schema, str) or not schema.startswith(STORAGE_SCHEMA_PREFIX):
        raise ConfigError(
            f"{path.name}: schema {schema!r} is not a DynamoDB storage config. Supported: {supported}."
        )
    version = schema[len(STORAGE_SCHEMA_PREFIX) :]
    if version not in SUPPORTED_STORAGE_VERSIONS:
        raise ConfigError(f"{path.name}: schema {schema} is not supported. Supported: {supported}.")
    data = document["data"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: data: must be an object.")
    table = _require_string(data, "dynamodbTable", path)
    region = _require_string(data, "awsRegion", path)
    name = data.get("name") if isinstance(data.get("name"), str) else table
    keys: AwsKeys | None
    if version.startswith("1-"):
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
            access = auth.get("accessKeyId")
            secret = auth.get("secretAccessKey")
            for key, value in (("accessKeyId", access), ("secretAccessKey", secret)):
                if not isinstance(value, str):
                    raise ConfigError(f"{path.name}: data.auth.{key}: required string is missing.")
            keys = AwsKeys(access, Secret(secret))  # type: ignore[arg-type]
        else:
            raise ConfigError(
                f"{path.name}: data.auth: must be an object with accessKeyId and secretAccessKey, or null."
            )
    return StorageConfig(schema=schema, name=name, table=table, region=region, keys=keys)


def load_resolver_config(path: Path) -> dict[str, Any]:
    """Read the Iglu resolver config. Full resolution and validation builds on this."""
    document = read_json(path, "RESOLVER_CONFIG")
    if not isinstance(document, dict):
        raise ConfigError(f"{path.name} is not an Iglu resolver config: expected a JSON object.")
    return document
