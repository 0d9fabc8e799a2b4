"""The README is a front door (short, every link resolves), and the guides it links to resolve too."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _targets(path: Path) -> list[str]:
    return [t.split("#", 1)[0] for t in LINK.findall(path.read_text())
            if not t.startswith(("http://", "https://", "mailto:", "#"))]


def test_the_readme_is_short_and_links_only_to_files_that_exist():
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) < 150
    assert {"docs/running.md", "docs/contributing.md", "notebooks/README.md"} <= set(_targets(readme))
    for path in [readme, ROOT / "notebooks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        missing = [t for t in _targets(path) if not (path.parent / t).exists()]
        assert missing == [], f"{path.relative_to(ROOT)} links to what does not exist: {missing}"


def test_the_start_page_lists_every_notebook_in_order():
    page = (ROOT / "notebooks" / "README.md").read_text()
    linked = [t for t in _targets(ROOT / "notebooks" / "README.md") if t.endswith(".ipynb")]
    assert linked == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), page
