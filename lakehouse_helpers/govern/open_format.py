"""A Delta table read without Spark (07's open-format section): where its files are, as delta-rs
names them, what its log holds, and what its protocol asks of a reader.

The delta-rs and DuckDB calls stay on the page; this module holds only the plumbing: a catalog
location turned into a path or URL delta-rs opens, the S3 connection as delta-rs's options, and
the `_delta_log` folder listed.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from lakehouse_helpers.runtime import storage
from lakehouse_helpers.runtime.settings import Settings

# What an engine outside the workspace needs for a Unity Catalog managed table: credentials Unity
# Catalog vends to it (and a grant to use them), which a notebook cell cannot set up simply.
DATABRICKS_SKIP = (
    "skipped on Databricks: gold is a Unity Catalog managed table, whose files an engine outside "
    "Spark reaches only with credentials Unity Catalog vends to it (external data access and the "
    "EXTERNAL USE SCHEMA privilege); inside the workspace, Spark reads it as above"
)


def skip_reason(settings: Settings) -> str:
    """Why the read without Spark does not run here, or "" when it does."""
    return DATABRICKS_SKIP if settings.profile == "databricks" else ""


def table_uri(location: str) -> str:
    """`DESCRIBE DETAIL`'s location as delta-rs opens it: a local path for `file:` (Spark writes
    `file:/...`, percent-encoded), `s3://` for Hadoop's `s3a://`, anything else unchanged."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    if parsed.scheme in ("s3a", "s3n"):
        return "s3://" + location.split("://", 1)[1]
    return location


def storage_options(settings: Settings, uri: str) -> dict[str, str]:
    """The S3 connection as delta-rs's `storage_options` (its object store's keys); empty for a
    local path. Holds the secret key when one is set: pass it on, never print it."""
    if not uri.startswith("s3://"):
        return {}
    conn = storage.s3_connection(settings)
    options = {"AWS_REGION": conn.region}
    if conn.endpoint:  # an S3-compatible server: its address, plain HTTP allowed, buckets as paths
        options |= {"AWS_ENDPOINT_URL": conn.endpoint, "AWS_ALLOW_HTTP": str(conn.scheme == "http").lower(),
                    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false"}
    if conn.access_key:  # otherwise the default credential chain (an instance role, a profile)
        options |= {"AWS_ACCESS_KEY_ID": conn.access_key, "AWS_SECRET_ACCESS_KEY": conn.secret_key}
    return options


def reader_needs(min_reader_version: int, reader_features: list[str] | None) -> list[str]:
    """The table features a reader must support: named from reader version 3 on; version 2
    means column mapping; version 1 needs nothing beyond Parquet and the log."""
    if min_reader_version >= 3:
        return sorted(reader_features or [])
    return ["columnMapping"] if min_reader_version == 2 else []


def keep_readable(table: str, feature: str) -> str:
    """The statements that make `table` readable again by engines without `feature`."""
    if feature == "deletionVectors":  # off for new writes, rewrite the files that carry them, then drop it
        return (f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.enableDeletionVectors' = false); "
                f"REORG TABLE {table} APPLY (PURGE); ALTER TABLE {table} DROP FEATURE deletionVectors")
    return (f"ALTER TABLE {table} DROP FEATURE {feature} where Delta can drop it; otherwise rewrite the "
            f"table with CREATE TABLE ... AS SELECT, the feature's property off")


def _kind(name: str) -> str:
    if ".checkpoint" in name:
        return "checkpoint"
    if name.endswith(".json") and name.split(".")[0].isdigit():
        return "commit"
    if name.endswith(".crc"):
        return "checksum of a version (optional)"
    return "pointer to the last checkpoint" if name == "_last_checkpoint" else "other"


def _actions(text: str) -> str:
    """A commit's actions in order, one per line of its JSON (`add` x 3 when three files came)."""
    import json
    from itertools import groupby

    names = [next(iter(json.loads(line))) for line in text.splitlines() if line.strip()]
    return ", ".join(f"{n} x {k}" if (k := len(list(g))) > 1 else n for n, g in groupby(names))


def delta_log(settings: Settings, location: str) -> list[tuple[str, str, int, str]]:
    """The table's `_delta_log` folder, on local disk or S3, sorted: (file, kind, bytes, the
    actions of a commit). Hadoop's hidden `.*.crc` files (checksums of the local file system, not
    Delta's) are left out."""
    uri = table_uri(location)
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3 = storage.s3_client(settings)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{key.rstrip('/')}/_delta_log/")
        found = {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}

        def read(path: str) -> str:
            return s3.get_object(Bucket=bucket, Key=path)["Body"].read().decode()
    else:
        from pathlib import Path

        found = {str(p): p.stat().st_size for p in (Path(uri) / "_delta_log").iterdir() if p.is_file()}

        def read(path: str) -> str:
            return Path(path).read_text()
    rows = []
    for path, size in sorted(found.items()):
        name = path.rsplit("/", 1)[1]
        if name.startswith("."):
            continue
        kind = _kind(name)
        rows.append((name, kind, size, _actions(read(path)) if kind == "commit" else ""))
    return rows
