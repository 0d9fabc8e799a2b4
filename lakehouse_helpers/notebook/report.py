"""Key figures a notebook records for tests and for the run summary, and how long each cell took.

`record(name=value, ...)` in a notebook's closing cell displays the figures and stores them in
the cell's output as a JSON mime bundle, so `read_figures(executed_notebook)` gets them back.
`cell_times(executed_notebook)` reads the seconds papermill wrote into each code cell.
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


SLOW_CELL_S = 5.0  # a learner waits seconds: a cell over this is named in the run's summary


def _load(notebook: Path | str) -> dict:
    try:
        return json.loads(Path(notebook).read_text())
    except (OSError, ValueError):
        return {}


def cell_times(notebook: Path | str) -> list[dict]:
    """Every executed code cell: its number on the page (1 = the first cell), seconds, tags and
    first line of code."""
    times = []
    for number, cell in enumerate(_load(notebook).get("cells", []), start=1):
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.get("cell_type") != "code" or seconds is None:
            continue
        lines = [ln.strip() for ln in "".join(cell.get("source", "")).splitlines()]
        code = next((ln for ln in lines if ln and not ln.startswith("#")), "")
        times.append({"cell": number, "seconds": round(seconds, 2), "tags": cell["metadata"].get("tags", []),
                      "code": code[:72]})
    return times


def read_figures(notebook: Path | str) -> dict:
    figures: dict = {}
    for cell in _load(notebook).get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if MIME in data:
                figures.update(data[MIME])
    return figures
