"""The real local stack end to end: Kafka, the S3 server, Spark with Delta and the catalog.
All services are real processes started by the test session (see conftest.stack)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lakehouse_helpers import storage
from lakehouse_helpers.services import kafka as kafka_service

pytestmark = [pytest.mark.services, pytest.mark.spark]


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
    df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    assert df.count() == 250
    assert df.selectExpr("count(distinct key)").first()[0] == 250


def test_delta_local_and_on_s3_and_parquet_on_s3(stack, spark, unique_name):
    from pyspark.sql import functions as F

    data = spark.range(1000).select(F.col("id"), (F.col("id") % 7).alias("bucket"), F.sha2(F.col("id").cast("string"), 256).alias("h"))
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
