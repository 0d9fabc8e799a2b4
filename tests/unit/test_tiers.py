"""tests/tiers.py, the guard that holds each test to its tier folder. Small fake suites are laid
out in a temporary folder and an inner pytest (a subprocess, loading the plugin as pyproject's
addopts does) collects or runs them: each way of starting more than a tier allows must be refused,
at collection by the scan or at run time by the guard, naming where and what; what a tier allows
must pass."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The inner suite's conftest. Stand-in fixtures: the guard reads the names a test asks for, so
# they only need to exist for collection to reach it.
CONFTEST = '''
import pytest

@pytest.fixture
def stack():
    return None

@pytest.fixture
def uses_stack(stack):  # asks for `stack` on its test's behalf
    return stack

@pytest.fixture
def jar_settings():
    return None
'''

# Fake modules, as lists of lines. They live under `bad/` and `good/`, never under a `tests/`
# folder: the inner run imports the real `tests` package (for `-p tests.tiers`), which a fake one
# on its path would shadow. The tier is the nearest folder named like one (`bad/unit` is `unit`).
# `# refused: <what>` marks a line the scan must report, so the expected line numbers follow edits.
# Names in them are never defined: collection fails before any of these tests could run.
BAD = {
    "bad/unit/test_imports_papermill.py": [
        "def test_executes_a_notebook():",
        "    import papermill  # refused: starts Jupyter kernels",  # in the test: collecting must not import it
        "    assert papermill",
    ],
    "bad/unit/test_runs_notebooks.py": [
        "def test_runs_the_workbook():",
        "    run_notebooks(['01_ingest'])  # refused: starts Jupyter kernels",
    ],
    "bad/unit/test_starts_a_jvm.py": [
        "import subprocess",
        "",
        "def test_java_version():",
        '    subprocess.run(["java", "-version"])  # refused: starts a JVM',
        "",
        "def test_a_pragma_in_a_string_is_no_pragma():",
        '    subprocess.run(["java", "-version"], env={"WHY": "# tier: a string"})  # refused: starts a JVM',
    ],
    "bad/unit/test_runs_maven.py": [
        "import subprocess",
        "",
        "def test_package():",
        '    subprocess.run(["bash", "-c", "mvn -q package"])  # refused: runs Maven',  # tier: text, not run
    ],
    "bad/unit/test_not_a_docstring.py": [
        "def test_notes():",
        '    """Reads what papermill starts: ipykernel."""',  # tier: a fake module's text, not run
        '    note = "Reads what papermill starts: ipykernel."  # refused: starts Jupyter kernels',  # tier: text
    ],
    "bad/unit/test_asks_for_the_stack.py": [
        "def test_direct(stack):",
        "    pass",
        "",
        "def test_through_another_fixture(uses_stack):",
        "    pass",
    ],
    "bad/jars/test_starts_spark.py": [
        "def test_called():",
        "    get_spark(None)  # refused: starts Spark",
        "",
        "def test_through_the_package():",
        "    lakehouse_helpers.runtime.spark.get_spark(None)  # refused: starts Spark",
        "",
        "def test_renamed():",
        "    from lakehouse_helpers.runtime.spark import get_spark as session",
        "    session(None)  # refused: starts Spark",
        "",
        "def test_builder():",
        "    pyspark.sql.SparkSession.builder.getOrCreate()  # refused: starts Spark",
    ],
    "bad/spark/test_starts_services.py": [
        "def test_called():",
        "    services.up(None, ['kafka'])  # refused: starts the services",
        "",
        "def test_through_the_package():",
        "    lakehouse_helpers.runtime.services.up(None, ['s3'])  # refused: starts the services",
        "",
        "def test_renamed():",
        "    import lakehouse_helpers.runtime.services as svc",
        "    svc.up(None, ['kafka'])  # refused: starts the services",
    ],
    "bad/notebooks/test_drives_a_browser.py": [
        "def test_lab_in_chromium():",
        "    from playwright.sync_api import sync_playwright  # refused: starts a browser",
        "    with sync_playwright() as playwright:  # refused: starts a browser",
        "        playwright.chromium.launch()  # refused: starts a browser",
    ],
    "bad/test_loose.py": ["def test_anywhere():", "    pass"],
}
NEEDS = {"starts Jupyter kernels": "notebooks", "starts a JVM": "spark", "runs Maven": "jars",
         "starts Spark": "spark", "starts the services": "services", "starts a browser": "browser"}
# Refusals without a line of their own to mark: a fixture (at the test's `def`), a loose module.
OTHER_REFUSALS = {
    "bad/unit/test_asks_for_the_stack.py:1 test_direct asks for fixture `stack`, which starts what `unit` "
    "does not allow (needs `services`)",
    "bad/unit/test_asks_for_the_stack.py:4 test_through_another_fixture asks for fixture `stack`, which starts "
    "what `unit` does not allow (needs `services`)",
    "bad/test_loose.py::test_anywhere: not in a tier folder (unit, jars, spark, services, notebooks, browser, faults)",
}

# Modules that must collect: `jar_settings`, `get_spark` and a browser each in the tier that allows it.
# Commands the scan cannot see are built at run time; python ignores the words after `-c pass`,
# but the guard reads the whole command line, as it does `bash -c ...`.
GOOD = {
    "good/unit/test_pragma.py": [
        "import subprocess",
        "",
        "def test_compares_a_command():",
        '    command = ["java", "-version"]  # tier: compared, not run',
        '    assert command[0] == "java"  # tier: compared, not run',
        "",
        "def test_runs_what_its_pragma_said_it_would_not():",
        '    subprocess.run(["java", "-version"])  # tier: compared, not run',
    ],
    "good/unit/test_docstrings.py": [
        '"""Checks what papermill would start (ipykernel, `pytest --nbval`) without starting it."""',  # tier: text
        "",
        "def test_notes():",
        '    """papermill starts ipykernel."""',  # tier: a fake module's text, not run
    ],
    "good/unit/test_hidden_starts.py": [
        "import os",
        "import subprocess",
        "import sys",
        "from pathlib import Path",
        "",
        'JVM, MAVEN, KERNEL, BROWSER = "ja" + "va", "mv" + "n", "paper" + "mill", "chro" + "mium"',
        'DRIVER = ["node", "cli.js", "run-" + "driver"]  # how Playwright starts its driver',
        "",
        "def test_jvm():",
        '    subprocess.run([sys.executable, "-c", "pass", JVM, "-version"])',
        "",
        "def test_maven():",
        '    subprocess.run([sys.executable, "-c", "pass", MAVEN, "-q", "package"])',
        "",
        "def test_kernel():",
        '    subprocess.run([sys.executable, "-c", "pass", KERNEL, "in.ipynb"])',
        "",
        "def test_jvm_as_the_executable():",
        '    subprocess.run(["vm", "-version"], executable="/usr/bin/" + JVM)',
        "",
        "def test_browser():",
        '    subprocess.run([sys.executable, "-c", "pass", BROWSER, "--headless"])',
        "",
        "def test_browser_driver():",
        '    subprocess.run([sys.executable, "-c", "pass", *DRIVER])',
        "",
        "def test_jvm_by_os_system():",
        '    os.system("true " + JVM)',
        "",
        "def test_plain_python():",
        '    subprocess.run([sys.executable, "-c", "print(1)"], check=True)',
        '    subprocess.run(Path(sys.executable), input=b"", check=True)',  # a bare path is a valid command
    ],
    "good/jars/test_hidden_starts_in_jars.py": [
        "import subprocess",
        "import sys",
        "",
        "def test_maven(jar_settings):",
        '    subprocess.run([sys.executable, "-c", "pass", "mv" + "n"], check=True)',
        "",
        "def test_jvm():",
        '    subprocess.run([sys.executable, "-c", "pass", "ja" + "va"])',
        "",
        "def test_browser():",
        '    subprocess.run([sys.executable, "-c", "pass", "chro" + "mium"])',
    ],
    "good/browser/test_starts_in_browser.py": [
        "import subprocess",
        "import sys",
        "",
        "def sync_playwright():",
        "    return None",
        "",
        "def test_browser_kernels_and_spark():",
        '    subprocess.run([sys.executable, "-c", "pass", "chro" + "mium", "ja" + "va"], check=True)',
        "    assert sync_playwright() is None",
    ],
    "good/spark/test_starts_in_spark.py": [
        "import subprocess",
        "import sys",
        "",
        "def get_spark(settings):",
        "    return settings",
        "",
        "def test_jvm_and_spark():",
        '    subprocess.run([sys.executable, "-c", "pass", "ja" + "va"], check=True)',
        "    assert get_spark(None) is None",
    ],
}
# The tests the guard must fail at run time: (what they started, the tier named).
REFUSED_AT_RUN = {
    "good/unit/test_pragma.py::test_runs_what_its_pragma_said_it_would_not": ("a JVM", "unit"),
    "good/unit/test_hidden_starts.py::test_jvm": ("a JVM", "unit"),
    "good/unit/test_hidden_starts.py::test_maven": ("Maven", "unit"),
    "good/unit/test_hidden_starts.py::test_kernel": ("a Jupyter kernel", "unit"),
    "good/unit/test_hidden_starts.py::test_jvm_as_the_executable": ("a JVM", "unit"),
    "good/unit/test_hidden_starts.py::test_jvm_by_os_system": ("a JVM", "unit"),
    "good/unit/test_hidden_starts.py::test_browser": ("a browser", "unit"),
    "good/unit/test_hidden_starts.py::test_browser_driver": ("a browser", "unit"),
    "good/jars/test_hidden_starts_in_jars.py::test_jvm": ("a JVM", "jars"),
    "good/jars/test_hidden_starts_in_jars.py::test_browser": ("a browser", "jars"),
}


def node_ids(modules: dict[str, list[str]]) -> set[str]:
    """The inner run's node ids of the fake modules' tests."""
    return {f"{path}::{match[1]}" for path, lines in modules.items() for line in lines
            if (match := re.match(r"def (test_\w+)", line))}


def inner_pytest(pytester: pytest.Pytester, monkeypatch, modules: dict[str, list[str]], *args: str):
    pytester.makeini("[pytest]\n")  # the inner rootdir: no configuration of this repository applies
    pytester.makeconftest(CONFTEST)
    for path, lines in modules.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
    # `tests.tiers` imports from the repository (pytester puts its own folder first).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # Only the guard is needed: the installed plugins (nbval imports Jupyter) cost seconds a run.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.runpytest_subprocess("-p", "tests.tiers", "-p", "no:cacheprovider", *args, timeout=120)


def expected_refusals() -> set[str]:
    expected = set(OTHER_REFUSALS)
    for path, lines in BAD.items():
        tier = path.split("/")[1]
        for number, line in enumerate(lines, 1):
            if match := re.search(r"# refused: (.+)$", line):
                what = match[1]
                expected.add(f"{path}:{number} {what}, which `{tier}` does not allow (needs `{NEEDS[what]}`)")
    return expected


def test_collection_refuses_each_way_of_starting_more_than_the_tier_allows(pytester, monkeypatch):
    # One inner run over every bad module: the guard lists all problems before it fails.
    result = inner_pytest(pytester, monkeypatch, BAD, "bad")
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "tests start more than their tier allows" in output
    listed = {line.strip() for line in result.errlines if line.startswith("  ")}
    # Exactly these: each names file, line and what it starts; a docstring or a `# tier:`
    # comment adds none, and a pragma's text inside a string exempts nothing.
    assert listed == expected_refusals(), output


def test_pragmas_docstrings_and_the_run_time_guard(pytester, monkeypatch):
    result = inner_pytest(pytester, monkeypatch, GOOD, "-rA", "--tb=short", "good")
    output = result.stdout.str()
    outcomes = {m[2]: m[1] for line in result.outlines if (m := re.match(r"(PASSED|FAILED) (\S+)", line))}
    # All collected (the pragma and the docstrings passed the scan); only the hidden starts failed.
    assert outcomes == {test: "FAILED" if test in REFUSED_AT_RUN else "PASSED" for test in node_ids(GOOD)}, output
    for test, (what, tier) in REFUSED_AT_RUN.items():
        message = rf"TierViolation: {re.escape(test)} started {re.escape(what)} \(.+\), which the `{tier}` tier"
        assert re.search(message, output), f"{test} not refused for {what}:\n{output}"


def test_each_test_gets_its_tier_marker(pytester, monkeypatch):
    result = inner_pytest(pytester, monkeypatch, GOOD, "--collect-only", "-q", "-m", "unit", "good")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    selected = {line for line in result.outlines if "::" in line}
    everything = node_ids(GOOD)
    assert selected == {test for test in everything if test.startswith("good/unit/")}
    assert f"{len(selected)}/{len(everything)} tests collected ({len(everything) - len(selected)} deselected)" \
        in result.stdout.str()


def test_each_tier_has_a_lane_and_each_worker_a_stack_of_its_own():
    """`make test`'s two lanes (tests/lanes.py): every tier in one, a test's lane read from its path
    (parameters with `::` or `@` in them included), and a second worker's ports moved past the first's."""
    from tests import lanes
    from tests.tiers import TIERS

    assert set(lanes.LANES) == set(TIERS) and set(lanes.LANES.values()) == {"a", "b"}
    assert lanes.lane_of_test("tests/faults/test_x.py::test_y[a::b@c]") == "b"
    assert lanes.lane_of_test("tests/spark/test_x.py::test_y") == "a"
    assert lanes.port_offset({}) == 0 and lanes.port_offset({"PYTEST_XDIST_WORKER": "gw0"}) == 0
    assert lanes.port_offset({"PYTEST_XDIST_WORKER": "gw1", "LAKEHOUSE_TEST_PORT_OFFSET": "1000"}) == 1500
    assert lanes.base_offset({"PYTEST_XDIST_WORKER": "gw1", "LAKEHOUSE_TEST_PORT_OFFSET": "1000"}) == 1000
