"""What `pytest --nbval-lax notebooks/` checks, applied to notebooks the runner has executed.

nbval executes each notebook in a kernel of its own and compares the outputs of the cells marked
`# NBVAL_CHECK_OUTPUT` with the committed ones, after the sanitize file's substitutions. Running
it would execute the whole workbook a second time at the default parameters; the suite's shared
run already executes it at those parameters, so its outputs are compared here with nbval's own
code: its markers (`find_comment_markers`, `find_metadata_tags`), its stream coalescing, its
sanitizer patterns and `IPyNbCell.compare_outputs`, on the same cells nbval would compare.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
from nbval.plugin import (
    IPyNbCell,
    coalesce_streams,
    find_comment_markers,
    find_metadata_tags,
    get_sanitize_patterns,
    nocolors,
)

INJECTED = "injected-parameters"  # the cell papermill adds after `parameters`
# IPyNbFile's skip list in nbval 0.11.0 (pinned in pyproject.toml), for a run without --nbdime:
# output keys nbval never compares, images included.
SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


class _Comparer:
    """The parts of an nbval cell item that `IPyNbCell.compare_outputs` uses, and nothing else."""

    compare_outputs = IPyNbCell.compare_outputs
    format_output_compare = IPyNbCell.format_output_compare
    sanitize = IPyNbCell.sanitize

    def __init__(self, sanitize_file: Path):
        patterns = dict(get_sanitize_patterns(sanitize_file.read_text()))
        self.parent = SimpleNamespace(skip_compare=SKIP_COMPARE, sanitize_patterns=patterns)
        self.colors = nocolors
        self.comparison_traceback: list[str] = []


def checked(cell) -> bool:
    """nbval --nbval-lax compares a code cell's outputs only when a marker or tag asks for it."""
    options = dict(find_metadata_tags(cell.metadata))
    options.update(dict(find_comment_markers(cell.source)))
    return bool(options.get("check")) and not options.get("skip")


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and INJECTED not in c.metadata.get("tags", [])]


def differences(committed: Path, executed: Path, sanitize_file: Path) -> list[str]:
    """One line per checked cell whose executed outputs differ from the committed ones; empty
    when every checked cell matches."""
    ref_cells = _code_cells(nbformat.read(committed, as_version=4))
    run_cells = _code_cells(nbformat.read(executed, as_version=4))
    if [c.source for c in ref_cells] != [c.source for c in run_cells]:
        return [f"{committed.name}: the executed notebook's code cells are not the committed ones"]
    problems = []
    for number, (ref, run) in enumerate(zip(ref_cells, run_cells, strict=True)):
        if not checked(ref) or ref.get("execution_count") is None:  # nbval skips unrun reference cells
            continue
        comparer = _Comparer(sanitize_file)
        if not comparer.compare_outputs(coalesce_streams(list(run.outputs)), coalesce_streams(list(ref.outputs))):
            detail = re.sub(r"\s+", " ", " ".join(comparer.comparison_traceback))[:600]
            problems.append(f"{committed.name} cell {number}: {detail}")
    return problems


def count_checked(committed: Path) -> int:
    nb = nbformat.read(committed, as_version=4)
    return sum(checked(c) and c.get("execution_count") is not None for c in _code_cells(nb))
