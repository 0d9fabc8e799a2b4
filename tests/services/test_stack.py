"""The real local stack end to end: Kafka, the S3 server, Spark with Delta and the catalog.
All services are real processes started by the test session (see conftest.stack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lakehouse_helpers.pipeline.stream import kafka_reader
from lakehouse_helpers.runtime import storage
from lakehouse_helpers.runtime.services import kafka as kafka_service


def produce(settings, topic: str, n: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True)
    futures = [producer.send(topic, key=str(i).encode(), value=json.dumps({"i": i}).encode()) for i in range(n)]
    producer.flush(timeout=30)
    for f in futures:
        f.get(timeout=30)  # raises if any message was not delivered
    producer.close()


def test_kafka_python_writes_n_spark_reads_n(stack, spark, unique_name):
    topic = f"test.{unique_name}"
    kafka_service.ensure_topic(stack, topic)
    produce(stack, topic, 250)
    df = kafka_reader(spark, stack, topic).load()
    assert df.count() == 250
    assert df.selectExpr("count(distinct key)").first()[0] == 250


def test_delta_local_and_on_s3_and_parquet_on_s3(stack, spark, unique_name):
    from pyspark.sql import functions as F

    data = spark.range(1000).select(F.col("id"), (F.col("id") % 7).alias("bucket"),
        F.sha2(F.col("id").cast("string"), 256).alias("h"))
    local_path = str(stack.data_dir / "tests" / unique_name)
    prefix = f"tests/{unique_name}"
    data.write.format("delta").save(local_path)
    data.write.format("delta").save(stack.s3_url(prefix, "delta"))
    data.write.partitionBy("bucket").parquet(stack.s3_url(prefix, "parquet"))

    for frame in (
        spark.read.format("delta").load(local_path),
        spark.read.format("delta").load(stack.s3_url(prefix, "delta")),
        spark.read.parquet(stack.s3_url(prefix, "parquet")).select("id", "bucket", "h"),
    ):
        assert frame.count() == 1000
        assert frame.exceptAll(data).count() == 0 and data.exceptAll(frame).count() == 0

    keys = storage.list_keys(stack, prefix + "/")
    assert any(k.startswith(f"{prefix}/delta/_delta_log/") and k.endswith(".json") for k in keys)
    parquet_parts = [k for k in keys if k.startswith(f"{prefix}/parquet/bucket=") and k.endswith(".parquet")]
    assert {k.split("/")[3] for k in parquet_parts} == {f"bucket={b}" for b in range(7)}


def _count_in_new_session(test_env, table: str) -> int:
    """Read a table by name from a brand-new Spark session in another process."""
    code = (
        "from lakehouse_helpers import get_spark;"
        f"print('COUNT', get_spark().table({table!r}).count())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=test_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return int(next(line for line in out.stdout.splitlines() if line.startswith("COUNT")).split()[1])


def test_catalog_table_by_three_level_name_survives_a_new_session(stack, spark, test_env, unique_name):
    schema = "tests"
    table = stack.table(schema, unique_name)
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {stack.schema(schema)}")
    spark.range(42).write.format("delta").saveAsTable(table)
    spark.sql(f"COMMENT ON TABLE {table} IS 'written by the test suite'")

    listed = [t.name for t in spark.catalog.listTables(f"{stack.schema(schema)}")]
    assert unique_name in listed
    detail = spark.sql(f"DESCRIBE DETAIL {table}").first()
    assert detail["format"] == "delta"
    assert _count_in_new_session(test_env, table) == 42


def test_external_profile_uses_given_endpoints_and_starts_nothing(stack, tmp_path):
    """LAKEHOUSE_PROFILE=external against running services (here: the test stack, as if it
    were a user's own): checks pass with keys from the environment, and Spark writes to S3 and
    to a catalog kept inside the driver, with nothing embedded started."""
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
        "LAKEHOUSE_PROFILE": "external",
        "LAKEHOUSE_STATE_DIR": str(tmp_path / "state"),
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "S3_ENDPOINT_URL": stack.s3_endpoint,
        "S3_BUCKET": stack.s3_bucket,
        "AWS_ACCESS_KEY_ID": stack.s3_access_key.reveal(),
        "AWS_SECRET_ACCESS_KEY": stack.s3_secret_key.reveal(),
    }
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "jars").symlink_to(stack.jars_dir.resolve())
    code = (
        "from lakehouse_helpers import get_spark, load_settings\nfrom lakehouse_helpers.runtime import services\n"
        "from lakehouse_helpers.doctor import run_checks\n"
        "s = load_settings()\n"
        "assert not s.embedded\n"
        "bad = [c for c in run_checks(s) if not c.ok]\n"
        "assert not bad, bad\n"
        "spark = get_spark(s)\n"
        "spark.range(5).write.format('delta').mode('overwrite').save(s.s3_url('tests/external'))\n"
        "spark.sql('CREATE SCHEMA IF NOT EXISTS ' + s.schema('ext'))\n"
        "spark.range(3).write.format('delta').mode('overwrite').saveAsTable(s.table('ext', 't'))\n"
        "print('COUNTS', spark.read.format('delta').load(s.s3_url('tests/external')).count(), "
        "spark.table(s.table('ext', 't')).count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "COUNTS 5 3" in out.stdout
    assert not (tmp_path / "state" / "services").exists()  # nothing embedded was started
