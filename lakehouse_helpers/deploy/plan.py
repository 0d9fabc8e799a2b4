"""What a deploy sends to a workspace, as data: the job's settings and each REST request.

Pure functions, no network: `--dry-run` prints the plan, the deploy carries it out with
databricks-sdk, and the tests compare both with `databricks.yml`, so the three cannot drift.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse_helpers.notebook.params import NOTEBOOKS_DIR, notebook_parameters
from lakehouse_helpers.runtime.settings import Settings
from lakehouse_helpers.runtime.widgets import SETTING_PARAMETERS

# The cloud half of the hybrid run: 01-04 (Kafka, local Delta, export) stay on the laptop.
JOB_NOTEBOOKS = ("00_infra_check", "05_auto_loader_bronze", "06_medallion_silver_gold", "07_governance_time_travel")
JOB_CLUSTER_KEY = "workbook"
# Job parameters for settings (SETTING_PARAMETERS) live with the code that reads them: widgets.


@dataclass(frozen=True)
class DeployConfig:
    """Where and how the job lands. Environment variables, never secrets (those stay with the SDK)."""

    job_name: str = "lakehouse-workbook"
    root: str = "/Shared/lakehouse-workbook"  # workspace folder for notebooks (and the wheel)
    wheel_volume: str = ""  # /Volumes/<catalog>/<schema>/<volume>: the wheel goes there instead
    cluster_id: str = ""  # an existing all-purpose cluster instead of a job cluster
    spark_version: str = "17.3.x-scala2.13"  # Databricks Runtime 17.3 LTS: Spark 4.0, Scala 2.13
    node_type: str = "i3.xlarge"  # an AWS node type: the landing zone is on S3
    workers: int = 1
    # Checkpoints and Auto Loader's schema history; on a job cluster a /Volumes/... path outlives it.
    data_dir: str = ""
    # 05 writes its drift files with boto3, which needs the instance profile's AWS credentials.
    instance_profile: str = ""
    poll_s: float = 10.0  # how often `--run` asks the workspace for the run's state

    ENV = {"job_name": "LAKEHOUSE_DATABRICKS_JOB", "root": "LAKEHOUSE_DATABRICKS_ROOT",
           "wheel_volume": "LAKEHOUSE_DATABRICKS_WHEEL_VOLUME", "cluster_id": "DATABRICKS_CLUSTER_ID",
           "spark_version": "DATABRICKS_SPARK_VERSION", "node_type": "DATABRICKS_NODE_TYPE",
           "workers": "DATABRICKS_NUM_WORKERS", "data_dir": "LAKEHOUSE_DATABRICKS_DATA_DIR",
           "instance_profile": "DATABRICKS_INSTANCE_PROFILE_ARN", "poll_s": "LAKEHOUSE_DATABRICKS_POLL_SECONDS"}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeployConfig:
        env = os.environ if env is None else env
        values = {name: env[var] for name, var in cls.ENV.items() if env.get(var)}
        for name, kind in (("workers", int), ("poll_s", float)):
            if name in values:
                values[name] = kind(values[name])
        if not values.get("wheel_volume", "/Volumes/").startswith("/Volumes/"):
            raise ValueError(f"LAKEHOUSE_DATABRICKS_WHEEL_VOLUME={values['wheel_volume']!r} is not a /Volumes/... path")
        return cls(**values)

    @property
    def notebooks_dir(self) -> str:
        return f"{self.root.rstrip('/')}/notebooks"

    def wheel_path(self, wheel_name: str) -> str:
        """Where the wheel is uploaded; cluster libraries name workspace files by their /Workspace path."""
        if self.wheel_volume:
            return f"{self.wheel_volume.rstrip('/')}/{wheel_name}"
        root = self.root if self.root.startswith("/Workspace/") else "/Workspace" + self.root
        return f"{root.rstrip('/')}/wheels/{wheel_name}"


def _as_widget(default_source: str) -> str:
    """A notebook parameter's default as the string a job parameter holds (`2_000` -> `2000`)."""
    value = ast.literal_eval(default_source)
    return value if isinstance(value, str) else repr(value)


def job_parameters(settings: Settings, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[dict]:
    """The settings the job needs, then every job notebook's parameters with its default."""
    params = [{"name": name, "default": str(getattr(settings, attr))} for name, (attr, _) in SETTING_PARAMETERS.items()]
    for stem in JOB_NOTEBOOKS:
        for p in notebook_parameters(notebooks_dir / f"{stem}.ipynb"):
            if any(q["name"] == p["name"] for q in params):
                raise ValueError(
                    f"{stem}: parameter {p['name']!r} is declared twice; job parameters share one namespace")
            params.append({"name": p["name"], "default": _as_widget(p["default"])})
    return params


def _cluster(cfg: DeployConfig, settings: Settings) -> dict:
    # The notebooks call load_settings(): the profile and the landing zone reach them as environment,
    # and a run's own job parameters (widgets) take precedence over it there.
    env = {"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_CATALOG_IMPL": "databricks",
           **{var: str(getattr(settings, attr)) for attr, var in SETTING_PARAMETERS.values()},
           "LAKEHOUSE_DATA_DIR": cfg.data_dir}  # empty: load_settings() keeps its default
    cluster = {"spark_version": cfg.spark_version, "node_type_id": cfg.node_type, "num_workers": cfg.workers,
               # Unity Catalog needs an access mode that enforces it; dedicated mode allows Auto Loader,
               # Python UDFs and the governance statements 07 runs.
               "data_security_mode": "SINGLE_USER", "spark_env_vars": env}
    if cfg.instance_profile:
        cluster["aws_attributes"] = {"instance_profile_arn": cfg.instance_profile}
    return cluster


def job_settings(cfg: DeployConfig, settings: Settings, wheel_name: str,
                 notebooks_dir: Path = NOTEBOOKS_DIR) -> dict:
    """The job as Jobs API 2.2 JSON: one task per notebook, each depending on the one before."""
    library = [{"whl": cfg.wheel_path(wheel_name)}]
    tasks = []
    for i, stem in enumerate(JOB_NOTEBOOKS):
        task = {"task_key": stem,
                "notebook_task": {"notebook_path": f"{cfg.notebooks_dir}/{stem}", "source": "WORKSPACE"},
                "libraries": library}
        if i:
            task["depends_on"] = [{"task_key": JOB_NOTEBOOKS[i - 1]}]
        task.update({"existing_cluster_id": cfg.cluster_id} if cfg.cluster_id else {"job_cluster_key": JOB_CLUSTER_KEY})
        tasks.append(task)
    spec = {"name": cfg.job_name, "max_concurrent_runs": 1, "tasks": tasks,
            "parameters": job_parameters(settings, notebooks_dir),
            "tags": {"project": "lakehouse-workbook"}}
    if not cfg.cluster_id:
        spec["job_clusters"] = [{"job_cluster_key": JOB_CLUSTER_KEY, "new_cluster": _cluster(cfg, settings)}]
    return spec


@dataclass(frozen=True)
class Request:
    """One REST call of the deploy, as `--dry-run` prints it."""

    method: str
    path: str
    body: dict | None = None
    note: str = ""
    query: dict = field(default_factory=dict)

    def render(self) -> str:
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        head = f"{self.method} {self.path}{query}" + (f"    # {self.note}" if self.note else "")
        if self.body is None:
            return head
        return head + "\n" + "\n".join("    " + line for line in json.dumps(self.body, indent=2).splitlines())


def requests(cfg: DeployConfig, spec: dict, wheel: Path, notebooks_dir: Path = NOTEBOOKS_DIR,
             run: bool = False) -> list[Request]:
    """Every request a deploy makes, in order (the SDK's own host probe aside)."""
    out = [Request("POST", "/api/2.0/workspace/mkdirs", {"path": cfg.notebooks_dir})]
    for stem in JOB_NOTEBOOKS:
        size = (notebooks_dir / f"{stem}.ipynb").stat().st_size
        out.append(Request("POST", "/api/2.0/workspace/import", {
            "path": f"{cfg.notebooks_dir}/{stem}", "format": "JUPYTER", "language": "PYTHON", "overwrite": True,
            "content": f"<base64 of notebooks/{stem}.ipynb, {size} bytes>"}))
    target = cfg.wheel_path(wheel.name)
    if cfg.wheel_volume:
        out.append(Request("PUT", f"/api/2.0/fs/files{target}", note=f"{wheel.stat().st_size} bytes of {wheel.name}",
                           query={"overwrite": "true"}))
    else:
        folder = target.rsplit("/", 1)[0]
        out.append(Request("POST", "/api/2.0/workspace/mkdirs", {"path": folder}))
        out.append(Request("POST", "/api/2.0/workspace/import", {
            "path": target, "format": "AUTO", "overwrite": True,
            "content": f"<base64 of {wheel.name}, {wheel.stat().st_size} bytes>"}))
    out.append(Request("GET", "/api/2.2/jobs/list", query={"name": cfg.job_name}, note="is there a job of that name?"))
    out.append(Request("POST", "/api/2.2/jobs/create", spec, note="when none is found"))
    out.append(
        Request("POST", "/api/2.2/jobs/reset", {"job_id": "<the job found>", "new_settings": "<as in jobs/create>"},
                       note="instead, when one is found"))
    if run:
        out.append(Request("POST", "/api/2.2/jobs/run-now", {"job_id": "<the job>"}))
        out.append(Request("GET", "/api/2.2/jobs/runs/get", query={"run_id": "<the run>"},
                           note="repeated until the run ends"))
    return out
