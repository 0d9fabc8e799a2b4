"""Keep committed notebooks reviewable: no execution counts, no volatile metadata, and outputs
only on cells marked `# NBVAL_CHECK_OUTPUT` (the figures the default seed fixes, which
`pytest --nbval-lax notebooks/` compares; those cells carry execution count 0).

    python -m lakehouse_helpers notebooks check             # what `make test` enforces
    python -m lakehouse_helpers notebooks strip             # `make strip`: clean after working in the lab
    python -m lakehouse_helpers notebooks refresh RUN_DIR   # take checked outputs from a run
"""

from __future__ import annotations

import json
from pathlib import Path

MARK = "# NBVAL_CHECK_OUTPUT"
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def is_checked(cell) -> bool:
    return cell.get("cell_type") == "code" and _source(cell).lstrip().startswith(MARK)


def clean(nb: dict, outputs_from: dict | None = None) -> dict:
    """A clean copy of `nb`; checked cells keep their outputs (or take them from `outputs_from`)."""
    executed = {}
    if outputs_from is not None:
        executed = {_source(c): c.get("outputs", []) for c in outputs_from.get("cells", []) if is_checked(c)}
    nb = json.loads(json.dumps(nb))
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k in KEEP_NOTEBOOK_METADATA}
    nb["metadata"].get("language_info", {}).pop("version", None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("execution", None)
        for key in ("papermill", "collapsed", "scrolled", "jp-MarkdownHeadingCollapsed"):
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") != "code":
            continue
        outputs = executed.get(_source(cell), cell.get("outputs", [])) if is_checked(cell) else []
        # nbval skips the comparison for a cell without a count ("unrun"); 0 marks a stored
        # reference output without carrying a live, ever-changing execution count.
        cell["execution_count"] = 0 if outputs else None
        for out in outputs:
            if "execution_count" in out:
                out["execution_count"] = 0
        cell["outputs"] = outputs
    return nb


def problems(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    found = []
    cells = nb.get("cells", [])
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells):
        found.append("no cell tagged 'parameters'")
    if any(c.get("execution_count") for c in cells if c.get("cell_type") == "code"):
        found.append("execution counts present")
    if any(c.get("outputs") for c in cells if c.get("cell_type") == "code" and not is_checked(c)):
        found.append("outputs on cells not marked NBVAL_CHECK_OUTPUT")
    if any(is_checked(c) and not c.get("outputs") for c in cells):
        found.append("a NBVAL_CHECK_OUTPUT cell has no stored output (refresh from a run)")
    if clean(nb) != nb:
        found.append("volatile metadata present")
    if found and found != ["no cell tagged 'parameters'"]:
        found.append("fix: `make strip` keeps only the outputs of NBVAL_CHECK_OUTPUT cells")
    from lakehouse_helpers.notebook.runner import SECRET_NAME, parameters_of, unparsed_parameter_lines

    found += [f"parameter {n} looks like a secret: secrets come from the environment, never a parameter"
              for n in parameters_of(path) if SECRET_NAME.search(n)]

    # papermill ignores a line it cannot parse, and with it any override of that parameter.
    found += [f"parameters cell: {m} Write it as `name: type = literal  # comment`."
        for m in unparsed_parameter_lines(path)]
    return found


def write(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def strip(notebooks_dir: Path) -> list[str]:
    """Rewrite committed notebooks clean; checked cells keep the outputs they have."""
    changed = []
    for path in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        source = json.loads(path.read_text())
        new = clean(source)
        if new != source:
            write(path, new)
            changed.append(path.name)
    return changed


def refresh(notebooks_dir: Path, run_dir: Path) -> list[str]:
    changed = []
    for path in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        executed = run_dir / path.name
        source = json.loads(path.read_text())
        new = clean(source, json.loads(executed.read_text()) if executed.is_file() else None)
        if new != source:
            write(path, new)
            changed.append(path.name)
    return changed
