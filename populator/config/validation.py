"""Validation against an Iglu schema, and the wording of what is wrong.

`validate` checks an instance against a JSON Schema (draft 4, as the self-describing meta-schema
is) and raises one ConfigError that lists the problems as `file: data.path: rule`, explained from
the schema side only: no message ever quotes a value from the instance (a value may be a secret).
`format_path` and `shorten` word paths and long texts the same way for the resolver's messages.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from ..errors import ConfigError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Described(Protocol):
    """What `validate` needs of a schema: the schema and where it came from (`iglu.ResolvedSchema`)."""

    @property
    def schema(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


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


def validate(data: object, resolved: Described, file_name: str) -> None:
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
            where = format_path(path, "data")
            if (where, rule) not in seen:
                seen.add((where, rule))
                yield where, rule


def _explain(error: ValidationError) -> list[tuple[list[str | int], str]]:
    """(absolute path, rule) pairs for one error, built from the schema side only."""
    path = list(error.absolute_path)
    validator, instance = error.validator, error.instance
    expected: Any = error.validator_value  # whatever the schema wrote for the rule
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if validator == "required":
        present = instance if isinstance(instance, dict) else {}
        return [([*path, name], "required property is missing") for name in expected if name not in present]
    if validator == "type":
        return [(path, f"must be {_types(expected)} (found {_kind(instance)})")]
    if validator == "enum":
        return [(path, "must be " + " or ".join(shorten(json.dumps(v)) for v in expected))]
    if validator == "format":
        return [(path, f"must be a valid {expected} (format {expected!r})")]
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
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
        rule = rules[validator].format(shorten(str(expected)))
        if validator in ("minimum", "maximum") and schema.get(f"exclusive{validator.title()}"):
            rule = rule.replace("at least", "greater than").replace("at most", "less than")
        return [(path, rule)]
    if validator == "uniqueItems":
        return [(path, "must not repeat an item")]
    if validator == "not":
        return [(path, "must not match the schema's 'not' rule")]
    return [(path, f"breaks the schema's {validator!r} rule ({shorten(json.dumps(expected, default=str))})")]


def _explain_alternatives(error: ValidationError, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    """A oneOf/anyOf failure: explain the alternative the value was closest to matching."""
    alternatives: Any = error.validator_value  # the schema's list of alternatives
    if not error.context:  # oneOf matched more than one alternative
        return [(path, f"matches more than one of the {len(alternatives)} alternatives allowed")]
    branches: dict[str | int, list[ValidationError]] = {}
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
            for alternative in alternatives
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


def _types(expected: object) -> str:
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


def _kind(instance: object) -> str:
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


def format_path(parts: Iterable[str | int], root: str) -> str:
    text = root
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(str(part)):
            text += f".{part}"
        else:
            text += f"[{json.dumps(str(part))}]"
    return text


def shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
