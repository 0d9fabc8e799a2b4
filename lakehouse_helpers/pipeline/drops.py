"""Notebook 05's demo drops: files an upstream system puts into the landing zone, so the bronze
stream has something to evolve its schema on (a new column) and to rescue (stray JSON values).

Each drift drop is recorded in the landing zone's drops ledger (`ledgers.py`), so 04 can
reconcile the landing rows and 06 can rebuild its ground truth from the generator settings.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from lakehouse_helpers.runtime import layout, ledgers
from lakehouse_helpers.runtime.settings import Settings


def drift_batch(events: int, seed: int):
    """The events of a drift drop: valid orders that all carry the new column."""
    from lakehouse_helpers.pipeline.events import generate

    return generate(events=events, seed=seed, malformed_rate=0, invalid_rate=0, duplicate_rate=0, late_rate=0,
                    drift_after=0)


@dataclass
class Drop:
    rows: int
    path: str
    new_columns: list[str]
    skipped: bool = False


def write_drift_files(spark, settings: Settings, events: int = 200, seed: int = 1042) -> Drop:
    """New landing files from an upstream system that now sends `promo_code`: valid order
    events from the generator, in the landing layout, with the new field as a real column.
    Recorded in the drops ledger so validation (04) can reconcile them; a second call with the
    same seed writes nothing."""
    from pyspark.sql import functions as F

    from lakehouse_helpers.pipeline.events import DRIFT_FIELD
    from lakehouse_helpers.pipeline.stream import classify
    from lakehouse_helpers.runtime.contract import RAW_COLUMNS

    drop_id = f"drift-{seed}-{events}"
    done = ledgers.find_drop(settings, drop_id)
    if done is not None:
        return Drop(done["rows"], done["path"], done["new_columns"], skipped=True)
    path = layout.landing_partition(settings, time.strftime("%Y-%m-%d"), drop_id)
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
    # The generator settings, so 06 can rebuild the ground truth.
    ledgers.record_drop(settings, drop_id, count, path, [DRIFT_FIELD], generator={"events": events, "seed": seed})
    return Drop(count, path, [DRIFT_FIELD])


def write_json_drop(settings: Settings, name: str, records: list[dict], prefix: str = layout.JSON_DROP_PREFIX) -> str:
    """One JSON Lines file into a drop folder on S3 (the rescue-mode demonstration)."""
    from lakehouse_helpers.runtime.storage import s3_client

    key = f"{prefix.strip('/')}/{name}"
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    s3_client(settings).put_object(Bucket=settings.s3_bucket, Key=key, Body=body)
    return settings.s3_url(key)
