"""The notebooks, executed for real by papermill against the test stack: the suite's one shared
run of the whole workbook at the default parameters (tests/notebooks/conftest.py), what nbval
checks on it, its figures against the generator's ground truth, 07's catalog, lineage, time
travel and read of gold without Spark, checked against the tables; then, on the same state, the
whole workbook re-run (nothing changes) and a high-fault batch through 01-06 (silver grows by
exactly its valid events)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_helpers.govern import catalog, lineage
from lakehouse_helpers.notebook.runner import NOTEBOOKS_DIR, all_notebooks, discover
from lakehouse_helpers.pipeline import medallion, truth
from lakehouse_helpers.pipeline.events import REASONS, GeneratorConfig, generate
from lakehouse_helpers.runtime import layout
from tests.notebooks import checked_outputs, proofs

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = proofs.defaults("01")  # the generator settings of the shared run
# A second batch with every fault at 8-10%: the smallest size at which every kind is plentiful.
HIGH_FAULTS = {
    "events": 1_000, "seed": 11, "malformed_rate": 0.08, "invalid_rate": 0.10,
    "duplicate_rate": 0.10, "late_rate": 0.10, "drift_after": 0.5,
}
JVM_LINE = re.compile(
    r"\b(WARN|ERROR) [\w.$]+:|^\s*at (org\.apache|java\.|scala\.)|WARNING: Using incubator|Exception in thread", re.M)


def _output_texts(path: Path):
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            texts = [out.get("text", ""), out.get("evalue", ""), *out.get("traceback", []),
                     *(v for k, v in out.get("data", {}).items() if k.startswith("text/"))]
            yield cell, "".join("".join(t) if isinstance(t, list) else str(t) for t in texts)


def assert_gold_reconciles(spark, settings, f06: dict, expected: truth.Truth) -> None:
    assert proofs.gold_differences(spark, settings, expected) == {
        "daily_revenue": 0, "product_performance": 0, "loyalty": 0}
    revenue = sum(truth.gold(expected, medallion.FX_RATES)["daily_revenue"]["revenue_usd"])
    assert f06["gold_revenue_usd"] == str(revenue)  # what the page shows is the truth, to the cent
    assert f06["late_events"] == expected.late_events > 0


def test_all_notebooks_ran(workbook):
    assert [r.notebook[:2] for r in workbook.results] == [p.name[:2] for p in all_notebooks()]
    assert [r.status for r in workbook.results] == ["ok"] * len(workbook.results), [
        r.error for r in workbook.results]


def test_checked_outputs_match_the_committed_notebooks(workbook):
    """`pytest --nbval-lax notebooks/`'s comparison, on the shared run at the default parameters."""
    compared = 0
    for path in all_notebooks():
        assert checked_outputs.differences(path, workbook.out_dir / path.name,
                                           NOTEBOOKS_DIR / "nbval_sanitize.cfg") == [], path.name
        compared += checked_outputs.count_checked(path)
    assert compared >= 15, compared  # the marked cells of 01, 02, 04-07
    # The documented command itself still collects every code cell of every notebook.
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--collect-only", "-q", "-p", "no:cacheprovider",
           "-o", "addopts=", str(NOTEBOOKS_DIR)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]
    assert {line.split("::")[0] for line in out.stdout.splitlines() if "::Cell" in line} == {
        str(p.relative_to(ROOT)) for p in all_notebooks()}


def test_figures_reconcile_with_what_was_produced(workbook, spark):
    f, settings = workbook.figures, workbook.settings
    expected = generate(GeneratorConfig(**DEFAULTS)).expected
    assert f["01"]["delivered"] == expected["messages"] and f["01"]["failed"] == 0
    # raw rows = produced messages minus the ones that must be quarantined
    assert f["02"]["raw_rows"] == expected["messages"] - expected["quarantine"] == expected["raw"]
    assert f["02"]["quarantine_rows"] == expected["quarantine"] > 0
    for reason in REASONS:
        assert f["02"].get(f"quarantine_{reason}", 0) == expected[f"quarantine_{reason}"] > 0, reason
    assert f["03"]["landing_rows"] == f["03"]["exported_rows"] == f["02"]["raw_rows"]
    assert f["04"]["checks_failed"] == 0
    assert f["04"]["duplicate_event_ids"] == expected["duplicates"]
    # 05: bronze = landing, which now also holds the new files with the drift column
    assert f["05"]["bronze_rows"] == f["05"]["landing_rows"] == f["02"]["raw_rows"] + f["05"]["drift_rows"]
    assert f["05"]["schema_versions"] == 2  # inferred, then evolved once
    assert f["05"]["rescued_rows"] >= 1
    # 06: every bronze row accounted for from the tables; silver and gold equal the ground truth
    truth_now = proofs.expected_truth(DEFAULTS)
    books = proofs.assert_silver_reconciles(spark, settings, truth_now)
    assert (f["06"]["bronze_rows"], f["06"]["silver_rows"]) == (books["bronze_rows"], books["silver_rows"])
    assert_gold_reconciles(spark, settings, f["06"], truth_now)


def test_executed_notebooks_carry_no_jvm_lines_no_warnings_and_no_error_banner(workbook):
    """A first run reads like a tutorial: 05's schema change is shown as a lesson, not a crash."""
    for path in sorted(workbook.out_dir.glob("*.ipynb")):
        for cell, text in _output_texts(path):
            assert not JVM_LINE.search(text), (path.name, JVM_LINE.search(text).group(0), text[:300])
            assert "Warning:" not in text and "TqdmWarning" not in text, (path.name, text[:300])
            assert "papermill-error-cell-tag" not in cell["metadata"].get("tags", []), path.name
            assert cell.get("outputs") is None or all(o["output_type"] != "error" for o in cell["outputs"]), path.name
    lesson = "".join(text for _, text in _output_texts(workbook.out_dir / "05_auto_loader_bronze.ipynb"))
    assert "UnknownFieldException: new field(s) promo_code" in lesson and "in file s3a://" in lesson


def test_secrets_never_reach_executed_notebooks(workbook):
    secret = workbook.settings.s3_secret_key.reveal()
    assert secret
    for path in workbook.out_dir.glob("*.ipynb"):
        assert secret not in path.read_text(), path.name


def test_07_masks_filters_and_restores_as_the_tables_show(workbook, spark):
    """The analyst's view, read in a session of the analyst's own; RESTORE, from the clone's history."""
    settings, f = workbook.settings, workbook.figures["07"]
    spec = proofs.notebook_spec(settings, spark)
    assert f["tables_governed"] == len(spec) == 8 and f["governance_statements"] > 0
    (governed,) = [t for t in spec if t.masks and t.row_filter]
    seen = proofs.seen_by(spark, settings, governed, proofs.defaults("07")["principal"])
    assert seen.rows == seen.owner_rows > 0 and seen.outside_filter == 0, seen
    assert seen.masked == seen.values > 0, seen
    restored = proofs.restore(spark, proofs.dev_clone(settings))
    assert restored == {"deleted": f["mistaken_delete_rows"], "extra": 0, "missing": 0} and restored["deleted"] > 0
    # the change data feed of the last MERGE holds exactly the rows that MERGE inserted
    assert f["cdf_inserts"] == f["last_merge_inserted"] > 0
    assert f["lineage_edges"] == 14
    assert (workbook.out_dir / "lineage.png").stat().st_size > 10_000  # the picture is kept with the run


def test_07_catalog_reads_back_the_spec(workbook, spark):
    settings = workbook.settings
    spec = proofs.notebook_spec(settings, spark)
    for t in spec:
        table = t.table(settings)
        assert spark.sql(f"DESCRIBE DETAIL {table}").first()["description"] == t.description, table
        props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
        tags = {k.removeprefix("tag."): v for k, v in props.items() if k.startswith("tag.")}
        expected = {**t.tags, **{f"{c}.{k}": v for c, kv in t.column_tags.items() for k, v in kv.items()}}
        assert tags == expected, table
        assert props["governance.owner"] == t.owner
        comments = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {table}").collect()}
        assert {c: comments[c] for c in t.columns} == t.columns, table
    declared = {(r["table_name"], r["principal"], r["privilege"])
        for r in spark.table(layout.declared_grants(settings)).collect()}
    assert declared == {(t.table(settings), p, priv) for t in spec for p, privs in t.grants.items() for priv in privs}
    row = catalog.describe(spark, settings.table("silver", "orders"))
    assert row["pii_columns"] == "customer_email" and row["tags"] == "layer=silver"


def test_07_lineage_has_every_pipeline_edge_and_no_other(workbook, spark):
    settings = workbook.settings
    names, t = medallion.names(settings), settings.table
    topic, landing = lineage.topic_name(settings), lineage.landing_name(settings)
    expected = {
        (topic, t("raw", "orders")), (topic, t("raw", "orders_quarantine")),
        (t("raw", "orders"), landing), (landing, names.bronze),
        *[(names.bronze, x) for x in (names.silver, names.rejected, names.expectations_log, names.batch_log)],
        *[(source, gold) for source in (names.silver, names.fx_rates) for gold in names.gold_tables],
    }
    edges = lineage.table_edges(spark, settings, list(catalog.workbook_tables(settings)))
    assert {(e.source, e.target) for e in edges} == expected
    revenue = lineage.column_lineage(spark, settings, list(catalog.workbook_tables(settings)), names.daily_revenue,
        "revenue_usd")
    sources = set(zip(revenue["column"], revenue["comes from"], strict=True))
    assert (f"{names.daily_revenue}.revenue_usd", f"{names.silver}.line_total") in sources
    assert (f"{names.daily_revenue}.revenue_usd", f"{names.fx_rates}.usd_rate") in sources
    assert {(f"{names.silver}.line_total", f"{names.bronze}.{c}") for c in ("unit_price", "quantity")} <= sources


# --- on the shared run's state: these two change it, so they come last, in this order ----------

# Every notebook that reads or writes data, from the runner's own list, so a new one is re-run
# too; 00 only checks the infrastructure.
RERUN = [p.name[:2] for p in discover() if not p.name.startswith("00_")]


@pytest.mark.faults(
    row="11",
    fault=f"the whole workbook re-run with the same seed (notebooks {RERUN[0]}-{RERUN[-1]} on the same state)",
    must_hold="every table's rows unchanged (fingerprints of every workbook table); nothing sent, ingested or exported "
    "twice")
def test_07_reads_gold_without_spark_to_the_cent(workbook, spark):
    """What delta-rs and DuckDB read of gold, as 07 recorded it, against Spark's sums from the table
    itself, compared as Decimal text; the version delta-rs read is the table's latest."""
    f, gold = workbook.figures["07"], medallion.names(workbook.settings).daily_revenue
    by_country = {r.country: str(r.s) for r in spark.sql(
        f"SELECT country, sum(revenue_usd) AS s FROM {gold} GROUP BY country").collect()}
    assert len(by_country) == 3 and f["open_read_equal"] is True
    assert f["open_read_by_country"] == f["open_read_duckdb_by_country"] == by_country
    total = spark.sql(f"SELECT sum(revenue_usd) FROM {gold}").first()[0]
    assert f["open_read_revenue_usd"] == str(total) == workbook.figures["06"]["gold_revenue_usd"]
    assert f["open_read_version"] == spark.sql(f"DESCRIBE HISTORY {gold} LIMIT 1").first().version > 0
    detail = spark.sql(f"DESCRIBE DETAIL {gold}").first()  # a managed table in the local warehouse
    assert detail.location.startswith("file:") and detail.minReaderVersion == 1
    assert f["gold_reader_features"] == []  # any reader reads it: no reader feature needed


def test_second_run_adds_nothing(workbook, spark, observed):
    """Every notebook re-run on the same state: nothing is sent, ingested or exported twice, and
    every table's rows are unchanged; 07's second run adds no version to any table's history."""
    settings = workbook.settings
    tables_before = catalog.fingerprints(spark, settings)
    results = workbook.run({}, RERUN[:-1], "run2")
    versions_before = proofs.versions(spark, settings)  # 07 again: it governs, compacts, clusters only what differs
    results += workbook.run({}, RERUN[-1:], "run2")
    assert proofs.versions(spark, settings) == versions_before
    assert [r.notebook[:2] for r in results] == RERUN
    assert [r.status for r in results] == ["ok"] * len(RERUN), [r.error for r in results]
    tables_after = catalog.fingerprints(spark, settings)
    observed(f"{len(tables_before)} tables, {sum(tables_after.get(t) != v for t, v in tables_before.items())} changed; "
             f"notebooks {[r.status for r in results].count('ok')} of {len(RERUN)} ok")
    assert tables_after == tables_before
    assert len(tables_before) == len(catalog.workbook_tables(settings))
    f, before = {r.notebook[:2]: r.figures for r in results}, workbook.figures
    assert f["01"]["skipped"] is True and f["01"]["delivered"] == 0
    assert f["02"]["raw_rows_added"] == 0 and f["02"]["raw_rows"] == before["02"]["raw_rows"]
    assert f["02"]["quarantine_rows"] == before["02"]["quarantine_rows"]
    assert f["03"]["exported_rows"] == 0
    assert f["03"]["landing_rows"] == before["03"]["landing_rows"] + before["05"]["drift_rows"]
    assert f["04"]["checks_failed"] == 0  # the dropped files are reconciled
    assert f["05"]["bronze_rows"] == before["05"]["bronze_rows"] and f["05"]["schema_versions"] == 2
    assert before["05"]["new_fields"] == "promo_code" and f["05"]["new_fields"] == ""  # the change, once
    assert f["06"]["silver_batches"] == before["06"]["silver_batches"]  # no new micro-batch
    restored = proofs.restore(spark, proofs.dev_clone(settings))  # 07's second mistake, on a new clone, undone too
    assert restored["extra"] == restored["missing"] == 0 and restored["deleted"] > 0


def test_a_high_fault_batch_grows_silver_by_its_valid_events_and_reconciles(workbook, spark, capfd):
    """A second producer batch with every fault at 8-10% through 01-06, its stream (02) in classic
    mode (Spark inside the kernel): silver grows by exactly its distinct valid events, quarantine
    by exactly its faulty ones, gold equals the ground truth of both batches to the cent, and the
    kernels' JVMs print nothing on the terminal (capfd sees the file descriptors they inherit)."""
    batch = generate(GeneratorConfig(**HIGH_FAULTS))
    assert all(batch.counts[kind] > 0 for kind in batch.counts), batch.counts  # every fault kind is in it
    before = workbook.figures
    results = workbook.run(HIGH_FAULTS, ["01", "02"], "run3-classic", spark_mode="classic")
    results += workbook.run({}, ["03", "04", "05", "06"], "run3")
    assert [r.status for r in results] == ["ok"] * 6, [r.error for r in results]
    terminal = "".join(capfd.readouterr())
    assert not JVM_LINE.search(terminal), terminal[-2000:]
    for path in (workbook.folder / "run3-classic").glob("*.ipynb"):
        assert not any(JVM_LINE.search(text) for _, text in _output_texts(path)), path.name
    f = {r.notebook[:2]: r.figures for r in results}
    assert f["02"]["quarantine_rows"] == before["02"]["quarantine_rows"] + batch.expected["quarantine"]
    assert f["06"]["silver_rows"] == before["06"]["silver_rows"] + batch.expected["distinct_valid_events"]
    both = proofs.expected_truth(DEFAULTS, HIGH_FAULTS)
    proofs.assert_silver_reconciles(spark, workbook.settings, both)
    assert_gold_reconciles(spark, workbook.settings, f["06"], both)
