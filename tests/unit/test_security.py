"""Security rows 12-16 of the fault suite: a canary secret is never written anywhere, secret-looking
parameters are refused, every embedded service and JupyterLab listen on 127.0.0.1 only, the S3
server checks signatures, and the files that hold keys are owner-only. Each test fills its row of
the published table (tests/faults_table.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
def _cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lakehouse_helpers", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.faults(
    row="13", fault="a notebook parameter named like a secret (`-p api_token x`, *secret*, *password*, *key*)",
    must_hold="refused before anything runs: rc 2, 'Nothing was run', no run folder")
def test_a_secret_looking_parameter_is_refused_before_anything_runs(tmp_path, observed):
    env = {**os.environ, "LAKEHOUSE_STATE_DIR": str(tmp_path / "state")}
    for name in ("api_token", "client_secret", "db_password", "ssh_key"):
        done = _cli("run", "-p", name, "x", env=env, timeout=60)
        assert done.returncode == 2 and "Nothing was run" in done.stderr, done.stderr
        assert f"{name} looks like a secret" in done.stderr, done.stderr
    assert not (tmp_path / "state" / "runs").exists()
    observed("api_token, client_secret, db_password, ssh_key: each rc 2, 'Nothing was run', no runs/ folder")


