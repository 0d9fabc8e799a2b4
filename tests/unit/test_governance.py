"""Governance: the Databricks backend's exact statements (checked against a recording stand-in,
since no workspace runs here), and the local backend enforced for real on Spark's metastore:
comments and tags read back, grants recorded, a masked and filtered view that shows clear
values to the owner and hides them from another principal (a second Spark process run as
that user)."""

from __future__ import annotations

import os
import uuid

import pytest

from lakehouse_helpers import access, governance, layout
from lakehouse_helpers.governance import RowFilter, TableGovernance

SPEC = [
    TableGovernance(
        schema="silver", name="customers", description="One row per customer.",
        owner="data_engineers",
        columns={"email": "Contact email (PII)", "country": "Billing country"},
        tags={"layer": "silver"}, column_tags={"email": {"pii": "email"}},
        grants={"analysts": ("SELECT",), "data_engineers": ("SELECT", "MODIFY")},
        masks={"email": "pii_readers"},
        row_filter=RowFilter("country", ("Ireland",), privileged="data_stewards"),
        constraints={"known_country": "country IS NOT NULL"},
    ),
]


class RecordingSession:
    """A stand-in for a Databricks session: records the SQL it is given, runs nothing."""

    def __init__(self):
        self.statements: list[str] = []

    def sql(self, statement: str):
        self.statements.append(statement)


@pytest.mark.unit
def test_databricks_backend_runs_exactly_the_native_statements():
    from lakehouse_helpers.settings import load_settings

    settings = load_settings(env={"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_CATALOG": "lakehouse"}, dotenv=None)
    session = RecordingSession()
    ran = governance.apply(session, settings, SPEC)
    t, fn = "lakehouse.silver.customers", "lakehouse.governance"
    assert session.statements == ran == [
        f"CREATE SCHEMA IF NOT EXISTS {fn}",
        f"COMMENT ON TABLE {t} IS 'One row per customer.'",
        f"ALTER TABLE {t} ALTER COLUMN email COMMENT 'Contact email (PII)'",
        f"ALTER TABLE {t} ALTER COLUMN country COMMENT 'Billing country'",
        f"ALTER TABLE {t} SET TAGS ('layer' = 'silver')",
        f"ALTER TABLE {t} ALTER COLUMN email SET TAGS ('pii' = 'email')",
        f"ALTER TABLE {t} ADD CONSTRAINT known_country CHECK (country IS NOT NULL)",
        f"CREATE OR REPLACE FUNCTION {fn}.mask_silver_customers_email(email STRING) RETURNS STRING "
        "RETURN CASE WHEN is_account_group_member('pii_readers') THEN email "
        "ELSE concat('***', substring(email, instr(email, '@'))) END",
        f"ALTER TABLE {t} ALTER COLUMN email SET MASK {fn}.mask_silver_customers_email",
        f"CREATE OR REPLACE FUNCTION {fn}.filter_silver_customers_country(country STRING) RETURNS BOOLEAN "
        "RETURN is_account_group_member('data_stewards') OR country IN ('Ireland')",
        f"ALTER TABLE {t} SET ROW FILTER {fn}.filter_silver_customers_country ON (country)",
        f"ALTER TABLE {t} SET OWNER TO `data_engineers`",
        f"GRANT SELECT ON TABLE {t} TO `analysts`",
        f"GRANT SELECT, MODIFY ON TABLE {t} TO `data_engineers`",
    ]


@pytest.mark.unit
def test_quotes_in_descriptions_are_escaped():
    from lakehouse_helpers.settings import load_settings

    settings = load_settings(env={"LAKEHOUSE_PROFILE": "databricks"}, dotenv=None)
    spec = [TableGovernance(schema="gold", name="x", description="the roaster's table")]
    assert "IS 'the roaster\\'s table'" in governance.databricks_statements(settings, spec)[1]


@pytest.fixture
def governed(spark, stack):
    settings = stack.replace(schema_prefix=f"g{uuid.uuid4().hex[:8]}_")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema('silver')}")
    table = SPEC[0].table(settings)
    spark.sql(f"CREATE TABLE {table} (id INT, email STRING, country STRING) USING DELTA")
    spark.sql(f"INSERT INTO {table} VALUES (1, 'ana@example.com', 'Ireland'), (2, 'ben@example.org', 'United States')")
    governance.apply(spark, settings, SPEC)
    yield settings
    for schema in ("silver", governance.GOVERNANCE_SCHEMA):
        spark.sql(f"DROP SCHEMA IF EXISTS {settings.schema(schema)} CASCADE")


@pytest.mark.services
@pytest.mark.spark
def test_local_backend_comments_tags_constraints_and_grants_read_back(spark, governed):
    table = SPEC[0].table(governed)
    assert spark.sql(f"DESCRIBE TABLE EXTENDED {table}").where("col_name = 'Comment'").first()["data_type"] == SPEC[
        0].description
    comments = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {table}").collect()}
    assert {c: comments[c] for c in SPEC[0].columns} == SPEC[0].columns
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
    assert props["tag.layer"] == "silver" and props["tag.email.pii"] == "email"
    assert props["governance.owner"] == "data_engineers"
    assert props["delta.constraints.known_country"] == "country IS NOT NULL"
    grants = {(r["principal"], r["privilege"]) for r in spark.table(layout.declared_grants(governed)).collect()}
    assert grants == {(p, priv) for p, privs in SPEC[0].grants.items() for priv in privs}
    governance.apply(spark, governed, SPEC)  # idempotent: a second apply changes nothing
    assert spark.table(layout.declared_grants(governed)).count() == len(grants)


def _query_as(user: str, settings, sql: str, test_env: dict) -> list[dict]:
    (rows,) = access.query_as(settings, user, [f"{sql} ORDER BY id"])
    return rows


@pytest.mark.services
@pytest.mark.spark
def test_governed_view_masks_and_filters_for_another_principal(spark, governed, test_env):
    view = governance.governed_view(governed, SPEC[0])
    owner = spark.sql(f"SELECT * FROM {view}").orderBy("id").collect()
    assert [r["email"] for r in owner] == ["ana@example.com", "ben@example.org"]  # the owner sees all
    analyst = _query_as("analyst", governed, f"SELECT * FROM {view}", test_env)
    assert analyst == [{"id": 1, "email": "***@example.com", "country": "Ireland"}]
    steward = _query_as("data_stewards", governed, f"SELECT * FROM {view}", test_env)
    assert [r["country"] for r in steward] == ["Ireland", "United States"]
    assert [r["email"] for r in steward] == ["***@example.com", "***@example.org"]  # not a PII reader
    assert os.environ.get("SPARK_USER") != "analyst"
