"""AWS sessions and clients, created the standard way, and AWS errors in the user's terms.

Nothing here sets an endpoint: botocore resolves `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`,
`AWS_ENDPOINT_URL_DYNAMODB`, profiles, regions and the credential chain on its own, and that is
exactly what a user of the AWS CLI expects.
"""

from __future__ import annotations

from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ..errors import AwsAccessError, UsageError, aws_error_code
from .storage import AwsSettings

DEFAULT_S3_REGION = "us-east-1"
OPERATION_PERMISSIONS = {
    "ListObjectsV2": "s3:ListBucket on the archive's bucket",
    "GetObject": "s3:GetObject on the archive's objects",
    "HeadObject": "s3:GetObject on the archive's objects",
    "DescribeTable": "dynamodb:DescribeTable on the table",
    "CreateTable": "dynamodb:CreateTable (the table does not exist yet)",
    "UpdateTimeToLive": "dynamodb:UpdateTimeToLive on the new table",
    "BatchWriteItem": "dynamodb:BatchWriteItem on the table",
    "PutItem": "dynamodb:PutItem on the table (--conditional)",
    "BatchGetItem": "dynamodb:BatchGetItem on the table",
}
_ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
}


def new_session(profile: str | None) -> AioSession:
    try:
        return AioSession(profile=profile)
    except ProfileNotFound:
        raise UsageError(f"AWS profile {profile!r} is not in your AWS config or credentials file.") from None


def s3_client(session: AioSession, settings: AwsSettings) -> Any:
    """An async S3 client context manager; botocore's standard retries cover GET and LIST."""
    config = AioConfig(
        max_pool_connections=settings.pool_size,
        retries={"mode": "standard", "max_attempts": 5},
        read_timeout=60,
        connect_timeout=10,
    )
    region = session.get_config_variable("region") or DEFAULT_S3_REGION
    return session.create_client("s3", region_name=region, config=config)


def dynamodb_client(session: AioSession, settings: AwsSettings) -> Any:
    """An async DynamoDB client context manager.

    botocore's own retries are switched off: the writers retry with their own budget, and every
    throttle must reach them (and the rate controller) instead of being absorbed silently.
    """
    config = AioConfig(
        max_pool_connections=settings.pool_size,
        retries={"mode": "standard", "total_max_attempts": 1},
        read_timeout=20,
        connect_timeout=10,
    )
    keys = settings.dynamodb_keys
    return session.create_client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        aws_access_key_id=keys.access_key_id if keys else None,
        aws_secret_access_key=keys.secret_access_key.reveal() if keys else None,
        config=config,
    )


def translate(exc: BaseException, *, action: str, permission: str, identity: str) -> UsageError | None:
    """An AWS error a user can fix → a UsageError that says what to fix; None otherwise."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsAccessError(
            f"No AWS credentials found for {action} ({identity}). Configure the default chain "
            "(environment, ~/.aws, instance profile), pass --profile, or put keys in the storage config."
        )
    if isinstance(exc, ProfileNotFound):
        return UsageError(f"{exc}. List your profiles with `aws configure list-profiles`.")
    if isinstance(exc, NoRegionError):
        return UsageError(f"No AWS region is configured for {action}. Set AWS_REGION or pass --profile.")
    if isinstance(exc, ClientError):
        code = aws_error_code(exc)
        if code in _ACCESS_CODES:
            # The refused call says exactly which permission is missing.
            permission = OPERATION_PERMISSIONS.get(exc.operation_name, permission)
            return AwsAccessError(
                f"AWS refused {action} for {identity} ({code} on {exc.operation_name}). Check the "
                f"credentials, and that the identity is allowed {permission}."
            )
    return None
