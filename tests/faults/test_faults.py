"""Fault rows 5, 6, 8, 9 and 10 of the fault suite, against the real services: a lost checkpoint
commit, a replayed silver batch, malformed JSON, a type change mid-stream, the metastore down.
Each test fills its row of the published table (tests/faults_table.py)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from lakehouse_helpers.pipeline import medallion
from lakehouse_helpers.pipeline.events import MALFORMED_JSON, generate
from lakehouse_helpers.pipeline.stream import run_stream, table_counts
from lakehouse_helpers.runtime import layout, services

# Every row runs against the real services and a Spark session.

CLEAN = {"malformed_rate": 0, "invalid_rate": 0, "duplicate_rate": 0}


def _send_raw(settings, values: list[bytes]) -> list[int]:
    """Send `values` as they are (no JSON encoding) with kafka-python; their offsets, in order."""
    from kafka import KafkaProducer

    services.kafka.ensure_topic(settings, settings.kafka_topic)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20)
    try:
        futures = [producer.send(settings.kafka_topic, key=b"k", value=v) for v in values]
        producer.flush(timeout=60)
        return [f.get(timeout=10).offset for f in futures]
    finally:
        producer.close(timeout=10)


def _topic_size(settings) -> int:
    """Messages in the topic, from a plain Kafka consumer's beginning and end offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(settings.kafka_topic, p) for p in consumer.partitions_for_topic(settings.kafka_topic)]
        ends, starts = consumer.end_offsets(parts), consumer.beginning_offsets(parts)
        return sum(ends[tp] - starts[tp] for tp in parts)
    finally:
        consumer.close()


def _offsets(spark, path: str) -> tuple[int, int, set]:
    """Rows of a raw/quarantine table, its distinct Kafka coordinates, and those coordinates."""
    coords = {(r[0], r[1]) for r in spark.read.format("delta").load(path)
              .select("kafka_partition", "kafka_offset").collect()}
    return spark.read.format("delta").load(path).count(), len(coords), coords


def _quarantine(spark, settings) -> dict[int, tuple[str, str]]:
    """Quarantined rows by Kafka offset: (reason, detail). The payload is left out: invalid
    UTF-8 in it cannot be read back by a Spark Connect client."""
    df = spark.read.format("delta").load(layout.quarantine(settings))
    return {r["kafka_offset"]: (r["reason"], r["detail"])
        for r in df.select("kafka_offset", "reason", "detail").collect()}


def _delete_last_commit(settings) -> int:
    """Delete the newest commit of the stream's checkpoint (and its checksum); its batch id."""
    commits = Path(layout.checkpoint(settings, "raw_orders")) / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    for name in (str(last), f".{last}.crc"):
        (commits / name).unlink(missing_ok=True)
    return last


@pytest.mark.faults(
    row="5", fault="the stream's last checkpoint commit deleted (commits/<n>), then the stream re-run",
    must_hold="batch n runs again, nothing written twice: raw and quarantine rows == distinct offsets, "
              "raw + quarantine == topic message count")
def test_a_deleted_checkpoint_commit_replays_its_batch_without_duplicates(spark, lake, observed):
    from lakehouse_helpers.pipeline.produce import produce

    first, second = generate(events=240, seed=51), generate(events=60, seed=52)
    produce(lake, first, progress=False)
    run1 = run_stream(spark, lake, max_offsets_per_trigger=100)
    deleted = _delete_last_commit(lake)
    produce(lake, second, progress=False)  # new messages too: the re-run does both
    run2 = run_stream(spark, lake, max_offsets_per_trigger=100)

    messages = len(first.messages) + len(second.messages)
    raw, raw_distinct, raw_coords = _offsets(spark, layout.raw_orders(lake))
    quar, quar_distinct, quar_coords = _offsets(spark, layout.quarantine(lake))
    topic = _topic_size(lake)
    # The replayed batch reads 0 rows: Delta skips both writes on their txnVersion before running them.
    replayed = {p["batch"]: p["rows"] for p in run2.progress}
    observed(f"{run1.batches} batches, commit of batch {deleted} deleted; re-run batches (rows read) {replayed}, "
             f"{len(second.messages)} new messages; raw {raw} ({raw_distinct} distinct), "
             f"quarantine {quar} ({quar_distinct} distinct), topic {topic}")
    assert min(replayed) == deleted, f"batch {deleted} was not run again: {replayed}"
    assert run2.input_rows == len(second.messages)
    assert (raw, quar) == (raw_distinct, quar_distinct), "a row was written twice"
    assert not raw_coords & quar_coords, "an offset is in both raw and quarantine"
    assert raw + quar == topic == messages
    assert raw == first.expected["raw"] + second.expected["raw"]


@pytest.mark.faults(
    row="5b", fault="the stream's whole checkpoint deleted (tables kept), new messages meanwhile, then re-run",
    must_hold="the re-run is refused, naming the checkpoint and the fix; nothing is written or marked done")
def test_a_deleted_checkpoint_is_refused_not_restarted(spark, lake, observed):
    import shutil

    from lakehouse_helpers.pipeline.produce import produce
    from lakehouse_helpers.pipeline.stream import CheckpointLost

    first, second = generate(events=240, seed=53), generate(events=60, seed=54)
    produce(lake, first, progress=False)
    run_stream(spark, lake)  # one batch: 0
    before = [_offsets(spark, p)[0] for p in (layout.raw_orders(lake), layout.quarantine(lake))]
    produce(lake, second, progress=False)
    checkpoint = layout.checkpoint(lake, "raw_orders")
    shutil.rmtree(checkpoint)
    # A new checkpoint would restart at batch 0, which Delta skips as written: the new messages lost.
    with pytest.raises(CheckpointLost) as refused:
        run_stream(spark, lake)
    after = [_offsets(spark, p)[0] for p in (layout.raw_orders(lake), layout.quarantine(lake))]
    message = str(refused.value)
    observed(f"re-run refused: {message[:90]}...; raw + quarantine {sum(before)} before, {sum(after)} after; "
             f"topic {_topic_size(lake)}")
    assert checkpoint in message and "Restore the checkpoint" in message
    assert after == before and not Path(checkpoint, "offsets").exists()


def _malformed(valid: bytes, i: int) -> tuple[str, bytes]:
    """The i-th malformed message, cycling through kinds of bytes that are not one JSON object."""
    other = json.dumps({"event_id": str(uuid.UUID(int=i)), "quantity": 1}).encode()
    kinds = [
        ("truncated object", valid[: len(valid) // 2]),
        ("plain text", f"order {i} for table 3".encode()),
        ("empty", b""),
        ("binary garbage", bytes([0xFF, 0xFE, i % 256, 0x00, 0x7B])),
        ("single-quoted object", valid.replace(b'"', b"'")),
        ("object then garbage", valid + b"}garbage"),
        ("two objects, one message", valid + b"\n" + other),
    ]
    return kinds[i % len(kinds)]


@pytest.mark.faults(
    row="8", fault="malformed JSON at 50% of a topic's messages (raw bytes sent with kafka-python: "
                   "truncated, text, empty, binary, single quotes, trailing garbage, two objects in one)",
    must_hold="quarantine's malformed_json count == injected exactly; raw == exactly the valid events")
def test_malformed_json_at_half_the_stream_is_quarantined_exactly(spark, lake, observed):
    valid = [m.value for m in generate(events=140, seed=81, **CLEAN).messages]
    kinds, values = [], []
    for i, v in enumerate(valid):  # valid, malformed, valid, malformed, ...
        kind, bad = _malformed(v, i)
        kinds += ["valid", kind]
        values += [v, bad]
    offsets = _send_raw(lake, values)
    run_stream(spark, lake)

    counts, quarantined = table_counts(spark, lake), _quarantine(spark, lake)
    raw_ids = {r[0] for r in spark.read.format("delta").load(layout.raw_orders(lake)).select("event_id").collect()}
    injected = Counter(k for k in kinds if k != "valid")
    outcome = Counter((kind, quarantined.get(off, ("raw",))[0]) for kind, off in zip(kinds, offsets, strict=True))
    leaked = {kind: n for (kind, where), n in outcome.items() if kind != "valid" and where != MALFORMED_JSON}
    observed(f"{len(values)} messages, {sum(injected.values())} malformed in {len(injected)} kinds; "
             f"raw {counts['raw']}, quarantine malformed_json {counts.get('quarantine_malformed_json', 0)} "
             f"of {counts['quarantine']}; malformed kinds not quarantined as malformed_json: {leaked or 'none'}")
    assert counts["raw"] + counts["quarantine"] == len(values) == _topic_size(lake)
    assert leaked == {}, f"malformed JSON not quarantined as malformed_json (kind, where: count): {dict(outcome)}"
    assert counts.get("quarantine_malformed_json") == sum(injected.values()) == counts["quarantine"]
    assert counts["raw"] == len(valid) and raw_ids == {json.loads(v)["event_id"] for v in valid}


@pytest.mark.faults(
    row="9", fault="a type change mid-stream: from the middle on, every other event's quantity is a string "
                   "(\"three\", \"3\")",
    must_hold="none lost: raw + quarantine == messages; each changed event quarantined (classify: "
              "malformed_json, the detail naming the field and its value), count by reason == injected, "
              "its payload kept as sent")
def test_a_type_change_mid_stream_is_quarantined_with_its_reason_and_counted(spark, lake, observed):
    events = [json.loads(m.value) for m in generate(events=200, seed=91, **CLEAN).messages]
    changed = set(range(100, 200, 2))
    for i in changed:
        events[i]["quantity"] = "three" if i % 4 else str(events[i]["quantity"])
    offsets = _send_raw(lake, [json.dumps(e).encode() for e in events])
    run_stream(spark, lake)

    counts, quarantined = table_counts(spark, lake), _quarantine(spark, lake)
    changed_offsets = {offsets[i] for i in changed}
    q = spark.read.format("delta").load(layout.quarantine(lake))
    kept = {r["kafka_offset"]: json.loads(r["payload"])["quantity"]
        for r in q.select("kafka_offset", "payload").collect()}
    by_reason = Counter(reason for reason, _ in quarantined.values())
    details = Counter(detail for _, detail in quarantined.values())
    observed(f"{len(events)} events, {len(changed)} with a string quantity; raw {counts['raw']}, "
             f"quarantine by reason {dict(by_reason)}, detail {dict(details)}")
    assert counts["raw"] + counts["quarantine"] == len(events) == _topic_size(lake), "an event was lost"
    assert set(quarantined) == changed_offsets, "quarantined events differ from the changed ones"
    assert by_reason == {MALFORMED_JSON: len(changed)}
    # The reason says which field and what came instead.
    expected_details = {offsets[i]: f"quantity is not an int: {events[i]['quantity']}" for i in changed}
    assert all(quarantined[o][1] == d for o, d in expected_details.items()), details
    assert all(kept[offsets[i]] == events[i]["quantity"] for i in changed), "a payload was not kept as sent"
    assert counts["raw"] == len(events) - len(changed)


def _silver_state(spark, n: medallion.Names) -> dict:
    """Silver's row count and a checksum of its event ids, the other tables' counts, the books."""
    ids = spark.sql(f"SELECT count(*) AS n, sha2(concat_ws(',', sort_array(collect_list(event_id))), 256) AS sum "
                    f"FROM {n.silver}").first()
    others = {t: spark.table(t).count() for t in (n.rejected, n.expectations_log, n.batch_log)}
    return {"silver_rows": ids["n"], "event_id_sha256": ids["sum"], **others, **medallion.accounting(spark, n)}


@pytest.fixture
def silver_tables(spark, stack, tmp_path):
    """06's tables in schemas of their own; a bronze table of 60 events, 6 resent, 2 to reject."""
    from tests.spark.test_medallion import T0, bronze_rows, frame  # noqa: F401 - T0 and bronze_rows come through it

    settings = stack.replace(schema_prefix=f"f{uuid.uuid4().hex[:8]}_", data_dir_override=str(tmp_path))
    n = medallion.ensure_tables(spark, settings)
    rows = bronze_rows(60, seed=61)
    for r in rows[:2]:
        r["quantity"] = 0
    resent = [{**r, "kafka_offset": 100 + i, "ingested_at": T0.replace(hour=12)} for i, r in enumerate(rows[10:16])]
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema('bronze')}")
    frame(spark, rows + resent).write.format("delta").saveAsTable(n.bronze)
    yield n
    for schema in ("bronze", "silver", "gold"):
        spark.sql(f"DROP SCHEMA IF EXISTS {settings.schema(schema)} CASCADE")


@pytest.mark.faults(
    row="6", fault="a silver micro-batch replayed: notebook 06's upsert_to_silver called again with the "
                   "stream's batch and batch id",
    must_hold="silver unchanged (row count, checksum of event ids), rejects and logs unchanged, "
              "accounting balanced")
def test_a_replayed_silver_batch_leaves_silver_unchanged(spark, silver_tables, observed):
    from lakehouse_helpers.bench.lake_stages import notebook_06

    n = silver_tables
    upsert = notebook_06(n)["upsert_to_silver"]
    (spark.readStream.table(n.bronze).writeStream.foreachBatch(upsert)
     .option("checkpointLocation", n.checkpoint).trigger(availableNow=True).start().awaitTermination())
    batches = [r[0] for r in spark.table(n.batch_log).select("silver_batch").collect()]
    assert batches == [0], f"the stream wrote batches {batches}, expected one"
    before = _silver_state(spark, n)
    upsert(spark.table(n.bronze), 0)  # the same rows, the same batch id
    after = _silver_state(spark, n)
    observed(f"bronze {before['bronze_rows']} rows in batch 0; silver {before['silver_rows']} -> "
             f"{after['silver_rows']}, ids checksum {'unchanged' if after == before else 'CHANGED'}; "
             f"rejected {after[n.rejected]}, duplicates removed {after['duplicates_removed']}, "
             f"balanced {after['balanced']}")
    assert before["silver_rows"] == 58 and before[n.rejected] == 2 and before["duplicates_removed"] == 6
    assert after == before
    assert after["balanced"] and after["logged_bronze_rows"] == after["bronze_rows"]


def _catalog_query(spark, timeout: float) -> dict:
    """A notebook's catalog step (SHOW SCHEMAS) in a thread: its error and how long it took."""
    out: dict = {}

    def run():
        start = time.monotonic()
        try:
            out["rows"] = spark.sql("SHOW SCHEMAS").count()
        except Exception as exc:  # noqa: BLE001 - the error is what is observed
            out["error"] = str(exc).splitlines()[0]
        out["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return out


def _catalog_writes(spark, rounds: int = 3) -> list[str]:
    """`rounds` catalog writes (create a schema and a table, drop them, which also runs Hive's
    transaction cleanup through its own pool): the errors met, one per failed round."""
    errors = []
    for _ in range(rounds):
        name = f"faults_{uuid.uuid4().hex[:8]}"
        try:
            for sql in (f"CREATE SCHEMA {name}", f"CREATE TABLE {name}.t (x INT) USING DELTA",
                        f"DROP SCHEMA {name} CASCADE"):
                spark.sql(sql).collect()
        except Exception as exc:  # noqa: BLE001 - the error is what is observed
            errors.append(f"{sql.split()[0]}: {str(exc).splitlines()[0][:160]}")
            with contextlib.suppress(Exception):  # tidy up for the tests that follow
                spark.sql(f"DROP SCHEMA IF EXISTS {name} CASCADE").collect()
    return errors


@pytest.mark.restarts_services
@pytest.mark.faults(
    row="10", fault="the metastore (Derby) stopped while a notebook session is open",
    must_hold="the workbook's check and the doctor name the metastore, its address and `make services-up` "
              "within 10 s; a catalog query in the open session fails within 5 s with an error naming the same; "
              "after a restart it is healthy and the session's first catalog writes all succeed")
def test_the_metastore_down_is_named_with_its_fix_and_recovers(spark, stack, observed):
    from lakehouse_helpers.doctor import run_checks

    # Both of Hive's pools (the catalog's, the transaction cleanup's) hold connections the stop kills.
    assert _catalog_writes(spark, rounds=1) == [] and _catalog_query(spark, 60).get("rows", 0) >= 1
    services.down(stack, ["metastore"])
    try:
        start = time.monotonic()
        with pytest.raises(services.ServiceError) as info:
            services.require(stack, "metastore")
        elapsed = time.monotonic() - start
        doctor = next(c for c in run_checks(stack) if c.name.startswith("metastore"))
        during = _catalog_query(spark, 60)
    finally:
        restarted = services.up(stack, ["metastore"])
    # Writes first: the first catalog call after the restart is a write, on the pool's old connections.
    failed = _catalog_writes(spark, rounds=3)
    after = _catalog_query(spark, 60)
    message, address = str(info.value), f"127.0.0.1:{stack.metastore_port}"
    observed(f"require raised in {elapsed:.2f} s: {message!r}; doctor ok={doctor.ok}, fix {doctor.fix!r}; "
             f"a SHOW SCHEMAS meanwhile: {during.get('error', during)!r} after {during.get('seconds', 0):.1f} s; "
             f"restarted healthy={restarted[0].healthy}, catalog writes then: {len(failed)} failed of 3 {failed}; "
             f"SHOW SCHEMAS then {after.get('rows')} rows")
    assert elapsed < 10 and "metastore" in message and address in message
    assert "make services-up" in message
    assert not doctor.ok and "make services-up" in doctor.fix
    assert "error" in during, "the catalog answered with the metastore down"
    assert during["seconds"] < 5, f"the catalog query took {during['seconds']:.1f} s to fail"
    assert "metastore" in during["error"] and address in during["error"], during
    assert "make services-up" in during["error"], during
    assert restarted[0].healthy and {st.name: st.healthy for st in services.status(stack)}["metastore"]
    assert failed == [], f"catalog writes failed after the restart: {failed}"
    assert after.get("rows", 0) >= 1, f"the catalog did not recover: {after}"
