"""The jar cache and the Spark configuration built from it (no JVM started). Settings come from
the defaults alone: neither the user's environment nor their `.env` changes what is checked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lakehouse_helpers.runtime import jvm
from lakehouse_helpers.runtime.services.spark_conf import prune_scratch, scratch_dir, spark_conf


def test_every_module_resolved(jar_settings):
    for module in jvm.MODULES:
        assert jvm.jars(jar_settings, module), module


def test_spark_jars_add_only_what_pyspark_lacks(jar_settings):
    names = [j.name for j in jvm.spark_jars(jar_settings)]
    assert any(n.startswith("delta-spark_4.2_2.13-") for n in names)
    assert any(n.startswith("spark-sql-kafka-0-10_2.13-4.2.0") for n in names)
    assert any(n.startswith("hadoop-aws-3.5.0") for n in names)
    shipped = {jvm.artifact_name(j) for j in jvm.pyspark_jars_dir().glob("*.jar")}
    assert not {jvm.artifact_name(j) for j in jvm.spark_jars(jar_settings)} & shipped
    # A second Scala library on the driver classpath would break it.
    assert not any(n.startswith("scala-library") for n in names)


def test_hadoop_aws_matches_pyspark_hadoop(jar_settings):
    client_api = next(jvm.pyspark_jars_dir().glob("hadoop-client-api-*.jar")).name
    hadoop_version = client_api.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert any(j.name == f"hadoop-aws-{hadoop_version}.jar" for j in jvm.jars(jar_settings, "spark"))


def test_spark_conf_has_no_runtime_resolution_and_path_style_s3(jar_settings):
    conf = spark_conf(jar_settings)
    assert "spark.jars.packages" not in conf
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == jar_settings.s3_endpoint
    assert conf["spark.sql.catalog.spark_catalog"].endswith("DeltaCatalog")
    assert conf["spark.ui.enabled"] == "false"
    assert int(conf["spark.sql.shuffle.partitions"]) <= 8


def test_spark_scratch_lives_in_the_state_folder_and_dead_processes_leave_none(jar_settings):
    settings = jar_settings
    conf = spark_conf(settings)
    mine = scratch_dir(settings, "classic").resolve()
    assert conf["spark.local.dir"] == str(mine)
    assert f"-Djava.io.tmpdir={mine}" in conf["spark.driver.extraJavaOptions"]
    derby_log = settings.state_dir.resolve() / "logs" / "derby.log"  # an in-driver Derby's, not ./derby.log
    assert f"-Dderby.stream.error.file={derby_log}" in conf["spark.driver.extraJavaOptions"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = settings.state_dir / "tmp" / f"classic-{dead.stdout.strip()}"
    (stale / "blockmgr-x").mkdir(parents=True)
    mine.mkdir(parents=True)
    assert prune_scratch(settings) == [stale]
    assert not stale.exists() and mine.exists()


def test_only_the_server_jvm_may_get_the_optimizing_compiler_and_only_when_asked(jar_settings):
    from lakehouse_helpers.runtime.services.spark_connect import server_conf

    full = jar_settings.replace(spark_server_jit="full")
    assert "-XX:TieredStopAtLevel=1" in spark_conf(full)["spark.driver.extraJavaOptions"]
    assert "TieredStopAtLevel" not in server_conf(full)["spark.driver.extraJavaOptions"]
    assert "-XX:TieredStopAtLevel=1" in server_conf(jar_settings)["spark.driver.extraJavaOptions"]  # quick: the default


# The JVM options of every JVM the workbook starts, pinned: a change here changes how a service
# starts (memory on a laptop, start-up time on 2 cores), so it must be a deliberate one.
QUICK = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]


def test_kafka_command_pinned(jar_settings, tmp_path):
    from lakehouse_helpers.runtime.services import kafka

    assert kafka.command(jar_settings, tmp_path / "svc", "-Dmark") == [
        "java", "-Dmark", "-Xmx384m", "-Xms64m", *QUICK, "-Djava.awt.headless=true",  # tier: compared, not run
        "-Dlog4j2.configurationFile=log4j2.properties", "-cp", f"{jar_settings.state_dir}/jars/kafka/*",
        "kafka.Kafka", "server.properties",
    ]


def test_s3proxy_command_pinned(jar_settings, tmp_path):
    from lakehouse_helpers.runtime.services import s3

    jar = jvm.jars(jar_settings, "s3proxy")[0]
    assert s3.command(jar_settings, tmp_path / "svc", "-Dmark") == [
        "java", "-Dmark", "-Xmx384m", "-Xms64m", *QUICK, "-DLOG_LEVEL=warn",  # tier: compared, not run
        "-jar", str(jar), "--properties", "s3proxy.conf",
    ]


def test_metastore_command_pinned(jar_settings, tmp_path):
    from lakehouse_helpers.runtime.services import metastore

    base = tmp_path / "svc"
    assert metastore.command(jar_settings, base, "-Dmark") == [
        "java", "-Dmark", "-Xmx256m", "-Xms32m", *QUICK,  # tier: compared, not run
        f"-Dderby.system.home={base}/data", f"-Dderby.stream.error.file={base}/derby.log",
        "-cp", f"{jar_settings.state_dir}/jars/metastore/*",
        "org.apache.derby.drda.NetworkServerControl", "start", "-h", "127.0.0.1", "-p", "1527", "-noSecurityManager",
    ]


def test_spark_launcher_options_pinned(jar_settings):
    # Lives half a second: the quick-start flags cut its CPU time by about 40 %.
    assert jvm.options(jar_settings, "spark-launcher") == ["-Xmx128m", *QUICK]


@pytest.mark.parametrize(("long_lived", "jit", "compiler"), [
    (True, "quick", ["-XX:TieredStopAtLevel=1"]), (True, "full", []), (False, "full", ["-XX:TieredStopAtLevel=1"])])
def test_spark_driver_options_pinned(jar_settings, tmp_path, long_lived, jit, compiler):
    settings = jar_settings.replace(spark_server_jit=jit)
    conf = spark_conf(settings, scratch=tmp_path / "scratch", long_lived=long_lived)
    log = jar_settings.state_dir / "logs" / "spark-driver.log"
    assert conf["spark.driver.extraJavaOptions"].split(" ") == [
        *compiler, "-XX:ReservedCodeCacheSize=160m", f"-Djava.io.tmpdir={tmp_path}/scratch",
        f"-Dderby.stream.error.file={log.with_name('derby.log')}",
        f"-Dlog4j2.configurationFile={jvm.LOG4J2}", f"-Dlakehouse.log.file={log}",
    ]
    # The heap goes through spark.driver.memory: spark-submit refuses -Xmx among the options.
    assert conf["spark.driver.memory"] == "2g"


def test_heaps_follow_their_settings(jar_settings, tmp_path):
    tuned = jar_settings.replace(service_heap="512m", spark_driver_memory="3g")
    for name in ("kafka", "s3proxy"):
        assert jvm.options(tuned, name)[0] == "-Xmx512m", name
    assert jvm.options(tuned, "metastore", tmp_path)[0] == "-Xmx256m"  # fixed: see jvm.JVMS
    assert spark_conf(tuned, scratch=tmp_path)["spark.driver.memory"] == "3g"
    assert jvm.LOG4J2.is_file()
