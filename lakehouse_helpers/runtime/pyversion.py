"""The Python versions the workbook supports, stated once: `requires-python` in pyproject.toml.

The Makefile runs this file as a script with the Python it found, before anything is installed
(so: standard library only, and syntax an older Python can still parse to say it is too old);
the doctor imports it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
FIX = "Install it or use conda: conda env create -f environment.yml"


def requirement() -> str:
    """`requires-python` of the checkout's pyproject.toml, else of the installed package."""
    if PYPROJECT.exists():
        found = re.search(r'^requires-python\s*=\s*"([^"]+)"', PYPROJECT.read_text(), re.M)
        if found:
            return found.group(1)
    from importlib.metadata import metadata

    return metadata("lakehouse-workbook")["Requires-Python"]


def _bound(spec: str, op: str) -> tuple:
    found = re.search(op + r"\s*(\d+)\.(\d+)", spec)
    if not found:
        raise ValueError(f"requires-python {spec!r} has no {op}X.Y bound")
    return int(found.group(1)), int(found.group(2))


def supported_versions(spec: str | None = None) -> list[str]:
    """`>=3.11,<3.13` -> ['3.11', '3.12']."""
    spec = spec or requirement()
    (major, low), (_, high) = _bound(spec, ">="), _bound(spec, "<")
    return [f"{major}.{minor}" for minor in range(low, high)]


def is_supported(version: tuple = tuple(sys.version_info[:2]), spec: str | None = None) -> bool:
    return "{}.{}".format(*version[:2]) in supported_versions(spec)


def needed(spec: str | None = None) -> str:
    """'Python 3.11 or 3.12'."""
    versions = supported_versions(spec)
    return "Python " + (" or ".join(versions) if len(versions) < 3 else f"{versions[0]} to {versions[-1]}")


if __name__ == "__main__":
    if not is_supported():
        sys.exit(f"{needed()} is needed, found {sys.version.split()[0]} at {sys.executable}. {FIX}")
