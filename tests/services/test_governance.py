"""Governance: the Databricks backend's exact statements (checked against a recording stand-in,
since no workspace runs here), and the local backend enforced for real on Spark's metastore:
comments and tags read back, grants recorded, a masked and filtered view that shows clear
values to the owner and hides them from another principal: a second Spark Connect session that
names that user, and (where a server cannot take the client's user) a second Spark process run as
that user."""

from __future__ import annotations

import os

from lakehouse_helpers.govern import access, governance
from lakehouse_helpers.runtime import layout
from tests.governance_spec import SPEC


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


def test_governed_view_masks_and_filters_for_another_principal(spark, governed, test_env):
    view = governance.governed_view(governed, SPEC[0])
    owner = spark.sql(f"SELECT * FROM {view}").orderBy("id").collect()
    assert [r["email"] for r in owner] == ["ana@example.com", "ben@example.org"]  # the owner sees all
    analyst = _query_as("analyst", governed, f"SELECT * FROM {view}", test_env)
    assert analyst == [{"id": 1, "email": "***@example.com", "country": "Ireland"}]
    # The fallback for servers that answer current_user() with their own user: a second process.
    steward = _query_as("data_stewards", governed.replace(spark_mode="classic"), f"SELECT * FROM {view}", test_env)
    assert [r["country"] for r in steward] == ["Ireland", "United States"]
    assert [r["email"] for r in steward] == ["***@example.com", "***@example.org"]  # not a PII reader
    assert os.environ.get("SPARK_USER") != "analyst"
