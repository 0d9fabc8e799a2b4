"""A real S3 API server: s3proxy with its filesystem backend, objects kept as files on disk.
Requests are signed (AWS v2 or v4) with keys generated once into the ignored state folder."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from lakehouse_helpers.runtime import jvm
from lakehouse_helpers.runtime.services._hints import require_port, start_hint
from lakehouse_helpers.runtime.services._process import ServiceError
from lakehouse_helpers.runtime.settings import ENV_VARS, LOCAL_S3_KEYS_FILE, SECRET_ENV_VARS, Settings
from lakehouse_helpers.runtime.storage import ensure_bucket, s3_client

NAME = "s3"
TITLE = "S3 server (s3proxy)"


def endpoint(settings: Settings) -> str:
    return settings.s3_endpoint or f"AWS S3 ({settings.s3_region})"


def bind(settings: Settings) -> tuple[str, int]:
    return urlparse(settings.s3_endpoint).hostname or "127.0.0.1", settings.s3_port


def prepare(settings: Settings, base: Path) -> None:
    (base / "data").mkdir(exist_ok=True)
    if not settings.s3_access_key:
        raise ServiceError("No S3 keys were generated.", service=NAME, fix="Run `make setup`.")
    conf = base / "s3proxy.conf"
    # The keys live in a 0600 file, not on the command line where `ps` would show them.
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f"s3proxy.endpoint=http://{bind(settings)[0]}:{settings.s3_port}\n"
            "s3proxy.authorization=aws-v2-or-v4\n"
            f"s3proxy.identity={settings.s3_access_key.reveal()}\n"
            f"s3proxy.credential={settings.s3_secret_key.reveal()}\n"
            "jclouds.provider=filesystem-nio2\n"
            f"jclouds.filesystem.basedir={base / 'data'}\n"
        )


def command(settings: Settings, base: Path, marker: str) -> list[str]:
    jar = jvm.jars(settings, "s3proxy")[0]
    return ["java", marker, *jvm.options(settings, "s3proxy"), "-jar", str(jar), "--properties", "s3proxy.conf"]


def environment(settings: Settings) -> dict[str, str]:
    """Nothing beyond the inherited environment."""
    return {}


def check(settings: Settings) -> str:
    """Reachable, keys accepted, bucket present. One listing of at most one key: unlike
    ListBuckets it needs no account-wide right, and unlike a HEAD its error answer has a body, so
    the server's error code (InvalidAccessKeyId, NoSuchBucket, ...) reaches the message."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lakehouse_helpers.runtime.storage import error_kind

    where, bucket = endpoint(settings), settings.s3_bucket
    if settings.s3_endpoint:
        require_port(settings, NAME, "S3", bind(settings), "S3_ENDPOINT_URL", where)
    try:
        s3_client(settings, retries=1).list_objects_v2(Bucket=bucket, MaxKeys=1)
    except ClientError as exc:
        kind = error_kind(exc)
        if kind == "no_bucket" and settings.embedded:
            return f"reachable; bucket '{bucket}' missing (created by `make services-up`)"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        answer = f"HTTP {status} {exc.response.get('Error', {}).get('Code', '')}".strip()
        problem, fix = {
            "access_denied": (f"S3 at {where} refused the keys for bucket '{bucket}' ({answer}).", _keys_fix(settings)),
            "no_bucket": (f"S3 at {where} has no bucket '{bucket}' ({answer}).", _bucket_fix(settings)),
        }.get(kind, (f"S3 at {where} answered {answer} for bucket '{bucket}'.",
                     "Check S3_ENDPOINT_URL, AWS_REGION and S3_BUCKET."))
        raise ServiceError(problem, service=NAME, address=where, fix=fix) from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 at {where} is not answering: {exc}.", service=NAME, address=where,
                           fix=start_hint(settings, "S3_ENDPOINT_URL")) from None
    return f"bucket '{bucket}' ready"


def _keys_fix(settings: Settings) -> str:
    if settings.embedded:
        # The local profile ignores AWS_* variables: the server and the workbook share one file.
        keys = settings.state_dir / LOCAL_S3_KEYS_FILE
        return (f"The embedded server still holds keys other than those in {keys} (read when it starts): "
                "restart it with `make services-down services-up`.")
    return (f"Check {SECRET_ENV_VARS['s3_access_key']} and {SECRET_ENV_VARS['s3_secret_key']} (environment or "
            f".env), and that they may use this bucket ({ENV_VARS['s3_bucket']}).")


def _bucket_fix(settings: Settings) -> str:
    bucket = settings.s3_bucket
    return ("Create it (docker compose: `docker compose --env-file .env -f docker/docker-compose.yml up minio-init`; "
            f"AWS: `aws s3 mb s3://{bucket}`), or set {ENV_VARS['s3_bucket']} to a bucket that exists.")


def after_start(settings: Settings) -> None:
    ensure_bucket(settings)
