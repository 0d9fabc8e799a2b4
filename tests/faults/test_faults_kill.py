"""Fault rows 1 and 2 of the fault suite: a process killed with SIGKILL mid-run, then re-run. The
streaming notebook's process (its query lives on in the Spark Connect server), and the Kafka
broker while the producer sends. Each test fills its row of the published table
(tests/faults_table.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lakehouse_helpers.pipeline.events import generate
from lakehouse_helpers.pipeline.produce import ProduceError, produce
from lakehouse_helpers.pipeline.stream import QUERY_NAME, StreamBusy, run_stream
from lakehouse_helpers.runtime import layout, services
from tests.conftest import ROOT
from tests.faults.test_faults import CLEAN, _offsets, _topic_size

# The streaming notebook's steps in a process of its own, against the test stack (its environment).
STREAM_PROCESS = """
from lakehouse_helpers import get_spark, load_settings
from lakehouse_helpers.pipeline.stream import run_stream
settings = load_settings()
run_stream(get_spark(settings), settings, max_offsets_per_trigger=100)
"""


def _wait_for(condition, timeout: float, what: str, poll: float = 0.05):
    """Poll `condition` until it returns something true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def _batch_ids(settings, folder: str) -> list[int]:
    path = Path(layout.checkpoint(settings, QUERY_NAME)) / folder
    return sorted(int(p.name) for p in path.glob("[0-9]*")) if path.is_dir() else []


def _mid_batch(settings, process: subprocess.Popen, log: Path):
    """(commits, offsets) once a batch is committed and the next one planned, i.e. running."""
    if process.poll() is not None:
        pytest.fail(f"the stream process exited with {process.returncode}: {log.read_text()[-1500:]}")
    commits, offsets = _batch_ids(settings, "commits"), _batch_ids(settings, "offsets")
    return (commits, offsets) if commits and offsets[-1] > commits[-1] else None


@pytest.mark.faults(
    row="1", fault="the streaming notebook's process (run_stream, Spark Connect client) killed with SIGKILL "
                   "mid-batch, new messages meanwhile, then the stream re-run",
    must_hold="every Kafka offset of the topic in exactly one of raw or quarantine: count and distinct count "
              "== the topic's message count (plain Kafka consumer); a second run while the first lives is "
              "refused; the re-run settles the dead process's query, still running on the server")
def test_a_stream_killed_mid_run_then_re_run_keeps_every_offset_once(spark, lake, test_env, tmp_path, observed,
                                                                     caplog):
    first, second = generate(events=1000, seed=11), generate(events=100, seed=12)
    produce(lake, first, progress=False)
    log = tmp_path / "stream-process.log"
    with open(log, "wb") as out:
        env = {**test_env, "PYTHONPATH": str(ROOT), "LAKEHOUSE_DATA_DIR": str(lake.data_dir),
               "KAFKA_TOPIC": lake.kafka_topic}
        process = subprocess.Popen([sys.executable, "-c", STREAM_PROCESS], env=env, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        start = time.monotonic()
        commits, offsets = _wait_for(lambda: _mid_batch(lake, process, log), 180, "a committed batch")
        with pytest.raises(StreamBusy) as busy:  # its process is alive: a second run must not cut in
            run_stream(spark, lake)
        os.kill(process.pid, signal.SIGKILL)
        killed_after = time.monotonic() - start
    finally:
        process.kill()
        process.wait()
    produce(lake, second, progress=False)
    # A short wait, so both ways of settling run: waiting for the dead process's query, then stopping
    # it mid-batch. The re-run itself takes the rest in one batch.
    with caplog.at_level(logging.INFO, logger="lakehouse_helpers.pipeline.stream_owner"):
        rerun = run_stream(spark, lake, wait_s=1)
    messages = caplog.messages

    raw, raw_distinct, raw_coords = _offsets(spark, layout.raw_orders(lake))
    quar, quar_distinct, quar_coords = _offsets(spark, layout.quarantine(lake))
    topic = _topic_size(lake)
    earlier = rerun.earlier
    observed(f"process killed after {killed_after:.1f} s with batches {commits[-1]} committed, {offsets[-1]} "
             f"running; a second run meanwhile refused ({str(busy.value).split(', ')[1]}); "
             f"re-run: the dead process's query {earlier.outcome if earlier else 'NOT FOUND'} "
             f"after {earlier.seconds if earlier else 0} s, then "
             f"{rerun.batches} batches ({rerun.input_rows} rows); raw {raw} ({raw_distinct} distinct), "
             f"quarantine {quar} ({quar_distinct} distinct), in both {len(raw_coords & quar_coords)}, topic {topic}")
    assert f"process {process.pid} " in str(busy.value)
    assert earlier is not None and earlier.pid == process.pid, f"the dead process's query was not found: {messages}"
    assert (raw, quar) == (raw_distinct, quar_distinct), "a row was written twice"
    assert not raw_coords & quar_coords, "an offset is in both raw and quarantine"
    assert raw + quar == topic == len(first.messages) + len(second.messages)
    assert raw == first.expected["raw"] + second.expected["raw"]
    assert json.loads(layout.run_file(lake, QUERY_NAME).read_text())["pid"] == os.getpid()  # this run is recorded


def _event_ids(settings) -> Counter:
    """Every event id in the topic, read from beginning to end with a plain Kafka consumer."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(settings.kafka_topic, p) for p in consumer.partitions_for_topic(settings.kafka_topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends, ids = consumer.end_offsets(parts), Counter()
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in parts) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                ids.update(json.loads(r.value)["event_id"] for r in records)
        return ids
    finally:
        consumer.close()


def _kill_broker_while_producing(settings, batch, threshold: int) -> tuple[dict, int]:
    """Produce `batch` in a thread; SIGKILL the broker once the topic holds `threshold` messages.
    Returns what produce did (result or error, seconds) and the end offset seen at the kill."""
    from lakehouse_helpers.pipeline.produce import _end_offset

    [broker] = [st for st in services.status(settings) if st.name == "kafka" and st.managed]
    outcome: dict = {}

    def send():
        start = time.monotonic()
        try:
            outcome["result"] = produce(settings, batch, progress=False, timeout_s=3)
        except ProduceError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - start

    seen = {"end": 0}

    def enough() -> bool:
        seen["end"] = _end_offset(settings, settings.kafka_topic)
        return seen["end"] >= threshold or not thread.is_alive()

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    _wait_for(enough, 60, f"{threshold} messages in the topic", poll=0.01)
    os.kill(broker.pid, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive(), "produce did not return within 120 s of the broker's death"
    host, port = services.SERVICES["kafka"].bind(settings)
    _wait_for(lambda: not services.port_open(host, port, 0.5), 30, "the killed broker's port to close")
    with contextlib.suppress(ChildProcessError):  # reap it if this process started it
        os.waitpid(broker.pid, os.WNOHANG)
    return outcome, seen["end"]


@pytest.mark.restarts_services
@pytest.mark.faults(
    row="2", fault="the Kafka broker killed with SIGKILL while produce() sends 40,000 events (idempotent, "
                   "acks=all), then the broker restarted and produce re-run with the same batch",
    must_hold="the send completes with nothing lost or twice, or fails loudly (ProduceError) saying what was "
              "delivered; the re-run delivers exactly the rest: every event_id once in the topic")
def test_the_broker_killed_mid_send_then_a_re_run_delivers_exactly_the_rest(stack, unique_name, tmp_path, observed):
    settings = stack.replace(data_dir_override=str(tmp_path / "data"), kafka_topic=f"faults.{unique_name}")
    services.kafka.ensure_topic(settings, settings.kafka_topic)
    batch = generate(events=40_000, seed=21, **CLEAN)
    try:
        outcome, at_kill = _kill_broker_while_producing(settings, batch, threshold=4000)
    finally:
        start = time.monotonic()
        [restarted] = services.up(settings, ["kafka"])
        restart_s = time.monotonic() - start
    error = outcome.get("error")
    held = _event_ids(settings)  # what the broker kept of the first attempt
    rerun = produce(settings, batch, progress=False)
    ids = _event_ids(settings)

    first_line = str(error).splitlines()[0] if error else ""
    observed(f"broker killed at end offset {at_kill}; produce "
             + (f"failed after {outcome['seconds']:.1f} s: {first_line[:150]}..." if error
                else f"completed first ({outcome['result'].delivered} delivered)")
             + f"; topic after the broker's restart ({restart_s:.1f} s): {sum(held.values())} messages "
             f"({len(held)} distinct); re-run: {rerun.resumed} already there, {rerun.sent} sent, "
             f"{rerun.delivered} delivered in {rerun.seconds:.1f} s; topic {sum(ids.values())} messages, "
             f"{len(ids)} distinct event ids, {len(batch.messages)} expected")
    assert restarted.healthy
    assert sum(held.values()) == len(held), "the killed send left a message twice"
    if error is not None:
        delivered = error.result.delivered
        assert re.search(rf"\b{delivered}\b", first_line) and "re-run" in first_line, first_line
        assert 0 < delivered <= sum(held.values()) <= len(batch.messages)
        assert (rerun.resumed, rerun.sent, rerun.failed) == (sum(held.values()), len(batch.messages) - rerun.resumed, 0)
    else:
        assert outcome["result"].delivered == len(batch.messages) and rerun.skipped
    assert sum(ids.values()) == len(ids) == len(batch.messages) == _topic_size(settings)
    assert set(ids) == {json.loads(m.value)["event_id"] for m in batch.messages}
