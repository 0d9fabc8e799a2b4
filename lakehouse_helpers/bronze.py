"""Notebook 05: the landing zone into the bronze table with Auto Loader, and the files that make
its schema evolve.

Bronze is a Delta table registered in the catalog (`<catalog>.bronze.orders`), written by an
Auto Loader stream over `landing/orders/` with the rescued data column and the source file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from . import autoloader, layout
from .settings import Settings

BRONZE_SCHEMA = "bronze"
BRONZE_TABLE = "orders"
DROPS_STATE_KEY = "landing/_export_state/drops.json"


def bronze_table(settings: Settings) -> str:
    return settings.table(BRONZE_SCHEMA, BRONZE_TABLE)


def schema_location(settings: Settings, name: str = "bronze_orders") -> str:
    return layout.checkpoint(settings, f"{name}/schema")


def bronze_stream(spark, settings: Settings, max_files_per_trigger: int | None = None):
    """A starter for the landing -> bronze stream: each call builds the DataFrame anew, so a
    restart after a schema change reads with the newest schema version."""

    def start():
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema(BRONZE_SCHEMA)}")
        df = autoloader.read_stream(
            spark, settings, layout.landing_url(settings), "parquet",
            schema_location=schema_location(settings),
            # Folder values are strings; the landing zone's partition column is a date.
            schema_hints="ingestion_date date",
            max_files_per_trigger=max_files_per_trigger,
        )
        return (
            df.writeStream.format("delta")
            .option("checkpointLocation", layout.checkpoint(settings, "bronze_orders/stream"))
            .option("mergeSchema", "true")  # new columns from an evolved schema
            .trigger(availableNow=True)
            .toTable(bronze_table(settings))
        )

    return start


def read_drops(settings: Settings) -> dict:
    from botocore.exceptions import ClientError

    from .storage import s3_client

    try:
        body = s3_client(settings).get_object(Bucket=settings.s3_bucket, Key=DROPS_STATE_KEY)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return {"drops": []}
        raise
    return json.loads(body)


def dropped_rows(settings: Settings) -> int:
    """Rows that arrived in the landing zone from outside the export (04 reconciles them)."""
    return sum(d["rows"] for d in read_drops(settings)["drops"])


def drift_batch(events: int, seed: int):
    """The events of a drift drop: valid orders that all carry the new column."""
    from .events import generate

    return generate(events=events, seed=seed, malformed_rate=0, invalid_rate=0, duplicate_rate=0, late_rate=0, drift_after=0)


@dataclass
class Drop:
    rows: int
    path: str
    new_columns: list[str]
    skipped: bool = False


def write_drift_files(spark, settings: Settings, events: int = 200, seed: int = 1042) -> Drop:
    """New landing files from an upstream system that now sends `promo_code`: valid order
    events from the generator, in the landing layout, with the new field as a real column.
    Recorded in `landing/_export_state/drops.json` so validation (04) can reconcile them;
    a second call with the same seed writes nothing."""
    from pyspark.sql import functions as F

    from .events import DRIFT_FIELD
    from .storage import s3_client
    from .stream import RAW_COLUMNS, classify

    state = read_drops(settings)
    drop_id = f"drift-{seed}-{events}"
    path = f"{layout.landing_url(settings)}/ingestion_date={time.strftime('%Y-%m-%d')}/export_from={drop_id}"
    for d in state["drops"]:
        if d["id"] == drop_id:
            return Drop(d["rows"], d["path"], d["new_columns"], skipped=True)
    batch = drift_batch(events, seed)
    kafka_like = spark.createDataFrame(
        [(m.key, m.value, "upstream", 0, i, None) for i, m in enumerate(batch.messages)],
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    rows = (
        classify(kafka_like)
        .select(*[c for c in RAW_COLUMNS if c != "ingestion_date"])
        .withColumn(DRIFT_FIELD, F.get_json_object("payload", f"$.{DRIFT_FIELD}"))
    )
    rows.coalesce(1).write.mode("overwrite").parquet(path)
    count = len(batch.messages)
    state["drops"].append({
        "id": drop_id, "rows": count, "path": path, "new_columns": [DRIFT_FIELD], "at": time.time(),
        "generator": {"events": events, "seed": seed},  # so 06 can rebuild the ground truth
    })
    s3_client(settings).put_object(Bucket=settings.s3_bucket, Key=DROPS_STATE_KEY, Body=json.dumps(state, indent=2).encode())
    return Drop(count, path, [DRIFT_FIELD])


def write_json_drop(settings: Settings, folder: str, name: str, records: list[dict]) -> str:
    """One JSON Lines file into a drop folder on S3 (the rescue-mode demonstration)."""
    from .storage import s3_client

    key = f"{folder.strip('/')}/{name}"
    s3_client(settings).put_object(Bucket=settings.s3_bucket, Key=key, Body="".join(json.dumps(r) + "\n" for r in records).encode())
    return settings.s3_url(key)
