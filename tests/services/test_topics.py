"""Topics are created by the workbook only: the broker runs with auto.create.topics.enable=false,
so a missing or mistyped topic fails with its name instead of coming back empty."""

from __future__ import annotations

import re

import pytest

from lakehouse_helpers.pipeline.events import GeneratorConfig, generate
from lakehouse_helpers.pipeline.produce import produce
from lakehouse_helpers.pipeline.stream import kafka_reader, run_stream
from lakehouse_helpers.runtime.services import kafka as kafka_service


def _topics(settings) -> list[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="lakehouse-tests")
    try:
        return admin.list_topics()
    finally:
        admin.close()


def test_a_missing_topic_is_named_with_what_to_run_and_never_created(lake, spark):
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    topic = lake.kafka_topic
    for attempt in (
        lambda: kafka_service.require_topic(lake, topic),
        lambda: kafka_reader(spark, lake, topic),  # a look at the topic, as 02 takes one
        lambda: run_stream(spark, lake),  # 02's stream
    ):
        with pytest.raises(kafka_service.MissingTopic) as caught:
            attempt()
        assert re.search(rf"topic '{re.escape(topic)}' does not exist", str(caught.value))
        assert "run 01_produce_events (or `make run`)" in str(caught.value)
    assert not (lake.data_dir / "raw").exists()  # refused before any table or checkpoint was made

    # A plain producer that sends without creating the topic waits for it and gives up: the
    # broker does not create it on first use.
    producer = KafkaProducer(bootstrap_servers=lake.kafka_bootstrap, max_block_ms=1500)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(topic, b"lost?")
    finally:
        producer.close(timeout=5)
    assert topic not in _topics(lake)


def test_the_workbook_s_producer_creates_its_topic_and_the_stream_reads_it(lake, spark):
    assert lake.kafka_topic not in _topics(lake)
    batch = generate(GeneratorConfig(events=40, seed=7))
    result = produce(lake, batch, progress=False)
    assert result.delivered == len(batch.messages)
    kafka_service.require_topic(lake, lake.kafka_topic)  # no error now
    assert kafka_reader(spark, lake).load().count() == len(batch.messages)
    streamed = run_stream(spark, lake)
    assert streamed.raw_rows_added + streamed.quarantine_rows_added == len(batch.messages)
