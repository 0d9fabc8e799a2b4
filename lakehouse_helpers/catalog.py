"""The workbook's tables in the catalog: their names, a report of each, a fingerprint of its data.

The local raw tables (02's Delta folders) are registered as external tables under `raw`, so
every layer has a three-level name and can be governed, reported and drawn the same way.
"""

from __future__ import annotations

from . import layout, medallion
from .settings import Settings

RAW_TABLES = {"orders": layout.raw_orders, "orders_quarantine": layout.quarantine}


def register_raw(spark, settings: Settings) -> list[str]:
    """Register 02's Delta folders as external tables (`raw.orders`, `raw.orders_quarantine`).
    Folders that do not exist here (the databricks profile starts at 05) are left out."""
    from pathlib import Path

    present = {n: p for n, p in RAW_TABLES.items() if (Path(p(settings)) / "_delta_log").is_dir()}
    if present:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema('raw')}")
    registered = []
    for name, path in present.items():
        table = settings.table("raw", name)
        # The metadata stays in the folder: dropping the table later leaves the data in place.
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table} USING DELTA LOCATION '{path(settings)}'")
        registered.append(table)
    return registered


def workbook_tables(settings: Settings) -> dict[str, str]:
    """Every table of the workbook, in flow order, with its layer."""
    n = medallion.names(settings)
    tables = {settings.table("raw", name): "raw" for name in RAW_TABLES}
    tables[n.bronze] = "bronze"
    tables.update({t: "silver" for t in (n.silver, n.rejected, n.expectations_log, n.batch_log, n.fx_rates)})
    tables.update({t: "gold" for t in n.gold_tables})
    return tables


def _tags(properties: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Table tags and column tags, as `apply` stores them locally (`tag.<key>`, `tag.<column>.<key>`)."""
    table_tags: dict[str, str] = {}
    column_tags: dict[str, dict[str, str]] = {}
    for key, value in properties.items():
        if not key.startswith("tag."):
            continue
        parts = key.removeprefix("tag.").split(".", 1)
        if len(parts) == 1:
            table_tags[parts[0]] = value
        else:
            column_tags.setdefault(parts[0], {})[parts[1]] = value
    return table_tags, column_tags


def describe(spark, table: str) -> dict:
    """One table's governance and physical facts: comment, tags, owner, PII, rows, files, size, last write."""
    detail = spark.sql(f"DESCRIBE DETAIL {table}").first()
    properties = dict(detail["properties"] or {})
    properties.update({r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()})
    table_tags, column_tags = _tags(properties)
    last = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first()
    return {
        "table": table,
        "comment": detail["description"] or properties.get("comment", ""),
        "tags": ", ".join(f"{k}={v}" for k, v in sorted(table_tags.items())),
        "owner": properties.get("governance.owner", ""),
        "pii_columns": ", ".join(sorted(c for c, tags in column_tags.items() if "pii" in tags)),
        "rows": spark.table(table).count(),
        "files": detail["numFiles"],
        "size_kb": round(detail["sizeInBytes"] / 1024, 1),
        "version": last["version"],
        "last_operation": last["operation"],
    }


def report(spark, settings: Settings, tables: dict[str, str] | None = None):
    """A pandas table of every workbook table that exists in the catalog, in flow order."""
    import pandas as pd

    tables = tables or workbook_tables(settings)
    rows = [{"layer": layer, **describe(spark, t)} for t, layer in tables.items() if spark.catalog.tableExists(t)]
    return pd.DataFrame(rows)


def fingerprint(spark, table: str) -> tuple[int, str]:
    """Row count and an order-independent checksum of every value: equal means the same rows."""
    row = spark.sql(f"SELECT count(*) AS n, coalesce(sum(CAST(xxhash64(*) AS DECIMAL(38, 0))), 0) AS h FROM {table}").first()
    return row["n"], str(row["h"])


def fingerprints(spark, settings: Settings) -> dict[str, tuple[int, str]]:
    return {t: fingerprint(spark, t) for t in workbook_tables(settings) if spark.catalog.tableExists(t)}
