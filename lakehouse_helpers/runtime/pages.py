"""The notebooks' taught cells, run from the page. A code cell tagged, say, `silver-merge` is the
only copy of what it teaches: the fault rows, the bench and the package's own runners (02's
foreachBatch writer in live mode) read that cell from the notebook and execute it, so an edit
on the page is what every test runs, and nothing in the package can drift from it.

To make a new cell run from its page: give it a tag (cell metadata `tags`), keep it free of
anything only the notebook has (it may use names the caller puts in `scope`), and call
`run_cells(page, [tag], scope)`. docs/contributing.md ("One copy") says more.
"""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def tagged_source(path: Path, tag: str) -> str:
    """The source of the one cell of `path` tagged `tag`."""
    cells = [c for c in json.loads(Path(path).read_text())["cells"] if tag in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{Path(path).name} must have exactly one cell tagged {tag!r}, found {len(cells)}")
    source = cells[0].get("source", "")
    return "".join(source) if isinstance(source, list) else source


def run_cells(path: Path, tags: list[str], scope: dict) -> dict:
    """Execute the cells of `path` tagged `tags`, in that order, in `scope` (the names those cells
    take from the notebook's earlier cells); returns `scope` with what they defined."""
    for tag in tags:
        exec(compile(tagged_source(path, tag), str(path), "exec"), scope)  # noqa: S102 - the page's own code
    return scope
