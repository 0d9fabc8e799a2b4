"""Runs the numbered notebooks in order with papermill and writes a run summary.

Executed notebooks go to `<state_dir>/runs/<run id>/`; `<state_dir>/runs/latest` points at the
newest run. A failing notebook stops the run and is named with the cell that failed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .settings import Settings

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# A cell that demonstrates an error (nbclient and nbval let it raise; papermill does not know).
EXPECTED_ERROR_TAG = "raises-exception"


@dataclass
class NotebookResult:
    notebook: str
    status: str
    seconds: float
    output: str
    figures: dict = field(default_factory=dict)
    error: str = ""


def discover(notebooks_dir: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(p.name.startswith(o) or p.stem == o for o in only)]
    return found


def declared_parameters(path: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(path)).keys())


def _failed_cell(nb_path: Path) -> str:
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return ""
    # Papermill adds cells of its own (error banner, injected parameters): number the user's cells.
    ours = [c for c in nb.get("cells", []) if not {"papermill-error-cell-tag", "injected-parameters"} & set(c.get("metadata", {}).get("tags", []))]
    for index, cell in enumerate(ours):
        if EXPECTED_ERROR_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                source = "".join(cell.get("source", "")).strip().splitlines()
                return f"cell {index}: {source[0] if source else ''!r}: {out.get('ename')}: {out.get('evalue')}"
    return ""


def _only_expected_errors(nb_path: Path) -> bool:
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return False
    errors = [
        c for c in nb.get("cells", [])
        if any(o.get("output_type") == "error" for o in c.get("outputs", []))
        and "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])
    ]
    return bool(errors) and all(EXPECTED_ERROR_TAG in c.get("metadata", {}).get("tags", []) for c in errors)


def run_notebooks(
    settings: Settings,
    parameters: dict | None = None,
    only: list[str] | None = None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    out_dir: Path | None = None,
    log=print,
) -> tuple[Path, list[NotebookResult]]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .report import read_figures

    parameters = parameters or {}
    run_id = time.strftime("%Y%m%d-%H%M%S")
    out_dir = out_dir or settings.state_dir / "runs" / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    latest = settings.state_dir / "runs" / "latest"
    if out_dir.parent == latest.parent:
        latest.unlink(missing_ok=True)
        latest.symlink_to(out_dir.name)

    results: list[NotebookResult] = []
    started = time.time()
    for path in discover(notebooks_dir, only):
        output = out_dir / path.name
        params = {k: v for k, v in parameters.items() if k in declared_parameters(path)}
        log(f"running {path.name} {params if params else ''}".rstrip())
        start = time.monotonic()
        try:
            papermill.execute_notebook(
                str(path), str(output), parameters=params, cwd=str(path.parent),
                progress_bar=False, kernel_name="python3",
            )
            status, error = "ok", ""
        except PapermillExecutionError as exc:
            unexpected = _failed_cell(output)
            # Only errors in cells tagged raises-exception: the notebook ran as designed.
            status, error = ("failed", unexpected) if unexpected else ("ok", "")
            if not unexpected and not _only_expected_errors(output):
                status, error = "failed", f"{exc.ename}: {exc.evalue}"
        results.append(
            NotebookResult(path.name, status, round(time.monotonic() - start, 1), str(output), read_figures(output), error)
        )
        if status != "ok":
            break
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))
    _keep_pictures(settings, out_dir, started)
    return out_dir, results


def _keep_pictures(settings: Settings, out_dir: Path, since: float) -> None:
    """Pictures the notebooks drew for this run (07's lineage) go with its outputs."""
    from .lineage import picture_file

    picture = picture_file(settings)
    if picture.exists() and picture.stat().st_mtime >= since:
        shutil.copy2(picture, out_dir / picture.name)


def format_summary(results: list[NotebookResult]) -> str:
    if not results:
        return "(no notebooks found)"
    width = max(len(r.notebook) for r in results)
    lines = [f"{'notebook':<{width}}  status  seconds  key figures"]
    for r in results:
        figures = ", ".join(f"{k}={v}" for k, v in r.figures.items())
        lines.append(f"{r.notebook:<{width}}  {r.status:<6}  {r.seconds:7.1f}  {figures}")
        if r.error:
            lines.append(f"{'':<{width}}  error: {r.error}")
    return "\n".join(lines)
