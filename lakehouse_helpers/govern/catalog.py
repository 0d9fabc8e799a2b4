"""The workbook's tables in the catalog: their names, a report of each, a fingerprint of its data.

The local raw tables (02's Delta folders) are registered as external tables under `raw`, so
every layer has a three-level name and can be governed, reported and drawn the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from lakehouse_helpers.govern.governance import quote
from lakehouse_helpers.pipeline import medallion
from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.settings import Settings


def register_raw(spark, settings: Settings) -> list[str]:
    """Register 02's Delta folders as external tables (`raw.orders`, `raw.orders_quarantine`).
    Folders that do not exist here (the databricks profile starts at 05) are left out."""
    from pathlib import Path

    present = {n: p for n, p in layout.RAW_TABLES.items() if (Path(p(settings)) / "_delta_log").is_dir()}
    if present:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema(layout.RAW_SCHEMA)}")
    registered = []
    for name, path in present.items():
        table = layout.raw_table(settings, name)
        # The metadata stays in the folder: dropping the table later leaves the data in place.
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table} USING DELTA LOCATION '{path(settings)}'")
        registered.append(table)
    return registered


def workbook_tables(settings: Settings) -> dict[str, str]:
    """Every table of the workbook, in flow order, with its layer."""
    n = medallion.names(settings)
    tables = {layout.raw_table(settings, name): "raw" for name in layout.RAW_TABLES}
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


def _unity_catalog_tags(spark, table: str) -> tuple[dict, dict, str]:
    """Table tags, column tags and owner from Unity Catalog's information schema (Databricks)."""
    from lakehouse_helpers.govern.governance import quote

    catalog, schema, name = table.split(".")
    where = f"schema_name = {quote(schema)} AND table_name = {quote(name)}"
    info = f"{catalog}.information_schema"
    table_tags = {r[0]: r[1]
        for r in spark.sql(f"SELECT tag_name, tag_value FROM {info}.table_tags WHERE {where}").collect()}
    column_tags: dict[str, dict[str, str]] = {}
    for r in spark.sql(f"SELECT column_name, tag_name, tag_value FROM {info}.column_tags WHERE {where}").collect():
        column_tags.setdefault(r[0], {})[r[1]] = r[2]
    owner = spark.sql(f"SELECT table_owner FROM {info}.tables "
                      f"WHERE table_schema = {quote(schema)} AND table_name = {quote(name)}").first()
    return table_tags, column_tags, owner[0] if owner else ""


def describe(spark, table: str, backend: str = "local", rows: int | None = None) -> dict:
    """One table's governance and physical facts: comment, tags, owner, PII, rows (counted
    unless given), files, size, last write. Tags and owner are where `backend` keeps them:
    Unity Catalog's own on Databricks, Delta's table properties elsewhere."""
    detail = spark.sql(f"DESCRIBE DETAIL {table}").first()
    properties = dict(detail["properties"] or {})  # a Delta table's properties, its tags and owner among them
    if backend == "databricks":
        table_tags, column_tags, owner = _unity_catalog_tags(spark, table)
    else:
        (table_tags, column_tags), owner = _tags(properties), properties.get("governance.owner", "")
    last = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first()
    return {
        "table": table,
        "comment": detail["description"] or properties.get("comment", ""),
        "tags": ", ".join(f"{k}={v}" for k, v in sorted(table_tags.items())),
        "owner": owner,
        "pii_columns": ", ".join(sorted(c for c, tags in column_tags.items() if "pii" in tags)),
        "rows": spark.table(table).count() if rows is None else rows,
        "files": detail["numFiles"],
        "size_kb": round(detail["sizeInBytes"] / 1024, 1),
        "version": last["version"],
        "last_operation": last["operation"],
    }


def report(spark, settings: Settings, tables: dict[str, str] | None = None):
    """A pandas table of every workbook table that exists in the catalog, in flow order."""
    import pandas as pd

    from lakehouse_helpers.govern.governance import backend_of

    tables, backend = tables or workbook_tables(settings), backend_of(settings)
    here = [t for t in tables if spark.catalog.tableExists(t)]
    counts = {t: n for t, (n, _) in fingerprints_of(spark, here).items()}
    # Each table's metadata is a few small requests: a handful at once keeps both cores busy.
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda t: {"layer": tables[t], **describe(spark, t, backend, counts[t])}, here))
    return pd.DataFrame(rows)


def _fingerprint_sql(table: str) -> str:
    return (f"SELECT {quote(table)} AS t, count(*) AS n, "
            f"coalesce(sum(CAST(xxhash64(*) AS DECIMAL(38, 0))), 0) AS h FROM {table}")


def fingerprint(spark, table: str) -> tuple[int, str]:
    """Row count and an order-independent checksum of every value: equal means the same rows."""
    return fingerprints_of(spark, [table])[table]


def fingerprints_of(spark, tables: list[str]) -> dict[str, tuple[int, str]]:
    """`fingerprint` of each table, read in one query (one Spark job, not one per table)."""
    if not tables:
        return {}
    rows = spark.sql(" UNION ALL ".join(_fingerprint_sql(t) for t in tables)).collect()
    return {r["t"]: (r["n"], str(r["h"])) for r in rows}


def present(spark, settings: Settings) -> list[str]:
    """The workbook's tables that exist in this catalog, in flow order (on Databricks the raw
    tables stay on the laptop)."""
    return [t for t in workbook_tables(settings) if spark.catalog.tableExists(t)]


def fingerprints(spark, settings: Settings) -> dict[str, tuple[int, str]]:
    """Every present workbook table's fingerprint, in flow order."""
    return fingerprints_of(spark, present(spark, settings))
