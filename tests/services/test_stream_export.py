"""Message classification (02) and the idempotent export (03) on small real tables."""

from __future__ import annotations

import json

import pytest

from lakehouse_helpers.pipeline.events import generate
from lakehouse_helpers.pipeline.export import export_to_landing
from lakehouse_helpers.pipeline.stream import classify, ensure_tables, input_rows
from lakehouse_helpers.runtime import layout, storage
from lakehouse_helpers.runtime.contract import RAW_COLUMNS
from lakehouse_helpers.runtime.ledgers import read_watermark


def _kafka_frame(spark, values: list[bytes | None]):
    rows = [(b"k", v, "t", 0, i, None) for i, v in enumerate(values)]
    return spark.createDataFrame(rows,
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp")


def test_classify_sends_each_fault_to_its_reason(spark):
    batch = generate(events=600, malformed_rate=0.05, invalid_rate=0.1, duplicate_rate=0.05, drift_after=0.5)
    df = classify(_kafka_frame(spark, [m.value for m in batch.messages]))
    got = [r["reason"] or "raw" for r in df.orderBy("kafka_offset").select("reason").collect()]
    want = [m.destination.removeprefix("quarantine:") for m in batch.messages]
    assert got == want


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b'"just a string"', "malformed_json"),
        (b'{"event_id": "e", "order_id": ', "malformed_json"),
        (None, "malformed_json"),
        (b'{"event_id":"e","order_id":"o","event_ts":"not a time",'
         b'"customer_id":"c","product_id":"ARA-L-1","quantity":1}', "missing_required_field"),
        (b'{"event_id":"e","order_id":"o","event_ts":"2026-01-05T08:00:00Z",'
         b'"customer_id":"c","product_id":"ARA-L-1","quantity":0}', "invalid_quantity"),
        (b'{"event_id":"e","order_id":"o","event_ts":"2026-01-05T08:00:00Z",'
         b'"customer_id":"c","product_id":"ARA-L-1","quantity":1}', None),
    ],
)
def test_classify_edge_cases(spark, value, reason):
    row = classify(_kafka_frame(spark, [value])).first()
    assert row["reason"] == reason, row["detail"]


def test_unknown_fields_are_listed_and_payload_kept(spark):
    value = (b'{"event_id":"e","order_id":"o","event_ts":"2026-01-05T08:00:00Z","customer_id":"c",'
             b'"product_id":"ARA-L-1","quantity":1,"promo_code":"X"}')
    row = classify(_kafka_frame(spark, [value])).first()
    assert row["unknown_fields"] == ["promo_code"]
    assert json.loads(row["payload"])["promo_code"] == "X"


@pytest.fixture
def export_settings(stack, tmp_path, unique_name):
    s = stack.replace(data_dir_override=str(tmp_path / "data"), s3_bucket=f"t-{unique_name.replace('_', '-')}"[:60])
    storage.ensure_bucket(s)
    return s


def _append_raw(spark, settings, events: int, seed: int) -> int:
    batch = generate(events=events, seed=seed, malformed_rate=0, invalid_rate=0, duplicate_rate=0)
    rows = classify(_kafka_frame(spark, [m.value for m in batch.messages])).select(*RAW_COLUMNS)
    rows.write.format("delta").mode("append").save(layout.raw_orders(settings))
    return rows.count()


def test_export_is_idempotent_and_incremental(spark, export_settings):
    s = export_settings
    ensure_tables(spark, s)
    landing = lambda: spark.read.parquet(layout.landing_url(s)).count()  # noqa: E731

    first = _append_raw(spark, s, 120, seed=1)
    r1 = export_to_landing(spark, s)
    assert r1.rows == first and landing() == first
    assert export_to_landing(spark, s).rows == 0  # nothing new: nothing written
    assert landing() == first

    second = _append_raw(spark, s, 80, seed=2)
    r2 = export_to_landing(spark, s)
    assert r2.rows == second and r2.from_version == r1.to_version + 1
    assert landing() == first + second


def test_crash_before_watermark_commit_does_not_duplicate(spark, export_settings):
    s = export_settings
    ensure_tables(spark, s)
    rows = _append_raw(spark, s, 100, seed=3)
    before = read_watermark(s)
    export_to_landing(spark, s)
    # As if the run died after writing its files, before committing: no watermark object yet.
    storage.s3_client(s).delete_object(Bucket=s.s3_bucket, Key=layout.EXPORT_STATE_KEY)
    assert read_watermark(s) == before
    more = _append_raw(spark, s, 30, seed=4)
    export_to_landing(spark, s)  # re-exports the same range plus the new rows
    landing = spark.read.parquet(layout.landing_url(s))
    assert landing.count() == rows + more
    assert landing.select("event_id").distinct().count() == rows + more
    assert storage.list_keys(s, layout.EXPORT_STATE_KEY)


def test_gate_failure_writes_nothing(spark, export_settings):
    from lakehouse_helpers.pipeline import quality

    s = export_settings
    ensure_tables(spark, s)
    _append_raw(spark, s, 50, seed=5)
    # A writer that bypassed the stream's validation appends impossible quantities.
    bad = generate(events=20, seed=6, invalid_rate=1.0, malformed_rate=0, duplicate_rate=0)
    rows = classify(_kafka_frame(spark, [m.value for m in bad.messages])).where("quantity <= 0")
    rows.select(*RAW_COLUMNS).write.format("delta").mode("append").save(layout.raw_orders(s))
    with pytest.raises(quality.QualityError, match="range: quantity"):
        export_to_landing(spark, s, gate=quality.gate)
    assert not storage.list_keys(s, layout.LANDING_PREFIX + "/")
    assert read_watermark(s)["last_exported_version"] == -1


def test_updates_to_the_append_only_raw_table_block_the_export(spark, export_settings):
    from lakehouse_helpers.pipeline.export import ExportBlocked

    s = export_settings
    ensure_tables(spark, s)
    _append_raw(spark, s, 30, seed=7)
    spark.sql(f"DELETE FROM delta.`{layout.raw_orders(s)}` WHERE line_no = 2")
    with pytest.raises(ExportBlocked, match="append-only"):
        export_to_landing(spark, s)


def _stop_after(spark, rows: int, seen: list):
    """An `on_progress` that keeps each progress and stops the live query once its micro-batches
    have read `rows` rows: a progress is reported after its batch committed, so the tables then
    hold everything. The test waits on that condition; `live_seconds` is only the deadline."""
    def on_progress(progress):
        seen.append(progress)
        if sum(input_rows(p) for p in seen) >= rows:
            spark.streams.get(str(progress.id)).stop()
    return on_progress


def test_live_mode_reports_progress_and_stops_at_its_deadline(spark, export_settings, unique_name):
    from lakehouse_helpers.pipeline.produce import produce
    from lakehouse_helpers.pipeline.stream import run_stream, table_counts

    s = export_settings.replace(kafka_topic=f"live.{unique_name}")
    batch = generate(events=200, seed=11)
    produce(s, batch, progress=False)
    seen, deadline = [], 180
    result = run_stream(spark, s, mode="live", live_seconds=deadline, trigger_interval="1 second",
                        on_progress=_stop_after(spark, len(batch.messages), seen))
    assert result.mode == "live"
    assert result.input_rows == len(batch.messages), f"{result.input_rows} rows read in {result.seconds:.0f}s"
    assert result.seconds < deadline  # stopped on the condition, not by the deadline
    assert seen and any(input_rows(p) > 0 for p in seen)
    assert any(p["rows_per_second"] > 0 for p in result.progress)
    counts = table_counts(spark, s)
    assert counts["raw"] == batch.expected["raw"] and counts["quarantine"] == batch.expected["quarantine"]
    assert not spark.streams.active  # the notebook's stream was stopped, not left running

    # With nothing new, live mode runs until its deadline, reads nothing and stops its query.
    idle = run_stream(spark, s, mode="live", live_seconds=2, trigger_interval="1 second")
    assert idle.seconds >= 2 and idle.input_rows == 0 and not spark.streams.active
    assert table_counts(spark, s) == counts


def test_a_live_run_left_running_in_this_session_is_stopped_by_the_next_run(spark, export_settings, unique_name,
                                                                             caplog):
    """A notebook cell interrupted while its live stream ran leaves the query running in the
    session; the next run (another cell, the same kernel) stops it first instead of failing on the
    query's name, and every message still lands once."""
    import logging
    import os
    import threading
    import time
    from pathlib import Path

    from lakehouse_helpers.pipeline.produce import produce
    from lakehouse_helpers.pipeline.stream import run_stream, table_counts

    s = export_settings.replace(kafka_topic=f"left.{unique_name}")
    batch = generate(events=200, seed=12)
    produce(s, batch, progress=False)
    left: dict = {}
    thread = threading.Thread(target=lambda: left.update(result=run_stream(
        spark, s, mode="live", live_seconds=600, trigger_interval="1 second")), daemon=True)
    thread.start()
    commits = Path(layout.checkpoint(s, "raw_orders")) / "commits"
    deadline = time.monotonic() + 120
    while not any(commits.glob("[0-9]*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(commits.glob("[0-9]*")), "the live run committed no batch within 120 s"
    with caplog.at_level(logging.INFO, logger="lakehouse_helpers.pipeline.stream_owner"):
        result = run_stream(spark, s)
    messages = caplog.messages
    thread.join(30)
    earlier = result.earlier
    assert earlier is not None and (earlier.outcome, earlier.mode, earlier.pid) == ("stopped", "live",
        os.getpid()), messages
    assert not thread.is_alive() and left["result"].input_rows == len(batch.messages)  # it ended cleanly
    counts = table_counts(spark, s)
    assert counts["raw"] == batch.expected["raw"] and counts["quarantine"] == batch.expected["quarantine"]
    assert not spark.streams.active


def test_delivery_failures_are_counted_and_raised(stack, unique_name):
    from lakehouse_helpers.pipeline.events import Batch, GeneratorConfig, Message
    from lakehouse_helpers.pipeline.produce import ProduceError, load_manifests, produce

    s = stack.replace(kafka_topic=f"fail.{unique_name}")
    batch = Batch(GeneratorConfig(events=3, seed=99))
    batch.messages = [
        Message(b"k1", b'{"ok": 1}', "valid", "raw"),
        Message(b"k2", b"x" * (2 * 1024 * 1024), "valid", "raw"),  # over the producer's 1 MB request limit
        Message(b"k3", b'{"ok": 3}', "valid", "raw"),
    ]
    with pytest.raises(ProduceError, match="1 of 3 messages were not delivered") as info:
        produce(s, batch, progress=False)
    assert "MessageSizeTooLarge" in str(info.value)
    assert load_manifests(s) == []  # a failed batch is not recorded as produced


@pytest.mark.parametrize("partitions", [1, 3])
def test_a_re_run_after_a_partial_send_sends_exactly_the_rest(stack, unique_name, tmp_path, monkeypatch, partitions):
    """A send that stopped part-way fails loudly; the re-run sends exactly the missing messages,
    exact duplicates, malformed ones and keyless ones included (compared byte for byte)."""
    from collections import Counter

    from lakehouse_helpers.pipeline import produce as producing
    from lakehouse_helpers.runtime import services

    s = stack.replace(kafka_topic=f"partial.{unique_name}", data_dir_override=str(tmp_path / "data"))
    services.kafka.ensure_topic(s, s.kafka_topic, partitions=partitions)
    batch = generate(events=3000, seed=6, duplicate_rate=0.1, malformed_rate=0.05, invalid_rate=0.1)
    whole = producing._send_all

    def first_part_only(producer, topic, messages, *args):  # as if the broker died after 1,000
        delivered, errors = whole(producer, topic, messages[:1000], *args)
        return delivered, [*errors, "broker gone"]

    monkeypatch.setattr(producing, "_send_all", first_part_only)
    with pytest.raises(producing.ProduceError, match=r"2\d{3} of \d+ messages were not delivered, 1000 were"):
        producing.produce(s, batch, progress=False)
    monkeypatch.setattr(producing, "_send_all", whole)
    rerun = producing.produce(s, batch, progress=False)
    assert (rerun.resumed, rerun.sent, rerun.failed) == (1000, len(batch.messages) - 1000, 0)
    assert producing._end_offset(s, s.kafka_topic) == len(batch.messages)  # nothing more in the topic
    records = _read_topic(s, s.kafka_topic, len(batch.messages))
    held = Counter((r.key, r.value) for got in records.values() for r in got)
    assert held == Counter((m.key, m.value) for m in batch.messages)  # each message once, duplicates twice
    assert producing.produce(s, batch, progress=False).skipped  # and recorded as produced


def _read_topic(settings, topic: str, expect: int) -> dict[int, list]:
    """Every record of the topic, per partition, in offset order."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
        consumer_timeout_ms=10_000)
    try:
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        consumer.seek_to_beginning()
        records: dict[int, list] = {}
        for n, record in enumerate(consumer, 1):
            records.setdefault(record.partition, []).append(record)
            if n == expect:
                break
        return records
    finally:
        consumer.close()


@pytest.mark.parametrize("partitions", [1, 3])
def test_produce_reports_every_offset_and_keeps_each_keys_order(stack, unique_name, partitions):
    from collections import defaultdict

    from lakehouse_helpers.pipeline.produce import load_manifests, produce
    from lakehouse_helpers.runtime import services

    s = stack.replace(kafka_topic=f"order.{unique_name}")
    services.kafka.ensure_topic(s, s.kafka_topic, partitions=partitions)
    batch = generate(events=3000, seed=5)  # an order's events share its key: up to 5 messages a key
    sent = len(batch.messages)
    result = produce(s, batch, progress=False)
    assert (result.sent, result.delivered, result.failed, result.errors) == (sent, sent, 0, [])

    records = _read_topic(s, s.kafka_topic, sent)
    assert sum(map(len, records.values())) == sent  # nothing lost, nothing twice
    for got in records.values():  # each partition holds offsets 0..n-1, each from this batch
        assert [r.offset for r in got] == list(range(len(got)))
        assert all(r.headers == [("batch_id", result.batch_id.encode())] for r in got)
    assert (result.first_offset, result.last_offset) == (0, max(len(got) for got in records.values()) - 1)
    if partitions == 1:
        assert result.last_offset == sent - 1
    read, given = defaultdict(list), defaultdict(list)
    for partition, got in records.items():
        for r in got:
            read[r.key].append((partition, r.value))
    for m in batch.messages:
        given[m.key].append(m.value)
    for key, values in given.items():
        if key is not None:  # same key, same partition, the order given
            assert len({p for p, _ in read[key]}) == 1
            assert [v for _, v in read[key]] == values
    assert sorted(m.value for m in batch.messages) == sorted(r.value for got in records.values() for r in got)
    [manifest] = load_manifests(s)
    assert (manifest["first_offset"], manifest["last_offset"], manifest["end_offset_total"]) == (0, result.last_offset,
        sent)
    assert manifest["expected"] == batch.expected and manifest["counts"] == batch.counts


def _objects(settings, prefix: str) -> set[tuple[str, int, str]]:
    """(key, size, ETag) of every object under `prefix`: the ETag is the S3 server's checksum.
    A file s3proxy was writing when it was killed is listed with no ETag (None)."""
    pages = storage.s3_client(settings).get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket,
        Prefix=prefix)
    return {(o["Key"], o["Size"], o.get("ETag")) for page in pages for o in page.get("Contents", [])}


@pytest.mark.faults(
    row="4", fault="the export run three times over the same raw table",
    must_hold="the landing zone's objects (keys, sizes, checksums) identical after each run; rows exported once")
def test_three_exports_leave_the_same_objects(spark, export_settings, observed):
    s = export_settings
    ensure_tables(spark, s)
    rows = _append_raw(spark, s, 150, seed=5)
    runs = []
    for _ in range(3):
        exported = export_to_landing(spark, s).rows
        runs.append((exported, _objects(s, layout.LANDING_PREFIX)))
    landing = spark.read.parquet(layout.landing_url(s)).count()
    observed(f"rows exported per run {[r for r, _ in runs]}; {len(runs[0][1])} objects, "
             f"{'identical' if runs[0][1] == runs[1][1] == runs[2][1] else 'different'} after each run; "
             f"landing rows {landing}")
    assert [r for r, _ in runs] == [rows, 0, 0] and landing == rows
    assert runs[0][1] and runs[0][1] == runs[1][1] == runs[2][1]
