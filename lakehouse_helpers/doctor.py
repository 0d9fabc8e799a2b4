"""Checks every dependency and service, one line each, with the fix for each failure.

`python -m lakehouse_helpers doctor` prints them; notebook 00 shows them as a table.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from lakehouse_helpers.runtime import jvm, pyversion, services
from lakehouse_helpers.runtime.settings import Settings

# Distribution name -> pinned version, read from the installed package metadata of this project.
PACKAGES = ("pyspark", "delta-spark", "kafka-python", "boto3", "pandas", "papermill", "nbval", "matplotlib",
            "unitycatalog-client")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _pins() -> dict[str, str]:
    try:
        requires = md.requires("lakehouse-workbook") or []
    except md.PackageNotFoundError:
        return {}
    pins = {}
    for req in requires:
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^;\s]+)", req)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def check_python() -> list[Check]:
    out = [
        Check("python", pyversion.is_supported(), sys.version.split()[0],
            f"{pyversion.needed()} is needed. {pyversion.FIX}")
    ]
    pins = _pins()
    for name in PACKAGES:
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            out.append(Check(f"package {name}", False, "not installed", "run `make setup`"))
            continue
        want = pins.get(name)
        ok = want is None or want == version
        out.append(
            Check(f"package {name}", ok, version + ("" if ok else f" (pinned {want})"), "run `make setup`")
        )
    return out


def java_version() -> str | None:
    java = shutil.which("java")
    if java is None:
        return None
    text = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "([^"]+)"', text)
    return m.group(1) if m else None


def check_java() -> Check:
    version = java_version()
    if version is None:
        return Check("java", False, "not found on PATH", "install a JDK 17 (or conda: environment.yml)")
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    return Check("java", major >= 17, version, "Java 17 or newer is needed: set JAVA_HOME / PATH to a JDK 17")


def check_jars(settings: Settings) -> list[Check]:
    out = []
    for module in jvm.MODULES:
        try:
            jars = jvm.jars(settings, module)
            size = sum(j.stat().st_size for j in jars) / 1e6
            out.append(Check(f"jars {module}", True, f"{len(jars)} jars, {size:.0f} MB"))
        except jvm.JarCacheError as exc:
            out.append(Check(f"jars {module}", False, f"missing in {exc.folder}", exc.fix))
    return out


def check_services(settings: Settings) -> list[Check]:
    out = []
    for name, svc in services.SERVICES.items():
        try:
            detail = svc.check(settings)
            out.append(Check(f"{name} ({svc.endpoint(settings)})", True, detail))
        except services.ServiceError as exc:
            # No final period: notebook 00 writes "<detail>. Fix: <fix>".
            out.append(Check(f"{name} ({svc.endpoint(settings)})", False, exc.problem.removesuffix("."), exc.fix))
    return out


def check_catalog(settings: Settings) -> Check:
    name = f"catalog '{settings.spark_catalog_name}' ({settings.catalog_impl})"
    if settings.catalog_impl == "hive":
        return Check(name, True, "Spark metastore on the embedded Derby server")
    if settings.catalog_impl == "unity":
        return check_unity(settings, name)
    ok = bool(settings.databricks_host and settings.databricks_token)
    return Check(
        name, ok, "workspace credentials set" if ok else "DATABRICKS_HOST / DATABRICKS_TOKEN not set",
        "export DATABRICKS_HOST and DATABRICKS_TOKEN (or put them in .env); never pass them as parameters",
    )


# Unity Catalog answer -> what to do about it.
_UNITY_FIXES = {
    None: "start the Unity Catalog server (docker compose ... up -d unitycatalog) or fix UC_URL",
    401: "set UC_TOKEN to a token this server accepts (environment or .env)",
    403: "the UC_TOKEN user lacks privileges on this server: ask its admin, or use another token",
}


def check_unity(settings: Settings, name: str) -> Check:
    """The Unity Catalog server answers (with this token) and holds the workbook's catalog."""
    from lakehouse_helpers.govern import unity

    try:
        info = unity.get_catalog(settings)
    except unity.UnityCatalogError as exc:
        if exc.status == 404:
            return Check(name, False, f"server up at {settings.uc_url}, no catalog '{settings.catalog}'",
                         "create it: docker compose ... up uc-init, "
                         "or lakehouse_helpers.govern.unity.ensure_catalog(settings)")
        fix = _UNITY_FIXES.get(exc.status, f"the server at UC_URL answered HTTP {exc.status}: check its log")
        return Check(name, False, str(exc), fix)
    return Check(name, True, f"server up at {settings.uc_url}, catalog '{info.get('name')}' present")


def run_checks(settings: Settings) -> list[Check]:
    checks = check_python() + [check_java()]
    if settings.profile != "databricks":
        checks += check_jars(settings) + check_services(settings)
    checks.append(check_catalog(settings))
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'OK  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    return "\n".join(lines)


def as_frame(checks: list[Check]):
    import pandas as pd

    return pd.DataFrame(
        [{"check": c.name, "status": "OK" if c.ok else "FAIL", "detail": c.detail, "fix": "" if c.ok else c.fix}
            for c in checks]
    )
