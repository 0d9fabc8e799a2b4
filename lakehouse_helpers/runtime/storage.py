"""Access to the configured S3 endpoint (the embedded server, MinIO or AWS).

`s3_connection` is the one source of the connection facts (endpoint, region, keys, addressing):
boto3 here, pyarrow in the Auto Loader and s3a in Spark all build from it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from lakehouse_helpers.runtime.settings import Settings

# Option names of the connection in the Auto Loader's options. They travel to Spark Connect's
# Python workers as plain strings; `access.key` / `secret` in a name makes Spark redact the value.
_OPTION_NAMES = {"endpoint": "s3.endpoint", "region": "s3.region", "access_key": "s3.access.key",
                 "secret_key": "s3.secret.key"}
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Connection:
    """How to reach the S3 API: what every client of the workbook needs to know."""

    region: str = DEFAULT_REGION
    endpoint: str = ""  # empty: AWS's own endpoint for the region
    access_key: str = ""  # empty: the SDK's default credential chain
    secret_key: str = ""

    @property
    def path_style(self) -> bool:
        """S3-compatible servers (s3proxy, MinIO) serve buckets as paths, not as host names."""
        return bool(self.endpoint)

    @property
    def scheme(self) -> str:
        return self.endpoint.partition("://")[0] if self.endpoint else "https"

    @property
    def host(self) -> str:
        """The endpoint without its scheme (`127.0.0.1:9000`)."""
        return self.endpoint.partition("://")[2]

    def as_options(self) -> dict[str, str]:
        """The connection as plain-string options (Auto Loader's `s3.*`), empty values left out."""
        return {name: getattr(self, field) for field, name in _OPTION_NAMES.items() if getattr(self, field)}

    @classmethod
    def from_options(cls, options: dict) -> S3Connection:
        values = {field: str(options.get(name) or "") for field, name in _OPTION_NAMES.items()}
        values["region"] = values["region"] or DEFAULT_REGION
        return cls(**values)


def s3_connection(settings: Settings) -> S3Connection:
    keys = bool(settings.s3_access_key)
    return S3Connection(
        region=settings.s3_region or DEFAULT_REGION,
        endpoint=settings.s3_endpoint or "",
        access_key=settings.s3_access_key.reveal() if keys else "",
        secret_key=settings.s3_secret_key.reveal() if keys else "",
    )


def s3_client(settings: Settings, connect_timeout: float | None = None, retries: int = 3):
    import boto3
    from botocore.config import Config

    conn = s3_connection(settings)
    config = Config(
        # Newer SDKs add CRC checksum headers by default; S3-compatible servers may reject them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout or settings.connect_timeout_s,
        read_timeout=max(10.0, settings.connect_timeout_s),
        retries={"max_attempts": retries, "mode": "standard"},
        s3={"addressing_style": "path" if conn.path_style else "auto"},
    )
    kwargs = {"region_name": conn.region, "config": config}
    if conn.endpoint:
        kwargs["endpoint_url"] = conn.endpoint
    if conn.access_key:
        kwargs["aws_access_key_id"] = conn.access_key
        kwargs["aws_secret_access_key"] = conn.secret_key
    return boto3.client("s3", **kwargs)


def read_json(settings: Settings, key: str, default):
    """The JSON object at `key` in the workbook's bucket, or a copy of `default` when it does not
    exist yet (a ledger nobody has written). Any other error is raised."""
    from botocore.exceptions import ClientError

    try:
        body = s3_client(settings).get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return copy.deepcopy(default)
        raise
    return json.loads(body)


def write_json(settings: Settings, key: str, value) -> None:
    # One PUT is atomic on S3: readers see the old or the new object, never half of one.
    s3_client(settings).put_object(
        Bucket=settings.s3_bucket, Key=key,
        Body=json.dumps(value, indent=2).encode(), ContentType="application/json",
    )


def list_keys(settings: Settings, prefix: str = "") -> list[str]:
    client = s3_client(settings)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def delete_keys(settings: Settings, prefix: str = "") -> int:
    """Delete every object under `prefix` in the settings' bucket; how many there were."""
    client, deleted = s3_client(settings), 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=settings.s3_bucket, Delete={"Objects": keys})
            deleted += len(keys)
    return deleted


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
