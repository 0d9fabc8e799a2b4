"""The published results of the fault and security suite: a pytest plugin (registered by
conftest) that collects one row per test marked `faults` and writes, at the end of the session,
`<state folder>/faults/results.md` (a markdown table) and `results.json`.

A test declares its row with the marker, `@pytest.mark.faults(row="14", fault=..., must_hold=...)`,
and says what it saw with the `observed` fixture; the plugin adds pass, fail (with the first line of
the assertion) or skip from the test's reports, so a row can never claim more than the test showed.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

PLUGIN_NAME = "faults-table"
ROW_PROPERTY = "faults_row"  # the user property a row travels in


@dataclass
class Row:
    row: str
    test: str
    fault: str
    must_hold: str
    observed: list[str] = field(default_factory=list)
    result: str = "pass"
    failure: str = ""
    seconds: float = 0.0


def _first_line(excinfo, report: pytest.TestReport) -> str:
    """The assertion's (or the error's) first line: what a reader of the table needs."""
    if excinfo is not None:
        text = excinfo.exconly()
        text = text.removeprefix("AssertionError: ") if excinfo.errisinstance(AssertionError) else text
    else:
        text = str(report.longrepr)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else "failed"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row_key(row: Row) -> tuple:
    number = "".join(ch for ch in row.row if ch.isdigit())
    return (int(number) if number else 10**6, row.row, row.test)


class FaultsTable:
    """Collects the rows of this session's `faults` tests; writes the table when it ends.

    A row is built where its test runs and travels on the test's reports (`user_properties`), so
    with pytest-xdist's lanes (tests/lanes.py) the controller gathers every worker's rows into one
    table; in a plain run the same process does both."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.building: dict[str, Row] = {}  # rows of the tests this process runs
        self.rows: dict[str, Row] = {}  # rows as their reports arrive: the published table
        self.started = time.monotonic()

    def row_for(self, item: pytest.Item) -> Row | None:
        # The faults tier marks its tests `faults` too (tests/tiers.py): only a marker with a row counts.
        marker = next((m for m in item.iter_markers("faults") if "row" in m.kwargs), None)
        if marker is None:
            return None
        if item.nodeid not in self.building:
            kw = marker.kwargs
            self.building[item.nodeid] = Row(str(kw["row"]), item.name, kw.get("fault", ""), kw.get("must_hold", ""))
        return self.building[item.nodeid]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        row = self.row_for(item)
        if row is None:
            return
        row.seconds += report.duration
        if report.skipped and row.result == "pass":
            row.result = "skipped"
            row.failure = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped"
        elif report.failed and row.result != "fail":
            row.result, row.failure = "fail", _first_line(call.excinfo, report)
        report.user_properties.append((ROW_PROPERTY, asdict(row)))  # the row so far: the last report has it all

    def pytest_runtest_logreport(self, report):
        for name, value in report.user_properties:
            if name == ROW_PROPERTY:
                self.rows[report.nodeid] = Row(**{**value, "observed": list(value["observed"])})

    def pytest_sessionfinish(self, session):
        if not self.rows or hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes
            return
        rows = sorted(self.rows.values(), key=_row_key)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        header = self.header()
        (self.out_dir / "results.json").write_text(
            json.dumps({**header, "rows": [asdict(r) for r in rows]}, indent=2)
        )
        (self.out_dir / "results.md").write_text(self.markdown(header, rows))

    def header(self) -> dict:
        uname = platform.uname()
        return {
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "machine": f"{uname.system} {uname.release} {uname.machine}, {os.cpu_count()} CPUs",
            "python": platform.python_version(),
            "suite_seconds": round(time.monotonic() - self.started, 1),
        }

    @staticmethod
    def markdown(header: dict, rows: list[Row]) -> str:
        passed = sum(r.result == "pass" for r in rows)
        lines = [
            f"Faults and security suite, {header['date']}, on {header['machine']}, Python {header['python']}: "
            f"{passed} of {len(rows)} passed, session {header['suite_seconds']} s.",
            "",
            "| # | fault | what must hold | what was observed | result |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            seen = "; ".join(r.observed) or "(nothing recorded)"
            result = r.result if r.result == "pass" else f"{r.result}: {r.failure}"
            lines.append(f"| {r.row} | {_cell(r.fault)} | {_cell(r.must_hold)} | {_cell(seen)} "
                         f"| {_cell(result)} ({r.seconds:.1f} s) |")
        return "\n".join(lines) + "\n"


def observed_recorder(request: pytest.FixtureRequest):
    """What a `faults` test saw, for its row; a plain no-op for a test without a row."""
    table = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    row = table.row_for(request.node) if table is not None else None

    def record(text: str) -> None:
        if row is not None:
            row.observed.append(str(text))

    return record
