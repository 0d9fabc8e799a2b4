"""A real S3 API server: s3proxy with its filesystem backend, objects kept as files on disk.
Requests are signed (AWS v2 or v4) with keys generated once into the ignored state folder."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from .. import jvm
from ..settings import Settings
from ..storage import ensure_bucket, s3_client
from ._hints import start_hint
from ._process import ServiceError, port_open

NAME = "s3"
TITLE = "S3 server (s3proxy)"


def endpoint(settings: Settings) -> str:
    return settings.s3_endpoint or f"AWS S3 ({settings.s3_region})"


def bind(settings: Settings) -> tuple[str, int]:
    return urlparse(settings.s3_endpoint).hostname or "127.0.0.1", settings.s3_port


def prepare(settings: Settings, base: Path) -> None:
    (base / "data").mkdir(exist_ok=True)
    if not settings.s3_access_key:
        raise ServiceError("No S3 keys were generated; run `make setup`.")
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
    """Reachable, keys accepted, bucket present."""
    from botocore.exceptions import BotoCoreError, ClientError

    if settings.s3_endpoint:
        host, port = bind(settings)
        if not port_open(host, port, settings.connect_timeout_s):
            raise ServiceError(
                f"S3 is not reachable at {settings.s3_endpoint}. {start_hint(settings, 'S3_ENDPOINT_URL')}"
            )
    client = s3_client(settings, retries=1)
    try:
        client.list_buckets()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        raise ServiceError(
            f"S3 at {endpoint(settings)} refused the credentials ({code}). "
            "Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (local profile: .lakehouse/secrets/s3.env)."
        ) from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 at {endpoint(settings)} is not answering: {exc}") from None
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
    except ClientError:
        return f"reachable; bucket '{settings.s3_bucket}' missing (created by `make services-up`)"
    return f"bucket '{settings.s3_bucket}' ready"


def after_start(settings: Settings) -> None:
    ensure_bucket(settings)
