"""The vocabulary of writing to the manifest, without the AWS client libraries.

Kept apart from `manifest.py` so that the pipeline, the reports and a dry run over a local
archive never import botocore, aiobotocore or aiohttp (about half a second of start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import aws_error_code

BATCH_SIZE = 25  # BatchWriteItem's limit


class WriteFailed(Exception):
    """Items could not be written within the retry budget (or were refused for good)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long a writer keeps trying one request before its object is failed."""

    attempts: int = 12
    base_delay: float = 0.05  # seconds; full jitter over base * 2**attempt
    max_delay: float = 20.0


@dataclass(frozen=True)
class TableInfo:
    name: str
    created: bool
    billing_mode: str  # "PROVISIONED" or "PAY_PER_REQUEST"
    write_capacity: int | None


class WriteOutcome(NamedTuple):
    written: int  # items DynamoDB acknowledged as stored by us
    already_present: int  # conditional mode: items kept as they were (first writer won)


def describe_failure(exc: BaseException) -> str:
    """One line saying what went wrong with a request, for failure reports."""
    reason = getattr(exc, "failure_reason", None)
    if isinstance(reason, str):
        return reason
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        message = response["Error"].get("Message", "")
        return f"{aws_error_code(exc)}: {message}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
