"""Runs the numbered notebooks in order with papermill and writes a run summary.

Executed notebooks go to `<state_dir>/runs/<run id>/`. A run of every notebook that succeeds is
complete and `<state_dir>/runs/latest` points at it; a run of some notebooks (`--only`) is
`<id>-partial`, a run that failed `<id>-failed`, one stopped by Ctrl-C `<id>-interrupted`, and
none of these moves `latest`. A failing notebook
stops the run and is named with the cell that failed. Inputs are checked before anything runs:
a selection that matches no notebook, a parameter no selected notebook declares, or a value of
the wrong type is refused with what was wrong and what is valid.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lakehouse_helpers.notebook.params import range_of
from lakehouse_helpers.runtime.fds import output_to
from lakehouse_helpers.runtime.pages import NOTEBOOKS_DIR
from lakehouse_helpers.runtime.settings import HEADLESS_ENV, Settings

log = logging.getLogger(__name__)
# A cell that demonstrates an error (nbclient and nbval let it raise; papermill does not know).
EXPECTED_ERROR_TAG = "raises-exception"
TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}
# Secrets come from the environment only: a papermill parameter is written into the notebook.
SECRET_NAME = re.compile(r"token|secret|password|passwd|key", re.I)


class RunInputError(ValueError):
    """A notebook selection or a parameter the runner refuses before running anything."""


@dataclass
class NotebookResult:
    notebook: str
    status: str
    seconds: float
    output: str
    figures: dict = field(default_factory=dict)
    error: str = ""
    peak_memory_mb: int = 0  # the whole stack's, while this notebook ran (services, kernel, JVMs)
    cells: list = field(default_factory=list)  # report.cell_times: every code cell's seconds

    def slow_cells(self) -> list[dict]:
        from lakehouse_helpers.notebook.report import SLOW_CELL_S

        return [c for c in self.cells if c["seconds"] > SLOW_CELL_S]


def all_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    return sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))


def discover(notebooks_dir: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """The notebooks to run; every name in `only` (a prefix such as `02`, or a stem) must match."""
    found = all_notebooks(notebooks_dir)
    if not only:
        return found
    unmatched = [o for o in only if not any(_matches(p, o) for p in found)]
    if unmatched:
        raise RunInputError(
            f"No notebook matches {', '.join(repr(o) for o in unmatched)}. "
            f"Valid names (a two-digit prefix is enough): {', '.join(p.stem for p in found)}."
        )
    return [p for p in found if any(_matches(p, o) for o in only)]


def _matches(path: Path, name: str) -> bool:
    name = name.removesuffix(".ipynb")
    return path.stem == name or (len(name) >= 2 and path.stem.startswith(name))


def parameters_of(path: Path) -> dict[str, dict]:
    """What papermill finds in the notebook's `parameters` cell: name -> type, default, help."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def declared_parameters(path: Path) -> set[str]:
    return set(parameters_of(path))


def unparsed_parameter_lines(path: Path) -> list[str]:
    """Lines of the parameters cell papermill cannot read (it would ignore an override of them)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("papermill")
    logger.addHandler(handler)
    try:
        parameters_of(path)
    finally:
        logger.removeHandler(handler)
    return [m for m in messages if m.startswith("Unable to parse")]


def coerce(name: str, value, declared: dict, notebook: str):
    """`value` as the declared type of `name`, or a RunInputError naming both."""
    kind = declared.get("inferred_type_name")
    if kind == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    allowed = TYPES.get(kind or "")
    if allowed is None or (isinstance(value, allowed) and not (kind != "bool" and isinstance(value, bool))):
        value = float(value) if kind == "float" else value
        low, high = range_of(declared.get("help") or "") if kind in ("int", "float") else (None, None)
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{_number(low) if low is not None else 'any'} to {_number(high) if high is not None else 'any'}"
            raise RunInputError(f"Parameter {name} of {notebook} must be from {span} ({declared.get('help')}); "
                                f"got {value!r}.")
        return value
    raise RunInputError(
        f"Parameter {name} of {notebook} must be of type {kind} (default {declared.get('default')}: "
        f"{declared.get('help') or 'no description'}); got {value!r} ({type(value).__name__})."
    )


def _number(x: float) -> str:
    return f"{x:,g}" if x != int(x) else f"{int(x):,}"


def check_parameters(paths: list[Path], parameters: dict) -> dict[str, dict]:
    """Per notebook, the parameters it declares from `parameters`, type-checked. Every name must
    be declared by at least one of `paths`: nothing is dropped silently."""
    secret = [n for n in parameters if SECRET_NAME.search(n)]
    if secret:
        raise RunInputError(
            f"{', '.join(secret)} looks like a secret: a parameter is written into the executed notebook. "
            "Secrets come from the environment or .env (see docs/settings.md)."
        )
    declared = {p.name: parameters_of(p) for p in paths}
    unknown = [n for n in parameters if not any(n in d for d in declared.values())]
    if unknown:
        listing = "\n".join(f"  {nb}: {', '.join(d) or '(none)'}" for nb, d in declared.items())
        raise RunInputError(
            f"No selected notebook declares {', '.join(unknown)}. Parameters of the selected notebooks:\n{listing}"
        )
    return {
        nb: {n: coerce(n, v, d[n], nb) for n, v in parameters.items() if n in d}
        for nb, d in declared.items()
    }


def _failed_cell(nb_path: Path) -> str:
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return ""
    # Papermill adds cells of its own (error banner, injected parameters): number the user's cells.
    ours = [c for c in nb.get("cells", [])
        if not {"papermill-error-cell-tag", "injected-parameters"} & set(c.get("metadata", {}).get("tags", []))]
    for index, cell in enumerate(ours):
        if EXPECTED_ERROR_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                code = [line for line in "".join(cell.get("source", "")).splitlines()
                        if line.strip() and not line.startswith("#")]
                # A Spark error's message ends with the JVM's stack trace: the terminal gets the message.
                message = re.split(r"JVM stacktrace:|Driver stacktrace:", str(out.get("evalue", "")))[0].strip()
                return f"cell {index}: {code[0] if code else ''!r}: {out.get('ename')}: {message}"
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


def _execute(path: Path, output: Path, params: dict) -> tuple[str, str]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(path), str(output), parameters=params, cwd=str(path.parent),
            progress_bar=False, kernel_name="python3",
        )
        return "ok", ""
    except PapermillExecutionError as exc:
        unexpected = _failed_cell(output)
        if unexpected:
            return "failed", unexpected
        # Only errors in cells tagged raises-exception: the notebook ran as designed.
        return ("ok", "") if _only_expected_errors(output) else ("failed", f"{exc.ename}: {exc.evalue}")


def run_notebooks(
    settings: Settings,
    parameters: dict | None = None,
    only: list[str] | None = None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    out_dir: Path | None = None,
) -> tuple[Path, list[NotebookResult]]:
    from lakehouse_helpers.notebook.memory import MB, PeakMemory
    from lakehouse_helpers.runtime.services.spark_conf import prune_scratch

    paths = discover(notebooks_dir, only)
    params = check_parameters(paths, parameters or {})  # refused here, before anything runs
    if settings.lineage and settings.profile == "local":
        # Each run adds about a megabyte of events; folded in, the lineage file stays the size of one.
        from lakehouse_helpers.runtime.spark import compact_lineage

        compact_lineage(settings)
    complete = paths == all_notebooks(notebooks_dir)
    runs = settings.state_dir / "runs"
    out_dir = out_dir or _new_run_dir(runs, "" if complete else "-partial")
    out_dir.mkdir(parents=True, exist_ok=True)

    results: list[NotebookResult] = []
    started = time.time()
    with PeakMemory(settings) as memory, _headless():
        for path in paths:
            results.append(_run_one(settings, path, out_dir / path.name, params[path.name], memory))
            if results[-1].status != "ok":
                break
    stopped = next((r.status for r in results if r.status != "ok"), "")  # failed or interrupted
    kind = stopped or ("complete" if complete else "partial")
    if stopped and out_dir.parent == runs:
        out_dir = out_dir.rename(out_dir.with_name(f"{out_dir.name.removesuffix('-partial')}-{stopped}"))
        for r in results:
            r.output = str(out_dir / Path(r.output).name)
    summary = {
        "run": out_dir.name, "kind": kind, "parameters": parameters or {},
        "seconds": round(sum(r.seconds for r in results), 1), "peak_memory_mb": memory.peak // MB,
        "notebooks": [asdict(r) for r in results],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _keep_pictures(settings, out_dir, started)
    prune_scratch(settings)  # the kernels' classic Spark folders, if any were left
    if kind == "complete" and out_dir.parent == runs:
        latest = runs / "latest"
        latest.unlink(missing_ok=True)
        latest.symlink_to(out_dir.name)
    return out_dir, results


def _run_one(settings: Settings, path: Path, output: Path, params: dict, memory) -> NotebookResult:
    """One notebook, its figures, cell times and the stack's peak memory while it ran. Ctrl-C
    ends it as `interrupted`, so the run's folder and summary say what happened."""
    from lakehouse_helpers.notebook.memory import MB
    from lakehouse_helpers.notebook.report import cell_times, read_figures

    log.info(f"running {path.name} {params or ''}".rstrip())
    start = time.monotonic()
    memory.section()
    try:
        with output_to(kernel_log(settings)):  # what kernels print themselves: kept, not shown
            status, error = _execute(path, output, params)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted (Ctrl-C); the cells before it ran, the rest did not"
    seconds = round(time.monotonic() - start, 1)
    return NotebookResult(path.name, status, seconds, str(output), read_figures(output), error,
                          memory.section() // MB, cell_times(output))


@contextmanager
def _headless():
    """The kernels this run starts draw progress as text; the caller's environment is left as it was."""
    before = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = before


def kernel_log(settings: Settings) -> Path:
    return settings.state_dir / "logs" / "kernels.log"


def _new_run_dir(runs: Path, suffix: str) -> Path:
    """A folder no other run uses (two runs may start in the same second: the live recipe)."""
    runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 100):
        folder = runs / f"{stamp}{'' if n == 1 else f'.{n}'}{suffix}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"100 runs started in one second in {runs}?")


def run_kind(out_dir: Path) -> str:
    """complete, partial or failed, as the run's summary says."""
    try:
        return json.loads((out_dir / "summary.json").read_text())["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


def _keep_pictures(settings: Settings, out_dir: Path, since: float) -> None:
    """Pictures the notebooks drew for this run (07's lineage) go with its outputs."""
    from lakehouse_helpers.govern.lineage import picture_file

    picture = picture_file(settings)
    if picture.exists() and picture.stat().st_mtime >= since:
        shutil.copy2(picture, out_dir / picture.name)


def format_summary(results: list[NotebookResult]) -> str:
    if not results:
        return "(no notebooks found)"
    width = max(len(r.notebook) for r in results)
    lines = [f"{'notebook':<{width}}  status  seconds  peak MB  key figures"]
    for r in results:
        figures = ", ".join(f"{k}={v}" for k, v in r.figures.items())
        lines.append(f"{r.notebook:<{width}}  {r.status:<6}  {r.seconds:7.1f}  {r.peak_memory_mb:7,d}  {figures}")
        if r.error:
            lines.append(f"{'':<{width}}  error: {r.error}")
        lines += [f"{'':<{width}}  slow cell {c['cell']}: {c['seconds']:.1f} s  {c['code']}" for c in r.slow_cells()]
    total = sum(r.seconds for r in results)
    peak = max(r.peak_memory_mb for r in results)
    lines.append(
        f"{'all':<{width}}  {'':<6}  {total:7.1f}  {peak:7,d}  (peak MB: the whole stack, services and kernels)")
    return "\n".join(lines)
