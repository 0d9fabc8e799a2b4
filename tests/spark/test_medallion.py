"""Silver and gold: the expectations engine on crafted rows (one test per action), the MERGE
rules of notebook 06 on crafted duplicates (same batch, across batches, a replayed batch), the
cleaning and rescue repair, and the ground truth the notebook is checked against."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from pyspark.errors import PySparkException

from lakehouse_helpers.pipeline import medallion
from lakehouse_helpers.pipeline.expectations import ExpectationFailed, evaluate, raise_on_fail
from lakehouse_helpers.runtime import pages
from tests.unit.test_medallion import EXPECTATIONS, NOTEBOOK, T0, bronze_rows

BRONZE_DDL = (
    "event_id string, order_id string, line_no int, event_ts timestamp, customer_id string, "
    "customer_email string, country string, loyalty_member boolean, product_id string, coffee_type string, "
    "roast string, size_kg double, unit_price double, currency string, quantity int, kafka_topic string, "
    "kafka_partition int, kafka_offset long, ingested_at timestamp, _rescued_data string, _source_file string"
)


def frame(spark, rows: list[dict]):
    from pyspark.sql.types import StructType

    schema = StructType.fromDDL(BRONZE_DDL)
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)


# --- the expectations engine, one test per action -------------------------------------------

def test_warn_keeps_the_row_and_counts_it(spark):
    rows = bronze_rows(2)
    rows[1]["customer_email"] = "not-an-email"
    ev = evaluate(frame(spark, rows), EXPECTATIONS)
    assert ev.rows == 2 and ev.failed == {"has_event_id": 0, "positive_quantity": 0, "plausible_email": 1}
    marked = {r["customer_email"]: r["_failed_expectations"] for r in ev.df.collect()}
    assert marked["not-an-email"] == ["plausible_email"]


def test_a_null_predicate_counts_as_failed(spark):
    rows = bronze_rows(1)
    rows[0]["quantity"] = None
    ev = evaluate(frame(spark, rows), EXPECTATIONS)
    assert ev.failed["positive_quantity"] == 1


def test_fail_names_the_expectation_and_shows_a_row(spark):
    rows = bronze_rows(2)
    rows[1]["event_id"] = None
    ev = evaluate(frame(spark, rows), EXPECTATIONS)
    with pytest.raises(ExpectationFailed, match="'has_event_id'") as info:
        raise_on_fail(ev, EXPECTATIONS, batch_id=7)
    assert info.value.failed == 1 and info.value.batch_id == 7
    assert info.value.example["order_id"] == rows[1]["order_id"]


# --- the silver batch of notebook 06, run on crafted batches --------------------------------

def notebook_upsert(tables, expectations):
    """`upsert_to_silver` exactly as notebook 06 defines it (its cell tagged silver-merge)."""
    scope = {"medallion": medallion, "tables": tables, "silver": tables.silver, "expectations": expectations}
    return pages.run_cells(NOTEBOOK, ["silver-merge"], scope)["upsert_to_silver"]


def test_an_edit_on_06_s_page_is_what_the_tests_run(spark, spark_stack, tmp_path):
    """One copy (docs/contributing.md): the expectations the fault rows, the bench and these tests
    run are read from 06's page. One line changed in a copy of the page (`quantity > 0` becomes
    `quantity > 2`) is seen: the copy's expectations fail a row of quantity 2 that the page's own pass."""
    from lakehouse_helpers.bench.lake_stages import notebook_06

    nb = json.loads(NOTEBOOK.read_text())
    cell = next(c for c in nb["cells"] if "expectations" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    assert source.count('"quantity > 0"') == 1, "06's expectations cell no longer says quantity > 0"
    cell["source"] = source.replace('"quantity > 0"', '"quantity > 2"')
    copy = tmp_path / NOTEBOOK.name
    copy.write_text(json.dumps(nb))
    tables = medallion.names(spark_stack)
    rows = bronze_rows(2)
    rows[0]["quantity"], rows[1]["quantity"] = 2, 3

    def failing(page) -> int:
        return evaluate(frame(spark, rows), notebook_06(tables, page)["expectations"]).failed["positive_quantity"]

    assert failing(NOTEBOOK) == 0 and failing(copy) == 1


@pytest.fixture(scope="module")
def silver_template(spark_stack):
    """Silver's tables, created once for this module (creating them is most of a test's time):
    (settings, names)."""
    from lakehouse_helpers.runtime.spark import get_spark

    settings = spark_stack.replace(schema_prefix=f"t{uuid.uuid4().hex[:8]}_")
    yield settings, medallion.ensure_tables(get_spark(settings, app_name="lakehouse-tests"), settings)
    _drop_schemas(get_spark(settings, app_name="lakehouse-tests"), settings)


def _drop_schemas(spark, settings) -> None:
    for schema in ("silver", "gold"):
        spark.sql(f"DROP SCHEMA IF EXISTS {settings.schema(schema)} CASCADE")


@pytest.fixture
def silver(spark, spark_stack, silver_template, tmp_path):
    """Fresh, empty silver tables for one test, made LIKE the template: the same columns,
    constraints and properties, and a Delta log of their own (Delta's idempotent writes remember
    each table's batch ids, so emptying shared tables would not do). LIKE takes 0.3 s a table,
    a SHALLOW CLONE 1.2 s; the fx rates, the one table with rows, are copied."""
    settings = spark_stack.replace(schema_prefix=f"t{uuid.uuid4().hex[:8]}_", data_dir_override=str(tmp_path))
    tables = medallion.names(settings)
    for schema in ("silver", "gold"):
        spark.sql(f"CREATE SCHEMA {settings.schema(schema)}")
    for name in ("silver", "rejected", "expectations_log", "batch_log"):
        spark.sql(f"CREATE TABLE {getattr(tables, name)} LIKE {getattr(silver_template[1], name)}")
    spark.sql(f"CREATE TABLE {tables.fx_rates} USING DELTA AS SELECT * FROM {silver_template[1].fx_rates}")
    yield tables, notebook_upsert(tables, EXPECTATIONS)
    _drop_schemas(spark, settings)


def test_ensure_tables_again_adds_no_version_to_any_table(spark, silver_template):
    """06's set-up cell on a re-run: every table, the fx rates included, keeps its version."""
    settings, tables = silver_template
    names = [getattr(tables, n) for n in ("silver", "rejected", "expectations_log", "batch_log", "fx_rates")]

    def versions():
        return {t: spark.sql(f"DESCRIBE HISTORY {t} LIMIT 1").first()["version"] for t in names}

    before = versions()
    medallion.ensure_tables(spark, settings)
    assert versions() == before
    assert {r["currency"]: f"{r['usd_rate']:.6f}" for r in spark.table(tables.fx_rates).collect()} == medallion.FX_RATES


def counts(spark, tables) -> dict:
    return {t: spark.table(t).count()
        for t in (tables.silver, tables.rejected, tables.expectations_log, tables.batch_log)}


def test_within_a_batch_the_earliest_copy_wins(spark, silver):
    tables, upsert = silver
    rows = bronze_rows(2)
    late_copy = {**rows[0], "quantity": 9, "kafka_offset": 50, "ingested_at": T0 + timedelta(minutes=5)}
    upsert(frame(spark, [late_copy, *rows]), 0)  # the later copy comes first in the batch
    got = spark.table(tables.silver).where(f"event_id = '{rows[0]['event_id']}'").collect()
    assert len(got) == 1 and got[0]["quantity"] == rows[0]["quantity"] and got[0]["kafka_offset"] == 0
    log = spark.table(tables.batch_log).first()
    assert (log["bronze_rows"], log["duplicates_in_batch"], log["inserted_rows"]) == (3, 1, 2)


def test_across_batches_the_copy_in_silver_wins(spark, silver):
    tables, upsert = silver
    rows = bronze_rows(2)
    upsert(frame(spark, rows), 0)
    resent = {**rows[1], "quantity": 9, "kafka_offset": 70, "ingested_at": T0 + timedelta(hours=1)}
    new = bronze_rows(1, seed=6)
    upsert(frame(spark, [resent, *new]), 1)
    assert spark.table(tables.silver).count() == 3
    kept = spark.table(tables.silver).where(f"event_id = '{rows[1]['event_id']}'").first()
    assert kept["quantity"] == rows[1]["quantity"] and kept["silver_batch"] == 0
    log = spark.table(tables.batch_log).where("silver_batch = 1").first()
    assert (log["already_in_silver"], log["inserted_rows"]) == (1, 1)


def test_an_empty_batch_writes_nothing(spark, silver):
    """OPTIMIZE on bronze gives the stream a new version without rows: no log row, no reject."""
    tables, upsert = silver
    upsert(frame(spark, bronze_rows(2)), 0)
    before = counts(spark, tables)
    upsert(frame(spark, bronze_rows(2)).limit(0), 1)
    assert counts(spark, tables) == before


def test_a_replayed_batch_changes_nothing(spark, silver):
    tables, upsert = silver
    rows = bronze_rows(3)
    rows[2]["quantity"] = -1  # rejected: the replay must not reject it twice
    batch = frame(spark, rows)
    upsert(batch, 0)
    before = counts(spark, tables)
    version = spark.sql(f"DESCRIBE HISTORY {tables.silver}").agg({"version": "max"}).first()[0]
    upsert(batch, 0)
    assert counts(spark, tables) == before
    assert before[tables.silver] == 2 and before[tables.rejected] == 1
    # The MERGE found nothing to insert: no data file was added to silver.
    merges = spark.sql(f"DESCRIBE HISTORY {tables.silver}").where(f"version > {version}").collect()
    assert all(int(m["operationMetrics"].get("numTargetRowsInserted", "0")) == 0 for m in merges)


def test_drop_writes_names_and_original_values_and_fail_writes_nothing(spark, silver):
    tables, upsert = silver
    rows = bronze_rows(3)
    rows[1]["quantity"] = 0
    upsert(frame(spark, rows), 0)
    rejected = spark.table(tables.rejected).collect()
    assert len(rejected) == 1 and rejected[0]["failed_expectations"] == ["positive_quantity"]
    original = json.loads(rejected[0]["record"])
    assert original["quantity"] == 0 and original["event_id"] == rows[1]["event_id"]
    assert original["_source_file"] == "f1"
    log = {r["expectation"]: (r["passed"], r["failed"], r["action"])
        for r in spark.table(tables.expectations_log).collect()}
    assert log["positive_quantity"] == (2, 1, "drop") and log["has_event_id"] == (3, 0, "fail")

    before = counts(spark, tables)
    broken = bronze_rows(2, seed=9)
    broken[0]["event_id"] = None
    with pytest.raises(ExpectationFailed, match="has_event_id"):
        upsert(frame(spark, broken), 1)
    assert counts(spark, tables) == before


def test_cleaning_types_money_normalises_casing_and_repairs_rescued_values(spark, silver):
    tables, upsert = silver
    rows = bronze_rows(3)
    rows[0].update(country="united kingdom", coffee_type="ARABICA", roast="dark", customer_email=" Ana.1@Example.COM ")
    rows[1].update(quantity=None, _rescued_data=json.dumps({"quantity": "3", "_file_path": "f1"}))
    rows[2].update(quantity=None, _rescued_data=json.dumps({"quantity": "three", "_file_path": "f2"}))
    upsert(frame(spark, rows), 0)
    got = {r["event_id"]: r for r in spark.table(tables.silver).collect()}
    first = got[rows[0]["event_id"]]
    assert (first["country"], first["coffee_type"], first["roast"]) == ("United Kingdom", "Arabica", "Dark")
    assert first["customer_email"] == "ana.1@example.com"
    assert first["unit_price"] == Decimal(str(rows[0]["unit_price"]))
    assert first["line_total"] == Decimal(str(rows[0]["unit_price"])) * rows[0]["quantity"]
    assert str(first["order_date"]) == rows[0]["event_ts"].strftime("%Y-%m-%d")
    repaired = got[rows[1]["event_id"]]
    assert repaired["quantity"] == 3 and repaired["_rescued_data"] is not None
    assert rows[2]["event_id"] not in got  # could not be repaired: rejected, with the reason
    assert spark.table(tables.rejected).first()["failed_expectations"] == ["positive_quantity"]


def test_silver_constraints_refuse_a_bad_row(spark, silver):
    tables, _ = silver
    with pytest.raises(PySparkException, match="CHECK constraint line_total_is_price_times_quantity .* violated"):
        spark.sql(
            f"INSERT INTO {tables.silver} (event_id, unit_price, quantity, line_total) VALUES ('x', 10.00, 3, 99.99)")
    with pytest.raises(PySparkException, match="CHECK constraint positive_quantity .* violated"):
        spark.sql(
            f"INSERT INTO {tables.silver} (event_id, unit_price, quantity, line_total) VALUES ('x', 10.00, 0, 0.00)")


def test_materialize_replaces_the_content_atomically(spark, silver):
    tables, _ = silver
    target = tables.daily_revenue
    assert medallion.materialize(spark, target, "SELECT * FROM VALUES (1), (2) AS t(x)") == 2
    assert medallion.materialize(spark, target, "SELECT * FROM VALUES (3) AS t(x)") == 1
    assert [r["x"] for r in spark.table(target).collect()] == [3]
    assert medallion.materialize(spark, target, "SELECT 'a' AS y") == 1  # new columns: recreated
    # count(*) is NOT NULL in the query and nullable in Delta: still the same columns, refreshed in place
    assert medallion.materialize(spark, target, "SELECT count(*) AS n FROM VALUES (1), (2) AS t(x)") == 1
    spark.sql(f"COMMENT ON TABLE {target} IS 'kept'")
    table_id = spark.sql(f"DESCRIBE DETAIL {target}").first()["id"]
    assert medallion.materialize(spark, target, "SELECT count(*) AS n FROM VALUES (3) AS t(x)") == 1
    detail = spark.sql(f"DESCRIBE DETAIL {target}").first()
    assert (detail["id"], detail["description"]) == (table_id, "kept")
    assert [r["n"] for r in spark.table(target).collect()] == [1]


# --- the ground truth -----------------------------------------------------------------------

