"""The runner's contract: inputs are checked before anything runs, nothing is dropped silently,
and runs/latest only ever points at a complete run. Tiny notebooks, a real kernel, no services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_helpers.__main__ import parse_parameters
from lakehouse_helpers.notebook import tools as nbtools
from lakehouse_helpers.notebook.runner import (
    NOTEBOOKS_DIR,
    RunInputError,
    check_parameters,
    discover,
    run_kind,
    run_notebooks,
    unparsed_parameter_lines,
)
from lakehouse_helpers.settings import load_settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent


def local_settings(tmp_path: Path):
    """Defaults over a fresh state folder: the user's environment and `.env` change nothing."""
    return load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path / "state")}, dotenv=tmp_path / "no.env")


def _notebook(parameters: str, body: str) -> dict:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    return {
        "cells": [
            {**cell, "metadata": {"tags": ["parameters"]}, "source": parameters},
            {**cell, "source": body},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 4,
    }


@pytest.fixture
def tiny(tmp_path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    ok = _notebook("n: int = 1  # a number", "assert n >= 0, 'n must not be negative'")
    (folder / "00_first.ipynb").write_text(json.dumps(ok))
    (folder / "01_second.ipynb").write_text(json.dumps(_notebook("label: str = 'x'  # a label", "print(label)")))
    return folder


def test_every_committed_parameter_cell_parses_completely():
    for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        assert unparsed_parameter_lines(path) == [], path.name


def test_notebooks_check_fails_on_a_parameter_line_papermill_cannot_parse(tmp_path):
    path = tmp_path / "00_bad.ipynb"
    line = "cap: int = 0  # cap on messages per micro-batch (0 = no cap)"
    path.write_text(json.dumps(_notebook(line + "\nok: int = 1", "pass")))
    problems = nbtools.problems(path)
    assert any("Unable to parse" in p and "cap" in p for p in problems), problems


def test_a_selection_that_matches_nothing_lists_the_valid_names():
    for name in ("2", "99", "stream"):
        with pytest.raises(RunInputError, match="No notebook matches") as info:
            discover(only=[name])
        assert "02_stream_kafka_to_delta" in str(info.value) and "07_governance_time_travel" in str(info.value)
    assert [p.name[:2] for p in discover(only=["02", "03_export_delta_to_s3"])] == ["02", "03"]


def test_an_undeclared_parameter_names_the_notebooks_and_their_parameters():
    with pytest.raises(RunInputError, match="max_offset") as info:
        check_parameters(discover(only=["02"]), {"max_offset": 10})
    assert "02_stream_kafka_to_delta.ipynb: mode, live_seconds, max_offsets_per_trigger" in str(info.value)
    # Declared by 01 but 01 is not selected: still refused, not dropped.
    with pytest.raises(RunInputError, match="events"):
        check_parameters(discover(only=["02"]), {"events": 10})


def test_a_value_of_the_wrong_type_is_refused_naming_parameter_and_type():
    with pytest.raises(RunInputError, match=r"events of 01_produce_events.ipynb must be of type int.*'abc'"):
        check_parameters(discover(only=["01"]), {"events": "abc"})
    with pytest.raises(RunInputError, match="must be of type bool"):
        check_parameters(discover(only=["03"]), {"quality_gate": 1})
    checked = check_parameters(discover(only=["01", "02", "03"]),
        {"events": 10, "late_rate": 0, "mode": "live", "quality_gate": "false"})
    assert checked["01_produce_events.ipynb"] == {"events": 10, "late_rate": 0.0}
    assert checked["02_stream_kafka_to_delta.ipynb"] == {"mode": "live"}
    assert checked["03_export_delta_to_s3.ipynb"] == {"quality_gate": False}


@pytest.mark.parametrize("name", ["aws_secret_access_key", "token", "db_password", "api_key"])
def test_a_parameter_that_looks_like_a_secret_is_refused(name, tmp_path):
    with pytest.raises(RunInputError, match=f"{name} looks like a secret"):
        check_parameters(discover(), {name: "canary-123"})
    path = tmp_path / "00_secret.ipynb"
    path.write_text(json.dumps(_notebook(f"{name}: str = 'x'  # never do this", "pass")))
    assert any("looks like a secret" in p for p in nbtools.problems(path))


def test_params_words_keep_quoting_and_refuse_what_is_not_name_value():
    params = parse_parameters([["events", "5_000"]],
        "mode=live live_seconds=60 mistaken_delete=\"currency IN ('EUR')\"")
    assert params == {"events": 5000, "mode": "live", "live_seconds": 60, "mistaken_delete": "currency IN ('EUR')"}
    with pytest.raises(ValueError, match="not name=value"):
        parse_parameters([], "live")


def test_the_cli_refuses_bad_input_before_running_anything(tmp_path):
    env = {**os.environ, "LAKEHOUSE_STATE_DIR": str(tmp_path / "state")}
    for args, message in (
        (["--only", "2"], "No notebook matches '2'"),
        (["-p", "events", "abc"], "must be of type int"),
        (["--only", "02", "-p", "max_offsets", "1"], "No selected notebook declares max_offsets"),
    ):
        out = subprocess.run([sys.executable, "-m", "lakehouse_helpers", "run", *args], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "state" / "runs").exists()


def test_latest_points_at_the_newest_complete_run_only(tiny, tmp_path):
    settings = local_settings(tmp_path)
    runs = settings.state_dir / "runs"
    complete, results = run_notebooks(settings, notebooks_dir=tiny)
    assert [r.status for r in results] == ["ok", "ok"] and run_kind(complete) == "complete"
    assert (runs / "latest").resolve() == complete.resolve()

    partial, _ = run_notebooks(settings, {"label": "y"}, only=["01"], notebooks_dir=tiny)
    assert partial.name.endswith("-partial") and run_kind(partial) == "partial"
    summary = json.loads((partial / "summary.json").read_text())
    assert summary["parameters"] == {"label": "y"} and [n["notebook"] for n in summary["notebooks"]] == [
        "01_second.ipynb"]

    failed, results = run_notebooks(settings, {"n": -1}, notebooks_dir=tiny)
    assert failed.name.endswith("-failed") and run_kind(failed) == "failed"
    assert results[0].status == "failed" and "must not be negative" in results[0].error
    assert Path(results[0].output).parent == failed and Path(results[0].output).exists()
    assert (runs / "latest").resolve() == complete.resolve()


def test_what_kernels_and_their_children_print_goes_to_a_log_not_the_terminal(tmp_path, capfd):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    body = ("import os, subprocess\nos.write(2, b'kernel-noise\\n')\n"
            "subprocess.run(['sh', '-c', 'echo child-noise >&2'])")
    (folder / "00_noisy.ipynb").write_text(json.dumps(_notebook("n: int = 1  # a number", body)))
    settings = local_settings(tmp_path)
    _, results = run_notebooks(settings, notebooks_dir=folder)
    assert results[0].status == "ok"
    terminal = "".join(capfd.readouterr())
    assert "noise" not in terminal, terminal
    log = (settings.state_dir / "logs" / "kernels.log").read_text()
    assert "kernel-noise" in log and "child-noise" in log


def test_each_notebook_records_the_peak_memory_of_the_stack_including_its_children(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    # A child of the kernel holds 400 MB for a while: the sampler must see the kernel's family.
    hog = ("import subprocess, sys\nsubprocess.run([sys.executable, '-c', "
           "'import time; b = bytearray(b\"x\") * (400 << 20); time.sleep(1.5)'], check=True)")
    (folder / "00_hog.ipynb").write_text(json.dumps(_notebook("n: int = 1  # a number", hog)))
    (folder / "01_light.ipynb").write_text(json.dumps(_notebook("n: int = 1  # a number", "print(n)")))
    settings = local_settings(tmp_path)
    out_dir, results = run_notebooks(settings, notebooks_dir=folder)
    hog_peak, light_peak = (r.peak_memory_mb for r in results)
    assert hog_peak >= light_peak + 350, (hog_peak, light_peak)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["peak_memory_mb"] >= hog_peak
    assert summary["seconds"] == pytest.approx(sum(r.seconds for r in results), abs=0.2)


def test_a_failed_spark_cell_is_named_by_its_code_without_the_jvm_trace(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    # The message is built at run time so that the cell's own code does not contain the trace.
    body = ("# NBVAL_CHECK_OUTPUT\nmessage = 'Not enough memory to broadcast.' + chr(10) * 2 + 'JVM' + ' stack'"
            " + 'trace:' + chr(10) + 'org.apache.spark.SparkException' + chr(10) + chr(9) + 'at'"
            " + ' org.apache.spark.Foo(Foo.scala:1)'\n"
            "raise RuntimeError(message)")
    (folder / "00_fails.ipynb").write_text(json.dumps(_notebook("n: int = 1  # a number", body)))
    settings = local_settings(tmp_path)
    _, results = run_notebooks(settings, notebooks_dir=folder)
    error = results[0].error
    assert results[0].status == "failed" and "message = " in error and "Not enough memory to broadcast." in error
    assert "JVM stacktrace" not in error and "at org.apache" not in error and "NBVAL" not in error
