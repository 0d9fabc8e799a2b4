"""Every committed notebook has the shape of a page of this tutorial: a title, the flow with
"you are here", a parameters cell of typed literals, a Databricks note, record(...) and Next."""

from __future__ import annotations

import json
import re

import pytest

from lakehouse_helpers.notebook import flow
from lakehouse_helpers.notebook import tools as nbtools
from lakehouse_helpers.notebook.runner import NOTEBOOKS_DIR, parameters_of

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def _source(cell) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_a_page_of_the_tutorial(path):
    cells = json.loads(path.read_text())["cells"]
    first = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and first.startswith(f"# {path.name[:2]} · "), first[:80]
    assert flow.markdown(path.name[:2]) in first, "the 'you are here' picture is missing or stale"
    (params,) = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    lines = [x for x in _source(params).splitlines() if x.strip()]
    assert lines and all(re.fullmatch(r"\w+: (int|float|bool|str) = \S.*  # \S.*", x) for x in lines), lines
    assert len(parameters_of(path)) == len(lines)
    markdown = " ".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    assert "Databricks" in markdown
    assert any(_source(c).lstrip().startswith("record(") for c in cells if c["cell_type"] == "code")
    assert "**Next:**" in _source(cells[-1])


def test_the_picture_marks_each_notebook_where_its_data_is():
    for notebook, boxes in (("01", ["Kafka"]), ("02", ["raw (Delta)"]), ("04", ["S3 landing"]),
            ("06", ["silver", "gold"])):
        names, numbers, marks = flow.diagram(notebook).splitlines()
        spans = {n: (names.index(n), names.index(n) + len(n)) for n, _ in flow.BOXES}
        marked = [n for n, (a, b) in spans.items() if any(a <= i < b for i, ch in enumerate(marks) if ch == "▲")]
        assert marked == boxes and marks.endswith(f"{notebook} you are here")
        assert all(notebook in numbers[a:b + 2] for a, b in (spans[n] for n in boxes))
    assert "07 you are here" in flow.diagram("07") and "▲" not in flow.diagram("07")
    with pytest.raises(ValueError, match="not on the flow"):
        flow.diagram("08")


def test_committed_notebooks_are_clean():
    for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        assert nbtools.problems(path) == [], path.name
