"""The Makefile: `make help` lists every notebook parameter (before any set-up), PARAMS reaches the
CLI exactly as typed, Maven leaves no colour codes, the lab serves notebooks and runs without
pop-ups. Make runs with `-n` or with the CLI replaced by an echo: nothing is set up or started."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_helpers.notebook import params as nbparams

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Prints the arguments the recipe gives the CLI, as JSON, instead of running anything.
ECHO_CLI = f"{sys.executable} -c 'import json, sys; print(json.dumps(sys.argv[1:]))'"
SKIP_SETUP = ("-o", "setup", "-o", "services-up", "-o", ".venv/.installed")


def make(*args: str) -> subprocess.CompletedProcess:
    # A suite started by `make test PARAMS=...` must not hand its own variables to these makes.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PARAMS", "EVENTS", "SEED", "NOTEBOOKS")}
    done = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), *args],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done


def recipe(*args: str) -> str:
    """What make would run, continuation lines joined."""
    return make("-n", *args).stdout.replace("\\\n", " ")


def stop_recipe(proc: subprocess.Popen) -> None:
    """Stop a recipe started in a session of its own (`start_new_session=True`): SIGTERM lets a
    server shut its children down; the group catches the recipe's shell too."""
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def cell_lines(path: Path) -> list[str]:
    """The parameters cell's assignment lines, read straight from the notebook's JSON."""
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"])
    return [line for line in source.splitlines() if re.match(r"[A-Za-z_]\w*\s*[:=]", line)]


def help_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.fullmatch(r"  \d\d_\w+", line):
            current = sections.setdefault(line.strip(), [])
        elif current is not None and line.startswith("    "):
            current.append(line.strip())
        else:
            current = None
    return sections


def test_every_notebook_declares_parameters():
    assert len(NOTEBOOKS) >= 8
    for path in NOTEBOOKS:
        assert nbparams.notebook_parameters(path), path.name


def test_reader_matches_the_cells():
    for path in NOTEBOOKS:
        lines = cell_lines(path)
        params = nbparams.notebook_parameters(path)
        assert [p["name"] for p in params] == [re.match(r"\w+", line).group() for line in lines], path.name
        for p, line in zip(params, lines, strict=True):
            assert line.startswith(f"{p['name']}: {p['type']} = {p['default']}"), line
            assert line.split("  #", 1)[1].strip() == p["help"] != "", line


def test_reader_keeps_a_hash_inside_a_default_and_infers_a_missing_type():
    params = nbparams.parse_parameters('where: str = "a # b"  # the filter\nn = 3  # count\n\n# a note\n')
    assert params == [
        {"name": "where", "type": "str", "default": '"a # b"', "help": "the filter"},
        {"name": "n", "type": "int", "default": "3", "help": "count"},
    ]


def test_help_lists_every_parameter_of_every_notebook():
    out = make("help").stdout
    assert 'make run PARAMS="name=value ..."' in out
    assert re.search(r"^  make run\s", out, re.M) and re.search(r"^  make strip\s", out, re.M)
    sections = help_sections(out)
    assert set(sections) == {p.stem for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        listed = {line.split()[0]: line for line in sections[path.stem]}
        lines = cell_lines(path)
        assert len(listed) == len(lines), path.stem
        for p, line in zip(nbparams.notebook_parameters(path), lines, strict=True):
            shown = listed[p["name"]]
            assert re.match(rf"{p['name']}\s+{re.escape(p['type'])}\s+{re.escape(p['default'])}\s", shown), shown
            assert shown.endswith(line.split("  #", 1)[1].strip()), shown


def test_the_listing_needs_nothing_but_the_standard_library():
    # -S: no site-packages at all (no pyspark, no papermill): what `make help` has before set-up.
    done = subprocess.run([sys.executable, "-S", "-c", "import sys; from lakehouse_helpers.notebook import params; "
                           "params.main(); print(sorted(m for m in sys.modules if m.split('.')[0] in "
                           "{'pyspark', 'papermill', 'nbformat', 'pandas', 'yaml'}))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "07_governance_time_travel" in done.stdout
    assert done.stdout.rstrip().endswith("[]")


@pytest.mark.parametrize("params", [
    'a=1 b="x y"',
    "mistaken_delete=\"currency IN ('EUR')\"",
    "path=$HOME/x cost=$(y) glob=* quote='it''s'",
    "",
])
def test_run_passes_params_to_the_cli_unchanged(params):
    out = make(*SKIP_SETUP, "run", f"CLI={ECHO_CLI}", f"PARAMS={params}").stdout
    argv = json.loads(out.strip().splitlines()[-1])
    assert argv[0] == "run"
    assert argv[argv.index("--params") + 1] == params


def test_run_keeps_the_shortcuts():
    out = make(*SKIP_SETUP, "run", f"CLI={ECHO_CLI}", "EVENTS=5000", "SEED=7", "NOTEBOOKS=01 02",
               "PARAMS=mode=live").stdout
    argv = json.loads(out.strip().splitlines()[-1])
    assert argv == ["run", "-p", "events", "5000", "-p", "seed", "7", "--only", "01", "02", "--params", "mode=live"]


def maven_command(jars: Path) -> str:
    text = recipe("-B", f"JARS={jars}", f"{jars}/.resolved")
    return next(line.strip() for line in text.splitlines() if re.search(r"\bmvn .* package\b", line))


def test_maven_command_turns_colour_off(tmp_path):
    command = maven_command(tmp_path / "jars")
    assert "--batch-mode" in command and "-Dstyle.color=never" in command
    # Maven 3.8's jansi writes ESC[0m resets on exit even in batch mode; only this stops them.
    assert re.match(r'MAVEN_OPTS="\$\{MAVEN_OPTS:-\} -Djansi\.noreset=true"\s+mvn ', command), command


def test_lab_serves_notebooks_and_runs_without_pop_ups():
    text = recipe(*SKIP_SETUP, "lab")
    assert re.search(r'ln -sfn "\S*/notebooks" "\$state/lab/notebooks"', text)
    assert 'ln -sfn "$state/runs" "$state/lab/runs"' in text
    assert '--notebook-dir="$state/lab"' in text and "--ip=127.0.0.1" in text
    overrides = json.loads(re.search(r"echo '(\{.*?\})'", text).group(1))
    assert overrides["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}
    assert '--LabApp.app_settings_dir="$state/lab-settings"' in text
    assert "token" not in text.lower()  # nothing turns the token off


def test_strip_calls_the_cli():
    assert re.search(r"-m lakehouse_helpers notebooks strip\b", recipe(*SKIP_SETUP, "strip"))


def test_python_versions_are_stated_once_and_everything_agrees():
    from lakehouse_helpers.runtime import pyversion

    assert pyversion.requirement() == re.search(r'requires-python = "([^"]+)"', (ROOT / "pyproject.toml").read_text())[
        1]
    versions = pyversion.supported_versions()
    assert versions == ["3.11", "3.12"] and pyversion.needed() == "Python 3.11 or 3.12"
    assert f"**{pyversion.needed()}," in (ROOT / "README.md").read_text()
    conda = re.search(r"python=(\d+\.\d+)", (ROOT / "environment.yml").read_text())[1]
    assert conda in versions
    assert not pyversion.is_supported((3, 10)) and not pyversion.is_supported((3, 13))


def test_the_makefile_refuses_an_unsupported_python_with_the_versions_and_the_fix(tmp_path):
    # The check runs before anything is installed: standard library only, any python3 can run it.
    script = ROOT / "lakehouse_helpers" / "runtime" / "pyversion.py"
    ok = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    fake = tmp_path / "sitecustomize.py"  # makes this interpreter report 3.10 to the script
    fake.write_text("import sys\nsys.version_info = (3, 10, 14, 'final', 0)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    refused = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert refused.returncode == 1
    assert "Python 3.11 or 3.12 is needed" in refused.stderr and "conda env create" in refused.stderr


def test_the_cli_shows_the_package_progress_lines_on_stdout(tmp_path):
    # Library code logs; the CLI (what `make services-up` and `make run` call) shows those lines.
    env = {**os.environ, "LAKEHOUSE_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run([sys.executable, "-m", "lakehouse_helpers", "services", "down", "kafka", "s3"],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    # Stopped in the reverse of the start order.
    assert out.stdout.splitlines() == ["s3         not started by this project",
        "kafka      not started by this project"]


def test_lint_checks_every_notebook_like_code():
    """`make lint` (and so `make test`) runs ruff on notebooks/, and ruff reads each notebook's
    cells with the project's rules rather than skipping .ipynb files."""
    recipe = make("-n", "lint").stdout
    assert re.search(r"ruff check .*\bnotebooks\b", recipe), recipe
    ruff = Path(sys.executable).with_name("ruff")
    shown = subprocess.run([str(ruff), "check", "--show-files", "notebooks"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60).stdout
    assert {Path(line).name for line in shown.split()} >= {p.name for p in NOTEBOOKS}, shown
