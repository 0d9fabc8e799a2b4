"""Export, bronze, silver and gold: the workbook's functions (and notebook 06's silver stream)
against the same work as plain Spark batch jobs over the same rows."""

from __future__ import annotations

from lakehouse_helpers.bench.sandbox import Sandbox
from lakehouse_helpers.bench.scoreboard import Side, Stage, timed
from lakehouse_helpers.pipeline import medallion
from lakehouse_helpers.pipeline.bronze import bronze_stream
from lakehouse_helpers.pipeline.events import CURRENCIES, PRODUCT_ID_PATTERN
from lakehouse_helpers.pipeline.expectations import Expectation
from lakehouse_helpers.pipeline.export import export_to_landing
from lakehouse_helpers.runtime import layout, pages
from lakehouse_helpers.runtime.layout import bronze_table

NOTEBOOK_06 = pages.NOTEBOOKS_DIR / "06_medallion_silver_gold.ipynb"


def notebook_06(tables: medallion.Names, page=NOTEBOOK_06) -> dict:
    """06's expectations, foreachBatch body and gold SQL, run from the notebook's own cells
    (tagged expectations, silver-merge, gold-sql; or those of `page`, a copy of it) against
    `tables`: what is measured is what the notebook teaches, never a copy that could drift."""
    import pandas as pd

    # The names those cells take from 06's set-up cell (its imports and table names).
    scope = {"Expectation": Expectation, "CURRENCIES": CURRENCIES, "PRODUCT_ID_PATTERN": PRODUCT_ID_PATTERN,
             "medallion": medallion, "pd": pd, "tables": tables, "silver": tables.silver}
    return pages.run_cells(page, ["expectations", "silver-merge", "gold-sql"], scope)


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


def silver_stage(spark, box: Sandbox) -> Stage:
    """Bronze -> silver: notebook 06's stream (expectations, rejects, logs, MERGE) against one
    CREATE TABLE AS SELECT doing the same typing, filtering and deduplication."""
    tables, setup_s = timed(lambda: medallion.ensure_tables(spark, box.workbook))  # 06's set-up cell: not in the rate
    bronze_rows = spark.table(tables.bronze).count()

    body = notebook_06(tables)["upsert_to_silver"]

    def workbook_run():
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
    _, seconds = timed(lambda: native_silver(spark, tables.bronze, target, notebook_06(tables)["expectations"]))
    return Stage("silver (MERGE stream)", "rows/s", "CREATE TABLE AS SELECT", workbook,
                 Side(bronze_rows, seconds, spark.table(target).count()))


def native_silver(spark, bronze: str, target: str, expectations: list) -> None:
    from pyspark.sql import functions as F

    keep = " AND ".join(f"coalesce({e.predicate}, false)" for e in expectations if e.action == "drop")
    rows = medallion.first_per_event(medallion.clean(spark.table(bronze)).where(keep))
    rows.withColumn("silver_batch", F.lit(0).cast("bigint")).select(*medallion.SILVER_COLUMNS) \
        .write.format("delta").saveAsTable(target)


def gold_stage(spark, box: Sandbox) -> Stage:
    """Silver -> gold: materialize's three tables against CREATE TABLE AS SELECT of the same SQL
    over the plain silver table."""
    tables = medallion.names(box.workbook)
    silver_rows = spark.table(tables.silver).count()
    queries = notebook_06(tables)["gold_sql"]  # gold table name -> SQL, as 06 shows it
    written, seconds = timed(lambda: sum(medallion.materialize(spark, table, sql) for table, sql in queries.items()))
    workbook = Side(silver_rows, seconds, written)
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {box.native.schema('gold')}")
    # The same SQL over the plain silver table, into the native box's gold tables.
    native = [(layout.gold(box.native, table.rsplit(".", 1)[-1]), sql.replace(tables.silver, layout.silver(box.native)))
              for table, sql in queries.items()]
    targets = [target for target, _ in native]

    def native_run():
        for target, sql in native:
            spark.sql(f"CREATE TABLE {target} USING DELTA AS {sql}")

    _, seconds = timed(native_run)
    written = sum(spark.table(target).count() for target in targets)
    return Stage("gold (materialize)", "rows/s", "CREATE TABLE AS SELECT", workbook,
        Side(silver_rows, seconds, written))
