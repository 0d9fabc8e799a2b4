"""Test tiers: a test's folder says what it may start, and this plugin holds it to that.

    unit       nothing: no services, no Spark, no jar cache, no kernels, no JVM or Maven process
    jars       the jar cache `make setup` resolves, and Maven; still no JVM of Spark or a service
    spark      a Spark session on the Spark Connect server and its metastore; no Kafka, no S3
    services   the embedded stack: Kafka, the S3 server, the metastore, Spark
    notebooks  Jupyter kernels (papermill, nbval, JupyterLab) over the stack
    browser    a web browser (Chromium through Playwright) on JupyterLab over the stack
    faults     kills or restarts services (runs last)

Each test gets its folder's marker (`-m unit`, `-m "not notebooks"`). Two checks keep the folders
honest:
- at collection, a module is read (its code, not its docstrings) for what it starts: papermill,
  nbclient or nbval (kernels), `run_notebooks`, a JVM (`java`, `spark-submit`, `get_spark`,
  `SparkSession`), Maven (`mvn`), the services (`services.up`), a browser (Playwright,
  `chromium.launch`), and the fixtures its tests ask for; a module that starts more than its
  folder allows fails the collection;
- while a `unit` or `jars` test runs, a process start of a JVM, Maven, a kernel or a browser that
  its tier forbids fails the test, whatever built the command line (a Makefile recipe, `bash -c`). It sees
  the processes the test starts itself (subprocess, os.system), not what those start in turn.

A line that names such a thing without starting it (a refusal test, an assertion about a recipe)
carries `# tier: <why it starts nothing>`; the runtime check still holds it to its word.
"""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

TIERS = ("unit", "jars", "spark", "services", "notebooks", "browser", "faults")
RANK = {name: i for i, name in enumerate(TIERS)}
PRAGMA = re.compile(r"#\s*tier:\s*\S")

# What a fixture starts: the lowest tier allowed to ask for it.
FIXTURE_TIER = {"jar_settings": "jars", "spark_stack": "spark", "spark": "spark", "stack": "services",
                "lake": "services", "workbook": "notebooks"}
# Imports that execute notebooks in kernels.
KERNEL_MODULES = ("papermill", "nbclient", "jupyter_client", "nbval")
# Imports that drive a web browser.
BROWSER_MODULES = ("playwright",)


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
    Rule("browser", "starts a browser", re.compile(r"^(sync_playwright|async_playwright|chromium\.launch\w*)$")),
)
# Process starts refused at run time, by tier (the command line joined with spaces).
_JVM = ("a JVM", re.compile(r"(^|[\s/])(java|spark-submit)(\s|$)"))
_MAVEN = ("Maven", re.compile(r"(^|[\s/])mvn(\s|$)"))
# The kernel starters' command lines too: papermill, `jupyter-execute` (nbclient), `jupyter-lab`,
# `jupyter nbconvert --execute`, `pytest --nbval`.
_KERNEL = ("a Jupyter kernel", re.compile(r"ipykernel|(^|[\s/])(papermill|jupyter(-[\w-]+)?)(\s|$)|(^|\s)--nbval"))
# A browser by its command, or Playwright's driver (which then starts the browser itself).
_BROWSER = ("a browser", re.compile(r"(^|[\s/])(chromium(-browser)?|(google-)?chrome)(\s|$)|\srun-driver(\s|$)"))
RUNTIME = {"unit": (_JVM, _MAVEN, _KERNEL, _BROWSER), "jars": (_JVM, _KERNEL, _BROWSER)}


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


def _aliases(tree: ast.AST) -> dict[str, str]:
    """`import x.services as svc`, `from x import get_spark as gs`: each alias -> the name it renames."""
    return {alias.asname: alias.name.rsplit(".", 1)[-1] for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names if alias.asname}


def _exempt_lines(source: str) -> set[int]:
    """The lines whose comment is a `# tier:` pragma (a comment, not the same text in a string)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0] for tok in tokens if tok.type == tokenize.COMMENT and PRAGMA.search(tok.string)}


def _words(tree: ast.AST, exempt: set[int]):
    """(line number, text) of every name, dotted name, import and string literal in code; a name
    bound by `import ... as` is also read as the name it renames, so a renamed starter still counts."""
    skip, aliases = _docstrings(tree), _aliases(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if line in exempt:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield line, node.value
        elif isinstance(node, ast.Name):
            yield line, node.id
            yield line, aliases.get(node.id, node.id)
        elif isinstance(node, ast.Attribute):
            # Any chain, read by its last two parts: `lakehouse_helpers.runtime.services.up` is `services.up`;
            # the walk reaches the inner links too (`SparkSession` in `pyspark.sql.SparkSession.builder`).
            yield line, node.attr
            owner = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", None)
            if owner:
                yield line, f"{owner}.{node.attr}"
                yield line, f"{aliases.get(owner, owner)}.{node.attr}"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in names:
                if name.split(".")[0] in KERNEL_MODULES:
                    yield line, "run_notebooks"  # an import of a kernel runner counts as running one
                if name.split(".")[0] in BROWSER_MODULES:
                    yield line, "sync_playwright"  # and an import of a browser driver as driving one


def module_needs(source: str) -> list[tuple[str, str, int]]:
    """(tier, what, line) for everything the module's code starts."""
    tree = ast.parse(source)
    found = set()
    for line, text in _words(tree, _exempt_lines(source)):
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
                # The test's `def` line (location is 0-based), so the message points where to look.
                where = f"{item.nodeid.split('::')[0]}:{item.location[1] + 1}"
                problems.append(f"{where} {item.name} asks for fixture `{fixture}`, which starts what `{tier}` "
                                f"does not allow (needs `{FIXTURE_TIER[fixture]}`)")
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


def _command_line(args, executable=None) -> str:
    """A process start's command line as one string: `args` may be a string, bytes, a path or a
    sequence of them; an `executable=` that replaces argv[0] is read too."""
    words = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    if executable is not None:
        words.insert(0, executable)
    return " ".join(os.fsdecode(w) if isinstance(w, (str, bytes, os.PathLike)) else str(w) for w in words)


@pytest.fixture(autouse=True)
def _tier_guard(request, monkeypatch):
    tier = tier_of(Path(str(request.node.fspath))) or ""
    forbidden = RUNTIME.get(tier, ())
    if not forbidden:
        yield
        return

    def check(line: str) -> None:
        for what, pattern in forbidden:
            if pattern.search(line):
                raise TierViolation(f"{request.node.nodeid} started {what} ({line[:120]}), which the `{tier}` "
                                    f"tier does not allow: move it to the tier that does (tests/tiers.py)")

    original_popen, original_system = subprocess.Popen.__init__, os.system

    def guarded_popen(self, args, *rest, **kwargs):
        # Popen(args, bufsize, executable, ...): an executable given by position is rest[1].
        check(_command_line(args, kwargs.get("executable", rest[1] if len(rest) > 1 else None)))
        original_popen(self, args, *rest, **kwargs)

    def guarded_system(command):  # os.system starts its shell without Popen
        check(_command_line(command))
        return original_system(command)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_popen)
    monkeypatch.setattr(os, "system", guarded_system)
    yield
