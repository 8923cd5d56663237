"""The exceptions a caller can catch, as a small hierarchy.

`PopulatorError` is the root. Its subclasses carry the exit code the CLI uses, so the CLI maps
exceptions to exit codes in one place and never prints a traceback for an error a user caused.
"""

from __future__ import annotations

EXIT_INTERNAL: int = 3  # the exit code of a bug in populator, never of an error a user can cause


class PopulatorError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class UsageError(PopulatorError):
    """The user asked for something that cannot work: bad argument, bad path, bad config.

    Exit code 2. The message is one paragraph that says what to fix.
    """

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file is missing, unreadable or invalid."""


class ArchiveError(UsageError):
    """The archive location cannot be listed (missing bucket or directory, no access)."""


class AwsAccessError(UsageError):
    """AWS refused us: no credentials, bad credentials, or a missing IAM permission."""


class EndpointUnreachable(UsageError):
    """This machine cannot reach an AWS endpoint: no route, DNS, TLS, a timeout or a proxy."""


class TableSchemaError(UsageError):
    """The manifest table exists but is not shaped like a Snowplow event manifest."""


class ObjectFailed(PopulatorError):
    """One archive object could not be read or written; the others go on."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (duck-typed), or ""."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))
