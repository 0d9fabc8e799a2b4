"""Security rows 12-16 of the fault suite: a canary secret is never written anywhere, secret-looking
parameters are refused, every embedded service and JupyterLab listen on 127.0.0.1 only, the S3
server checks signatures, and the files that hold keys are owner-only. Each test fills its row of
the published table (tests/faults_table.py)."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lakehouse_helpers.runtime.settings import SECRET_ENV_VARS
from tests.security_probes import _family, _generated_secrets, _listening
from tests.unit.test_make import SKIP_SETUP, recipe, stop_recipe

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary" + secrets.token_hex(10)
RUN_DIR = re.compile(r"Executed notebooks and summary\.json: (\S+)")


def _cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lakehouse_helpers", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _files_to_scan(settings, run_dirs: list[Path]) -> list[Path]:
    """Executed notebooks and summaries of these runs, the state's logs, every service's logs."""
    state = settings.state_dir
    found = [p for d in run_dirs for p in d.rglob("*")]
    found += list((state / "logs").rglob("*")) + list(settings.services_dir.glob("*/*.log"))
    return [p for p in found if p.is_file()]


def _leaks(needles: dict[str, str], texts: dict[str, bytes]) -> list[str]:
    return [f"{what} in {where}" for where, blob in texts.items()
            for what, value in needles.items() if value and value.encode() in blob]


@pytest.mark.faults(
    row="12", fault="a canary in every secret variable (AWS keys, DATABRICKS_TOKEN, UC_TOKEN, Spark Connect token)",
    must_hold="zero occurrences of the canary or the stack's generated keys in output, notebooks, summary.json, logs")
def test_canary_secrets_appear_in_no_output_notebook_summary_or_log(stack, test_env, observed):
    canaries = {var: f"{CANARY}{i}" for i, var in enumerate(SECRET_ENV_VARS.values())}
    local = {**test_env, **canaries}
    # External profile: the canary AWS keys are really sent to the test stack's S3 server.
    external = {**local, "LAKEHOUSE_PROFILE": "external", "SPARK_REMOTE": f"sc://localhost:{stack.spark_connect_port}"}
    texts: dict[str, bytes] = {}
    runs = []
    for profile, env in (("local", local), ("external", external)):
        for args in (("doctor",), ("run", "--only", "00")):
            done = _cli(*args, env=env)
            texts[f"{profile} {' '.join(args)} output"] = (done.stdout + done.stderr).encode()
            runs += [Path(m) for m in RUN_DIR.findall(done.stdout)]
            if profile == "local":
                assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "InvalidAccessKeyId" in texts["external doctor output"].decode()  # the canary key was used
    assert len(runs) == 2 and all((r / "summary.json").is_file() for r in runs), runs
    files = _files_to_scan(stack, runs)
    texts.update({str(p.relative_to(stack.state_dir)): p.read_bytes() for p in files})

    needles = {f"canary {var}": value for var, value in canaries.items()} | _generated_secrets(stack)
    leaks = _leaks(needles, texts)
    observed(f"4 CLI runs (doctor, run --only 00; local and external profiles), {len(files)} files and "
             f"4 outputs scanned for {len(needles)} values; occurrences: {len(leaks)}")
    assert leaks == [], f"secrets written out: {leaks}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_lab(proc: subprocess.Popen, runtime: Path, port: int, log: Path, timeout: float = 90) -> dict:
    """The server's runtime JSON once it accepts connections; fails fast if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [json.loads(p.read_text()) for p in runtime.glob("jpserver-*.json")]
        if infos and _accepts(port):
            return infos[0]
        assert proc.poll() is None, f"JupyterLab exited with {proc.returncode}: {log.read_text()[-2000:]}"
        time.sleep(0.2)  # polling interval, not a synchronisation delay
    raise AssertionError(f"JupyterLab did not listen on {port} within {timeout:.0f}s: {log.read_text()[-2000:]}")


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.faults(
    row="16", fault="JupyterLab started by `make lab` (its recipe, run as is)",
    must_hold="binds 127.0.0.1 only; /api/status without the token 403 (or 401), with it 200")
def test_jupyterlab_binds_127_0_0_1_and_requires_its_token(tmp_path, observed):
    # The Makefile's own recipe, with this venv's tools; only the port and no browser are added.
    lab = recipe(*SKIP_SETUP, "lab").replace(".venv/bin/", f"{Path(sys.executable).parent}/").strip()
    port, runtime, log = _free_port(), tmp_path / "runtime", tmp_path / "lab.log"
    env = {**os.environ, "LAKEHOUSE_STATE_DIR": str(tmp_path / "state"), "JUPYTER_RUNTIME_DIR": str(runtime)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", f"{lab} --port={port} --no-browser"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        info = _wait_for_lab(proc, runtime, port, log)
        bound = _listening(_family(proc.pid))
        base = f"http://127.0.0.1:{port}/api/status"
        anonymous = _status(base)
        with_token = _status(base, {"Authorization": f"token {info['token']}"})
    finally:
        stop_recipe(proc)
    observed(f"listening on {bound}; token of {len(info['token'])} characters; "
             f"/api/status without it {anonymous}, with it {with_token}")
    assert info["token"] and ("127.0.0.1", port) in bound
    assert [a for a in bound if a[0] != "127.0.0.1"] == [], f"listening beyond 127.0.0.1: {bound}"
    assert anonymous in (401, 403) and with_token == 200, f"without token {anonymous}, with it {with_token}"
