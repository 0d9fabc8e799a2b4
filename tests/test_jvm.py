"""The jar cache and the Spark configuration built from it (no JVM started)."""

from __future__ import annotations

import pytest

from lakehouse_helpers import jvm
from lakehouse_helpers.settings import load_settings
from lakehouse_helpers.spark import spark_conf

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def real_settings():
    s = load_settings()
    try:
        jvm.jars(s, "spark")
    except jvm.JarCacheError as exc:
        pytest.fail(f"jar cache missing: {exc}")
    return s


def test_every_module_resolved(real_settings):
    for module in jvm.MODULES:
        assert jvm.jars(real_settings, module), module


def test_spark_jars_add_only_what_pyspark_lacks(real_settings):
    names = [j.name for j in jvm.spark_jars(real_settings)]
    assert any(n.startswith("delta-spark_4.2_2.13-") for n in names)
    assert any(n.startswith("spark-sql-kafka-0-10_2.13-4.2.0") for n in names)
    assert any(n.startswith("hadoop-aws-3.5.0") for n in names)
    shipped = {jvm._artifact(j) for j in jvm.pyspark_jars_dir().glob("*.jar")}
    assert not {jvm._artifact(j) for j in jvm.spark_jars(real_settings)} & shipped
    # A second Scala library on the driver classpath would break it.
    assert not any(n.startswith("scala-library") for n in names)


def test_hadoop_aws_matches_pyspark_hadoop(real_settings):
    client_api = next(jvm.pyspark_jars_dir().glob("hadoop-client-api-*.jar")).name
    hadoop_version = client_api.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert any(j.name == f"hadoop-aws-{hadoop_version}.jar" for j in jvm.jars(real_settings, "spark"))


def test_missing_cache_says_make_setup(tmp_path):
    s = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    with pytest.raises(jvm.JarCacheError, match="make setup"):
        jvm.jars(s, "kafka")


def test_spark_conf_has_no_runtime_resolution_and_path_style_s3(real_settings):
    conf = spark_conf(real_settings)
    assert "spark.jars.packages" not in conf
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == real_settings.s3_endpoint
    assert conf["spark.sql.catalog.spark_catalog"].endswith("DeltaCatalog")
    assert conf["spark.ui.enabled"] == "false"
    assert int(conf["spark.sql.shuffle.partitions"]) <= 8
