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
from lakehouse_helpers.notebook.params import notebook_parameters, range_of
from lakehouse_helpers.notebook.report import SLOW_CELL_S, cell_times
from lakehouse_helpers.notebook.runner import (
    NOTEBOOKS_DIR,
    NotebookResult,
    RunInputError,
    check_parameters,
    discover,
    format_summary,
    unparsed_parameter_lines,
)
from lakehouse_helpers.runtime.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


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


def test_a_number_out_of_its_declared_range_is_refused_naming_the_range():
    for name, value, span in (("events", 0, "1 to 10,000,000"), ("events", -5, "1 to 10,000,000"),
                              ("late_rate", 1.5, "0 to 1"), ("seed", -1, "0 to any")):
        with pytest.raises(RunInputError, match=f"{name} of 01_produce_events.ipynb must be from {span} .*got"):
            check_parameters(discover(only=["01"]), {name: value})
    assert check_parameters(discover(only=["01"]), {"events": 10_000_000, "late_rate": 1})[
        "01_produce_events.ipynb"] == {"events": 10_000_000, "late_rate": 1.0}


def test_every_number_parameter_declares_its_range():
    unranged = [f"{p.name}: {r['name']}" for p in discover() for r in notebook_parameters(p)
                if r["type"] in ("int", "float") and range_of(r["help"]) == (None, None)]
    assert not unranged, f"end each number's comment with its range, e.g. [0..1]: {unranged}"


@pytest.mark.parametrize("name", ["aws_secret_access_key", "token", "db_password", "api_key"])
def test_a_parameter_that_looks_like_a_secret_is_refused(name, tmp_path):
    with pytest.raises(RunInputError, match=f"{name} looks like a secret"):
        check_parameters(discover(), {name: "canary-123"})
    path = tmp_path / "00_secret.ipynb"
    path.write_text(json.dumps(_notebook(f"{name}: str = 'x'  # never do this", "pass")))
    assert any("looks like a secret" in p for p in nbtools.problems(path))


def test_params_words_keep_quoting_and_refuse_what_is_not_name_value():
    assert parse_parameters([["events", "100,000"]]) == {"events": 100_000}  # a number, not the tuple (100, 0)
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




def test_every_code_cell_s_seconds_are_read_and_slow_ones_named_in_the_summary(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# title"},
        {"cell_type": "code", "metadata": {"papermill": {"duration": 0.25}}, "source": "x = 1\n"},
        {"cell_type": "code", "metadata": {"tags": ["stream"], "papermill": {"duration": SLOW_CELL_S + 2}},
         "source": ["# why it is slow\n", "query = df.writeStream.start()\n"]},
        {"cell_type": "code", "metadata": {}, "source": "never ran\n"},
    ]}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    times = cell_times(tmp_path / "n.ipynb")
    assert times == [
        {"cell": 2, "seconds": 0.25, "tags": [], "code": "x = 1"},
        {"cell": 3, "seconds": SLOW_CELL_S + 2, "tags": ["stream"], "code": "query = df.writeStream.start()"},
    ]
    text = format_summary([NotebookResult("n.ipynb", "ok", 7.5, "n.ipynb", cells=times)])
    assert f"slow cell 3: {SLOW_CELL_S + 2:.1f} s  query = df.writeStream.start()" in text
    assert "cell 2" not in text


def test_ctrl_c_ends_the_run_as_interrupted_with_its_summary_and_latest_unmoved(tmp_path, monkeypatch):
    from lakehouse_helpers.notebook import runner

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("01_first.ipynb", "02_second.ipynb", "03_third.ipynb"):
        (notebooks / name).write_text(json.dumps(_notebook("n: int = 1  # a number [0..]", "pass")))

    def execute(path, output, params):  # no kernel: the first notebook runs, Ctrl-C in the second
        if path.name.startswith("02"):
            raise KeyboardInterrupt
        output.write_text(path.read_text())
        return "ok", ""

    monkeypatch.setattr(runner, "_execute", execute)
    settings = local_settings(tmp_path)
    out_dir, results = runner.run_notebooks(settings, notebooks_dir=notebooks)  # tier: _execute replaced, no kernel
    assert [(r.notebook[:2], r.status) for r in results] == [("01", "ok"), ("02", "interrupted")]
    assert out_dir.name.endswith("-interrupted") and out_dir.parent == settings.state_dir / "runs"
    assert json.loads((out_dir / "summary.json").read_text())["kind"] == "interrupted"
    assert not (settings.state_dir / "runs" / "latest").exists()
    assert "interrupted" in format_summary(results)
