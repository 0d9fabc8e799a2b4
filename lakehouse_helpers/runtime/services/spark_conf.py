"""Every Spark setting the workbook needs: Delta, the Kafka source, s3a, the catalog and lineage,
as a plain dict (testable without a JVM), for the Spark Connect server and for a classic session;
and the scratch folders of Spark's JVMs. Below both `spark` (the session) and the Spark Connect
service, so neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path

from lakehouse_helpers.runtime import jvm, layout
from lakehouse_helpers.runtime.services import metastore
from lakehouse_helpers.runtime.services._process import exists
from lakehouse_helpers.runtime.settings import Settings
from lakehouse_helpers.runtime.storage import s3_connection


def spark_conf(
    settings: Settings, app_name: str = "lakehouse-workbook", scratch: Path | None = None, long_lived: bool = False,
) -> dict[str, str]:
    """Every Spark setting the workbook needs, as a plain dict (testable without a JVM).

    `scratch` is the JVM's temporary folder and Spark's local dir (shuffle, block manager,
    downloaded files): in the state folder, never /tmp, so it is cleaned with the rest.
    `long_lived`: the Spark Connect server's JVM (jvm.JVMS "spark-connect"), else a notebook's
    own (jvm.JVMS "spark-classic")."""
    scratch = (scratch or scratch_dir(settings, "classic")).resolve()
    driver = "spark-connect" if long_lived else "spark-classic"
    conf: dict[str, str] = {
        "spark.app.name": app_name,
        "spark.master": settings.spark_master,
        "spark.driver.memory": jvm.max_heap(settings, driver),
        "spark.jars": ",".join(str(p) for p in jvm.spark_jars(settings)),
        # Jars are explicit and cached: nothing is resolved at run time.
        "spark.jars.ivy": str(settings.state_dir / "ivy"),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # 2 cores and small data: the default 200 shuffle partitions would be 200 tiny tasks.
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.default.parallelism": str(settings.spark_shuffle_partitions),
        "spark.ui.enabled": str(settings.spark_ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.local.dir": str(scratch),
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.warehouse.dir": str(settings.warehouse_dir.resolve()),
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        "spark.sql.debug.maxToStringFields": "200",
        # Small tables: Delta's default 50 partitions to rebuild a snapshot are 50 tiny tasks.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        # Joins broadcast only small tables. Silver's event ids (a million rows) look small
        # from its compressed files, so MERGE would broadcast them and fail for want of heap.
        "spark.sql.autoBroadcastJoinThreshold": str(1024 * 1024),
        # VACUUM lists a table's folder with this many tasks (default 10,000: 45 s for one table).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(settings.spark_shuffle_partitions),
        # Quiet start-up: the log level applies before the session exists.
        # An in-driver Derby (no embedded services) logs beside the driver, not into the cwd.
        "spark.driver.extraJavaOptions": " ".join(jvm.options(settings, driver, properties={
            "java.io.tmpdir": scratch,
            "derby.stream.error.file": jvm.spark_log_file(settings).with_name("derby.log")})),
    }
    conf.update(_s3a_conf(settings))
    conf.update(_catalog_conf(settings))
    conf.update(_lineage_conf(settings))
    return conf


def _lineage_conf(settings: Settings) -> dict[str, str]:
    if not settings.lineage:
        return {}
    # OpenLineage's listener writes one JSON event per line for every read and write Spark runs.
    return {
        "spark.extraListeners": "io.openlineage.spark.agent.OpenLineageSparkListener",
        "spark.openlineage.transport.type": "file",
        "spark.openlineage.transport.location": str(layout.lineage_events(settings)),
        "spark.openlineage.namespace": "lakehouse-workbook",
    }


def jvm_output_file(settings: Settings) -> Path:
    """What an in-process JVM prints itself (start-up warnings, shutdown traces): kept, not shown."""
    return (settings.state_dir / "logs" / "spark-classic.out").resolve()


def scratch_dir(settings: Settings, owner: str) -> Path:
    """Scratch space of one Spark JVM: `connect` (the server) or `classic` (this process)."""
    base = settings.state_dir / "tmp"
    return base / "connect" if owner == "connect" else base / f"classic-{os.getpid()}"


def prune_scratch(settings: Settings) -> list[Path]:
    """Remove the scratch folders of classic Spark processes that no longer run."""
    import shutil

    removed = []
    for folder in (settings.state_dir / "tmp").glob("classic-*"):
        pid = folder.name.removeprefix("classic-")
        if pid.isdigit() and not exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _s3a_conf(settings: Settings) -> dict[str, str]:
    conn = s3_connection(settings)
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": conn.region,
        # Fail within seconds when the server is down instead of retrying for minutes.
        "spark.hadoop.fs.s3a.attempts.maximum": "3",
        "spark.hadoop.fs.s3a.retry.limit": "3",
        "spark.hadoop.fs.s3a.connection.establish.timeout": "15s",  # the minimum s3a accepts
        "spark.hadoop.fs.s3a.connection.timeout": "60s",
    }
    if settings.embedded:
        # The project's own S3 server on this machine: a refused connection means it is down, not
        # a passing network fault. Each s3a call then gives up in about a second instead of ten, and
        # a write that dies with the server fails within seconds (export.py names the server and
        # the fix). Throttling (503) keeps its own, longer retries (fs.s3a.retry.throttle.*).
        conf.update({
            "spark.hadoop.fs.s3a.attempts.maximum": "1",  # the AWS SDK's own retries of one request
            "spark.hadoop.fs.s3a.retry.limit": "2",  # s3a's retries of a failed call
            "spark.hadoop.fs.s3a.retry.interval": "100ms",  # first back-off, doubled each retry
        })
    if conn.endpoint:
        conf.update(
            {
                "spark.hadoop.fs.s3a.endpoint": conn.endpoint,
                "spark.hadoop.fs.s3a.path.style.access": str(conn.path_style).lower(),
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(conn.scheme == "https").lower(),
                # S3-compatible servers: no bucket existence probe against AWS, no CRC headers.
                "spark.hadoop.fs.s3a.bucket.probe": "0",
                "spark.hadoop.fs.s3a.checksum.generation": "false",
            }
        )
    if conn.access_key:
        conf.update(
            {
                "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                "spark.hadoop.fs.s3a.access.key": conn.access_key,
                "spark.hadoop.fs.s3a.secret.key": conn.secret_key,
            }
        )
    return conf


def _catalog_conf(settings: Settings) -> dict[str, str]:
    if settings.catalog_impl == "hive":
        if settings.embedded:
            # The shared Derby server: every session (kernels, tests) sees the same tables.
            derby_client = [str(j) for j in jvm.jars(settings, "spark") if j.name.startswith("derbyclient-")]
            url = metastore.endpoint(settings) + ";create=true"
            driver = "org.apache.derby.jdbc.ClientDriver"
        else:
            # Nothing embedded runs: Derby inside the driver (one Spark process at a time).
            derby_client = []
            url = f"jdbc:derby:;databaseName={(settings.state_dir / 'metastore_db').resolve()};create=true"
            driver = "org.apache.derby.jdbc.EmbeddedDriver"
        conf = {
            "spark.sql.catalogImplementation": "hive",
            "spark.hadoop.javax.jdo.option.ConnectionURL": url,
            "spark.hadoop.javax.jdo.option.ConnectionDriverName": driver,
            "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
            "spark.hadoop.hive.metastore.schema.verification": "false",
            "spark.hadoop.hive.metastore.warehouse.dir": str(settings.warehouse_dir.resolve()),
        }
        if derby_client:
            # Hive's metastore client loads its JDBC driver from the launch classpath only.
            conf["spark.driver.extraClassPath"] = ":".join(derby_client)
            conf.update(_metastore_pool_conf())
        return conf
    if settings.catalog_impl == "unity":
        return _unity_conf(settings)
    return {}


def _metastore_pool_conf() -> dict[str, str]:
    """How the Spark server's Hive client holds its connections to the Derby server.

    Spark replaces Hive's default pool (BoneCP, not shipped) with commons-dbcp, which hands out
    pooled connections unchecked: after the Derby server restarts, the first catalog write met a
    dead socket (Hive's transaction cleanup on DROP has a second DBCP pool that no setting can make
    validate). HikariCP, shipped with Spark, checks a connection on borrow in both pools
    (DataNucleus's and Hive's transaction handler) and replaces a dead one."""
    return {
        "spark.hadoop.datanucleus.connectionPoolingType": "HikariCP",
        # Hikari keeps a pool full (Hive's transaction pools always, DataNucleus's down to minIdle),
        # and Spark runs one metastore call at a time: Hive's default 10 per pool would only hold
        # idle Derby sessions (measured at start: 23 held with size 4 alone, 4 with minIdle 1).
        "spark.hadoop.datanucleus.connectionPool.maxPoolSize": "4",
        "spark.hadoop.datanucleus.connectionPool.minIdle": "1",
        # With the server down Hikari waits this long for a connection (default 30 s) ...
        "spark.hadoop.datanucleus.connectionPool.connectionWaitTimeout": "1000",
        # ... and Hive retries a failed call 10 times, 2 s apart: 20 s before the error. A dead
        # connection no longer needs a retry, so fail after one, fast.
        "spark.hadoop.hive.hmshandler.retry.attempts": "1",
        "spark.hadoop.hive.hmshandler.retry.interval": "200ms",
    }


def _unity_conf(settings: Settings) -> dict[str, str]:
    # Needs the Unity Catalog Spark connector: `make setup UNITY=1` adds it to the jar cache.
    conf = {
        f"spark.sql.catalog.{settings.catalog}": "io.unitycatalog.spark.UCSingleCatalog",
        f"spark.sql.catalog.{settings.catalog}.uri": settings.uc_url,
        "spark.sql.defaultCatalog": settings.catalog,
    }
    if settings.uc_token:
        conf[f"spark.sql.catalog.{settings.catalog}.token"] = settings.uc_token.reveal()
    return conf
