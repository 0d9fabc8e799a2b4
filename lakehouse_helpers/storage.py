"""boto3 access to the configured S3 endpoint (the embedded server, MinIO or AWS)."""

from __future__ import annotations

from .settings import Settings


def s3_client(settings: Settings, connect_timeout: float | None = None, retries: int = 3):
    import boto3
    from botocore.config import Config

    config = Config(
        # Newer SDKs add CRC checksum headers by default; S3-compatible servers may reject them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout or settings.connect_timeout_s,
        read_timeout=max(10.0, settings.connect_timeout_s),
        retries={"max_attempts": retries, "mode": "standard"},
        s3={"addressing_style": "path" if settings.s3_endpoint else "auto"},
    )
    kwargs = {"region_name": settings.s3_region, "config": config}
    if settings.s3_endpoint:
        kwargs["endpoint_url"] = settings.s3_endpoint
    if settings.s3_access_key:
        kwargs["aws_access_key_id"] = settings.s3_access_key.reveal()
        kwargs["aws_secret_access_key"] = settings.s3_secret_key.reveal()
    return boto3.client("s3", **kwargs)


def list_keys(settings: Settings, prefix: str = "") -> list[str]:
    client = s3_client(settings)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def error_kind(exc) -> str:
    """What a botocore ClientError from a bucket request means: "access_denied" (HTTP 403: wrong
    keys, or keys without rights on the bucket), "no_bucket" (404), else "other". A HEAD answer
    has no body, so its error code is only the status ("403", "404")."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = exc.response.get("Error", {}).get("Code")
    if status == 403 or code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return "access_denied"
    if code in ("404", "NoSuchBucket"):
        return "no_bucket"
    return "other"


def ensure_bucket(settings: Settings) -> bool:
    """Create the workbook's bucket if missing; True when it was created."""
    from botocore.exceptions import ClientError

    client = s3_client(settings)
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
        return False
    except ClientError as exc:
        if error_kind(exc) != "no_bucket":
            raise
    client.create_bucket(Bucket=settings.s3_bucket)
    return True
