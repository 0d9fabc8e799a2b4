"""Produce and stream: the workbook's producer against librdkafka, and its Kafka -> raw stream
against one plain Spark batch over the same topic."""

from __future__ import annotations

from lakehouse_helpers.bench.sandbox import Sandbox
from lakehouse_helpers.bench.scoreboard import Side, Stage, timed
from lakehouse_helpers.pipeline.events import Batch
from lakehouse_helpers.pipeline.produce import batch_id, produce
from lakehouse_helpers.pipeline.stream import classify, kafka_options, run_stream
from lakehouse_helpers.runtime import layout, services
from lakehouse_helpers.runtime.contract import QUARANTINE_COLUMNS, RAW_COLUMNS


def produce_stage(box: Sandbox, batch: Batch) -> Stage:
    """The same messages, keys and header to two fresh one-partition topics."""
    for s in (box.workbook, box.native):
        services.kafka.ensure_topic(s, s.kafka_topic)  # before timing: same topic settings for both
    result, seconds = timed(lambda: produce(box.workbook, batch, progress=False))
    workbook = Side(result.delivered, seconds, result.delivered,
                    {"send_and_flush_s": result.seconds, "failed": result.failed})
    headers = [("batch_id", batch_id(batch.config).encode())]
    (delivered, errors), seconds = timed(lambda: _librdkafka(box.native, batch, headers))
    if errors:
        raise RuntimeError(f"librdkafka delivered {delivered} of {len(batch.messages)}: {errors[:3]}")
    limit = Side(delivered, seconds, delivered)
    return Stage("produce", "msgs/s", "librdkafka (confluent-kafka)", workbook, limit)


def _librdkafka(settings, batch: Batch, headers, timeout_s: float = 120.0) -> tuple[int, list[str]]:
    """librdkafka with the workbook producer's settings: acks=all, idempotence, zstd, 1 MB
    batches after up to 50 ms, five requests in flight."""
    from confluent_kafka import Producer

    delivered, errors = 0, []

    def on_delivery(err, _msg):
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            errors.append(str(err))

    producer = Producer({
        "bootstrap.servers": settings.kafka_bootstrap, "client.id": "lakehouse-bench", "acks": "all",
        "enable.idempotence": True, "compression.type": "zstd", "linger.ms": 50, "batch.size": 1024 * 1024,
        "max.in.flight.requests.per.connection": 5, "delivery.timeout.ms": int(timeout_s * 1000),
    })
    topic = settings.kafka_topic
    for i, m in enumerate(batch.messages):
        while True:
            try:
                producer.produce(topic, value=m.value, key=m.key, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)  # serve delivery callbacks without a call per message
    left = producer.flush(timeout_s)
    if left:
        errors.append(f"{left} not acknowledged within {timeout_s:g} s")
    return delivered, errors


def stream_stage(spark, box: Sandbox, messages: int) -> Stage:
    """Kafka -> raw + quarantine: run_stream (availableNow, foreachBatch, checkpoint, idempotent
    appends) against a batch read of the same topic, classified and written to fresh tables."""
    st, seconds = timed(lambda: run_stream(spark, box.workbook))
    workbook = Side(st.input_rows, seconds, st.raw_rows_added + st.quarantine_rows_added,
                    {"stream_s": st.seconds, "batches": st.batches})
    _, seconds = timed(lambda: native_stream(spark, box))
    rows = sum(spark.read.format("delta").load(p).count()
               for p in (layout.raw_orders(box.native), layout.quarantine(box.native)))
    limit = Side(rows, seconds, rows)
    if not workbook.count == limit.count == messages:
        raise RuntimeError(f"stream read {workbook.count} rows, the batch {limit.count}, the topic has {messages}")
    return Stage("stream Kafka -> raw", "rows/s", "Spark batch read + classify", workbook, limit)


def native_stream(spark, box: Sandbox) -> None:
    """One batch over the workbook's topic, the same options and classification, written once to
    valid and once to quarantine (cached between, as the stream's foreachBatch does)."""
    from pyspark.sql import functions as F

    options = kafka_options(box.workbook)
    kafka = spark.read.format("kafka").options(**options).option("endingOffsets", "latest").load()
    classified = classify(kafka).persist()
    try:
        valid = classified.where(F.col("reason").isNull()).select(*RAW_COLUMNS)
        rejected = classified.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)
        for df, path in ((valid, layout.raw_orders(box.native)), (rejected, layout.quarantine(box.native))):
            df.write.format("delta").mode("append").save(path)
    finally:
        classified.unpersist()


def warm_up(spark, box: Sandbox) -> None:
    """One untimed pass over the topic: a fresh server JVM pays class loading and JIT on its
    first Kafka read, parse and Delta write, which would otherwise fall on whichever side runs first."""
    kafka = spark.read.format("kafka").options(**kafka_options(box.workbook)).option("endingOffsets", "latest").load()
    classify(kafka).write.format("delta").save(box.path("warm-up"))
