"""`make bench`: the scoreboard at a small size on the test stack. Functional only (machines and
their load vary): every stage has both rates and a ratio, both sides processed the same rows,
the JSON and the chart are written and the run leaves nothing behind. No timing is asserted."""

from __future__ import annotations

from lakehouse_helpers.bench.scoreboard import Side, Stage, format_table, plot_ratios

EVENTS, SMALL_FILES = 2000, 20
def test_ratio_table_and_chart(tmp_path):
    stages = [Stage("produce", "msgs/s", "librdkafka", Side(100, 2.0), Side(100, 0.5)),
              Stage("gold", "rows/s", "CTAS", Side(10, 1.0), Side(10, 1.0))]
    assert stages[0].workbook.rate == 50 and stages[0].limit.rate == 200 and stages[0].ratio == 0.25
    assert stages[0].as_dict()["ratio"] == 0.25
    lines = format_table(stages).splitlines()
    assert lines[0].split()[:4] == ["stage", "workbook", "limit", "ratio"]
    assert lines[2].split()[:4] == ["produce", "50", "200", "0.25"]
    png = plot_ratios(stages, tmp_path / "ratios.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


