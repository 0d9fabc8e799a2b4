"""What the notebook tests prove, computed on the test's side: from the tables the workbook
wrote, the generator's independent ground truth and the notebook's own declared spec, never
from a boolean a notebook recorded about itself (the notebooks keep those for the learner)."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass

from lakehouse_helpers.govern import access, catalog, governance
from lakehouse_helpers.govern.governance import RowFilter, TableGovernance
from lakehouse_helpers.notebook import params as nbparams
from lakehouse_helpers.notebook.runner import NOTEBOOKS_DIR
from lakehouse_helpers.pipeline import medallion, truth
from lakehouse_helpers.pipeline.drops import drift_batch
from lakehouse_helpers.pipeline.events import GeneratorConfig, generate


def defaults(notebook: str) -> dict:
    """A notebook's parameters at their committed defaults, e.g. the generator settings of 01."""
    (path,) = NOTEBOOKS_DIR.glob(f"{notebook}_*.ipynb")
    return {p["name"]: ast.literal_eval(p["default"]) for p in nbparams.notebook_parameters(path)}


def expected_truth(*configs: dict) -> truth.Truth:
    """Silver and gold as the generator meant them: the produced batches and 05's drift files."""
    drift = defaults("05")
    drops = drift_batch(events=drift["drift_events"], seed=drift["drift_seed"])
    return truth.from_batches([*(generate(GeneratorConfig(**c)) for c in configs), drops])


def accounting(spark, settings) -> dict:
    """Every bronze row in silver, the rejected table or removed as a duplicate, from the tables."""
    n = medallion.names(settings)
    row = spark.sql(f"""
        SELECT (SELECT count(*) FROM {n.bronze}) AS bronze_rows,
               (SELECT count(DISTINCT event_id) FROM {n.bronze}) AS bronze_events,
               (SELECT count(*) FROM {n.silver}) AS silver_rows,
               (SELECT count(DISTINCT event_id) FROM {n.silver}) AS silver_events,
               (SELECT count(*) FROM {n.rejected}) AS rejected_rows,
               (SELECT count(*) FROM (SELECT event_id FROM {n.bronze}
                                      EXCEPT SELECT event_id FROM {n.silver}
                                      EXCEPT SELECT event_id FROM {n.rejected})) AS unaccounted_events""").first()
    return row.asDict()


def assert_silver_reconciles(spark, settings, expected: truth.Truth) -> dict:
    books = accounting(spark, settings)
    assert books["silver_rows"] == books["silver_events"] == expected.silver_rows, books
    assert books["bronze_rows"] == expected.bronze_rows and books["unaccounted_events"] == 0, books
    assert books["bronze_rows"] - books["bronze_events"] == expected.duplicates > 0, books
    assert books["rejected_rows"] == 0, books  # 02 quarantined every invalid event before bronze
    return books


def gold_differences(spark, settings, expected: truth.Truth) -> dict[str, int]:
    """Rows of each gold table that differ from the ground truth's (counts exactly, money to the cent)."""
    n = medallion.names(settings)
    expected_gold = truth.gold(expected, medallion.FX_RATES)
    tables = {"daily_revenue": n.daily_revenue, "product_performance": n.product_performance, "loyalty": n.loyalty}
    return {name: len(truth.compare(spark.table(table).toPandas(), expected_gold[name], truth.KEYS[name]))
            for name, table in tables.items()}


def notebook_spec(settings, spark) -> list[TableGovernance]:
    """The governance spec exactly as notebook 07 declares it (its cell tagged governance-spec)."""
    nb = json.loads((NOTEBOOKS_DIR / "07_governance_time_travel.ipynb").read_text())
    (cell,) = [c for c in nb["cells"] if "governance-spec" in c["metadata"].get("tags", [])]
    scope = {"TableGovernance": TableGovernance, "RowFilter": RowFilter, "settings": settings, "spark": spark,
             "print": lambda *_, **__: None}
    exec("".join(cell["source"]), scope)
    return scope["spec"]


@dataclass
class SeenBy:
    owner_rows: int  # rows of the table whose filter column holds an allowed value
    rows: int  # rows the other principal read through the governed view
    masked: int  # of those, values of masked columns the principal saw masked
    values: int  # of those, values of masked columns (non-null) in total
    outside_filter: int  # rows the principal read whose filter column is not allowed


def seen_by(spark, settings, t: TableGovernance, principal: str) -> SeenBy:
    """The governed view read as `principal` by a second Spark process, against the table itself."""
    view = governance.governed_view(settings, t)
    (rows,) = access.query_as(settings, principal, [f"SELECT * FROM {view}"])
    allowed = set(t.row_filter.allowed)
    column = t.row_filter.column
    table = spark.table(t.table(settings))
    owner = table.where(table[column].isin(*allowed)).count()
    values = [r[c] for r in rows for c in t.masks if r[c] is not None]
    return SeenBy(owner, len(rows), sum(v.startswith("***") for v in values), len(values),
                  sum(r[column] not in allowed for r in rows))


def dev_clone(settings) -> str:
    """07's zero-copy clone of silver, where it makes and undoes its mistake."""
    return settings.table("silver", "orders_dev")


def versions(spark, settings) -> dict[str, int]:
    """Every present workbook table's latest version, from its history."""
    return {t: spark.sql(f"DESCRIBE HISTORY {t} LIMIT 1").first()["version"] for t in catalog.present(spark, settings)}


def restore(spark, table: str) -> dict:
    """From the table's history: the last DELETE, the RESTORE after it, and the rows that differ
    between the RESTORE's version and the version before the DELETE (both ways)."""
    history = spark.sql(f"DESCRIBE HISTORY {table}").select("version", "operation", "operationMetrics").collect()
    delete = max((r for r in history if r.operation == "DELETE"), key=lambda r: r.version)
    restored = min((r for r in history if r.operation == "RESTORE" and r.version > delete.version),
                   key=lambda r: r.version)
    before, after = f"{table} VERSION AS OF {delete.version - 1}", f"{table} VERSION AS OF {restored.version}"
    return {
        "deleted": int(delete.operationMetrics["numDeletedRows"]),
        "extra": spark.sql(f"SELECT * FROM {after} EXCEPT ALL SELECT * FROM {before}").count(),
        "missing": spark.sql(f"SELECT * FROM {before} EXCEPT ALL SELECT * FROM {after}").count(),
    }
