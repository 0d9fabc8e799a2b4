"""Notebook 05: the landing zone into the bronze table with Auto Loader.

Bronze is a Delta table registered in the catalog (`<catalog>.bronze.orders`, see
`layout.bronze_table`), written by an Auto Loader stream over `landing/orders/` with the
rescued data column and the source file. The files that make its schema evolve are in `drops.py`.
"""

from __future__ import annotations

from lakehouse_helpers.pipeline import autoloader
from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.settings import Settings


def bronze_stream(spark, settings: Settings, max_files_per_trigger: int | None = None):
    """A starter for the landing -> bronze stream: each call builds the DataFrame anew, so a
    restart after a schema change reads with the newest schema version."""

    def start():
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema(layout.BRONZE_SCHEMA)}")
        df = autoloader.read_stream(
            spark, settings, layout.landing_url(settings), "parquet",
            schema_location=layout.schema_location(settings, layout.BRONZE_STREAM),
            # Folder values are strings; the landing zone's partition column is a date.
            schema_hints="ingestion_date date",
            max_files_per_trigger=max_files_per_trigger,
        )
        return (
            df.writeStream.format("delta")
            .option("checkpointLocation", layout.stream_checkpoint(settings, layout.BRONZE_STREAM))
            .option("mergeSchema", "true")  # new columns from an evolved schema
            .trigger(availableNow=True)
            .toTable(layout.bronze_table(settings))
        )

    return start
