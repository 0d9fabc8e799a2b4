"""Notebook 06's plumbing: bronze -> silver -> gold.

The lesson itself (the expectations, the readStream ... foreachBatch chain, the MERGE and the
gold SQL) is written out in the notebook. This module holds what the notebook should not have
to spell out: the silver table's contract and constraints, the cleaning of bronze rows, which
copy of an event wins, the rejected rows and the per-batch logs. SQL and the DataFrame API
only, so it runs on classic Spark, on a Spark Connect server and on Databricks serverless.

Which copy wins: `event_id` identifies one immutable order line. Inside a micro-batch the
earliest copy wins (ingestion time, then Kafka topic, partition and offset, then source file);
across batches the copy silver already holds wins (the MERGE only inserts). Producer retries
resend an event byte for byte, so the copies are identical; a later copy is counted as a
duplicate removed, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse_helpers.pipeline.expectations import (
    FAILED_COLUMN,
    LOG_SCHEMA,
    Evaluation,
    Expectation,
    drop_condition,
    evaluate,
    metrics,
    raise_on_fail,
)
from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.settings import Settings

# Illustrative fixed rates (USD per unit of currency) so gold can add up sales made in three
# currencies. A real pipeline joins a dated rates table instead.
FX_RATES = {"USD": "1.000000", "EUR": "1.080000", "GBP": "1.270000"}

SILVER_FIELDS = [
    ("event_id", "STRING NOT NULL"), ("order_id", "STRING"), ("line_no", "INT"), ("event_ts", "TIMESTAMP"),
    ("order_date", "DATE"), ("customer_id", "STRING"), ("customer_email", "STRING"), ("country", "STRING"),
    ("loyalty_member", "BOOLEAN"), ("product_id", "STRING"), ("coffee_type", "STRING"), ("roast", "STRING"),
    ("size_kg", "DECIMAL(3,1)"), ("unit_price", "DECIMAL(10,2)"), ("currency", "STRING"), ("quantity", "INT"),
    ("line_total", "DECIMAL(12,2)"), ("promo_code", "STRING"), ("_rescued_data", "STRING"),
    ("source_file", "STRING"), ("kafka_topic", "STRING"), ("kafka_partition", "INT"),
    ("kafka_offset", "BIGINT"), ("ingested_at", "TIMESTAMP"), ("silver_batch", "BIGINT"),
]
SILVER_COLUMNS = [name for name, _ in SILVER_FIELDS]
SILVER_DDL = ", ".join(f"{name} {sql_type}" for name, sql_type in SILVER_FIELDS)
# Invariants enforced by the table itself: a bad write fails even if the code changes.
SILVER_CONSTRAINTS = {
    "positive_quantity": "quantity > 0",
    "positive_price": "unit_price > 0",
    "line_total_is_price_times_quantity": "line_total = unit_price * quantity",
}
REJECTED_DDL = (
    "event_id STRING, failed_expectations ARRAY<STRING>, record STRING, source_file STRING, "
    "silver_batch BIGINT, rejected_at TIMESTAMP"
)
BATCH_LOG_DDL = (
    "silver_batch BIGINT, bronze_rows BIGINT, rejected_rows BIGINT, passed_rows BIGINT, "
    "duplicates_in_batch BIGINT, already_in_silver BIGINT, inserted_rows BIGINT, logged_at TIMESTAMP"
)
APP_ID = "silver_orders"  # Delta idempotent writes: a replayed batch id is skipped


@dataclass(frozen=True)
class Names:
    """Every table and checkpoint of 06, from the settings (catalog, schema prefix, data folder)."""

    bronze: str
    silver: str
    rejected: str
    expectations_log: str
    batch_log: str
    fx_rates: str
    daily_revenue: str
    product_performance: str
    loyalty: str
    checkpoint: str

    @property
    def gold_tables(self) -> list[str]:
        return [self.daily_revenue, self.product_performance, self.loyalty]


def names(settings: Settings) -> Names:
    return Names(
        bronze=layout.bronze_table(settings),
        silver=layout.silver(settings, "orders"),
        rejected=layout.silver(settings, "orders_rejected"),
        expectations_log=layout.silver(settings, "orders_expectations_log"),
        batch_log=layout.silver(settings, "orders_batch_log"),
        fx_rates=layout.silver(settings, "fx_rates"),
        daily_revenue=layout.gold(settings, "daily_revenue"),
        product_performance=layout.gold(settings, "product_performance"),
        loyalty=layout.gold(settings, "loyalty"),
        checkpoint=layout.checkpoint(settings, layout.SILVER_STREAM),
    )


def _has_constraint(spark, table: str, name: str) -> bool:
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
    return f"delta.constraints.{name.lower()}" in props


def ensure_tables(spark, settings: Settings) -> Names:
    """Create the silver and gold schemas and silver's tables once (safe to call again)."""
    n = names(settings)
    for schema in ("silver", "gold"):
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema(schema)}")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {n.silver} ({SILVER_DDL}) USING DELTA "
        "TBLPROPERTIES (delta.enableChangeDataFeed = true)"
    )
    for name, predicate in SILVER_CONSTRAINTS.items():
        if not _has_constraint(spark, n.silver, name):
            spark.sql(f"ALTER TABLE {n.silver} ADD CONSTRAINT {name} CHECK ({predicate})")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {n.rejected} ({REJECTED_DDL}) USING DELTA")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {n.expectations_log} ({LOG_SCHEMA}) USING DELTA")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {n.batch_log} ({BATCH_LOG_DDL}) USING DELTA")
    if not _rates_held(spark, n.fx_rates):  # written once: a re-run adds no version, no file to compact
        rates = ", ".join(f"('{c}', CAST({r} AS DECIMAL(10,6)))" for c, r in FX_RATES.items())
        materialize(spark, n.fx_rates, f"SELECT * FROM VALUES {rates} AS fx(currency, usd_rate)")
    return n


def _rates_held(spark, table: str) -> bool:
    if not spark.catalog.tableExists(table):
        return False
    try:
        held = {r["currency"]: f"{r['usd_rate']:.6f}" for r in spark.table(table).collect()}
    except (KeyError, TypeError, ValueError):  # other columns: materialize starts the table anew
        return False
    return held == FX_RATES


def materialize(spark, table: str, select_sql: str) -> int:
    """Materialized-view semantics for a gold table: the table holds exactly the query's result,
    recomputed in one atomic Delta commit (re-running changes nothing but the version). Created
    on first use; replaced with `INSERT OVERWRITE`, which keeps the table's identity and history
    (`CREATE OR REPLACE` on Spark's Hive metastore would re-register it). Returns the row count."""
    def columns(schema) -> list:  # Delta stores every column nullable and keeps comments: compare the rest
        return [(f.name, f.dataType) for f in schema.fields]

    result = spark.sql(select_sql)
    if spark.catalog.tableExists(table) and columns(spark.table(table).schema) != columns(result.schema):
        spark.sql(f"DROP TABLE {table}")  # the query's columns changed: start the table anew
    if not spark.catalog.tableExists(table):
        spark.sql(f"CREATE TABLE {table} USING DELTA AS {select_sql}")
    else:
        spark.sql(f"INSERT OVERWRITE {table} {select_sql}")
    return spark.table(table).count()


def clean(bronze_df):
    """Bronze rows typed and cleaned for silver, plus `_bronze` (the original row, for rejects).

    Money becomes DECIMAL, casing is normalised, `order_date` is the event's UTC day, the drift
    column `promo_code` is kept (from its own column, or from the raw payload of rows that
    carried it before the table had it), and a value that bronze rescued because its type did
    not fit (for example quantity "3") repairs the column it belongs to."""
    from pyspark.sql import functions as F

    cols = set(bronze_df.columns)
    rescued = "_rescued_data" in cols

    def value(name: str, sql_type: str):
        own = F.col(name).cast(sql_type) if name in cols else F.lit(None).cast(sql_type)
        if not rescued:
            return own
        return F.coalesce(own, F.expr(f"try_cast(get_json_object(_rescued_data, '$.{name}') AS {sql_type})"))

    def text(name: str):
        return F.trim(value(name, "string"))

    promo = value("promo_code", "string")
    if "payload" in cols:
        promo = F.coalesce(promo, F.get_json_object("payload", "$.promo_code"))
    event_ts = value("event_ts", "timestamp")
    unit_price = value("unit_price", "decimal(10,2)")
    quantity = value("quantity", "int")
    source = F.col("_source_file") if "_source_file" in cols else F.lit(None).cast("string")
    return bronze_df.select(
        text("event_id").alias("event_id"),
        text("order_id").alias("order_id"),
        value("line_no", "int").alias("line_no"),
        event_ts.alias("event_ts"),
        # The UTC day, whatever the session time zone (Databricks workspaces may set another).
        F.date_from_unix_date(F.floor(F.unix_seconds(event_ts) / 86400).cast("int")).alias("order_date"),
        F.upper(text("customer_id")).alias("customer_id"),
        F.lower(text("customer_email")).alias("customer_email"),
        F.initcap(text("country")).alias("country"),
        value("loyalty_member", "boolean").alias("loyalty_member"),
        F.upper(text("product_id")).alias("product_id"),
        F.initcap(text("coffee_type")).alias("coffee_type"),
        F.initcap(text("roast")).alias("roast"),
        value("size_kg", "decimal(3,1)").alias("size_kg"),
        unit_price.alias("unit_price"),
        F.upper(text("currency")).alias("currency"),
        quantity.alias("quantity"),
        (unit_price * quantity).cast("decimal(12,2)").alias("line_total"),
        F.upper(F.trim(promo)).alias("promo_code"),
        (F.col("_rescued_data") if rescued else F.lit(None).cast("string")).alias("_rescued_data"),
        source.alias("source_file"),
        *[
            (F.col(c) if c in cols else F.lit(None)).cast(t).alias(c)
            for c, t in (("kafka_topic", "string"), ("kafka_partition", "int"),
                         ("kafka_offset", "bigint"), ("ingested_at", "timestamp"))
        ],
        F.struct(*[F.col(c) for c in bronze_df.columns]).alias("_bronze"),
    )


def first_per_event(df):
    """One row per `event_id`: the earliest copy (see the module docstring)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("event_id").orderBy(
        F.col("ingested_at").asc_nulls_last(), "kafka_topic", "kafka_partition", "kafka_offset", "source_file"
    )
    return df.withColumn("_copy", F.row_number().over(order)).where("_copy = 1").drop("_copy")


@dataclass
class CheckedBatch:
    batch_id: int
    evaluation: Evaluation
    passed: object  # DataFrame of clean rows that passed every drop/fail expectation (silver columns)
    rejected_rows: int
    events: int  # distinct events among the passed rows: the rows first_per_event keeps

    # `with check_batch(...) as checked:` releases the batch's cached rows when the block ends,
    # also when the MERGE inside it fails: the Spark server's cache is shared by every notebook.
    def __enter__(self) -> CheckedBatch:
        return self

    def __exit__(self, *exc) -> None:
        self.evaluation.df.unpersist()


def _append(df, table: str, batch_id: int) -> None:
    # txnAppId + txnVersion: Delta skips a (app, batch) it already committed, so a replayed
    # batch does not write its rejects or log rows twice.
    (
        df.write.format("delta").mode("append")
        .option("txnAppId", f"{APP_ID}:{table}").option("txnVersion", batch_id)
        .saveAsTable(table)
    )


def check_batch(batch_df, batch_id: int, expectations: list[Expectation], n: Names) -> CheckedBatch:
    """Clean a bronze micro-batch and apply the expectations: `fail` raises before anything is
    written; `drop` rows go to the rejected table with the names of the expectations they
    failed and their original values; every expectation's counts go to the log. The batch stays
    cached for the MERGE: use the result in a `with` block, which releases it."""
    from pyspark.sql import functions as F

    spark = batch_df.sparkSession
    keep = ~drop_condition(expectations)
    # One pass counts every expectation, the rows to reject and the events to merge (a struct:
    # a null event_id is one event, as first_per_event groups it).
    evaluation = evaluate(clean(batch_df), expectations, persist=True, extra={
        "rejected": F.sum((~keep).cast("long")), "events": F.count_distinct(F.when(keep, F.struct("event_id")))})
    marked = evaluation.df
    try:
        raise_on_fail(evaluation, expectations, batch_id, hide=("_bronze",))
        rejected = marked.where(~keep).select(
            "event_id", F.col(FAILED_COLUMN).alias("failed_expectations"), F.to_json("_bronze").alias("record"),
            "source_file", F.lit(batch_id).cast("bigint").alias("silver_batch"),
            F.current_timestamp().alias("rejected_at"),
        )
        _append(rejected, n.rejected, batch_id)  # also when empty: the batch's commit, and 07's lineage edge
        log = spark.createDataFrame(metrics(evaluation, expectations, batch_id)).select(
            F.col("batch_id").cast("bigint"), "expectation", "predicate", "action",
            F.col("passed").cast("bigint"), F.col("failed").cast("bigint"), F.current_timestamp().alias("logged_at"),
        )
        _append(log, n.expectations_log, batch_id)
        passed = marked.where(keep).withColumn("silver_batch", F.lit(batch_id).cast("bigint")).select(*SILVER_COLUMNS)
        return CheckedBatch(batch_id, evaluation, passed, evaluation.extra["rejected"], evaluation.extra["events"])
    except BaseException:
        marked.unpersist()
        raise


def log_batch(spark, n: Names, checked: CheckedBatch, merge_result) -> dict:
    """The batch's accounting: bronze rows = inserted + rejected + duplicates removed, from the
    counts check_batch took (no second pass over the batch)."""
    inserted = int(merge_result["num_inserted_rows"]) if merge_result is not None else 0
    passed, updates_rows = checked.evaluation.rows - checked.rejected_rows, checked.events
    row = {
        "silver_batch": checked.batch_id, "bronze_rows": checked.evaluation.rows,
        "rejected_rows": checked.rejected_rows, "passed_rows": passed,
        "duplicates_in_batch": passed - updates_rows, "already_in_silver": updates_rows - inserted,
        "inserted_rows": inserted,
    }
    from pyspark.sql import functions as F

    df = spark.createDataFrame([row]).select(
        *[F.col(c).cast("bigint") for c in row], F.current_timestamp().alias("logged_at")
    )
    _append(df, n.batch_log, checked.batch_id)
    return row


def accounting(spark, n: Names) -> dict:
    """Every bronze row accounted for, from the tables and from the batch log."""
    log = spark.sql(
        f"SELECT coalesce(sum(bronze_rows), 0) AS bronze, coalesce(sum(inserted_rows), 0) AS inserted, "
        f"coalesce(sum(rejected_rows), 0) AS rejected, "
        f"coalesce(sum(duplicates_in_batch + already_in_silver), 0) AS duplicates FROM {n.batch_log}"
    ).first()
    out = {
        "bronze_rows": spark.table(n.bronze).count(),
        "silver_rows": spark.table(n.silver).count(),
        "rejected_rows": spark.table(n.rejected).count(),
        "duplicates_removed": int(log["duplicates"]),
        "logged_bronze_rows": int(log["bronze"]),
    }
    out["balanced"] = out["bronze_rows"] == out["silver_rows"] + out["rejected_rows"] + out["duplicates_removed"]
    return out
