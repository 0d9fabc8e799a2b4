"""`make bench`: the scoreboard at a small size on the test stack. Functional only (machines and
their load vary): every stage has both rates and a ratio, both sides processed the same rows,
the JSON and the chart are written and the run leaves nothing behind. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

EVENTS, SMALL_FILES = 2000, 20
STAGES = [
    "produce", "stream Kafka -> raw", "export raw -> S3", "bronze (Auto Loader, S3)", "silver (MERGE stream)",
    "gold (materialize)", "Auto Loader json", "Auto Loader csv", "Auto Loader parquet",
    f"Auto Loader {SMALL_FILES} small JSON",
]


def test_a_kernels_spark_start_is_measured_in_both_modes(stack, test_env, monkeypatch):
    """`startup.spark_start` runs bench/kernel_start.py in a fresh interpreter per mode."""
    from lakehouse_helpers.bench import startup

    for name, value in test_env.items():  # the measured kernels inherit it: the test stack
        monkeypatch.setenv(name, value)
    figures = startup.spark_start()
    assert set(figures) == {"spark_classic_start_s", "spark_driver_rss_mb", "spark_connect_attach_s"}
    assert all(value > 0 for value in figures.values()), figures


@pytest.mark.timeout(600)
def test_bench_produces_every_ratio(stack, test_env, spark):
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse_helpers", "bench", "--events", str(EVENTS),
         "--small-files", str(SMALL_FILES), "--skip-startup"],
        env=test_env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = stack.state_dir / "bench"
    data = json.loads((out / "latest.json").read_text())
    assert data["events"] == EVENTS
    board = {row["stage"]: row for row in data["scoreboard"]}
    assert list(board) == STAGES
    for name, row in board.items():
        assert row["workbook_rate"] > 0 and row["limit_rate"] > 0, name
        assert row["ratio"] == pytest.approx(row["workbook_rate"] / row["limit_rate"], rel=0.01), name
        # Both sides read the same input and wrote the same rows.
        assert row["workbook_count"] == row["limit_count"] > 0, name
        assert row["workbook_output"] == row["limit_output"] > 0, name
        assert name in done.stdout  # the terminal table
    assert board["produce"]["workbook_count"] == 2040  # 2,000 events and their 40 duplicates
    assert board["stream Kafka -> raw"]["workbook_count"] == 2040
    assert board["silver (MERGE stream)"]["workbook_output"] < board["silver (MERGE stream)"]["workbook_count"]
    for fmt in ("json", "csv", "parquet"):
        assert board[f"Auto Loader {fmt}"]["workbook_output"] == EVENTS
    assert board[f"Auto Loader {SMALL_FILES} small JSON"]["workbook_count"] == SMALL_FILES
    assert (out / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Nothing of the run is left: its folder, schemas and buckets are gone.
    assert not list(out.glob("run-*"))
    assert not spark.sql("SHOW SCHEMAS LIKE 'bench*'").collect()
