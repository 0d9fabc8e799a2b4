"""The Makefile: `make help` lists every notebook parameter (before any set-up), PARAMS reaches the
CLI exactly as typed, Maven leaves no colour codes, the lab serves notebooks and runs without
pop-ups. Make runs with `-n` or with the CLI replaced by an echo: nothing is set up or started."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Prints the arguments the recipe gives the CLI, as JSON, instead of running anything.
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


def maven_command(jars: Path) -> str:
    text = recipe("-B", f"JARS={jars}", f"{jars}/.resolved")
    return next(line.strip() for line in text.splitlines() if re.search(r"\bmvn .* package\b", line))


def test_maven_prints_no_escape_codes(tmp_path):
    """The Makefile's own mvn command, on the smallest module (four Derby jars, from ~/.m2)."""
    if shutil.which("mvn") is None:
        pytest.skip("mvn not on PATH")
    jars = tmp_path / "jars"
    done = subprocess.run(["bash", "-c", maven_command(jars) + " -pl metastore"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\x1b" not in done.stdout + done.stderr, repr(done.stdout + done.stderr)
    assert list((jars / "metastore").glob("derby-*.jar"))


