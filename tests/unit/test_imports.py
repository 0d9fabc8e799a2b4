"""The package's import graph, read from the code (imports inside functions count too): no module
reaches itself through its imports, and only the tools on top (the notebook helpers, the bench, the
deploy, the command line) import the notebook helpers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lakehouse_helpers"
TOP = tuple(f"lakehouse_helpers.{m}" for m in ("notebook", "bench", "deploy", "__main__"))


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules `name` imports (`from . import x` is module x, not the package)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - max(node.level - 1, 0)] if node.level else []
            target = ".".join(parts + ([node.module] if node.module else []))
            subs = {f"{target}.{a.name}" for a in node.names} & known.keys()
            found |= subs or ({target} & known.keys())
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & known.keys()
    return found - {name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around (Tarjan's components)."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_module_imports_itself_around_a_loop():
    assert cycles(graph()) == []


def test_the_check_sees_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_tools_on_top_import_the_notebook_helpers():
    upward = sorted(f"{name} imports {dep}" for name, deps in graph().items() for dep in deps
                    if dep.startswith("lakehouse_helpers.notebook") and not name.startswith(TOP))
    assert upward == []


# The package's floors, bottom up, each a folder: a module imports only from its own floor or a
# lower one. The tools on top are the notebook helpers, the bench, the deploy and the command line.
FLOORS = ("runtime", "pipeline", "govern", "tools")
TOOLS = ("notebook", "bench", "deploy", "doctor", "reset", "__main__")


def floor_of(module: str) -> int:
    part = module.removeprefix("lakehouse_helpers").lstrip(".").split(".")[0]
    if not part:
        return 0  # the package's __init__: load_settings and a lazy get_spark
    if part in TOOLS:
        return FLOORS.index("tools")
    assert part in FLOORS, f"{module} is on no floor: move it into one of {FLOORS[:-1]} or add it to TOOLS"
    return FLOORS.index(part)


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({FLOORS[floor_of(m)]}) imports {d} ({FLOORS[floor_of(d)]})"
                  for m, deps in g.items() for d in deps if floor_of(d) > floor_of(m))


def test_no_module_imports_from_a_higher_floor():
    assert upward_imports(graph()) == []


def test_the_floor_check_sees_an_upward_import():
    low, high = "lakehouse_helpers.runtime.settings", "lakehouse_helpers.pipeline.medallion"
    assert upward_imports({low: {high}, high: set()}) == [f"{low} (runtime) imports {high} (pipeline)"]


def test_the_top_level_holds_only_the_floors_and_the_tools():
    top = {p.stem for p in PACKAGE.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert top == {"__init__", *FLOORS[:-1], *TOOLS}


def test_the_readme_lists_every_module_on_its_floor():
    """The contributors' layout (docs/contributing.md) names each floor and its modules, as the
    folders hold them."""
    text = (PACKAGE.parent / "docs" / "contributing.md").read_text()
    layout = text[text.index("## Layout"):text.index("## Tests")]
    for floor in (*FLOORS[:-1], "tools"):
        # The floor's line and its continuation lines (indented past the floor names).
        found = re.search(rf"^  {floor}/?:(.*(?:\n {{5,}}\S.*)*)", layout, re.M)
        assert found, f"the layout in docs/contributing.md has no {floor} line"
        text_of_floor = re.sub(r"\([^)]*\)", "", " ".join(found.group(1).split()))
        listed = sorted(n.strip().split("/")[0] for n in text_of_floor.split(",") if n.strip())
        folder = PACKAGE / floor
        on_disk = sorted(TOOLS) if floor == "tools" else sorted(
            p.stem for p in folder.iterdir()
            if p.stem != "__init__" and (p.suffix == ".py" or (p / "__init__.py").exists()))
        assert listed == on_disk, floor
