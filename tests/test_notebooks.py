"""The notebooks, executed for real by papermill against the test stack, each run in its own
data folder, topic and bucket; and `pytest --nbval-lax notebooks/` with the default parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from lakehouse_helpers import medallion, nbtools, storage, truth
from lakehouse_helpers.bronze import drift_batch
from lakehouse_helpers.events import REASONS, GeneratorConfig, generate
from lakehouse_helpers.runner import NOTEBOOKS_DIR, run_notebooks

pytestmark = [pytest.mark.notebooks, pytest.mark.services, pytest.mark.spark]

ROOT = Path(__file__).resolve().parent.parent
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


@contextmanager
def environ(values: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


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
    with environ(env):
        out_dir, results = run_notebooks(settings, SMALL, out_dir=folder / "run1", log=lambda *_: None)
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


def test_secrets_never_reach_executed_notebooks(first_run):
    settings, _, _, out_dir, _ = first_run
    secret = settings.s3_secret_key.reveal()
    assert secret
    for path in Path(out_dir).glob("*.ipynb"):
        assert secret not in path.read_text(), path.name


def test_second_run_adds_nothing(first_run):
    """Every notebook re-run on the same state: nothing is sent, ingested or exported twice."""
    settings, env, folder, _, first = first_run
    with environ(env):
        _, results = run_notebooks(settings, SMALL, only=["01", "02", "03", "04", "05", "06"], out_dir=folder / "run2", log=lambda *_: None)
    assert [r.status for r in results] == ["ok"] * 6, [r.error for r in results]
    f, before = _figures(results), _figures(first)
    assert f["01"]["skipped"] is True and f["01"]["delivered"] == 0
    assert f["02"]["raw_rows_added"] == 0 and f["02"]["raw_rows"] == before["02"]["raw_rows"]
    assert f["02"]["quarantine_rows"] == before["02"]["quarantine_rows"]
    assert f["03"]["exported_rows"] == 0
    assert f["03"]["landing_rows"] == before["03"]["landing_rows"] + before["05"]["drift_rows"]
    assert f["04"]["checks_failed"] == 0  # the dropped files are reconciled
    assert f["05"]["bronze_rows"] == before["05"]["bronze_rows"] and f["05"]["schema_versions"] == 2
    assert f["05"]["restarts"] == 0
    assert f["06"]["silver_rows"] == before["06"]["silver_rows"]
    assert f["06"]["silver_batches"] == before["06"]["silver_batches"]  # no new micro-batch
    assert f["06"]["gold_revenue_usd"] == before["06"]["gold_revenue_usd"]


def test_a_new_batch_grows_silver_by_its_new_valid_events(first_run):
    """A second producer batch (new seed) through 02-06: silver grows by exactly its distinct
    valid events, and gold still equals the ground truth of both batches."""
    settings, env, folder, _, first = first_run
    second = {**SMALL, "seed": 8}
    with environ(env):
        _, results = run_notebooks(settings, second, only=["01", "02", "03", "04", "05", "06"], out_dir=folder / "run3", log=lambda *_: None)
    assert [r.status for r in results] == ["ok"] * 6, [r.error for r in results]
    f, before = _figures(results), _figures(first)
    new_events = generate(GeneratorConfig(**second)).expected["distinct_valid_events"]
    assert f["06"]["silver_rows"] == before["06"]["silver_rows"] + new_events
    assert_silver_and_gold_reconcile(f["06"], expected_truth(SMALL, second))


def test_high_fault_rates_reconcile_exactly(stack, test_env, tmp_path):
    """30,000 events with 8% malformed, 10% invalid, 10% duplicated and 10% late: silver and
    every gold figure equal the ground truth, to the cent."""
    settings, env = isolated_run(stack, test_env, tmp_path)
    with environ(env):
        _, results = run_notebooks(settings, HIGH_FAULTS, out_dir=tmp_path / "run", log=lambda *_: None)
    assert [r.status for r in results] == ["ok"] * len(results), [r.error for r in results]
    f = _figures(results)
    assert f["02"]["quarantine_rows"] == generate(GeneratorConfig(**HIGH_FAULTS)).expected["quarantine"]
    assert_silver_and_gold_reconcile(f["06"], expected_truth(HIGH_FAULTS))


def test_a_failing_notebook_is_named_with_its_cell(stack, tmp_path):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1", "outputs": [], "execution_count": None},
            {"cell_type": "code", "metadata": {}, "source": "raise ValueError('broken on purpose')", "outputs": [], "execution_count": None},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 4,
    }
    (nb_dir / "00_ok_then_fail.ipynb").write_text(json.dumps(nb))
    (nb_dir / "01_never_runs.ipynb").write_text(json.dumps(nb))
    _, results = run_notebooks(stack, notebooks_dir=nb_dir, out_dir=tmp_path / "out", log=lambda *_: None)
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
