"""Data survives `services down` then `up`: topic messages, S3 objects and catalog tables.

Marked restarts_services: conftest runs these last, since they restart the test stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lakehouse_helpers.runtime import services, storage

pytestmark = pytest.mark.restarts_services


def _consume_all(settings, topic: str) -> list[dict]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
        consumer_timeout_ms=10_000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    records = []
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        for batch in consumer.poll(timeout_ms=2000).values():
            records.extend(json.loads(r.value) for r in batch)
    consumer.close()
    return records


def test_data_survives_down_then_up(stack, spark, test_env, unique_name):
    from kafka import KafkaProducer

    from lakehouse_helpers.runtime.services import kafka as kafka_service

    topic = f"test.{unique_name}"
    kafka_service.ensure_topic(stack, topic)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    for i in range(100):
        producer.send(topic, json.dumps({"i": i}).encode())
    producer.flush(timeout=30)
    producer.close()

    key = f"tests/{unique_name}/object.json"
    storage.s3_client(stack).put_object(Bucket=stack.s3_bucket, Key=key, Body=b'{"kept": true}')
    table = stack.table("tests", unique_name)
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {stack.schema('tests')}")
    spark.range(7).write.format("delta").saveAsTable(table)

    from lakehouse_helpers.runtime.spark import stop_spark

    stop_spark()  # its metastore connection would not survive the restart
    services.down(stack)
    assert not any(st.healthy for st in services.status(stack))
    services.up(stack)

    assert [r["i"] for r in _consume_all(stack, topic)] == list(range(100))
    body = storage.s3_client(stack).get_object(Bucket=stack.s3_bucket, Key=key)["Body"].read()
    assert json.loads(body) == {"kept": True}
    code = f"from lakehouse_helpers import get_spark; print('COUNT', get_spark().table({table!r}).count())"
    out = subprocess.run([sys.executable, "-c", code], env=test_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "COUNT 7" in out.stdout


def test_up_is_idempotent_and_reuses_healthy_services(stack):
    before = {st.name: st.pid for st in services.status(stack)}
    statuses = services.up(stack)
    assert {st.name: st.pid for st in statuses} == before
    assert all(st.healthy and st.start_seconds == 0.0 for st in statuses)


def test_stale_pid_file_is_cleaned(stack, tmp_path):
    """A pid file left by a crash (process gone) does not block `up`."""
    pid_file = stack.services_dir / "metastore" / "service.pid"
    services.down(stack, ["metastore"])
    pid_file.write_text("999999")  # no such process
    statuses = services.up(stack, ["metastore"])
    assert statuses[0].healthy
    assert int(pid_file.read_text()) == statuses[0].pid != 999999
