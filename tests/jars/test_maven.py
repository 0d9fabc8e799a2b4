"""The Makefile's own Maven command, run for real on the smallest module: it leaves no colour codes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_make import ROOT, recipe


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


