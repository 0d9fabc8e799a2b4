"""The metastore database: an Apache Derby network server, so every Spark session (notebook
kernels, tests, `make run`) shares one persistent catalog of schemas and tables. This is Spark's
own Hive-compatible metastore; where a Unity Catalog server is available (docker compose,
Databricks) the workbook uses that instead (see settings.catalog_impl)."""

from __future__ import annotations

from pathlib import Path

from lakehouse_helpers.runtime import jvm
from lakehouse_helpers.runtime.services._hints import require_port
from lakehouse_helpers.runtime.settings import Settings

NAME = "metastore"
TITLE = "Metastore database (Derby)"
DATABASE = "metastore_db"


def endpoint(settings: Settings) -> str:
    return f"jdbc:derby://127.0.0.1:{settings.metastore_port}/{DATABASE}"


def bind(settings: Settings) -> tuple[str, int]:
    return "127.0.0.1", settings.metastore_port


def prepare(settings: Settings, base: Path) -> None:
    (base / "data").mkdir(exist_ok=True)


def command(settings: Settings, base: Path, marker: str) -> list[str]:
    return [
        "java", marker, *jvm.options(settings, "metastore", base, {"derby.system.home": base / "data"}),
        "-cp", jvm.classpath(settings, "metastore"),
        "org.apache.derby.drda.NetworkServerControl", "start",
        "-h", "127.0.0.1", "-p", str(settings.metastore_port), "-noSecurityManager",
    ]


def environment(settings: Settings) -> dict[str, str]:
    """Nothing beyond the inherited environment."""
    return {}


def check(settings: Settings) -> str:
    if settings.catalog_impl != "hive":
        return f"not used (catalog_impl={settings.catalog_impl})"
    if not settings.embedded:
        return "embedded in the Spark driver (external profile)"
    host, port = bind(settings)
    require_port(settings, NAME, "The metastore database", (host, port), "METASTORE_PORT")
    return f"listening on {host}:{port}"


def after_start(settings: Settings) -> None:
    return None
