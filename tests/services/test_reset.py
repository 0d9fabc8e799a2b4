"""`make reset` (lakehouse_helpers/reset.py): the workbook's data goes, what was downloaded and the
running services stay, on a workbook of the test's own (data folder, topic, schemas, bucket)."""

from __future__ import annotations

import re
import uuid

import pytest

from lakehouse_helpers.reset import ResetRefused, reset
from lakehouse_helpers.runtime import layout, storage
from lakehouse_helpers.runtime.services import kafka as kafka_service
from tests.services.test_stack import produce


def test_reset_removes_the_workbook_s_data_and_keeps_the_rest(lake, spark):
    with pytest.raises(ResetRefused, match="local profile only"):  # refused before it touches anything
        reset(lake.replace(profile="external"), spark)
    s = lake.replace(schema_prefix=f"r{uuid.uuid4().hex[:8]}_", s3_bucket=f"reset-{uuid.uuid4().hex[:8]}")
    storage.ensure_bucket(s)
    kafka_service.ensure_topic(s, s.kafka_topic)
    produce(s, s.kafka_topic, 5)
    spark.sql(f"CREATE SCHEMA {s.schema('bronze')}")
    spark.sql(f"CREATE TABLE {layout.bronze_table(s)} (event_id STRING) USING DELTA")
    spark.sql(f"INSERT INTO {layout.bronze_table(s)} VALUES ('e1')")
    client = storage.s3_client(s)
    landing = f"{layout.LANDING_PREFIX}/ingestion_date=2026-01-01/a.parquet"
    for key in (landing, layout.EXPORT_STATE_KEY, "other/kept.txt"):
        client.put_object(Bucket=s.s3_bucket, Key=key, Body=b"x")
    (s.data_dir / "raw" / "orders" / "_delta_log").mkdir(parents=True)
    jars = s.state_dir / "jars"
    jars_seen = jars.lstat().st_mtime_ns

    report = reset(s, spark)

    assert report.schemas == [s.schema("bronze")] and report.topics == [s.kafka_topic]
    assert not spark.catalog.databaseExists(s.schema("bronze"))
    with pytest.raises(kafka_service.MissingTopic, match=re.escape(s.kafka_topic)):  # gone until 01 runs
        kafka_service.require_topic(s, s.kafka_topic)
    assert storage.list_keys(s) == ["other/kept.txt"] and report.landing_objects == 2
    assert not s.data_dir.exists()
    assert jars.lstat().st_mtime_ns == jars_seen
    assert any("reset in" in line for line in report.lines())
    storage.delete_keys(s)
    client.delete_bucket(Bucket=s.s3_bucket)
