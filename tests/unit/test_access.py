"""Governance observed on the backends that cannot run here: which grants the catalog holds and
what the report reads (the local backend runs for real in tests/services/test_access.py).
Databricks cannot run here: its `SHOW GRANTS` and information-schema answers come from a
canned-answer STAND-IN session, while the computed outsider row runs its SQL on real Spark.
The `unity` backend reads grants from the Unity Catalog REST stand-in (tests/unity_standin.py).
"""

from __future__ import annotations

import pytest

from lakehouse_helpers.govern import access, catalog
from lakehouse_helpers.runtime.settings import load_settings
from tests.governance_spec import SPEC


class CannedSession:
    """STAND-IN for a Databricks session: answers each SQL statement from `answers` (matched by
    prefix) with tuples as its rows, and records what it was asked."""

    def __init__(self, answers: dict[str, list[tuple]]):
        self.answers, self.asked = answers, []

    def sql(self, statement: str):
        self.asked.append(statement)
        rows = next(rows for prefix, rows in self.answers.items() if statement.startswith(prefix))
        return _Rows(rows)


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def collect(self):
        return self.rows

    def first(self):
        return self.rows[0] if self.rows else None


@pytest.fixture
def databricks():
    return load_settings(env={"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_CATALOG": "lakehouse"}, dotenv=None)


def test_grants_on_databricks_are_show_grants_without_inherited_ones(databricks):
    table = SPEC[0].table(databricks)
    session = CannedSession({"SHOW GRANTS ON TABLE": [
        ("analysts", "SELECT", "TABLE", table), ("data_engineers", "MODIFY", "TABLE", table),
        ("account users", "USE SCHEMA", "SCHEMA", "lakehouse.silver")]})
    held = access.grants(session, databricks, SPEC)
    assert session.asked == [f"SHOW GRANTS ON TABLE {table}"]
    assert held.values.tolist() == [[table, "analysts", "SELECT", "Unity Catalog"],
                                    [table, "data_engineers", "MODIFY", "Unity Catalog"]]


def test_grants_on_the_unity_path_come_from_its_api(tmp_path):
    from tests.unit.test_unity import COLUMNS, TABLE, _settings
    from tests.unity_standin import UnityCatalogStandIn

    with UnityCatalogStandIn(token="t0ken") as uc:
        uc.state.add_table(TABLE, table_type="EXTERNAL", data_source_format="DELTA", columns=COLUMNS,
                           storage_location="s3://lakehouse/tables/silver/customers")
        uc.state.grants[TABLE] = {"analysts": ["SELECT"], "data_engineers": ["MODIFY", "SELECT"]}
        settings = _settings(uc.url, "t0ken", tmp_path)
        held = access.grants(None, settings, SPEC)
    assert held.values.tolist() == [[TABLE, p, priv, "stored by the Unity Catalog server"] for p, priv in
                                    [("analysts", "SELECT"), ("data_engineers", "MODIFY"),
                                        ("data_engineers", "SELECT")]]
    assert [r.method for r in uc.requests] == ["GET"]


def test_catalog_report_on_databricks_reads_unity_catalog_tags_and_owner(databricks):
    table = "lakehouse.silver.orders"
    detail = {"description": "Orders", "properties": {}, "numFiles": 3, "sizeInBytes": 2048}
    session = CannedSession({
        "DESCRIBE DETAIL": [detail], "SHOW TBLPROPERTIES": [],
        "SELECT tag_name, tag_value FROM lakehouse.information_schema.table_tags": [("layer", "silver")],
        "SELECT column_name, tag_name": [("customer_email", "pii", "email")],
        "SELECT table_owner": [("data_engineers",)],
        "DESCRIBE HISTORY": [{"version": 7, "operation": "MERGE"}],
    })
    session.table = lambda name: type("T", (), {"count": lambda self: 42})()
    row = catalog.describe(session, table, backend="databricks")
    assert {k: row[k] for k in ("tags", "owner", "pii_columns", "rows", "version")} == {
        "tags": "layer=silver", "owner": "data_engineers", "pii_columns": "customer_email", "rows": 42, "version": 7}
    assert "WHERE schema_name = 'silver' AND table_name = 'orders'" in session.asked[2]
