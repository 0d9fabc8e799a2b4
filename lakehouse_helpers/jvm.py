"""The Maven-resolved jar cache: one folder (a classpath) per module of `jvm/pom.xml`.

`make setup` fills it once; afterwards Spark and the services start offline from explicit jars.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .settings import Settings

MODULES = ("spark", "kafka", "s3proxy", "metastore")
POM = Path(__file__).resolve().parent / "jvm" / "pom.xml"
_VERSION = re.compile(r"-\d[\w.+-]*\.jar$")


class JarCacheError(RuntimeError):
    """The jar cache is missing or incomplete."""


def module_dir(settings: Settings, module: str) -> Path:
    if module not in MODULES:
        raise ValueError(f"unknown jar module {module!r}; one of {MODULES}")
    return settings.jars_dir / module


def jars(settings: Settings, module: str) -> list[Path]:
    folder = module_dir(settings, module)
    found = sorted(folder.glob("*.jar"))
    if not found:
        raise JarCacheError(
            f"No jars for '{module}' in {folder}. Resolve them once with `make setup` "
            f"(runs Maven on {POM.relative_to(POM.parents[2])})."
        )
    return found


def classpath(settings: Settings, module: str) -> str:
    return str(module_dir(settings, module) / "*") if jars(settings, module) else ""


def artifact_name(jar: Path) -> str:
    """The jar's name without its version: two versions of one artifact share it."""
    return _VERSION.sub("", jar.name)


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def spark_jars(settings: Settings) -> list[Path]:
    """Extra jars for Spark, minus any artifact pyspark already ships (another version of
    scala-library or jackson on the classpath would break the driver)."""
    shipped = {artifact_name(j) for j in pyspark_jars_dir().glob("*.jar")}
    return [j for j in jars(settings, "spark") if artifact_name(j) not in shipped]


def resolve(settings: Settings, quiet: bool = True) -> None:
    """Run Maven to fill the cache (what `make setup` does)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarCacheError("Maven (`mvn`) is not on PATH: install it or `conda env create -f environment.yml`.")
    cmd = [mvn, "-B", "-f", str(POM), f"-Djars.dir={settings.jars_dir.resolve()}", "package"]
    if quiet:
        cmd.insert(1, "-q")
    subprocess.run(cmd, check=True)


def cache_size_bytes(settings: Settings) -> int:
    return sum(p.stat().st_size for p in settings.jars_dir.rglob("*.jar"))
