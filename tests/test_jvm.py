"""The jar cache and the Spark configuration built from it (no JVM started). Settings come from
the defaults alone: neither the user's environment nor their `.env` changes what is checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_helpers import jvm
from lakehouse_helpers.settings import load_settings
from lakehouse_helpers.spark import prune_scratch, scratch_dir, spark_conf


@pytest.mark.jars
def test_every_module_resolved(jar_settings):
    for module in jvm.MODULES:
        assert jvm.jars(jar_settings, module), module


@pytest.mark.jars
def test_spark_jars_add_only_what_pyspark_lacks(jar_settings):
    names = [j.name for j in jvm.spark_jars(jar_settings)]
    assert any(n.startswith("delta-spark_4.2_2.13-") for n in names)
    assert any(n.startswith("spark-sql-kafka-0-10_2.13-4.2.0") for n in names)
    assert any(n.startswith("hadoop-aws-3.5.0") for n in names)
    shipped = {jvm.artifact_name(j) for j in jvm.pyspark_jars_dir().glob("*.jar")}
    assert not {jvm.artifact_name(j) for j in jvm.spark_jars(jar_settings)} & shipped
    # A second Scala library on the driver classpath would break it.
    assert not any(n.startswith("scala-library") for n in names)


@pytest.mark.jars
def test_hadoop_aws_matches_pyspark_hadoop(jar_settings):
    client_api = next(jvm.pyspark_jars_dir().glob("hadoop-client-api-*.jar")).name
    hadoop_version = client_api.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert any(j.name == f"hadoop-aws-{hadoop_version}.jar" for j in jvm.jars(jar_settings, "spark"))


@pytest.mark.unit
def test_artifact_name_drops_only_the_version():
    assert jvm.artifact_name(Path("delta-spark_4.2_2.13-4.4.1.jar")) == "delta-spark_4.2_2.13"
    assert jvm.artifact_name(Path("hadoop-aws-3.5.0.jar")) == "hadoop-aws"


@pytest.mark.unit
def test_missing_cache_says_make_setup(tmp_path):
    s = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    with pytest.raises(jvm.JarCacheError, match="make setup"):
        jvm.jars(s, "kafka")


@pytest.mark.jars
def test_spark_conf_has_no_runtime_resolution_and_path_style_s3(jar_settings):
    conf = spark_conf(jar_settings)
    assert "spark.jars.packages" not in conf
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == jar_settings.s3_endpoint
    assert conf["spark.sql.catalog.spark_catalog"].endswith("DeltaCatalog")
    assert conf["spark.ui.enabled"] == "false"
    assert int(conf["spark.sql.shuffle.partitions"]) <= 8


@pytest.mark.jars
def test_spark_scratch_lives_in_the_state_folder_and_dead_processes_leave_none(jar_settings):
    settings = jar_settings
    conf = spark_conf(settings)
    mine = scratch_dir(settings, "classic").resolve()
    assert conf["spark.local.dir"] == str(mine)
    assert f"-Djava.io.tmpdir={mine}" in conf["spark.driver.extraJavaOptions"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = settings.state_dir / "tmp" / f"classic-{dead.stdout.strip()}"
    (stale / "blockmgr-x").mkdir(parents=True)
    mine.mkdir(parents=True)
    assert prune_scratch(settings) == [stale]
    assert not stale.exists() and mine.exists()


@pytest.mark.jars
def test_only_the_long_lived_server_jvm_gets_the_optimizing_compiler(jar_settings):
    from lakehouse_helpers.services.spark_connect import server_conf

    assert "-XX:TieredStopAtLevel=1" in spark_conf(jar_settings)["spark.driver.extraJavaOptions"]
    assert "TieredStopAtLevel" not in server_conf(jar_settings)["spark.driver.extraJavaOptions"]
