"""DynamoDB's import from S3, for the manifest: start it once, watch it, enable TTL after it.

`ImportTable` creates the table (the manifest's keys: `eventId` HASH S, `fingerprint` RANGE S)
from the gzip DynamoDB-JSON objects under one S3 prefix, consuming no write capacity. Its
`ClientToken` makes a repeated request return the import already started instead of starting a
second one (for 8 hours); the job derives the token from itself and keeps the import's ARN, so a
rerun reattaches with `DescribeImport`. No AWS library is imported at module level: the client
is handed in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..errors import aws_error_code
from .control_plane import retrying
from .table_shape import table_definition

# aiobotocore ships no annotations (pyproject's mypy overrides): its DynamoDB client is `Any` here,
# and requests and answers are DynamoDB's JSON, `dict[str, Any]`.

LOG_GROUP = "/aws-dynamodb/imports"  # where DynamoDB writes an import's item errors
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class ImportDescription:
    """What `ImportTable` or `DescribeImport` said about an import."""

    arn: str
    status: str  # IN_PROGRESS, COMPLETED, CANCELLING, CANCELLED, FAILED
    processed_items: int = 0
    imported_items: int = 0
    errors: int = 0
    processed_bytes: int = 0
    failure_code: str | None = None
    failure_message: str | None = None
    log_group_arn: str | None = None
    table_arn: str | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "COMPLETED" and not self.errors

    @property
    def log_group(self) -> str:
        """The CloudWatch log group DynamoDB wrote the item errors to."""
        if self.log_group_arn and ":log-group:" in self.log_group_arn:
            return self.log_group_arn.split(":log-group:", 1)[1].removesuffix(":*")
        return LOG_GROUP

    def failure(self) -> str:
        """Why the import did not succeed, in one paragraph."""
        if self.status == "COMPLETED" and self.errors:
            what = (
                f"the import completed with {self.errors:,} item errors "
                f"({self.imported_items:,} items imported)"
            )
        else:
            reason = ": ".join(part for part in (self.failure_code, self.failure_message) if part)
            what = f"the import ended {self.status}" + (f" ({reason})" if reason else "")
            if self.errors:
                what += f" with {self.errors:,} item errors"
        return (
            f"{what}. DynamoDB wrote the errors to the CloudWatch log group {self.log_group} "
            f"(import {self.arn})."
        )

    @classmethod
    def of(cls, answer: dict[str, Any]) -> ImportDescription:
        description = answer.get("ImportTableDescription", answer)
        return cls(
            arn=str(description.get("ImportArn", "")),
            status=str(description.get("ImportStatus", "IN_PROGRESS")),
            processed_items=int(description.get("ProcessedItemCount") or 0),
            imported_items=int(description.get("ImportedItemCount") or 0),
            errors=int(description.get("ErrorCount") or 0),
            processed_bytes=int(description.get("ProcessedSizeBytes") or 0),
            failure_code=description.get("FailureCode") or None,
            failure_message=description.get("FailureMessage") or None,
            log_group_arn=description.get("CloudWatchLogGroupArn") or None,
            table_arn=description.get("TableArn") or None,
        )


def client_token(job_id: str, nonce: str) -> str:
    """The same for every run of one job (`nonce` changes with --restart); `[^$]+`, 34 characters."""
    return "populator-" + hashlib.sha256(f"{job_id}/{nonce}".encode()).hexdigest()[:24]


def import_request(
    *,
    table: str,
    bucket: str,
    prefix: str,
    token: str,
    provisioned: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """ImportTable's parameters: gzip DynamoDB JSON under `prefix`, into a new manifest table."""
    return {
        "ClientToken": token,
        "S3BucketSource": {"S3Bucket": bucket, "S3KeyPrefix": prefix},
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": "GZIP",
        "TableCreationParameters": table_definition(table, provisioned),
    }


async def start_import(dynamodb: Any, request: dict[str, Any]) -> ImportDescription:
    """`ImportTable`; the same token again answers the import it started."""
    return ImportDescription.of(await retrying(dynamodb.import_table, **request))


async def describe_import(dynamodb: Any, arn: str) -> ImportDescription:
    return ImportDescription.of(await retrying(dynamodb.describe_import, ImportArn=arn))


async def enable_ttl(dynamodb: Any, table: str, attribute: str = "ttl") -> None:
    """`UpdateTimeToLive` on `attribute`; already enabled (a rerun) is fine."""
    from botocore.exceptions import ClientError

    try:
        await retrying(
            dynamodb.update_time_to_live,
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )
    except ClientError as exc:
        if aws_error_code(exc) != "ValidationException":
            raise
        answer = await retrying(dynamodb.describe_time_to_live, TableName=table)
        ttl = answer.get("TimeToLiveDescription", {})
        if ttl.get("AttributeName") != attribute or ttl.get("TimeToLiveStatus") not in (
            "ENABLED",
            "ENABLING",
        ):
            raise
