"""The helpers as a wheel for a Databricks cluster, built with the standard library only.

    python -m lakehouse_helpers.deploy.wheel dist/     # what the bundle's artifact build runs

Why not `pip wheel .`: the project's metadata pins pyspark, pandas, numpy, delta-spark and
jupyterlab for the laptop. A cluster library that declares them makes the cluster pip-install a
second pyspark over the Databricks Runtime's own, which breaks the runtime. The runtime already
has what the job's notebooks import (pyspark, pandas, pyarrow, numpy, matplotlib, boto3), so this
wheel carries the package and its data files and declares no dependencies. It also builds offline
with no build backend installed, and the same sources give the same bytes (fixed timestamps), so a
second deploy uploads an identical file.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "lakehouse_helpers"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: reproducible bytes


def project_metadata(root: Path = ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def wheel_name(root: Path = ROOT) -> str:
    meta = project_metadata(root)
    return f"{meta['name'].replace('-', '_')}-{meta['version']}-py3-none-any.whl"


def _package_files(root: Path) -> list[Path]:
    files = [p for p in (root / PACKAGE).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(out_dir: Path, root: Path = ROOT) -> Path:
    """Write the wheel into `out_dir` (replacing an older build) and return its path."""
    meta = project_metadata(root)
    name = wheel_name(root)
    dist_info = name.split("-py3-")[0] + ".dist-info"
    entries: list[tuple[str, bytes]] = [(p.relative_to(root).as_posix(), p.read_bytes()) for p in _package_files(root)]
    metadata = (f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
                f"Summary: {meta.get('description', '')}\nRequires-Python: {meta.get('requires-python', '')}\n")
    wheel = "Wheel-Version: 1.0\nGenerator: lakehouse_helpers.deploy.wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entries += [(f"{dist_info}/METADATA", metadata.encode()), (f"{dist_info}/WHEEL", wheel.encode())]
    record = "".join(f"{path},{_digest(data)},{len(data)}\n" for path, data in entries) + f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    tmp.replace(target)  # a reader never sees half a wheel
    return target


if __name__ == "__main__":
    print(build_wheel(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")))
