"""Carry out a deploy plan on a workspace with databricks-sdk, and follow a run to its end.

Credentials: the host and token from settings (DATABRICKS_HOST, DATABRICKS_TOKEN, or `.env`), else
the SDK's own chain (DATABRICKS_CONFIG_PROFILE naming a profile in ~/.databrickscfg, or its
DEFAULT profile). The token goes to the SDK and nowhere else: not in a message, a log or a file.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from pathlib import Path

from lakehouse_helpers.deploy.plan import JOB_NOTEBOOKS, DeployConfig
from lakehouse_helpers.runtime.settings import Settings


class DeployError(RuntimeError):
    """The workspace refused a step, or cannot be reached or authenticated to."""


def connect(settings: Settings):
    """A WorkspaceClient; no request is made here beyond the SDK's host-metadata probe."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    kwargs = {}
    if settings.databricks_host:
        kwargs["host"] = settings.databricks_host
    if settings.databricks_token:
        kwargs["token"] = settings.databricks_token.reveal()
    try:
        # The plain Files API: one PUT per file. The SDK's newer client probes other endpoints first.
        config = Config(**kwargs, disable_experimental_files_api_client=True)
    except ValueError as exc:  # the SDK's message masks the token (token=***)
        raise DeployError(
            "cannot authenticate to a Databricks workspace: set DATABRICKS_HOST and DATABRICKS_TOKEN, or "
            f"DATABRICKS_CONFIG_PROFILE naming a profile in ~/.databrickscfg. The SDK said: {exc}"
        ) from None
    return WorkspaceClient(config=config)


def import_notebooks(w, cfg: DeployConfig, notebooks_dir: Path) -> list[str]:
    """Each job notebook as a Python notebook in Jupyter format, overwriting the previous deploy's."""
    from databricks.sdk.service.workspace import ImportFormat, Language

    w.workspace.mkdirs(cfg.notebooks_dir)
    paths = []
    for stem in JOB_NOTEBOOKS:
        path = f"{cfg.notebooks_dir}/{stem}"
        content = base64.b64encode((notebooks_dir / f"{stem}.ipynb").read_bytes()).decode()
        w.workspace.import_(path, content=content, format=ImportFormat.JUPYTER, language=Language.PYTHON,
                            overwrite=True)
        paths.append(path)
    return paths


def upload_wheel(w, cfg: DeployConfig, wheel: Path) -> str:
    """The wheel to a Unity Catalog volume (Files API) or to workspace files beside the notebooks."""
    from databricks.sdk.service.workspace import ImportFormat

    target = cfg.wheel_path(wheel.name)
    if cfg.wheel_volume:
        w.files.upload(target, io.BytesIO(wheel.read_bytes()), overwrite=True)
    else:
        w.workspace.mkdirs(target.rsplit("/", 1)[0])
        # AUTO: a .whl is kept as a workspace file, not converted into a notebook.
        w.workspace.import_(target, content=base64.b64encode(wheel.read_bytes()).decode(),
                            format=ImportFormat.AUTO, overwrite=True)
    return target


def upsert_job(w, spec: dict) -> tuple[int, str]:
    """Create the job, or reset the one job of that name: a second deploy never makes a second job."""
    from databricks.sdk.service.jobs import JobSettings

    name = spec["name"]
    # The API's name filter ignores case; the deploy owns only the job with exactly its name.
    found = [j.job_id for j in w.jobs.list(name=name) if j.settings and j.settings.name == name]
    if len(found) > 1:
        raise DeployError(f"{len(found)} jobs are named {name!r} (ids {', '.join(map(str, found))}): delete all "
                          "but one, or set LAKEHOUSE_DATABRICKS_JOB to another name.")
    settings = JobSettings.from_dict(spec)
    if found:
        w.jobs.reset(found[0], new_settings=settings)
        return found[0], "updated"
    fields = {k: v for k, v in vars(settings).items() if v is not None}
    return w.jobs.create(**fields).job_id, "created"


def _phase(item) -> str:
    """RUNNING, TERMINATED SUCCESS, ... from the v2 status, or the older state where that is missing."""
    status = getattr(item, "status", None)
    if status and status.state:
        details = status.termination_details
        code = details.code.value if details and details.code else ""
        return f"{status.state.value} {code}".strip()
    state = item.state
    if state is None or state.life_cycle_state is None:
        return "PENDING"
    result = state.result_state.value if state.result_state else ""
    return f"{state.life_cycle_state.value} {result}".strip()


def _message(item) -> str:
    status = getattr(item, "status", None)
    if status and status.termination_details and status.termination_details.message:
        return status.termination_details.message
    return (item.state.state_message if item.state else "") or ""


def _finished(phase: str) -> bool:
    return phase.split()[0] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


def follow_run(w, job_id: int, out: Callable[[str], None], poll_s: float = 10.0, timeout_s: float = 3 * 3600,
               clock: Callable[[], float] = time.monotonic) -> bool:
    """Start the job and print a line whenever the run or one of its tasks changes phase; True on success."""
    run_id = w.jobs.run_now(job_id=job_id).run_id
    start, seen = clock(), {}
    while True:
        run = w.jobs.get_run(run_id)
        if "url" not in seen and run.run_page_url:
            seen["url"] = run.run_page_url
            out(f"run {run_id}: {run.run_page_url}")
        for item, key in [(t, t.task_key) for t in run.tasks or []] + [(run, "run")]:
            phase = _phase(item)
            if seen.get(key) != phase:
                seen[key] = phase
                failed = _finished(phase) and "SUCCESS" not in phase
                out(f"[{clock() - start:6.0f}s] {key}: {phase}"
                    + (f": {_message(item)}" if failed and _message(item) else ""))
        phase = _phase(run)
        if _finished(phase):
            return phase.split()[1:2] == ["SUCCESS"]
        if clock() - start > timeout_s:
            raise DeployError(f"run {run_id} still {phase} after {timeout_s:.0f} s; it goes on in the workspace")
        time.sleep(poll_s)  # polling the workspace's state, not waiting for a guess
