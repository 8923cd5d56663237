"""Every exit code, the exceptions a caller can catch, and how one becomes the other.

`PopulatorError` is the root of a small hierarchy; each class carries its exit code, and
`exit_code_for` maps any exception to one, so every command ends through the same table
(pip's `status_codes`). The codes, as documented in the README:

| code | meaning |
| --- | --- |
| 0 | every selected object written (or staged and imported) |
| 1 | some objects failed (each named), an import or its sample check failed, or a local file failed |
| 2 | a usage or configuration error, AWS refused us, or a local file failed; nothing was written |
| 3 | an unexpected internal error: a bug in populator |
| 4 | stopped at a limit (--max-write-units, --max-cost, --max-duration); the same command goes on |
| 5 | stopped by an outage: no answer for longer than --max-outage; the same command goes on |
| 6 | `populator status` only: shards are still running, and none needs anyone |
| 130, 143 | interrupted by SIGINT, SIGTERM; the same command goes on |

The AWS error codes that mean "you may not" are listed here once, for every caller that has to
tell a refusal from a failure. Pure: no AWS library is imported.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_LIMIT_REACHED = 4
EXIT_OUTAGE = 5
EXIT_RUNNING = 6  # `populator status`: the job goes on by itself (0 is done, 1 needs someone)
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143
EXIT_SIGNALS = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}

#: The exit codes in words, as reports and `status` say them.
EXIT_STATUS = {
    EXIT_OK: "ok",
    EXIT_FAILED: "failed_objects",
    EXIT_USAGE: "error",
    EXIT_INTERNAL: "internal_error",
    EXIT_LIMIT_REACHED: "limit_reached",
    EXIT_OUTAGE: "outage",
    EXIT_RUNNING: "running",
    EXIT_SIGINT: "interrupted",
    EXIT_SIGTERM: "interrupted",
}

#: The exits after which `run` and `import` print the command to go on (the report keeps it too).
EXITS_THAT_GO_ON = frozenset({EXIT_FAILED, EXIT_LIMIT_REACHED, EXIT_OUTAGE, EXIT_SIGINT, EXIT_SIGTERM})

#: AWS error codes that refuse the caller: missing, wrong or expired credentials, or an IAM
#: permission the identity lacks. Never retried: waiting does not grant a permission.
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
    }
)


#: AWS error codes that say "not now": throttling, a service limit AWS documents as retryable
#: (LimitExceededException: 50 concurrent imports, TTL updates), and server-side failures. A
#: call answered so is retried with backoff; only when it keeps answering so is it reported.
RETRY_LATER_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "SlowDown",
        "RequestThrottled",
        "InternalServerError",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
    }
)

#: AWS error codes that say this machine's clock is too far from AWS's to sign requests.
CLOCK_SKEW_CODES = frozenset(
    {"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture", "SignatureExpired"}
)


class PopulatorError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = EXIT_FAILED


class UsageError(PopulatorError):
    """The user asked for something that cannot work: bad argument, bad path, bad config.

    Exit code 2. The message is one paragraph that says what to fix.
    """

    exit_code = EXIT_USAGE


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


class LocalWriteError(UsageError):
    """A file of ours on this machine could not be written: the checkpoint, `--bad-rows`,
    `--report`, the log under `--log-path` (a full disk, a quota, a read-only filesystem...).

    Exit 2 while nothing was written to the table, 1 once writes began (`exit_code_for` is told
    which). The world did it, so never "a bug"; `of` says where, why, and the space left.
    """

    @classmethod
    def of(cls, what: str, path: str | os.PathLike[str], error: OSError, then: str) -> LocalWriteError:
        """`what` (e.g. "the checkpoint") at `path` failed with `error`: one paragraph naming the
        filesystem and its free space, then what to do, ending with `then` (what follows once it is
        fixed, e.g. "run the same command: it resumes.")."""
        mount = _mount_point(os.path.realpath(path))
        try:
            free = f"{_size(shutil.disk_usage(mount).free)} free on {mount}"
        except OSError:
            free = f"free space on {mount} unknown"
        reason = error.strerror or str(error)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            todo = f"Free space on {mount}, then {then}"
        else:
            todo = f"Fix that (or choose another path), then {then}"
        return cls(f"{what} {os.fspath(path)} could not be written: {reason} ({free}). {todo}")


def _mount_point(path: str) -> str:
    """The mount point of the filesystem holding `path` (which may not exist yet)."""
    while not os.path.ismount(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    value, unit = float(count), "bytes"
    for unit in ("kB", "MB", "GB", "TB"):  # noqa: B007 - the unit reached is the one shown
        value /= 1000
        if value < 1000:
            break
    return f"{value:,.1f} {unit}"


class WorkerFailed(PopulatorError):
    """A worker process hit an error that stops the job, carried to the parent with its code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class AwsRefused(UsageError):
    """AWS answered a call with an error populator has no special handling for (exit 2 before
    anything was written; the command turns it into exit 1 after)."""


def is_clock_skew(code: str, message: str) -> bool:
    """Whether an AWS error says the request's signature time is too far from AWS's clock."""
    lowered = message.lower()
    return code in CLOCK_SKEW_CODES or (
        code in ("InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure")
        and ("expired" in lowered or "skew" in lowered or "in the future" in lowered)
    )


def retry_later(code: str, status: int) -> bool:
    """Whether an AWS error says to try again later (throttling, a retryable limit, a 5xx)."""
    return code in RETRY_LATER_CODES or status >= 500


def exit_code_for(exc: BaseException, *, writes_began: bool = False) -> int:
    """The exit code a command ends with when `exc` ends it: the error's own for ours, 130 for
    Ctrl-C, 3 (a bug) for anything else. `writes_began`: items were written (or staged) already,
    so a mistake to fix (a refusal from AWS, a file of ours that could not be written) no longer
    means "nothing was written" (2) but that the run failed part-way (1)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, UsageError) and writes_began:
        return EXIT_FAILED
    if isinstance(exc, PopulatorError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_SIGINT
    return EXIT_INTERNAL


def exit_status(code: int) -> str:
    """The exit code in words, for reports."""
    return EXIT_STATUS.get(code, "error")


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (duck-typed), or ""."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def describe_failure(exc: BaseException) -> str:
    """One line saying what went wrong with a request, for failure reports."""
    reason = getattr(exc, "failure_reason", None)
    if isinstance(reason, str):
        return reason
    response: object = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        message = response["Error"].get("Message", "")
        return f"{aws_error_code(exc)}: {message}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
