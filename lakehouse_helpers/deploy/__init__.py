"""Deploy the cloud half of the workbook to a Databricks workspace: one job, 00 -> 05 -> 06 -> 07.

    python -m lakehouse_helpers deploy [--run] [--dry-run]      (make deploy-databricks)

Builds the helpers' wheel, uploads it, imports the notebooks and creates or updates one job found
by name. `--dry-run` prints every request instead and opens no connection. `databricks.yml`
describes the same job for `databricks bundle deploy`; a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lakehouse_helpers.deploy.apply import (
    DeployError,
    connect,
    follow_run,
    import_notebooks,
    upload_wheel,
    upsert_job,
)
from lakehouse_helpers.deploy.plan import JOB_NOTEBOOKS, DeployConfig, job_settings, requests
from lakehouse_helpers.deploy.wheel import build_wheel
from lakehouse_helpers.notebook.params import NOTEBOOKS_DIR
from lakehouse_helpers.runtime.settings import Settings

__all__ = ["DeployConfig", "DeployError", "JOB_NOTEBOOKS", "deploy", "job_settings", "requests"]


def deploy(settings: Settings, cfg: DeployConfig, *, run: bool = False, dry_run: bool = False,
           out: Callable[[str], None] = print, notebooks_dir: Path = NOTEBOOKS_DIR) -> bool:
    """Deploy (and with `run`, run the job to its end). True when everything, the run included, succeeded."""
    wheel = build_wheel(settings.state_dir / "deploy")
    spec = job_settings(cfg, settings, wheel.name, notebooks_dir)
    if dry_run:
        out("Dry run: the requests a deploy would send, in order. Nothing is sent.")
        for request in requests(cfg, spec, wheel, notebooks_dir, run=run):
            out(request.render())
        return True
    w = connect(settings)
    from databricks.sdk.errors import DatabricksError

    try:
        paths = import_notebooks(w, cfg, notebooks_dir)
        out(f"notebooks: {len(paths)} imported into {cfg.notebooks_dir}")
        out(f"wheel: {upload_wheel(w, cfg, wheel)}")
        job_id, action = upsert_job(w, spec)
        out(f"job {spec['name']!r} {action} (id {job_id}): tasks {' -> '.join(JOB_NOTEBOOKS)}")
        if not run:
            return True
        ok = follow_run(w, job_id, out, poll_s=cfg.poll_s)
    except DatabricksError as exc:  # the SDK's errors carry the workspace's message, never the token
        raise DeployError(f"the workspace refused a request: {exc}") from None
    out("run succeeded" if ok else "run FAILED")
    return ok
