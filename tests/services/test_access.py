"""Governance observed on every backend: who sees what and which grants the catalog holds.

The local backend runs for real (Spark's metastore, a second Spark Connect session as another user).
Databricks cannot run here: its `SHOW GRANTS` and information-schema answers come from a
canned-answer STAND-IN session, while the computed outsider row runs its SQL on real Spark.
The `unity` backend reads grants from the Unity Catalog REST stand-in (tests/unity_standin.py).
"""

from __future__ import annotations

from lakehouse_helpers.govern import access, governance
from tests.governance_spec import SPEC

WHO = """SELECT current_user() AS principal, count(*) AS rows,
                array_join(array_sort(collect_set(country)), ', ') AS countries, min(email) AS an_email
         FROM {source}"""


def test_seen_by_locally_runs_the_query_as_the_other_principal(spark, governed):
    seen = access.seen_by(spark, governed, SPEC[0], "analyst", WHO).set_index("principal")
    assert access.reader_source(governed, SPEC[0]) == governance.governed_view(governed, SPEC[0])
    assert seen.loc["analyst"].to_dict() == {"rows": 1, "countries": "Ireland", "an_email": "***@example.com",
                                             "how": "a second Spark Connect session as 'analyst'"}
    me = seen.drop(index="analyst").iloc[0]
    assert (me.rows, me.an_email, me.how) == (2, "ana@example.com", "this session")
    # The analyst's name stays with the analyst's session: this one is still its owner, unmasked.
    again = spark.sql(WHO.format(source=access.reader_source(governed, SPEC[0]))).first()
    assert (again.principal, again.rows, again.an_email) == (seen.drop(index="analyst").index[0], 2, "ana@example.com")


def test_seen_by_on_unity_catalog_computes_the_outsider_from_the_spec(spark, governed):
    # Unity Catalog binds the functions to the table: the reader's source is the table itself,
    # and the other row comes from the spec's own mask and filter (real Spark runs that SQL).
    assert access.reader_source(governed, SPEC[0], "databricks") == SPEC[0].table(governed)
    seen = access.seen_by(spark, governed, SPEC[0], "analyst", WHO, backend="databricks").set_index("principal")
    outsider = seen.loc["analyst"]
    assert (outsider.rows, outsider.countries, outsider.an_email) == (1, "Ireland", "***@example.com")
    assert outsider.how.startswith("computed from the spec for a user outside data_stewards, pii_readers")
    assert seen.drop(index="analyst").iloc[0].rows == 2  # this session reads the table as it is here


def test_grants_locally_are_the_declared_ones(spark, governed):
    held = access.grants(spark, governed, SPEC)
    assert list(held.columns) == access.GRANT_COLUMNS
    assert set(zip(held.principal, held.privilege, strict=True)) == {
        ("analysts", "SELECT"), ("data_engineers", "SELECT"), ("data_engineers", "MODIFY")}
    assert set(held.enforced_by) == {"Unity Catalog only"}


