"""Export the raw Delta table to the S3 landing zone as Parquet, idempotently.

Each run exports the Delta versions committed since the last export (read through the change
data feed), writes them under `ingestion_date=<day>/export_from=<first version>/`, and only then
commits the new watermark to `landing/_export_state/orders.json`. Re-running exports nothing
new. A crash between the write and the commit is repaired by the next run: it exports the same
range again from the same first version, and dynamic partition overwrite replaces exactly the
partitions the failed attempt wrote, so no row lands twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from . import layout, services
from .settings import Settings
from .storage import s3_client


class ExportBlocked(RuntimeError):
    """The quality gate failed: nothing was exported."""


@dataclass
class ExportResult:
    from_version: int | None
    to_version: int
    rows: int
    seconds: float
    partitions: list[str] = field(default_factory=list)
    skipped_reason: str = ""


def read_watermark(settings: Settings) -> dict:
    from botocore.exceptions import ClientError

    try:
        body = s3_client(settings).get_object(Bucket=settings.s3_bucket, Key=layout.EXPORT_STATE_KEY)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return {"last_exported_version": -1, "exports": []}
        raise
    return json.loads(body)


def _commit_watermark(settings: Settings, state: dict) -> None:
    # One PUT is atomic on S3: readers see the old or the new watermark, never half of one.
    s3_client(settings).put_object(
        Bucket=settings.s3_bucket, Key=layout.EXPORT_STATE_KEY,
        Body=json.dumps(state, indent=2).encode(), ContentType="application/json",
    )


def table_version(spark, path: str) -> int:
    """The latest committed version of the Delta table at `path`."""
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["version"]


def pending_range(spark, settings: Settings) -> tuple[int, int]:
    """(first, last): the raw table's versions not exported yet; nothing is new when first > last."""
    first = read_watermark(settings)["last_exported_version"] + 1
    return first, table_version(spark, layout.raw_orders(settings))


def require_append_only(feed, raw_path: str) -> None:
    """Raise ExportBlocked if the change data feed holds updates or deletes: the landing zone
    only ever receives appended rows, so it cannot follow them."""
    from pyspark.sql import functions as F

    rewritten = feed.where(F.col("_change_type") != "insert").select("_commit_version").distinct().collect()
    if rewritten:
        raise ExportBlocked(
            f"The raw table at {raw_path} is append-only, but version(s) {sorted(r[0] for r in rewritten)} "
            "updated or deleted rows, which the landing zone cannot follow. Restore the table "
            "(RESTORE ... TO VERSION AS OF) or rebuild raw and landing from Kafka."
        )


def change_feed(spark, raw_path: str, first: int, last: int):
    """Rows appended to raw in versions first..last, with the raw table's columns (notebook 03
    shows this read step by step)."""
    feed = (
        spark.read.format("delta").option("readChangeFeed", "true")
        .option("startingVersion", first).option("endingVersion", last).load(raw_path)
    )
    require_append_only(feed, raw_path)
    return feed.drop("_change_type", "_commit_version", "_commit_timestamp")


def pending_changes(spark, settings: Settings):
    """(first version, last version, DataFrame of rows added in between) since the watermark;
    the DataFrame is None when nothing is new."""
    first, last = pending_range(spark, settings)
    if first > last:
        return first, last, None
    return first, last, change_feed(spark, layout.raw_orders(settings), first, last)


def write_landing(changes, first: int, landing_url: str) -> None:
    """Parquet under ingestion_date=<day>/export_from=<first>/. Dynamic partition overwrite
    replaces only the partitions this range writes, so a retried range never lands twice."""
    from pyspark.sql import functions as F

    (
        changes.withColumn("export_from", F.lit(first))
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("ingestion_date", "export_from")
        .parquet(landing_url)
    )


def ingestion_dates(changes) -> list[str]:
    """The ingestion_date partitions the rows fall in (kept with each export in the watermark file)."""
    return sorted(str(r[0]) for r in changes.select("ingestion_date").distinct().collect())


def commit_export(settings: Settings, first: int, last: int, rows: int, partitions: list[str]) -> dict:
    """Move the watermark to `last`, after the write: a crash before this re-exports the range."""
    state = read_watermark(settings)
    state["last_exported_version"] = last
    state["exports"].append(
        {"from_version": first, "to_version": last, "rows": rows, "partitions": partitions, "at": time.time()}
    )
    _commit_watermark(settings, state)
    return state


def export_history(settings: Settings, last: int = 3):
    """The last exports from the watermark file, with a readable UTC time."""
    import pandas as pd

    frame = pd.DataFrame(read_watermark(settings)["exports"][-last:])
    if not frame.empty:
        frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
        frame["partitions"] = frame["partitions"].str.join(", ")
    return frame


def export_to_landing(spark, settings: Settings, gate=None) -> ExportResult:
    """Export what is new in the raw table, the same steps notebook 03 shows. `gate(df)` runs
    before anything is written and raises to stop the export (see quality.gate)."""
    services.require(settings, "s3")
    start = time.monotonic()
    first, last, changes = pending_changes(spark, settings)
    if changes is None:
        return ExportResult(None, last, 0, round(time.monotonic() - start, 2), skipped_reason="nothing new since the last export")
    changes = changes.persist()
    try:
        rows = changes.count()
        if gate is not None:
            gate(changes)
        if rows:
            write_landing(changes, first, layout.landing_url(settings))
        partitions = ingestion_dates(changes)
    finally:
        changes.unpersist()
    commit_export(settings, first, last, rows, partitions)
    return ExportResult(first, last, rows, round(time.monotonic() - start, 2), partitions)


def landing_files(settings: Settings) -> list[str]:
    from .storage import list_keys

    return [k for k in list_keys(settings, layout.LANDING_PREFIX + "/") if k.endswith(".parquet")]
