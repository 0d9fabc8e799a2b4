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


def ensure_bucket(settings: Settings) -> bool:
    """Create the workbook's bucket if missing; True when it was created."""
    from botocore.exceptions import ClientError

    client = s3_client(settings)
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    client.create_bucket(Bucket=settings.s3_bucket)
    return True
