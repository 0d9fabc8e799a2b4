"""Where the workbook reads and writes: every table name, local folder, S3 prefix or key and
checkpoint, in one place, so every notebook, helper and test agrees.

It builds on the roots `Settings` keeps (`state_dir`, `data_dir`, `services_dir`, `jars_dir`,
`warehouse_dir`) and on its naming rules (`settings.table` adds the catalog and the schema
prefix, `settings.s3_url` the bucket); everything below those roots is named here.
"""

from __future__ import annotations

from pathlib import Path

from lakehouse_helpers.runtime.settings import Settings

# --- Local Delta folders (02 writes, 03 reads), registered in the catalog under `raw` by 07 ---

RAW_SCHEMA = "raw"


def raw_orders(settings: Settings) -> str:
    """Local Delta table of parsed order events (02 writes, 03 reads)."""
    return str((settings.data_dir / "raw" / "orders").resolve())


def quarantine(settings: Settings) -> str:
    """Local Delta table of rejected messages, with the raw payload and the reason."""
    return str((settings.data_dir / "raw" / "orders_quarantine").resolve())


# Catalog name -> folder of each raw table.
RAW_TABLES = {"orders": raw_orders, "orders_quarantine": quarantine}


def raw_table(settings: Settings, name: str = "orders") -> str:
    """The catalog name a raw folder is registered under (`<catalog>.raw.orders`)."""
    return settings.table(RAW_SCHEMA, name)


# --- Checkpoints: one folder per stream under the data folder ---

RAW_STREAM = "raw_orders"  # 02: Kafka -> raw (also the streaming query's name)
BRONZE_STREAM = "bronze_orders"  # 05: landing -> bronze (schema history and stream checkpoint)
JSON_DROP_STREAM = "json_drop"  # 05: the rescue-mode demonstration
SILVER_STREAM = "silver_orders"  # 06: bronze -> silver


def checkpoint(settings: Settings, name: str) -> str:
    return str((settings.data_dir / "checkpoints" / name).resolve())


def schema_location(settings: Settings, name: str = BRONZE_STREAM) -> str:
    """An Auto Loader stream's schema history (`_schemas/0`, `_schemas/1`, ...)."""
    return checkpoint(settings, f"{name}/schema")


def stream_checkpoint(settings: Settings, name: str) -> str:
    """The Spark checkpoint of an Auto Loader stream, beside its schema history."""
    return checkpoint(settings, f"{name}/stream")


def run_file(settings: Settings, name: str) -> Path:
    """The record of a checkpoint's latest run: beside the checkpoint, not inside Spark's folder."""
    return Path(checkpoint(settings, name) + ".run.json")


# --- Other local files under the data folder ---


def manifest_dir(settings: Settings, topic: str) -> Path:
    """What 01 produced to a topic: one manifest per batch (04 and 06 read them)."""
    return settings.data_dir / "produced" / topic


def lineage_events(settings: Settings) -> Path:
    """OpenLineage's file: next to the data it describes, so each data folder has its own lineage."""
    return (settings.data_dir / "lineage" / "openlineage.jsonl").resolve()


def json_drop_table(settings: Settings) -> str:
    """Local Delta folder the rescue-mode demonstration of 05 writes."""
    return str((settings.data_dir / "bronze" / "json_drop").resolve())


# --- S3: the landing zone and its ledgers ---

LANDING_PREFIX = "landing/orders"
EXPORT_STATE_KEY = "landing/_export_state/orders.json"  # 03's watermark and export history
DROPS_STATE_KEY = "landing/_export_state/drops.json"  # files other systems dropped in (05)
JSON_DROP_PREFIX = "landing/json_drop"  # 05's JSON Lines files for rescue mode


def landing_url(settings: Settings) -> str:
    """The S3 landing zone: Parquet partitioned by ingestion_date (03 writes, 04 and 05 read)."""
    return settings.s3_url(LANDING_PREFIX)


def json_drop_url(settings: Settings) -> str:
    return settings.s3_url(JSON_DROP_PREFIX)


def landing_partition(settings: Settings, day: str, export_from: str | int) -> str:
    """One folder of the landing zone: `ingestion_date=<day>/export_from=<first version or drop>`."""
    return f"{landing_url(settings)}/ingestion_date={day}/export_from={export_from}"


def landing_key_prefix(day: str, export_from: str | int) -> str:
    """The same folder as an S3 key prefix (with the trailing slash)."""
    return f"{LANDING_PREFIX}/ingestion_date={day}/export_from={export_from}/"


# --- Catalog tables ---

BRONZE_SCHEMA = "bronze"
GOVERNANCE_SCHEMA = "governance"


def bronze_table(settings: Settings) -> str:
    """The bronze table 05's Auto Loader stream writes (`<catalog>.bronze.orders`)."""
    return settings.table(BRONZE_SCHEMA, "orders")


def silver(settings: Settings, name: str = "orders") -> str:
    """Catalog tables of the silver layer (06): `orders`, `orders_rejected`, the logs, `fx_rates`."""
    return settings.table("silver", name)


def gold(settings: Settings, name: str) -> str:
    """Catalog tables of the gold layer (06): `daily_revenue`, `product_performance`, `loyalty`."""
    return settings.table("gold", name)


def declared_grants(settings: Settings) -> str:
    """07's record of the grants a spec declares (enforced by Unity Catalog only)."""
    return settings.table(GOVERNANCE_SCHEMA, "declared_grants")


def governed_view(settings: Settings, schema: str, name: str) -> str:
    """07's view over a table that applies its masks and row filter locally."""
    return settings.table(schema, f"{name}_governed")
