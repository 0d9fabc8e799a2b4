"""Spark Structured Streaming from Kafka into the local raw Delta table, with a quarantine.

Every message ends up in exactly one place: parsed and valid in the raw table, or in the
quarantine table with its raw payload, the reason and its Kafka coordinates. Nothing is dropped.
The query is checkpointed (re-running reads only new offsets) and each micro-batch is written
with Delta's idempotent `txnAppId`/`txnVersion`, so a retried batch is never written twice.
`failOnDataLoss` stays on: if Kafka lost offsets the stream stops instead of skipping data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import layout, services
from .events import (
    INVALID_QUANTITY,
    MALFORMED_JSON,
    MISSING_REQUIRED,
    PRODUCT_IDS,
    REQUIRED_FIELDS,
    UNKNOWN_PRODUCT,
)
from .settings import Settings

EVENT_FIELDS = [
    ("event_id", "string"),
    ("order_id", "string"),
    ("line_no", "int"),
    ("event_ts", "timestamp"),
    ("customer_id", "string"),
    ("customer_email", "string"),
    ("country", "string"),
    ("loyalty_member", "boolean"),
    ("product_id", "string"),
    ("coffee_type", "string"),
    ("roast", "string"),
    ("size_kg", "double"),
    ("unit_price", "double"),
    ("currency", "string"),
    ("quantity", "int"),
]
KAFKA_FIELDS = [
    ("kafka_topic", "string"),
    ("kafka_partition", "int"),
    ("kafka_offset", "long"),
    ("kafka_timestamp", "timestamp"),
    ("ingested_at", "timestamp"),
    ("ingestion_date", "date"),
]
RAW_COLUMNS = [n for n, _ in EVENT_FIELDS] + ["unknown_fields", "payload"] + [n for n, _ in KAFKA_FIELDS]
QUARANTINE_COLUMNS = ["reason", "detail", "kafka_key", "payload"] + [n for n, _ in KAFKA_FIELDS]


def event_schema():
    from pyspark.sql.types import StructType

    # Timestamps are parsed explicitly below, so a bad one is a clear missing value, not a corrupt row.
    ddl = ", ".join(f"{n} {'string' if t == 'timestamp' else t}" for n, t in EVENT_FIELDS)
    return StructType.fromDDL(ddl + ", _corrupt_record string")


RAW_DDL = (
    ", ".join(f"{n} {t}" for n, t in EVENT_FIELDS) + ", unknown_fields array<string>, payload string, "
    + ", ".join(f"{n} {t}" for n, t in KAFKA_FIELDS)
)
QUARANTINE_DDL = "reason string, detail string, kafka_key string, payload string, " + ", ".join(
    f"{n} {t}" for n, t in KAFKA_FIELDS
)


def classify(kafka_df):
    """Parse Kafka records and add `reason` (null when valid) and `detail`. Pure DataFrame code,
    used by the stream and testable on a plain batch DataFrame with Kafka's columns."""
    from pyspark.sql import functions as F

    known = [n for n, _ in EVENT_FIELDS]
    payload = F.col("value").cast("string")
    parsed = F.from_json(payload, event_schema(), {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    df = kafka_df.select(
        payload.alias("payload"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        parsed.alias("e"),
    )
    df = df.select(
        "*",
        *[F.col(f"e.{n}").alias(n) for n, t in EVENT_FIELDS if t != "timestamp"],
        # try_: a malformed timestamp makes the event invalid (quarantined), not the stream fail.
        F.try_to_timestamp(F.col("e.event_ts")).alias("event_ts"),
        F.col("e._corrupt_record").alias("_corrupt_record"),
    )
    # PERMISSIVE from_json gives a row of nulls, not null, for broken JSON: detect it explicitly.
    malformed = F.expr("json_object_keys(payload)").isNull() | F.col("_corrupt_record").isNotNull()
    missing = [F.when(F.col(c).isNull(), F.lit(c)) for c in REQUIRED_FIELDS]
    missing_list = F.concat_ws(",", *missing)  # event_ts also counts when unparseable
    products = F.array(*[F.lit(p) for p in sorted(PRODUCT_IDS)])
    reason = (
        F.when(malformed, F.lit(MALFORMED_JSON))
        .when(missing_list != "", F.lit(MISSING_REQUIRED))
        .when(F.col("quantity") <= 0, F.lit(INVALID_QUANTITY))
        .when(~F.array_contains(products, F.col("product_id")), F.lit(UNKNOWN_PRODUCT))
    )
    detail = (
        F.when(malformed, F.lit("payload is not a JSON object"))
        .when(missing_list != "", F.concat(F.lit("missing: "), missing_list))
        .when(F.col("quantity") <= 0, F.concat(F.lit("quantity="), F.col("quantity").cast("string")))
        .when(~F.array_contains(products, F.col("product_id")), F.concat(F.lit("product_id="), F.col("product_id")))
    )
    unknown = F.array_except(
        F.coalesce(F.expr("json_object_keys(payload)"), F.array().cast("array<string>")),
        F.array(*[F.lit(k) for k in known]),
    )
    now = F.current_timestamp()
    return df.drop("e").select(
        "*", reason.alias("reason"), detail.alias("detail"), unknown.alias("unknown_fields"),
        now.alias("ingested_at"), F.to_date(now).alias("ingestion_date"),
    ).drop("_corrupt_record")


def ensure_tables(spark, settings: Settings) -> None:
    """Create the raw and quarantine tables once, with change data feed on (03 exports by version)."""
    for path, ddl in ((layout.raw_orders(settings), RAW_DDL), (layout.quarantine(settings), QUARANTINE_DDL)):
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS delta.`{path}` ({ddl}) USING DELTA "
            "TBLPROPERTIES (delta.enableChangeDataFeed = true)"
        )


@dataclass
class StreamResult:
    mode: str
    batches: int
    input_rows: int
    seconds: float
    raw_rows_added: int
    quarantine_rows_added: int
    progress: list[dict] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.input_rows / self.seconds if self.seconds else 0.0


def _writer(settings: Settings, app_id: str):
    raw_path, quarantine_path = layout.raw_orders(settings), layout.quarantine(settings)

    def write_batch(batch_df, batch_id: int) -> None:
        from pyspark.sql import functions as F

        classified = classify(batch_df).persist()
        try:
            good = classified.where(F.col("reason").isNull()).select(*RAW_COLUMNS)
            bad = classified.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)
            # txnAppId + txnVersion: Delta skips a batch id it already committed (retry after a crash).
            for df, path in ((good, raw_path), (bad, quarantine_path)):
                (
                    df.write.format("delta").mode("append")
                    .option("txnAppId", app_id).option("txnVersion", batch_id)
                    .save(path)
                )
        finally:
            classified.unpersist()

    return write_batch


def kafka_reader(spark, settings: Settings, topic: str | None = None, streaming: bool = False):
    """A reader of the whole topic from its earliest offset: streaming (02) or one batch of
    everything there now (to inspect the topic). `failOnDataLoss` stays on: lost offsets stop
    the read instead of being skipped."""
    reader = (
        (spark.readStream if streaming else spark.read).format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", topic or settings.kafka_topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
    )
    return reader if streaming else reader.option("endingOffsets", "latest")


def run_stream(
    spark,
    settings: Settings,
    mode: str = "availableNow",
    live_seconds: float = 20.0,
    trigger_interval: str = "2 seconds",
    max_offsets_per_trigger: int | None = None,
    topic: str | None = None,
    on_progress=None,
) -> StreamResult:
    """Kafka -> raw + quarantine. `availableNow` processes everything available and stops;
    `live` runs a continuous stream for `live_seconds` (for demos) and then stops it cleanly."""
    if mode not in ("availableNow", "live"):
        raise ValueError(f"mode must be 'availableNow' or 'live', got {mode!r}")
    services.require(settings, "kafka")
    ensure_tables(spark, settings)
    topic = topic or settings.kafka_topic
    name = "raw_orders"
    reader = kafka_reader(spark, settings, topic, streaming=True)
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets_per_trigger)
    before = _counts(spark, settings)
    writer = (
        reader.load().writeStream.queryName(name)
        .option("checkpointLocation", layout.checkpoint(settings, name))
        .foreachBatch(_writer(settings, app_id=f"{name}:{topic}"))
    )
    start = time.monotonic()
    progress: list[dict] = []
    if mode == "availableNow":
        query = writer.trigger(availableNow=True).start()
        query.awaitTermination()
        progress = [p for p in query.recentProgress]
    else:
        query = writer.trigger(processingTime=trigger_interval).start()
        deadline = time.monotonic() + live_seconds
        seen = 0
        while time.monotonic() < deadline and query.isActive:
            query.awaitTermination(timeout=1)
            recent = query.recentProgress
            for p in recent[seen:]:
                if on_progress:
                    on_progress(p)
            seen = len(recent)
        progress = list(query.recentProgress)
        query.stop()
    if query.exception() is not None:
        raise query.exception()
    seconds = time.monotonic() - start
    after = _counts(spark, settings)
    return StreamResult(
        mode=mode,
        batches=sum(1 for p in progress if input_rows(p) > 0),
        input_rows=sum(input_rows(p) for p in progress),
        seconds=round(seconds, 2),
        raw_rows_added=after["raw"] - before["raw"],
        quarantine_rows_added=after["quarantine"] - before["quarantine"],
        progress=[
            {"batch": p.batchId, "rows": input_rows(p), "rows_per_second": round(p.processedRowsPerSecond or 0.0, 1)}
            for p in progress
        ],
    )


def input_rows(progress) -> int:
    """Rows a micro-batch read. Read the attribute: over Spark Connect the progress's dict and
    JSON leave numInputRows and the rates out (None); the attributes sum them from the sources."""
    return int(progress.numInputRows or 0)


def _counts(spark, settings: Settings) -> dict[str, int]:
    return {
        "raw": spark.read.format("delta").load(layout.raw_orders(settings)).count(),
        "quarantine": spark.read.format("delta").load(layout.quarantine(settings)).count(),
    }


def table_counts(spark, settings: Settings) -> dict:
    """Row counts of raw and quarantine, and quarantine per reason."""
    from pyspark.sql import functions as F

    out = _counts(spark, settings)
    reasons = (
        spark.read.format("delta").load(layout.quarantine(settings)).groupBy("reason").agg(F.count("*").alias("n")).collect()
    )
    out.update({f"quarantine_{r['reason']}": r["n"] for r in sorted(reasons, key=lambda r: r["reason"])})
    return out
