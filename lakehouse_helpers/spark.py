"""One SparkSession factory: Delta, the Kafka source, s3a and the catalog, configured once.

Notebooks never spell out a jar path or an s3a key: everything comes from `Settings`.
Start-up is paid once per process; later calls return the running session.
"""

from __future__ import annotations

import contextlib
import os

from . import layout
from .fds import output_to
from .services.spark_conf import jvm_output_file, prune_scratch, scratch_dir, spark_conf
from .settings import Settings, load_settings


def get_spark(settings: Settings | None = None, app_name: str = "lakehouse-workbook"):
    """The workbook's SparkSession, reused by every call in the process.

    connect (default): a thin client of the warm Spark Connect server (an embedded service, or
    the server at `spark_remote`); classic: Spark inside this process; databricks profile:
    the runtime's own session."""
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    if settings.profile == "databricks":
        # Inside a Databricks runtime the session, Delta and Unity Catalog already exist.
        active = SparkSession.getActiveSession()
        return active if active is not None else SparkSession.builder.getOrCreate()
    if settings.uses_connect:
        return connect(settings)
    return _classic(settings, app_name)


def connect(settings: Settings):
    """This process's Spark Connect session (created on first use)."""
    from pyspark.sql import SparkSession

    from . import services

    if not settings.spark_remote:
        services.require(settings, "spark")  # names the service and `make services-up` if down
    url = settings.spark_remote or services.spark_connect.endpoint(settings)
    if settings.spark_connect_token:
        # The client reads it from the environment: it never appears in a URL, a log or a notebook.
        os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = settings.spark_connect_token.reveal()
    session = SparkSession.builder.remote(url).getOrCreate()
    try:
        _ = session.version  # one round trip: a server restarted since then no longer knows this session
    except Exception:  # any failure means: start a new session
        with contextlib.suppress(Exception):
            session.stop()
        session = SparkSession.builder.remote(url).create()
    return session


def _classic(settings: Settings, app_name: str):
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Inherited from a Spark Connect client (a kernel started by one): pyspark would go remote.
    for var in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE"):
        os.environ.pop(var, None)
    if settings.lineage:
        layout.lineage_events(settings).parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", _python())
    # Everything is on loopback; this also stops the "hostname resolves to loopback" warning.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    prune_scratch(settings)
    scratch = scratch_dir(settings, "classic")
    scratch.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_conf(settings, app_name, scratch).items():
        builder = builder.config(key, value)
    if settings.catalog_impl == "hive":
        builder = builder.enableHiveSupport()
    with output_to(jvm_output_file(settings)):  # start-up warnings, traces at exit
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark_log_level)
    return spark


def _python() -> str:
    import sys

    return sys.executable


def stop_spark() -> None:
    """Stop this process's session (in connect mode: release it on the server, if still up)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None:
        return
    client = getattr(active, "client", None)
    if client is not None and not _reachable(client):
        # The server is gone: releasing the session would retry for minutes. Drop it here only.
        active.release_session_on_close = False
    active.stop()


def _reachable(client) -> bool:
    from .services._process import port_open

    host, _, port = client._builder.endpoint.rpartition(":")
    return port_open(host.strip("[]"), int(port), 2.0)
