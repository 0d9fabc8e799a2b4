"""Key figures a notebook records for tests and for the run summary.

`record(name=value, ...)` in a notebook's closing cell displays the figures and stores them in
the cell's output as a JSON mime bundle, so `read_figures(executed_notebook)` gets them back.
"""

from __future__ import annotations

import json
from pathlib import Path

MIME = "application/vnd.lakehouse.figures+json"


def record(**figures) -> None:
    """Shown once, as a table of name: value (returns nothing, so the cell prints nothing more)."""
    from IPython.display import display

    clean = {k: (v.item() if hasattr(v, "item") else v) for k, v in figures.items()}
    width = max((len(k) for k in clean), default=0)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in clean.items())
    display({MIME: clean, "text/plain": text}, raw=True)


def read_figures(notebook: Path | str) -> dict:
    try:
        nb = json.loads(Path(notebook).read_text())
    except (OSError, ValueError):
        return {}
    figures: dict = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if MIME in data:
                figures.update(data[MIME])
    return figures
