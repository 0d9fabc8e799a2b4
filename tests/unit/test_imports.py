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


# The package's floors, bottom up: a module imports only from its own floor or a lower one. The
# README's "Layout" section describes the same four parts.
LAYERS = {
    "runtime": ("settings", "widgets", "jobparams", "errors", "fds", "pyversion", "layout", "storage", "ledgers",
                "jvm", "services", "spark", "contract"),
    "pipeline": ("events", "produce", "stream", "stream_owner", "export", "quality", "drops", "autoloader", "bronze",
                 "expectations", "medallion", "truth"),
    "governance": ("governance", "unity", "access", "catalog", "lineage"),
    "tools": ("notebook", "bench", "deploy", "doctor", "reset", "__main__"),
}


def layer_of(module: str) -> int:
    part = module.removeprefix("lakehouse_helpers").lstrip(".").split(".")[0]
    if not part:
        return 0  # the package's __init__: settings and get_spark, re-exported lazily
    floors = [i for i, names in enumerate(LAYERS.values()) if part in names]
    assert floors, f"{module} is on no floor: add it to LAYERS (and to the README's layout)"
    return floors[0]


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    names = list(LAYERS)
    return sorted(f"{m} ({names[layer_of(m)]}) imports {d} ({names[layer_of(d)]})"
                  for m, deps in g.items() for d in deps if layer_of(d) > layer_of(m))


def test_no_module_imports_from_a_higher_floor():
    assert upward_imports(graph()) == []


def test_the_floor_check_sees_an_upward_import():
    fake = {"lakehouse_helpers.settings": {"lakehouse_helpers.medallion"}, "lakehouse_helpers.medallion": set()}
    assert upward_imports(fake) == [
        "lakehouse_helpers.settings (runtime) imports lakehouse_helpers.medallion (pipeline)"]


def test_the_readme_lists_every_module_on_its_floor():
    """The README's layout names each floor and its modules: the same lists as LAYERS, and every
    module of the package is on one of them."""
    text = (PACKAGE.parent / "README.md").read_text()
    layout = text[text.index("## Layout"):text.index("## Tests")]
    for floor, names in LAYERS.items():
        # The floor's line and its continuation lines (indented past the floor names).
        found = re.search(rf"^  {floor}:(.*(?:\n {{5,}}\S.*)*)", layout, re.M)
        assert found, f"the README's layout has no {floor} line"
        text_of_floor = re.sub(r"\([^)]*\)", "", " ".join(found.group(1).split()))
        listed = [n.strip().split("/")[0] for n in text_of_floor.split(",") if n.strip()]
        assert sorted(listed) == sorted(names), floor
    on_disk = {".".join(p.relative_to(PACKAGE).with_suffix("").parts).split(".")[0]
               for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert on_disk <= {n for names in LAYERS.values() for n in names}
