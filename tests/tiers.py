"""Test tiers: a test's folder says what it may start, and this plugin holds it to that.

    unit       nothing: no services, no Spark, no jar cache, no kernels, no JVM or Maven process
    jars       the jar cache `make setup` resolves, and Maven; still no JVM of Spark or a service
    spark      a Spark session on the Spark Connect server and its metastore; no Kafka, no S3
    services   the embedded stack: Kafka, the S3 server, the metastore, Spark
    notebooks  Jupyter kernels (papermill, nbval, JupyterLab) over the stack
    faults     kills or restarts services (runs last)

Each test gets its folder's marker (`-m unit`, `-m "not notebooks"`). Two checks keep the folders
honest:
- at collection, a module is read (its code, not its docstrings) for what it starts: papermill,
  nbclient or nbval (kernels), `run_notebooks`, a JVM (`java`, `spark-submit`, `get_spark`,
  `SparkSession`), Maven (`mvn`), the services (`services.up`), and the fixtures its tests ask
  for; a module that starts more than its folder allows fails the collection;
- while a `unit` or `jars` test runs, a process start of a JVM, Maven or a kernel that its tier
  forbids fails the test, whatever built the command line (a Makefile recipe, `bash -c`).

A line that names such a thing without starting it (a refusal test, an assertion about a recipe)
carries `# tier: <why it starts nothing>`; the runtime check still holds it to its word.
"""

from __future__ import annotations

import ast
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

TIERS = ("unit", "jars", "spark", "services", "notebooks", "faults")
RANK = {name: i for i, name in enumerate(TIERS)}
PRAGMA = re.compile(r"#\s*tier:\s*\S")

# What a fixture starts: the lowest tier allowed to ask for it.
FIXTURE_TIER = {"jar_settings": "jars", "spark_stack": "spark", "spark": "spark", "stack": "services",
                "lake": "services", "workbook": "notebooks"}
# Imports that execute notebooks in kernels.
KERNEL_MODULES = ("papermill", "nbclient", "jupyter_client", "nbval")


@dataclass(frozen=True)
class Rule:
    tier: str  # the lowest tier that may do it
    what: str
    pattern: re.Pattern


# Matched against a module's names and string literals (docstrings aside).
RULES = (
    Rule("jars", "runs Maven", re.compile(r"(^|[\s/'\"])mvn(\s|$)")),
    Rule("spark", "starts a JVM", re.compile(r"(^|[\s/'\"])(java|spark-submit)(\s|$)")),
    Rule("spark", "starts Spark", re.compile(r"^(get_spark|SparkSession)$")),
    Rule("services", "starts the services", re.compile(r"^services\.up$|^services (up|restart)$")),
    Rule("notebooks", "starts Jupyter kernels", re.compile(
        r"^(run_notebooks|execute_notebook|KernelManager)$|--nbval|ipykernel"
        r"|(^|[\s/])jupyter[- ](lab|notebook|server|execute|nbconvert)\b")),
)
# Process starts refused at run time, by tier (the command line joined with spaces).
RUNTIME = {
    "unit": (("a JVM", re.compile(r"(^|[\s/])(java|spark-submit)(\s|$)")),
             ("Maven", re.compile(r"(^|[\s/])mvn(\s|$)")),
             ("a Jupyter kernel", re.compile(r"ipykernel|(^|[\s/])jupyter(-lab)?(\s|$)"))),
    "jars": (("a JVM", re.compile(r"(^|[\s/])(java|spark-submit)(\s|$)")),
             ("a Jupyter kernel", re.compile(r"ipykernel|(^|[\s/])jupyter(-lab)?(\s|$)"))),
}


def tier_of(path: Path) -> str | None:
    """The nearest folder of the test's path that names a tier."""
    return next((part for part in reversed(Path(path).parts[:-1]) if part in RANK), None)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _words(tree: ast.AST, lines: list[str]):
    """(line number, text) of every name, dotted name, import and string literal in code."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if line and PRAGMA.search(lines[line - 1]):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield line, node.value
        elif isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            yield line, f"{node.value.id}.{node.attr}"
            yield line, node.attr
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in names:
                if name.split(".")[0] in KERNEL_MODULES:
                    yield line, "run_notebooks"  # an import of a kernel runner counts as running one


def module_needs(source: str) -> list[tuple[str, str, int]]:
    """(tier, what, line) for everything the module's code starts."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = set()
    for line, text in _words(tree, lines):
        found.update((rule.tier, rule.what, line) for rule in RULES if rule.pattern.search(text))
    return sorted(found, key=lambda need: need[2])


def violations(items) -> list[str]:
    problems, seen = [], set()
    for item in items:
        path = Path(str(item.fspath))
        tier = tier_of(path)
        if tier is None:
            problems.append(f"{item.nodeid}: not in a tier folder ({', '.join(TIERS)})")
            continue
        if path not in seen:
            seen.add(path)
            for need, what, line in module_needs(path.read_text()):
                if RANK[need] > RANK[tier]:
                    problems.append(f"{item.nodeid.split('::')[0]}:{line} {what}, which `{tier}` does not allow "
                                    f"(needs `{need}`)")
        for fixture in sorted(set(getattr(item, "fixturenames", ())) & set(FIXTURE_TIER)):
            if RANK[FIXTURE_TIER[fixture]] > RANK[tier]:
                problems.append(f"{item.nodeid}: fixture `{fixture}` starts what `{tier}` does not allow "
                                f"(needs `{FIXTURE_TIER[fixture]}`)")
    return problems


def pytest_configure(config):
    for name in TIERS:
        config.addinivalue_line("markers", f"{name}: the {name} tier (tests/{name}/; see tests/tiers.py)")
    if not hasattr(config, "workerinput"):  # one table per run, not one per xdist worker
        config.pluginmanager.register(TierTimes(), "tier-times")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: a hidden violation is still one
def pytest_collection_modifyitems(items):
    problems = violations(items)
    if problems:
        raise pytest.UsageError("tests start more than their tier allows (tests/tiers.py):\n  "
                                + "\n  ".join(problems))
    for item in items:
        item.add_marker(tier_of(Path(str(item.fspath))))
    # Tiers in order, so the cheap ones answer first; within one, the collection order.
    items.sort(key=lambda item: RANK[tier_of(Path(str(item.fspath)))])


class TierTimes:
    """Seconds spent per tier (set-up, call and tear-down; a shared start-up counts in the tier of
    the first test that asks for it), printed at the end of every run beside `--durations`."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.tests: dict[str, set[str]] = {}

    def pytest_runtest_logreport(self, report):
        tier = tier_of(Path(report.fspath)) or "other"
        self.seconds[tier] = self.seconds.get(tier, 0.0) + report.duration
        self.tests.setdefault(tier, set()).add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter):
        if not self.seconds:
            return
        terminalreporter.section("time per tier")
        for tier in sorted(self.seconds, key=lambda name: RANK.get(name, len(RANK))):
            terminalreporter.write_line(f"{tier:<10} {len(self.tests[tier]):4d} tests {self.seconds[tier]:8.1f} s")
        terminalreporter.write_line(f"{'all':<10} {sum(map(len, self.tests.values())):4d} tests "
                                    f"{sum(self.seconds.values()):8.1f} s")


class TierViolation(Exception):
    """A test started a process its tier does not allow."""


@pytest.fixture(autouse=True)
def _tier_guard(request, monkeypatch):
    forbidden = RUNTIME.get(tier_of(Path(str(request.node.fspath))) or "", ())
    if not forbidden:
        yield
        return
    original = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        line = args if isinstance(args, str) else " ".join(str(a) for a in args)
        for what, pattern in forbidden:
            if pattern.search(line):
                raise TierViolation(f"{request.node.nodeid} started {what} ({line[:120]}), "
                                    f"which its tier does not allow: move it to the tier that does (tests/tiers.py)")
        original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    yield
