"""The workbook's flow as a small text picture, with the notebook the reader is in marked.

Each notebook opens with `diagram("<its number>")` in its first cell (a test keeps them equal),
so every page shows the same map: text renders in JupyterLab, on GitHub and in a terminal.
"""

from __future__ import annotations

ARROW = " ──▶ "
# (what the data is in, the notebooks that write or check it)
BOXES = [
    ("Kafka", ("01",)),
    ("raw (Delta)", ("02",)),
    ("S3 landing", ("03", "04")),
    ("bronze", ("05",)),
    ("silver", ("06",)),
    ("gold", ("06",)),
]
ACROSS = {
    "00": "00 you are here: every service the flow needs, checked",
    "07": "07 you are here: governance, lineage, time travel on every table",
}


def diagram(notebook: str) -> str:
    """Three lines: the flow, the notebook numbers under each step, and where `notebook` is."""
    names, numbers, marks = "", "", ""
    for index, (name, owners) in enumerate(BOXES):
        sep = ARROW if index else ""
        start = len(names) + len(sep)
        names += sep + name
        label = " · ".join(owners)
        numbers = numbers.ljust(start) + label.center(len(name)).rstrip()
        if notebook in owners:
            marks = marks.ljust(start + len(name) // 2) + "▲"
    if notebook in ACROSS:
        width = len(names)
        marks = "╰" + "─" * (width - 2) + "╯\n" + ACROSS[notebook].center(width).rstrip()
    elif marks:
        marks += f" {notebook} you are here"
    else:
        raise ValueError(f"notebook {notebook!r} is not on the flow: use one of 00-07")
    return "\n".join((names, numbers, marks))


def markdown(notebook: str) -> str:
    """The diagram as the fenced block a notebook's first cell carries."""
    return f"```text\n{diagram(notebook)}\n```"
