"""The notebooks, executed for real by papermill against the test stack, each run in its own
data folder, topic and bucket; and `pytest --nbval-lax notebooks/` with the default parameters."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lakehouse_helpers import catalog, layout, lineage, medallion, storage, truth
from lakehouse_helpers.drops import drift_batch
from lakehouse_helpers.events import REASONS, GeneratorConfig, generate
from lakehouse_helpers.governance import RowFilter, TableGovernance
from lakehouse_helpers.notebook import tools as nbtools
from lakehouse_helpers.notebook.runner import NOTEBOOKS_DIR, discover, run_notebooks

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "events": 300, "seed": 7, "malformed_rate": 0.03, "invalid_rate": 0.06,
    "duplicate_rate": 0.05, "late_rate": 0.03, "drift_after": 0.5,
}
# The high-fault case of notebook 06's proof.
HIGH_FAULTS = {
    "events": 30_000, "seed": 11, "malformed_rate": 0.08, "invalid_rate": 0.10,
    "duplicate_rate": 0.10, "late_rate": 0.10, "drift_after": 0.5,
}
DRIFT = {"events": 200, "seed": 1042}  # notebook 05's default drift files


def expected_truth(*configs: dict) -> truth.Truth:
    """Silver and gold as the generator meant them, computed here without the notebooks."""
    return truth.from_batches([*(generate(GeneratorConfig(**c)) for c in configs), drift_batch(**DRIFT)])


def assert_silver_and_gold_reconcile(f06: dict, expected: truth.Truth) -> None:
    assert f06["silver_rows"] == f06["expected_silver_rows"] == expected.silver_rows
    assert f06["duplicates_removed"] == expected.duplicates > 0
    assert f06["bronze_rows"] == f06["silver_rows"] + f06["rejected_rows"] + f06["duplicates_removed"]
    assert f06["accounted"] is True and f06["rejected_rows"] == 0
    assert f06["late_events"] == f06["expected_late_events"] == expected.late_events > 0
    revenue = sum(truth.gold(expected, medallion.FX_RATES)["daily_revenue"]["revenue_usd"])
    assert f06["gold_revenue_usd"] == str(revenue)
    assert f06["gold_equals_truth"] is True


def set_environ(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """The kernels inherit this process's environment: point it at one run (undone after)."""
    for name, value in values.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)


def isolated_run(stack, test_env, folder: Path):
    """Settings and environment for one run: its own data folder, topic and bucket."""
    run = uuid.uuid4().hex[:8]
    env = {
        **test_env,
        "LAKEHOUSE_DATA_DIR": str(folder / "data"),
        "KAFKA_TOPIC": f"nb.{run}.orders",
        "S3_BUCKET": f"nb-{run}",
        "LAKEHOUSE_SCHEMA_PREFIX": f"nb{run}_",  # its own bronze schema in the shared metastore
    }
    settings = stack.replace(
        data_dir_override=env["LAKEHOUSE_DATA_DIR"], kafka_topic=env["KAFKA_TOPIC"],
        s3_bucket=env["S3_BUCKET"], schema_prefix=env["LAKEHOUSE_SCHEMA_PREFIX"],
    )
    storage.ensure_bucket(settings)
    return settings, env


@pytest.fixture(scope="module")
def first_run(stack, test_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nbrun")
    settings, env = isolated_run(stack, test_env, folder)
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_environ(monkeypatch, env)
        out_dir, results = run_notebooks(settings, SMALL, out_dir=folder / "run1")
    return settings, env, folder, out_dir, results


def _figures(results) -> dict[str, dict]:
    return {r.notebook[:2]: r.figures for r in results}


def test_all_notebooks_ran(first_run):
    *_, results = first_run
    assert [r.notebook[:2] for r in results] == [p.name[:2] for p in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))]
    assert [r.status for r in results] == ["ok"] * len(results), [r.error for r in results]


def test_figures_reconcile_with_what_was_produced(first_run):
    *_, results = first_run
    f = _figures(results)
    expected = generate(GeneratorConfig(**SMALL)).expected
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
    # 06: every bronze row accounted for; silver and gold equal the ground truth
    assert f["06"]["bronze_rows"] == f["05"]["bronze_rows"]
    assert_silver_and_gold_reconcile(f["06"], expected_truth(SMALL))


JVM_LINE = re.compile(
    r"\b(WARN|ERROR) [\w.$]+:|^\s*at (org\.apache|java\.|scala\.)|WARNING: Using incubator|Exception in thread", re.M)


def _output_texts(path: Path):
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            texts = [out.get("text", ""), out.get("evalue", ""), *out.get("traceback", []),
                     *(v for k, v in out.get("data", {}).items() if k.startswith("text/"))]
            yield cell, "".join("".join(t) if isinstance(t, list) else str(t) for t in texts)


def test_executed_notebooks_carry_no_jvm_lines_no_warnings_and_no_error_banner(first_run):
    """A first run reads like a tutorial: 05's schema change is shown as a lesson, not a crash."""
    *_, out_dir, _ = first_run
    for path in sorted(Path(out_dir).glob("*.ipynb")):
        for cell, text in _output_texts(path):
            assert not JVM_LINE.search(text), (path.name, JVM_LINE.search(text).group(0), text[:300])
            assert "Warning:" not in text and "TqdmWarning" not in text, (path.name, text[:300])
            assert "papermill-error-cell-tag" not in cell["metadata"].get("tags", []), path.name
            assert cell.get("outputs") is None or all(o["output_type"] != "error" for o in cell["outputs"]), path.name
    lesson = "".join(text for _, text in _output_texts(Path(out_dir) / "05_auto_loader_bronze.ipynb"))
    assert "UnknownFieldException: new field(s) promo_code" in lesson and "in file s3a://" in lesson


def test_secrets_never_reach_executed_notebooks(first_run):
    settings, _, _, out_dir, _ = first_run
    secret = settings.s3_secret_key.reveal()
    assert secret
    for path in Path(out_dir).glob("*.ipynb"):
        assert secret not in path.read_text(), path.name


# Every notebook that reads or writes data, from the runner's own list, so a new one is re-run
# too; 00 only checks the infrastructure.
RERUN = [p.name[:2] for p in discover() if not p.name.startswith("00_")]


@pytest.mark.faults(
    row="11",
    fault=f"the whole workbook re-run with the same seed (notebooks {RERUN[0]}-{RERUN[-1]} on the same state)",
    must_hold="every table's rows unchanged (fingerprints of every workbook table); nothing sent, ingested or exported "
    "twice")
def test_second_run_adds_nothing(first_run, spark, observed, monkeypatch):
    """Every notebook re-run on the same state: nothing is sent, ingested or exported twice, and
    every table's rows are unchanged (07 adds history versions, never rows)."""
    settings, env, folder, _, first = first_run
    tables_before = catalog.fingerprints(spark, settings)
    set_environ(monkeypatch, env)
    _, results = run_notebooks(settings, SMALL, only=RERUN, out_dir=folder / "run2")
    assert [r.notebook[:2] for r in results] == RERUN
    assert [r.status for r in results] == ["ok"] * len(RERUN), [r.error for r in results]
    tables_after = catalog.fingerprints(spark, settings)
    observed(f"{len(tables_before)} tables, {sum(tables_after.get(t) != v for t, v in tables_before.items())} changed; "
             f"notebooks {[r.status for r in results].count('ok')} of {len(RERUN)} ok")
    assert tables_after == tables_before
    assert len(tables_before) == len(catalog.workbook_tables(settings))
    f, before = _figures(results), _figures(first)
    assert f["01"]["skipped"] is True and f["01"]["delivered"] == 0
    assert f["02"]["raw_rows_added"] == 0 and f["02"]["raw_rows"] == before["02"]["raw_rows"]
    assert f["02"]["quarantine_rows"] == before["02"]["quarantine_rows"]
    assert f["03"]["exported_rows"] == 0
    assert f["03"]["landing_rows"] == before["03"]["landing_rows"] + before["05"]["drift_rows"]
    assert f["04"]["checks_failed"] == 0  # the dropped files are reconciled
    assert f["05"]["bronze_rows"] == before["05"]["bronze_rows"] and f["05"]["schema_versions"] == 2
    assert before["05"]["new_fields"] == "promo_code" and f["05"]["new_fields"] == ""  # the change, once
    assert f["06"]["silver_rows"] == before["06"]["silver_rows"]
    assert f["06"]["silver_batches"] == before["06"]["silver_batches"]  # no new micro-batch
    assert f["06"]["gold_revenue_usd"] == before["06"]["gold_revenue_usd"]
    assert f["07"]["data_unchanged"] is True and f["07"]["restore_equal"] is True


def test_a_new_batch_grows_silver_by_its_new_valid_events(first_run, monkeypatch):
    """A second producer batch (new seed) through 02-06: silver grows by exactly its distinct
    valid events, and gold still equals the ground truth of both batches."""
    settings, env, folder, _, first = first_run
    second = {**SMALL, "seed": 8}
    set_environ(monkeypatch, env)
    _, results = run_notebooks(settings, second, only=["01", "02", "03", "04", "05", "06"], out_dir=folder / "run3")
    assert [r.status for r in results] == ["ok"] * 6, [r.error for r in results]
    f, before = _figures(results), _figures(first)
    new_events = generate(GeneratorConfig(**second)).expected["distinct_valid_events"]
    assert f["06"]["silver_rows"] == before["06"]["silver_rows"] + new_events
    assert_silver_and_gold_reconcile(f["06"], expected_truth(SMALL, second))


def test_high_fault_rates_reconcile_exactly(stack, test_env, tmp_path, monkeypatch):
    """30,000 events with 8% malformed, 10% invalid, 10% duplicated and 10% late: silver and
    every gold figure equal the ground truth, to the cent."""
    settings, env = isolated_run(stack, test_env, tmp_path)
    set_environ(monkeypatch, env)
    _, results = run_notebooks(settings, HIGH_FAULTS, only=["00", "01", "02", "03", "04", "05", "06"],
                               out_dir=tmp_path / "run")
    assert [r.status for r in results] == ["ok"] * len(results), [r.error for r in results]
    f = _figures(results)
    assert f["02"]["quarantine_rows"] == generate(GeneratorConfig(**HIGH_FAULTS)).expected["quarantine"]
    assert_silver_and_gold_reconcile(f["06"], expected_truth(HIGH_FAULTS))


def test_a_failing_notebook_is_named_with_its_cell(stack, tmp_path):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1", "outputs": [],
                "execution_count": None},
            {"cell_type": "code", "metadata": {}, "source": "raise ValueError('broken on purpose')", "outputs": [],
                "execution_count": None},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 4,
    }
    (nb_dir / "00_ok_then_fail.ipynb").write_text(json.dumps(nb))
    (nb_dir / "01_never_runs.ipynb").write_text(json.dumps(nb))
    _, results = run_notebooks(stack, notebooks_dir=nb_dir, out_dir=tmp_path / "out")
    assert len(results) == 1 and results[0].status == "failed"
    assert "cell 1" in results[0].error and "broken on purpose" in results[0].error


def test_committed_notebooks_are_clean():
    for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        assert nbtools.problems(path) == [], path.name


def test_nbval_lax_with_default_parameters(stack, test_env, tmp_path):
    """`pytest --nbval-lax notebooks/`: every cell runs, marked cells match their stored output."""
    _, env = isolated_run(stack, test_env, tmp_path)
    cmd = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
        "--nbval-sanitize-with", str(NOTEBOOKS_DIR / "nbval_sanitize.cfg"),
        "-p", "no:cacheprovider", "-q", "-o", "addopts=", str(NOTEBOOKS_DIR),
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-6000:]
    assert " passed" in out.stdout and " failed" not in out.stdout


def _notebook_spec(settings, spark) -> list[TableGovernance]:
    """The governance spec exactly as notebook 07 declares it (its cell tagged governance-spec)."""
    nb = json.loads((NOTEBOOKS_DIR / "07_governance_time_travel.ipynb").read_text())
    (cell,) = [c for c in nb["cells"] if "governance-spec" in c["metadata"].get("tags", [])]
    scope = {"TableGovernance": TableGovernance, "RowFilter": RowFilter, "settings": settings, "spark": spark,
             "print": lambda *_, **__: None}
    exec("".join(cell["source"]), scope)
    return scope["spec"]


def test_07_governs_every_table_and_proves_its_time_travel(first_run):
    settings, _, _, out_dir, results = first_run
    f = _figures(results)["07"]
    assert f["tables_governed"] == 8 and f["governance_statements"] > 0
    assert f["masked_for_analyst"] is True and f["filtered_for_analyst"] is True
    assert f["mistaken_delete_rows"] > 0 and f["restore_equal"] is True
    # the change data feed of the last MERGE holds exactly the rows that MERGE inserted
    assert f["cdf_inserts"] == f["last_merge_inserted"] > 0
    assert f["data_unchanged"] is True
    assert f["lineage_edges"] == 14
    assert (Path(out_dir) / "lineage.png").stat().st_size > 10_000  # the picture is kept with the run


def test_07_catalog_reads_back_the_spec(first_run, spark):
    settings = first_run[0]
    spec = _notebook_spec(settings, spark)
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


def test_07_lineage_has_every_pipeline_edge_and_no_other(first_run, spark):
    settings = first_run[0]
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


def test_spark_notebooks_also_run_in_classic_mode(stack, test_env, tmp_path, capfd, monkeypatch):
    """spark_mode=classic: Spark inside each kernel instead of the Spark Connect server; the
    kernels' JVMs print nothing on the terminal (capfd sees the file descriptors they inherit)."""
    settings, env = isolated_run(stack, test_env, tmp_path)
    set_environ(monkeypatch, {**env, "LAKEHOUSE_SPARK_MODE": "classic"})
    _, results = run_notebooks(settings.replace(spark_mode="classic"), SMALL, only=["01", "02"],
                               out_dir=tmp_path / "run")
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    assert _figures(results)["02"]["raw_rows"] == generate(GeneratorConfig(**SMALL)).expected["raw"]
    terminal = "".join(capfd.readouterr())
    assert not JVM_LINE.search(terminal), terminal[-2000:]
    for path in (tmp_path / "run").glob("*.ipynb"):
        assert not any(JVM_LINE.search(text) for _, text in _output_texts(path)), path.name
