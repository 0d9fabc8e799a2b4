"""The notebooks' parameters, read from their `parameters` cells with the standard library only,
so `make help` can list them before anything is installed.

    python -m lakehouse_helpers.notebook.params     # the listing `make help` prints

A parameters cell holds one typed, commented literal per line, as papermill documents them;
a number's comment ends with the range the runner accepts, `[low..high]` (either end open):

    events: int = 2_000  # how many order-line events to generate [1..10_000_000]
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import sys
import tokenize
from pathlib import Path

from lakehouse_helpers.runtime.pages import NOTEBOOKS_DIR

USAGE = 'make run PARAMS="name=value ..."'
EXAMPLE = 'make run NOTEBOOKS=02 PARAMS="mode=live live_seconds=120"'


RANGE = re.compile(r"\[(-?[\d_.]*)\.\.(-?[\d_.]*)\]\s*$")


def range_of(help_: str) -> tuple[float | None, float | None]:
    """(low, high) from a comment ending in `[low..high]`; None for an open end or no range."""
    found = RANGE.search(help_ or "")
    if not found:
        return None, None
    return tuple(float(end.replace("_", "")) if end else None for end in found.groups())


def parameters_source(nb: dict) -> str | None:
    """The source of the first cell tagged `parameters`, or None."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else source
    return None


def parse_parameters(source: str) -> list[dict]:
    """`name`, `type`, `default` (as written) and `help` (the line's comment) of each assignment."""
    tree = ast.parse(source)
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    found = []
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            name, value = stmt.target.id, stmt.value
            type_ = ast.get_source_segment(source, stmt.annotation) or ""
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, value, type_ = stmt.targets[0].id, stmt.value, ""
        else:
            continue
        if not type_:
            try:
                type_ = type(ast.literal_eval(value)).__name__
            except ValueError:
                type_ = ""
        help_ = next((comments[n] for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1) if n in comments),
            "")
        found.append(
            {"name": name, "type": type_, "default": ast.get_source_segment(source, value) or "", "help": help_})
    return found


def notebook_parameters(path: str | Path) -> list[dict]:
    """The parameters a notebook declares, in order: dicts with name, type, default and help."""
    path = Path(path)
    source = parameters_source(json.loads(path.read_text(encoding="utf-8")))
    if source is None:
        return []
    try:
        return parse_parameters(source)
    except SyntaxError as exc:
        raise ValueError(f"{path.name}: the parameters cell is not valid Python: {exc}") from None


def listing(notebooks_dir: Path = NOTEBOOKS_DIR) -> str:
    """Every notebook's parameters, grouped by notebook, with the line that sets them."""
    groups = [(p.stem, notebook_parameters(p)) for p in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))]
    rows = [row for _, params in groups for row in params]
    if not rows:
        return f"No notebook parameters found in {notebooks_dir}."
    width = {key: max(len(r[key]) for r in rows) for key in ("name", "type", "default")}
    lines = [f"Notebook parameters: {USAGE}   e.g. {EXAMPLE}"]
    for stem, params in groups:
        if not params:
            continue
        lines.append(f"  {stem}")
        for r in params:
            lines.append(
                f"    {r['name']:<{width['name']}}  {r['type']:<{width['type']}}  "
                f"{r['default']:<{width['default']}}  {r['help']}".rstrip()
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        print(listing(Path(args[0]) if args else NOTEBOOKS_DIR), flush=True)
    except BrokenPipeError:  # `make help | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
