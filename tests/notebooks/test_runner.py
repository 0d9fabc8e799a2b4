"""The runner's contract: inputs are checked before anything runs, nothing is dropped silently,
and runs/latest only ever points at a complete run. Tiny notebooks, a real kernel, no services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse_helpers.notebook.runner import run_kind, run_notebooks
from tests.unit.test_runner import _notebook, local_settings


@pytest.fixture
def tiny(tmp_path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    ok = _notebook("n: int = 1  # a number", "assert n >= 0, 'n must not be negative'")
    (folder / "00_first.ipynb").write_text(json.dumps(ok))
    (folder / "01_second.ipynb").write_text(json.dumps(_notebook("label: str = 'x'  # a label", "print(label)")))
    return folder


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


# The hog notebook's child: it fills 400 MB, says so (the `held` file), and keeps the memory until
# the runner's sampler has taken a sample that began after that (the `seen` file), so the peak
# cannot fall between two samples however slow the machine. The deadline only turns a sampler that
# never looks into a failed notebook instead of a hung test.
HOG_CHILD = """
import pathlib, sys, time
hold = bytearray(b"x") * (400 << 20)  # written byte by byte: resident, not just reserved
held, seen = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
held.touch()
deadline = time.monotonic() + 120
while not seen.exists():
    if time.monotonic() > deadline:
        sys.exit("no memory sample was taken while this process held 400 MB")
    time.sleep(0.02)
"""


def test_each_notebook_records_the_peak_memory_of_the_stack_including_its_children(tmp_path, monkeypatch):
    from lakehouse_helpers.notebook import memory

    held, seen = tmp_path / "held", tmp_path / "seen"
    real_sample = memory.resident_bytes

    def sample_then_release(roots):
        # Checked before the sample starts: only a sample that began while the child held its
        # memory releases it. The value measured is the real sampler's, unchanged.
        holding = held.exists()
        used = real_sample(roots)
        if holding:
            seen.touch()
        return used

    monkeypatch.setattr(memory, "resident_bytes", sample_then_release)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    # A child of the kernel holds the memory: the sampler must see the kernel's family.
    hog = (f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {HOG_CHILD!r}, {str(held)!r}, "
           f"{str(seen)!r}], check=True)")
    (folder / "00_hog.ipynb").write_text(json.dumps(_notebook("n: int = 1  # a number", hog)))
    (folder / "01_light.ipynb").write_text(json.dumps(_notebook("n: int = 1  # a number", "print(n)")))
    settings = local_settings(tmp_path)
    out_dir, results = run_notebooks(settings, notebooks_dir=folder)
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    assert seen.exists()  # the child was released by a sample, not by its deadline (that fails it)
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


def test_a_failing_notebook_stops_the_run_and_is_named_with_its_cell(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    broken = json.dumps(_notebook("x = 1  # a number", "raise ValueError('broken on purpose')"))
    (folder / "00_ok_then_fail.ipynb").write_text(broken)
    (folder / "01_never_runs.ipynb").write_text(broken)
    _, results = run_notebooks(local_settings(tmp_path), notebooks_dir=folder, out_dir=tmp_path / "out")
    assert len(results) == 1 and results[0].status == "failed"
    assert "cell 1" in results[0].error and "broken on purpose" in results[0].error
