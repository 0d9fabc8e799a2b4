"""One SparkSession factory: Delta, the Kafka source, s3a and the catalog, configured once.

Notebooks never spell out a jar path or an s3a key: everything comes from `Settings`.
Start-up is paid once per process; later calls return the running session.
"""

from __future__ import annotations

import contextlib
import os

from lakehouse_helpers.runtime import errors, layout
from lakehouse_helpers.runtime.fds import output_to
from lakehouse_helpers.runtime.services.spark_conf import jvm_output_file, prune_scratch, scratch_dir, spark_conf
from lakehouse_helpers.runtime.settings import Settings, load_settings


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
    """This process's Spark Connect session (created on first use; again after the server restarted)."""
    from pyspark.sql.connect.session import SparkSession

    from lakehouse_helpers.runtime import services

    if not settings.spark_remote:
        services.require(settings, "spark")  # names the service and `make services-up` if down
    url = settings.spark_remote or services.spark_connect.endpoint(settings)
    # What pyspark's builder.remote() sets: pyspark.sql.functions (F.col ...) build Spark Connect
    # expressions only when it is there.
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    session = SparkSession.builder.channelBuilder(channel(settings, url)).getOrCreate()
    try:
        _ = session.version  # one round trip: a server restarted since then no longer knows this session
    except Exception as exc:
        with contextlib.suppress(Exception):
            session.stop()  # not kept as this process's session, whatever follows
        if errors.refused_token(exc):
            raise _refused(url) from None
        if not errors.lost_session(exc):
            raise  # the server answered with another failure: the caller sees it as it is
        session = SparkSession.builder.channelBuilder(channel(settings, url)).create()
        _ = session.version  # a second failure is the server's answer: it reaches the caller
    name_the_metastore(session.client, settings)
    return session


def channel(settings: Settings, url: str, user: str | None = None, session_id: str | None = None):
    """How a client reaches the server: the token set here, in memory (not in the environment, a URL
    or a log); `user` becomes the session's user_id (current_user() with the workbook's server);
    `session_id` attaches to an existing session instead of starting one."""
    from pyspark.sql.connect.client import DefaultChannelBuilder

    builder = DefaultChannelBuilder(url)
    if settings.spark_connect_token:
        builder.set(DefaultChannelBuilder.PARAM_TOKEN, settings.spark_connect_token.reveal())
    if user:
        builder.set(DefaultChannelBuilder.PARAM_USER_ID, user)
    if session_id:
        builder.set(DefaultChannelBuilder.PARAM_SESSION_ID, session_id)
    return builder


def name_the_metastore(client, settings: Settings) -> None:
    """Make `client` (a Spark Connect client) raise the workbook's ServiceError, naming the
    metastore, its address and the fix, when a catalog call fails because the metastore is down:
    Hive's own message names neither the service nor what to do. Other errors pass unchanged.

    pyspark has no public hook for errors; every failed call of the client goes through its
    `_handle_error` (pyspark is pinned, and tests/unit/test_spark_errors.py covers the hook)."""
    if getattr(client, "_names_the_metastore", False):
        return
    handle = client._handle_error

    def handle_error(error: Exception):
        try:
            handle(error)
        except Exception as exc:
            down = metastore_down(settings, exc)
            if down is None:
                raise
            raise down from exc

    client._handle_error = handle_error
    client._names_the_metastore = True


def metastore_down(settings: Settings, exc: BaseException):
    """The metastore's ServiceError when `exc` is a failed catalog call and the metastore's
    check fails now (a port probe, milliseconds), else None."""
    from lakehouse_helpers.runtime import services

    if not errors.hive_catalog_failure(exc):
        return None
    try:
        services.check(settings, "metastore")
    except services.ServiceError as down:
        return services.ServiceError(f"{down.problem} The catalog call failed because of it.",
                                     service=down.service, address=down.address, fix=down.fix)
    return None


def _refused(url: str):
    """The ServiceError for a server that refused this client's token, naming the fix."""
    from lakehouse_helpers.runtime.services import ServiceError

    return ServiceError(
        f"The Spark Connect server at {url} refused this client's token.", service="spark", address=url,
        fix="The embedded server's token is generated into the state folder and read from there; for a server of "
            "your own, set SPARK_CONNECT_AUTHENTICATE_TOKEN (environment or .env) to its token.")


def compact_lineage(settings: Settings) -> tuple[int, int]:
    """Fold the lineage events written so far into the compacted file, with Spark running: the
    processes that may be appending to the file (this state folder's Spark Connect server and
    classic Spark processes) are waited for (see `lineage_log.compact`). Sizes before and after."""
    from lakehouse_helpers.runtime import services
    from lakehouse_helpers.runtime.lineage_log import compact

    writers = [pid for pid in (services.pid_of(settings, "spark"),) if pid is not None]
    writers += [int(d.name.split("-", 1)[1]) for d in (settings.state_dir / "tmp").glob("classic-*")
                if d.name.split("-", 1)[1].isdigit()]
    return compact(layout.lineage_events(settings), writers)


def _compact_lineage_if_alone(settings: Settings) -> None:
    """Fold the lineage events into the compacted file when no other Spark can be writing them:
    no other classic process alive (prune_scratch left no folder of one) and no Spark Connect
    server listening (the server compacts them itself when it starts)."""
    from lakehouse_helpers.runtime.lineage_log import compact
    from lakehouse_helpers.runtime.services._process import port_open

    if not settings.lineage or any((settings.state_dir / "tmp").glob("classic-*")):
        return
    if not port_open("127.0.0.1", settings.spark_connect_port, settings.connect_timeout_s):
        compact(layout.lineage_events(settings))


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
    _compact_lineage_if_alone(settings)
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
    from lakehouse_helpers.runtime.services._process import port_open

    host, _, port = client._builder.endpoint.rpartition(":")
    return port_open(host.strip("[]"), int(port), 2.0)
