"""`python -m lakehouse_helpers deploy` against a STAND-IN of the Databricks REST APIs.

The real databricks-sdk talks over real HTTP to `tests/databricks_standin.py`, a recording server
on 127.0.0.1 that is not Databricks: what these tests prove is what the deploy sends and how it
reacts to the answers, not that a workspace runs the job (see docs/databricks.md, the hand-off checklist).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lakehouse_helpers.deploy import JOB_NOTEBOOKS, DeployConfig, DeployError, deploy
from lakehouse_helpers.deploy import job_settings as _job_settings
from lakehouse_helpers.deploy.wheel import build_wheel, wheel_name
from lakehouse_helpers.notebook.params import NOTEBOOKS_DIR, notebook_parameters
from lakehouse_helpers.runtime.settings import load_settings
from tests.databricks_standin import DatabricksStandIn

ROOT = Path(__file__).resolve().parents[2]
# A canary: a token no real workspace knows, looked for in every output, log and file.
CANARY = "dapi-canary-" + secrets.token_hex(12)


@pytest.fixture
def ws():
    with DatabricksStandIn(CANARY) as standin:
        yield standin


def _clean_environ(monkeypatch, tmp_path: Path) -> None:
    """No Databricks variable or ~/.databrickscfg of the machine reaches the SDK in a test."""
    for var in list(os.environ):
        if var.startswith(("DATABRICKS_", "LAKEHOUSE_DATABRICKS_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def setup_deploy(monkeypatch, tmp_path: Path, ws: DatabricksStandIn, **env: str):
    _clean_environ(monkeypatch, tmp_path)
    env = {"LAKEHOUSE_STATE_DIR": str(tmp_path / "state"), "DATABRICKS_HOST": ws.url, "DATABRICKS_TOKEN": CANARY,
           "LAKEHOUSE_DATABRICKS_POLL_SECONDS": "0", **env}
    return load_settings(env=env, dotenv=tmp_path / "none"), DeployConfig.from_env(env)


def run_deploy(settings, cfg, **kwargs) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = deploy(settings, cfg, out=lines.append, **kwargs)
    return ok, lines


def test_wheel_installs_declares_no_dependencies_and_is_reproducible(tmp_path):
    first = build_wheel(tmp_path / "a")
    second = build_wheel(tmp_path / "b")
    assert first.name == wheel_name() == "lakehouse_workbook-0.1.0-py3-none-any.whl"
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with zipfile.ZipFile(first) as zf:
        names = set(zf.namelist())
        metadata = zf.read("lakehouse_workbook-0.1.0.dist-info/METADATA").decode()
    assert {"lakehouse_helpers/__init__.py", "lakehouse_helpers/deploy/plan.py",
        "lakehouse_helpers/runtime/log4j2.properties"} <= names
    assert not any("__pycache__" in n for n in names)
    # No pyspark (or anything) for a cluster to install over the Databricks Runtime's own.
    assert "Requires-Dist" not in metadata and "Name: lakehouse-workbook" in metadata
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(target), str(first)], check=True)  # pip checks RECORD's hashes and sizes
    assert (target / "lakehouse_helpers" / "deploy" / "wheel.py").read_bytes() == \
        (ROOT / "lakehouse_helpers" / "deploy" / "wheel.py").read_bytes()


def test_deploy_imports_notebooks_uploads_wheel_and_creates_one_job(monkeypatch, tmp_path, ws):
    arn = "arn:aws:iam::123456789012:instance-profile/landing"
    settings, cfg = setup_deploy(monkeypatch, tmp_path, ws, S3_BUCKET="acme-landing", LAKEHOUSE_CATALOG="acme",
                                 LAKEHOUSE_DATABRICKS_DATA_DIR="/Volumes/acme/ops/state",
                                 DATABRICKS_INSTANCE_PROFILE_ARN=arn)
    ok, lines = run_deploy(settings, cfg)
    assert ok
    for stem in JOB_NOTEBOOKS:
        obj = ws.state.objects[f"/Shared/lakehouse-workbook/notebooks/{stem}"]
        assert (obj["object_type"], obj["format"], obj["language"]) == ("NOTEBOOK", "JUPYTER", "PYTHON")
        assert obj["content"] == (NOTEBOOKS_DIR / f"{stem}.ipynb").read_bytes()
    assert not any("01_" in p or "02_" in p for p in ws.state.objects)  # the laptop half stays local
    wheel = ws.state.objects[f"/Shared/lakehouse-workbook/wheels/{wheel_name()}"]
    assert wheel["object_type"] == "FILE"
    assert wheel["content"] == (settings.state_dir / "deploy" / wheel_name()).read_bytes()

    (job_id, job), = ws.state.jobs.items()
    assert job["name"] == "lakehouse-workbook"
    tasks = job["tasks"]
    assert [t["task_key"] for t in tasks] == list(JOB_NOTEBOOKS)
    assert [t.get("depends_on") for t in tasks] == [None] + [[{"task_key": k}] for k in JOB_NOTEBOOKS[:-1]]
    for t in tasks:
        assert t["notebook_task"] == {"notebook_path": f"/Shared/lakehouse-workbook/notebooks/{t['task_key']}",
                                      "source": "WORKSPACE"}
        assert t["libraries"] == [{"whl": f"/Workspace/Shared/lakehouse-workbook/wheels/{wheel_name()}"}]
        assert t["job_cluster_key"] == job["job_clusters"][0]["job_cluster_key"]
    params = {p["name"]: p["default"] for p in job["parameters"]}
    assert params["landing_bucket"] == "acme-landing" and params["catalog"] == "acme"
    for stem in JOB_NOTEBOOKS:
        for p in notebook_parameters(NOTEBOOKS_DIR / f"{stem}.ipynb"):
            assert p["name"] in params, f"{stem}'s parameter {p['name']} is not a job parameter"
    assert params["drift_events"] == "200" and params["mistaken_delete"] == "currency IN ('EUR')"
    cluster = job["job_clusters"][0]["new_cluster"]
    assert cluster["aws_attributes"] == {"instance_profile_arn": arn}
    env = cluster["spark_env_vars"]
    assert env["LAKEHOUSE_PROFILE"] == "databricks" and env["S3_BUCKET"] == "acme-landing"
    assert env["LAKEHOUSE_DATA_DIR"] == "/Volumes/acme/ops/state"
    assert not any(k.startswith("AWS_ACCESS") or "TOKEN" in k or "SECRET" in k for k in env)
    assert f"job 'lakehouse-workbook' created (id {job_id}): tasks 00_infra_check -> 05_auto_loader_bronze " \
           "-> 06_medallion_silver_gold -> 07_governance_time_travel" in lines


def test_second_deploy_updates_the_job_instead_of_adding_one(monkeypatch, tmp_path, ws):
    settings, cfg = setup_deploy(monkeypatch, tmp_path, ws)
    run_deploy(settings, cfg)
    (job_id, _), = ws.state.jobs.items()
    settings, cfg = setup_deploy(monkeypatch, tmp_path, ws, LAKEHOUSE_CATALOG="second")
    ok, lines = run_deploy(settings, cfg)
    assert ok and list(ws.state.jobs) == [job_id]
    assert {p["name"]: p["default"] for p in ws.state.jobs[job_id]["parameters"]}["catalog"] == "second"
    calls = ws.api_calls()
    assert calls.count(("POST", "/api/2.2/jobs/create")) == 1
    assert calls.count(("POST", "/api/2.2/jobs/reset")) == 1
    assert any(f"updated (id {job_id})" in line for line in lines)


def test_jobs_sharing_the_name_are_refused_not_guessed(monkeypatch, tmp_path, ws):
    ws.state.jobs.update(
        {1: {"name": "lakehouse-workbook", "tasks": []}, 2: {"name": "lakehouse-workbook", "tasks": []}})
    settings, cfg = setup_deploy(monkeypatch, tmp_path, ws)
    with pytest.raises(DeployError, match=r"2 jobs are named 'lakehouse-workbook' \(ids 1, 2\)"):
        run_deploy(settings, cfg)
    assert ("POST", "/api/2.2/jobs/reset") not in ws.api_calls()
    assert ("POST", "/api/2.2/jobs/create") not in ws.api_calls()


def _dry_run_calls(lines: list[str], skip_note: str) -> list[tuple[str, str]]:
    heads = [line for text in lines for line in text.splitlines() if line.split(" ", 1)[0] in ("GET", "POST", "PUT")]
    return [(h.split()[0], h.split()[1].split("?")[0]) for h in heads if skip_note not in h]


@pytest.mark.parametrize("volume", ["", "/Volumes/acme/tools/artifacts"])
def test_dry_run_sends_nothing_and_lists_exactly_what_a_deploy_sends(monkeypatch, tmp_path, ws, volume):
    settings, cfg = setup_deploy(monkeypatch, tmp_path, ws, LAKEHOUSE_DATABRICKS_WHEEL_VOLUME=volume)
    ok, dry = run_deploy(settings, cfg, dry_run=True, run=True)
    assert ok and ws.requests == []  # not even the SDK's host probe: no client is made
    assert "reset" in "".join(dry) and "run-now" in "".join(dry)

    run_deploy(settings, cfg, run=True)
    sent = ws.api_calls()
    polls = sent.count(("GET", "/api/2.2/jobs/runs/get"))
    assert polls > 1  # the dry run lists the poll once, "repeated until the run ends"
    sent = sent[: len(sent) - polls + 1]
    assert sent == _dry_run_calls(dry, skip_note="instead, when one is found")
    if volume:
        assert ws.state.files[f"{volume}/{wheel_name()}"] == (settings.state_dir / "deploy" / wheel_name()).read_bytes()
        job = next(iter(ws.state.jobs.values()))
        assert job["tasks"][0]["libraries"] == [{"whl": f"{volume}/{wheel_name()}"}]


def test_run_follows_the_job_task_by_task_to_success(monkeypatch, tmp_path, ws):
    settings, cfg = setup_deploy(monkeypatch, tmp_path, ws)
    ok, lines = run_deploy(settings, cfg, run=True)
    assert ok and lines[-1] == "run succeeded"
    progress = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    expected = [f"{stem}: {phase}" for stem in JOB_NOTEBOOKS for phase in ("RUNNING", "TERMINATED SUCCESS")]
    assert [p for p in progress if not p.startswith("run:") and "PENDING" not in p] == expected
    assert progress[-1] == "run: TERMINATED SUCCESS"


def test_a_failed_task_fails_the_deploy_with_the_workspace_message(monkeypatch, tmp_path, ws):
    ws.state.fail_task = "06_medallion_silver_gold"
    settings, cfg = setup_deploy(monkeypatch, tmp_path, ws)
    ok, lines = run_deploy(settings, cfg, run=True)
    assert not ok and lines[-1] == "run FAILED"
    text = "\n".join(lines)
    assert ("06_medallion_silver_gold: TERMINATED RUN_EXECUTION_ERROR: "
            "06_medallion_silver_gold raised an exception") in text
    assert "07_governance_time_travel: RUNNING" not in text and "07_governance_time_travel: BLOCKED" in text


def _cli(tmp_path: Path, host: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "LAKEHOUSE_"))}
    env.update(HOME=str(tmp_path / "home"), LAKEHOUSE_STATE_DIR=str(tmp_path / "state"), DATABRICKS_HOST=host,
               DATABRICKS_TOKEN=CANARY, DATABRICKS_DEBUG_HEADERS="true", LAKEHOUSE_DATABRICKS_POLL_SECONDS="0")
    return subprocess.run([sys.executable, "-m", "lakehouse_helpers", "deploy", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_canary_token_is_in_no_output_log_file_or_upload(tmp_path, ws):
    done = _cli(tmp_path, ws.url, "--run", "--verbose")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "run succeeded" in done.stdout
    assert "/api/2.2/jobs/create" in done.stderr  # the SDK's debug log was on, headers included
    dry = _cli(tmp_path, ws.url, "--dry-run", "--run")
    with DatabricksStandIn("another-token") as refusing:  # a workspace that rejects the token
        refused = _cli(tmp_path, refusing.url, "--verbose")
    assert refused.returncode == 1 and "Deploy failed" in refused.stderr and "Invalid access token" in refused.stderr
    for proc in (done, dry, refused):
        assert CANARY not in proc.stdout + proc.stderr
    assert _files_holding(tmp_path, CANARY.encode()) == []
    uploads = [o["content"] for o in ws.state.objects.values()] + list(ws.state.files.values())
    assert not any(CANARY.encode() in blob for blob in uploads)
    assert CANARY not in json.dumps(ws.state.jobs)
    api = [r for r in ws.requests if r.path.startswith("/api/")]
    # The token travelled, and only where it belongs: the Authorization header of each API call.
    assert api and all(r.authorization == f"Bearer {CANARY}" for r in api)
    assert not any(CANARY.encode() in r.body or CANARY in json.dumps(r.query) for r in ws.requests)


def _resolve(node, variables: dict):
    """`${var.x}` replaced by the variable's default, as `databricks bundle` does without --var."""
    if isinstance(node, dict):
        return {k: _resolve(v, variables) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, variables) for v in node]
    if isinstance(node, str) and node.startswith("${var.") and node.endswith("}"):
        return variables[node[len("${var."):-1]]
    return node


def test_bundle_describes_the_same_job_as_the_deploy(tmp_path):
    import yaml

    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    variables = {name: v["default"] for name, v in bundle["variables"].items()}
    (key, job), = bundle["resources"]["jobs"].items()
    job = _resolve(job, variables)
    # The bundle names local files; it uploads them and rewrites the paths. Map them to the deploy's.
    build = bundle["artifacts"]["helpers"]["build"].split()
    assert build[:3] == ["python3", "-m", "lakehouse_helpers.deploy.wheel"]
    cfg = DeployConfig(spark_version=variables["spark_version"], node_type=variables["node_type"],
                       workers=variables["workers"], data_dir=variables["data_dir"])
    for task in job["tasks"]:
        nb = Path(task["notebook_task"]["notebook_path"])
        assert nb.parent == Path("notebooks") and (ROOT / nb).is_file()
        task["notebook_task"]["notebook_path"] = f"{cfg.notebooks_dir}/{nb.stem}"
        (lib,) = task["libraries"]
        assert Path(lib["whl"]) == Path(build[3]) / wheel_name()  # the wheel the build step writes
        lib["whl"] = cfg.wheel_path(wheel_name())
    settings = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path), "S3_BUCKET": variables["landing_bucket"],
                                  "AWS_REGION": variables["aws_region"], "LAKEHOUSE_CATALOG": variables["catalog"],
                                  "LAKEHOUSE_SCHEMA_PREFIX": variables["schema_prefix"]}, dotenv=tmp_path / "none")
    assert job == deploy_job(cfg, settings)
    # The bundle's defaults are the workbook's defaults, so both deploy the same job out of the box.
    defaults = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    assert deploy_job(DeployConfig(), defaults) == deploy_job(cfg, settings)


def deploy_job(cfg: DeployConfig, settings) -> dict:
    return _job_settings(cfg, settings, wheel_name())
