"""Export, bronze, silver and gold: the workbook's functions (and notebook 06's silver stream)
against the same work as plain Spark batch jobs over the same rows."""

from __future__ import annotations

from functools import partial

from .. import layout, medallion
from ..bronze import bronze_stream, bronze_table
from ..expectations import Expectation
from ..export import export_to_landing
from .sandbox import Sandbox
from .scoreboard import Side, Stage, timed

# Notebook 06's expectations and gold queries, as the notebook spells them out.
EXPECTATIONS = [
    Expectation("has_event_id", "event_id IS NOT NULL", "fail"),
    Expectation("has_event_time", "event_ts IS NOT NULL", "drop"),
    Expectation("positive_quantity", "quantity > 0", "drop"),
    Expectation("known_product", "product_id RLIKE '^(ARA|ROB|LIB|EXC)-[LMD]-(0.2|0.5|1|2.5)$'", "drop"),
    Expectation("known_currency", "currency IN ('USD', 'EUR', 'GBP')", "drop"),
    Expectation("plausible_email", "customer_email LIKE '%_@_%._%'", "warn"),
    Expectation("nothing_rescued", "_rescued_data IS NULL", "warn"),
]


def gold_sql(silver: str, fx: str) -> dict[str, str]:
    usd = "sum(round(line_total * usd_rate, 2))"
    return {
        "daily_revenue": f"""
            SELECT order_date, country, currency, count(DISTINCT order_id) AS orders, count(*) AS lines,
                   sum(quantity) AS units, sum(line_total) AS revenue, {usd} AS revenue_usd
            FROM {silver} JOIN {fx} USING (currency) GROUP BY order_date, country, currency""",
        "product_performance": f"""
            WITH by_product AS (
              SELECT coffee_type, roast, size_kg, count(*) AS lines, sum(quantity) AS units, {usd} AS revenue_usd
              FROM {silver} JOIN {fx} USING (currency) GROUP BY coffee_type, roast, size_kg)
            SELECT *, round(revenue_usd / (SELECT sum(revenue_usd) FROM by_product), 4) AS share_of_revenue
            FROM by_product""",
        "loyalty": f"""
            SELECT loyalty_member, count(DISTINCT customer_id) AS customers, count(DISTINCT order_id) AS orders,
                   count(*) AS lines, {usd} AS revenue_usd,
                   round({usd} / count(DISTINCT order_id), 2) AS avg_order_value_usd
            FROM {silver} JOIN {fx} USING (currency) GROUP BY loyalty_member""",
    }


def export_stage(spark, box: Sandbox) -> Stage:
    """Raw -> S3 landing: export_to_landing (change feed, watermark) against a plain
    partitioned Parquet write of the same table to the native bucket."""
    ex, seconds = timed(lambda: export_to_landing(spark, box.workbook))
    workbook = Side(ex.rows, seconds, ex.rows, {"export_s": ex.seconds})
    raw, target = layout.raw_orders(box.workbook), layout.landing_url(box.native)
    _, seconds = timed(lambda: spark.read.format("delta").load(raw).write.mode("overwrite")
                       .partitionBy("ingestion_date").parquet(target))
    rows = spark.read.parquet(target).count()
    return Stage("export raw -> S3", "rows/s", "Delta read + Parquet write", workbook, Side(rows, seconds, rows))


def bronze_stage(spark, box: Sandbox) -> Stage:
    """Landing -> bronze: notebook 05's Auto Loader stream from S3 against a Parquet batch read."""
    def workbook_run():
        bronze_stream(spark, box.workbook)().awaitTermination()

    _, seconds = timed(workbook_run)
    rows = spark.table(bronze_table(box.workbook)).count()
    workbook = Side(rows, seconds, rows)
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {box.native.schema('bronze')}")
    _, seconds = timed(lambda: spark.read.parquet(layout.landing_url(box.workbook))
                       .selectExpr("*", "_metadata.file_path AS _source_file")
                       .write.format("delta").saveAsTable(bronze_table(box.native)))
    rows = spark.table(bronze_table(box.native)).count()
    return Stage("bronze (Auto Loader, S3)", "rows/s", "Parquet batch read", workbook, Side(rows, seconds, rows))


def upsert_to_silver(batch_df, batch_id: int, expectations: list, tables: medallion.Names) -> None:
    """Notebook 06's foreachBatch body: check, keep the first copy, MERGE, log."""
    if batch_df.isEmpty():
        return
    checked = medallion.check_batch(batch_df, batch_id, expectations, tables)
    updates = medallion.first_per_event(checked.passed)
    updates.createOrReplaceTempView("silver_updates")
    merged = batch_df.sparkSession.sql(f"""
        MERGE INTO {tables.silver} AS t USING silver_updates AS s ON t.event_id = s.event_id
        WHEN NOT MATCHED THEN INSERT *""").first()
    medallion.log_batch(batch_df.sparkSession, tables, checked, updates.count(), merged)


def silver_stage(spark, box: Sandbox) -> Stage:
    """Bronze -> silver: notebook 06's stream (expectations, rejects, logs, MERGE) against one
    CREATE TABLE AS SELECT doing the same typing, filtering and deduplication."""
    tables, setup_s = timed(lambda: medallion.ensure_tables(spark, box.workbook))  # 06's set-up cell: not in the rate
    bronze_rows = spark.table(tables.bronze).count()

    def workbook_run():
        body = partial(upsert_to_silver, expectations=EXPECTATIONS, tables=tables)
        (spark.readStream.table(tables.bronze).writeStream.foreachBatch(body)
         .option("checkpointLocation", tables.checkpoint).trigger(availableNow=True).start().awaitTermination())

    _, seconds = timed(workbook_run)
    books = medallion.accounting(spark, tables)
    if not books["balanced"]:
        raise RuntimeError(f"silver does not account for every bronze row: {books}")
    workbook = Side(bronze_rows, seconds, books["silver_rows"],
                    {"rejected": books["rejected_rows"], "ensure_tables_s": round(setup_s, 2)})
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {box.native.schema('silver')}")
    target = layout.silver(box.native)
    _, seconds = timed(lambda: native_silver(spark, tables.bronze, target))
    return Stage("silver (MERGE stream)", "rows/s", "CREATE TABLE AS SELECT", workbook,
                 Side(bronze_rows, seconds, spark.table(target).count()))


def native_silver(spark, bronze: str, target: str) -> None:
    from pyspark.sql import functions as F

    keep = " AND ".join(f"coalesce({e.predicate}, false)" for e in EXPECTATIONS if e.action == "drop")
    rows = medallion.first_per_event(medallion.clean(spark.table(bronze)).where(keep))
    rows.withColumn("silver_batch", F.lit(0).cast("bigint")).select(*medallion.SILVER_COLUMNS) \
        .write.format("delta").saveAsTable(target)


def gold_stage(spark, box: Sandbox) -> Stage:
    """Silver -> gold: materialize's three tables against CREATE TABLE AS SELECT of the same SQL
    over the plain silver table."""
    tables = medallion.names(box.workbook)
    silver_rows = spark.table(tables.silver).count()
    queries = gold_sql(tables.silver, tables.fx_rates)
    written, seconds = timed(lambda: sum(medallion.materialize(spark, layout.gold(box.workbook, name), sql)
                                         for name, sql in queries.items()))
    workbook = Side(silver_rows, seconds, written)
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {box.native.schema('gold')}")
    queries = gold_sql(layout.silver(box.native), tables.fx_rates)

    def native_run():
        for name, sql in queries.items():
            spark.sql(f"CREATE TABLE {layout.gold(box.native, name)} USING DELTA AS {sql}")

    _, seconds = timed(native_run)
    written = sum(spark.table(layout.gold(box.native, name)).count() for name in queries)
    return Stage("gold (materialize)", "rows/s", "CREATE TABLE AS SELECT", workbook, Side(silver_rows, seconds, written))
