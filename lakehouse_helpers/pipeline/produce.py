"""Produce generated events to Kafka with kafka-python: idempotent, acks=all, keyed by order id.

Re-running is safe: every batch is identified by its generator settings, and a batch that the
topic already holds (its manifest says so and the topic still has those offsets) is not sent
again. Delivery failures are counted and reported, never hidden. A send that did not finish (a
delivery failure, the broker or the process killed) leaves a pending marker with the topic's
offsets before it; the re-run reads what the topic holds of the batch from there (every message
carries the batch id in a header) and sends exactly the rest.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lakehouse_helpers.pipeline.events import Batch, GeneratorConfig
from lakehouse_helpers.runtime import layout, pages, services
from lakehouse_helpers.runtime.progress import progress_bar
from lakehouse_helpers.runtime.settings import Settings

SEND_CHUNK = 5000  # messages between progress-bar updates
# The flush waits the delivery timeout plus this margin (the producer's expiry runs in its I/O
# loop, a little late), then gives up on what is still pending.
FLUSH_MARGIN_S = 2.0


class ProduceError(RuntimeError):
    """Some messages were not delivered; `result` (when set) counts which were."""

    def __init__(self, message: str, result: ProduceResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass
class ProduceResult:
    topic: str
    batch_id: str
    sent: int
    delivered: int
    failed: int
    seconds: float
    skipped: bool = False
    resumed: int = 0  # messages of the batch the topic already held from an unfinished earlier send
    first_offset: int | None = None
    last_offset: int | None = None
    errors: list[str] = field(default_factory=list)
    expected: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


def batch_id(config: GeneratorConfig) -> str:
    text = json.dumps(asdict(config), default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_manifests(settings: Settings, topic: str | None = None) -> list[dict]:
    """What 01 produced to the topic: one manifest per batch, oldest first."""
    folder = layout.manifest_dir(settings, topic or settings.kafka_topic)
    manifests = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    return sorted(manifests, key=lambda m: m["produced_at"])


def _partition_offsets(settings: Settings, topic: str, latest: bool = True) -> dict[int, int]:
    """The topic's end (or beginning) offset per partition ({} when it does not exist). Asked of
    the admin client: a KafkaConsumer gives the same figures but first waits out a fixed 100 ms
    metadata back-off."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="lakehouse-offsets")
    try:
        [described] = admin.describe_topics([topic])  # never creates the topic
        partitions = [TopicPartition(topic, p["partition_index"]) for p in described["partitions"]]
        if not partitions:
            return {}
        spec = OffsetSpec.LATEST if latest else OffsetSpec.EARLIEST
        offsets = admin.list_partition_offsets({tp: spec for tp in partitions})
        return {tp.partition: o.offset for tp, o in offsets.items()}
    finally:
        admin.close()


def _end_offset(settings: Settings, topic: str) -> int:
    """The sum of the topic's end offsets (0 when it does not exist)."""
    return sum(_partition_offsets(settings, topic).values())


def _already_produced(settings: Settings, topic: str, bid: str) -> dict | None:
    path = layout.manifest_dir(settings, topic) / f"{bid}.json"
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    # The topic may have been wiped (make clean of Kafka data): then the manifest is stale.
    if _end_offset(settings, topic) >= manifest["end_offset_total"]:
        return manifest
    path.unlink()
    return None


def _pending_path(settings: Settings, topic: str, bid: str) -> Path:
    # A folder of its own: load_manifests reads finished batches only.
    return layout.manifest_dir(settings, topic) / "pending" / f"{bid}.json"


def _start_or_resume(settings: Settings, topic: str, bid: str, messages: list) -> tuple[list, int]:
    """The messages to send now, and how many of the batch the topic already holds. A first
    attempt records where the topic ended before it; a re-run after an unfinished one reads what
    the topic holds of the batch from there and leaves those messages out, one for one (exact
    duplicates the generator injected count separately)."""
    path = _pending_path(settings, topic, bid)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        marker = {"batch_id": bid, "started_at": time.time(), "start_offsets": _partition_offsets(settings, topic)}
        path.write_text(json.dumps(marker))
        return messages, 0
    start = {int(p): o for p, o in json.loads(path.read_text())["start_offsets"].items()}
    held = _held(settings, topic, bid, start)
    rest = []
    for m in messages:  # the topic holds the first messages of each partition's share, in order
        if held[(m.key, m.value)]:
            held[(m.key, m.value)] -= 1
        else:
            rest.append(m)
    return rest, len(messages) - len(rest)


def _held(settings: Settings, topic: str, bid: str, start: dict[int, int], idle_s: float = 30.0) -> Counter:
    """(key, value) of every message of batch `bid` the topic holds from the `start` offsets on,
    read back with a plain consumer and picked by the batch_id header each of them carries."""
    from kafka import KafkaConsumer, TopicPartition

    ends, begins = _partition_offsets(settings, topic), _partition_offsets(settings, topic, latest=False)
    # Each start is clamped into what the partition holds now (a topic re-created since starts over).
    ranges = {TopicPartition(topic, p): (min(max(start.get(p, 0), begins[p]), end), end) for p, end in ends.items()}
    ranges = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
    held, tag = Counter(), ("batch_id", bid.encode())
    if not ranges:
        return held
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                             client_id="lakehouse-resume")
    try:
        consumer.assign(list(ranges))
        for tp, (first, _) in ranges.items():
            consumer.seek(tp, first)
        last_read = time.monotonic()
        while ranges:
            polled = consumer.poll(timeout_ms=500)
            for tp, records in polled.items():
                end = ranges[tp][1] if tp in ranges else -1
                held.update((r.key, r.value) for r in records if r.offset < end and tag in r.headers)
            if polled:
                last_read = time.monotonic()
            elif time.monotonic() - last_read > idle_s:
                raise ProduceError(f"Reading back what {topic} holds of batch {bid} stalled for {idle_s:g} s "
                                   f"at {settings.kafka_bootstrap}; is Kafka up? Then re-run.")
            ranges = {tp: r for tp, r in ranges.items() if consumer.position(tp) < r[1]}
        return held
    finally:
        consumer.close()


@contextmanager
def _gc_paused():
    """Hold off the cyclic garbage collector while sending. kafka-python makes a few objects per
    message that all stay alive until the flush (futures, their callbacks); that growth sets off
    full collections that walk the whole heap (batch and futures included) again and again and
    free nothing: a third of the send time at 100,000 messages. Reference counting still frees
    the rest; the cycles left behind go in one collection once the collector is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _send_all(producer, topic: str, messages, headers, progress: bool, timeout_s: float) -> tuple[list[int], list[str]]:
    """Send every message; after the flush, each one's future says delivered (its offset) or why not."""
    from kafka.errors import KafkaError, KafkaTimeoutError

    # A one-partition topic: name the partition, which skips hashing each key (the same partition
    # the partitioner would pick). Otherwise the producer's partitioner places each key as usual.
    partition = 0 if producer.partitions_for(topic) == {0} else None
    futures, errors = [], []
    send, add = producer.send, futures.append
    bar = progress_bar()(total=len(messages), desc=f"producing to {topic}", unit="msg", disable=not progress,
        mininterval=0.5)
    with bar, _gc_paused():
        try:
            for start in range(0, len(messages), SEND_CHUNK):  # the bar moves per chunk, not per message
                chunk = messages[start:start + SEND_CHUNK]
                for message in chunk:
                    try:
                        add(send(topic, key=message.key, value=message.value, headers=headers, partition=partition))
                    except KafkaTimeoutError:
                        raise  # no metadata or a full buffer: the broker is unreachable, stop sending
                    except KafkaError as exc:  # refused before sending (too large, ...): counted, not hidden
                        errors.append(repr(exc))
                bar.update(len(chunk))
        except KafkaTimeoutError as exc:
            errors.append(f"{exc!r}; {len(messages) - len(futures) - len(errors)} messages from there on not sent")
        try:
            producer.flush(timeout=timeout_s + FLUSH_MARGIN_S)
        except KafkaTimeoutError:
            _force_close(producer)
    delivered = [f.value.offset for f in futures if f.succeeded()]
    errors += [repr(f.exception) if f.is_done else f"not acknowledged within {timeout_s:g} s" for f in futures
        if not f.succeeded()]
    # One line per distinct error (a batch's futures share one), with how many messages it hit.
    return delivered, [f"{e} x{n}" if n > 1 else e for e, n in Counter(errors).items()]


def _force_close(producer) -> None:
    """Fail every future still pending, so close() returns and nothing is delivered later behind
    the report. Needed with a dead broker: kafka-python 3.0 (idempotent) expires the batch in
    flight, then waits for a new producer id before it expires the queued ones, which never comes,
    so their futures never complete. No public call does it: close() flushes first, and a flush
    that times out raises before close() reaches its own force close. So this is the one place
    that reaches into kafka-python's I/O thread (`_sender`); tests/unit/test_produce_internals.py
    fails if a kafka-python release renames it, and a missing one raises here instead of leaving
    the futures pending unnoticed."""
    sender = producer._sender  # private: see above
    sender.force_close()  # the I/O thread aborts the incomplete batches and exits


# The producer's configuration is taught on notebook 01's page, in its cell tagged
# producer-config: its only copy. produce() takes it from the caller (the page passes its own)
# or reads that cell.
PAGE = pages.NOTEBOOKS_DIR / "01_produce_events.ipynb"
CONFIG_TAG = "producer-config"


def page_producer_config(page: Path = PAGE) -> dict:
    """`producer_config` as notebook 01 (or `page`, a copy of it) defines it."""
    return dict(pages.run_cells(page, [CONFIG_TAG], {})["producer_config"])


def _producer(settings: Settings, timeout_s: float, config: dict):
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        **config,
        delivery_timeout_ms=int(timeout_s * 1000),
        # kafka-python wants delivery > linger + request timeout: a short timeout_s shortens both.
        request_timeout_ms=min(30_000, int(timeout_s * 1000) - int(config.get("linger_ms", 0)) - 1),
    )


def produce(
    settings: Settings,
    batch: Batch,
    topic: str | None = None,
    progress: bool = True,
    timeout_s: float = 120.0,
    producer_config: dict | None = None,
) -> ProduceResult:
    """Send every message of `batch` with `producer_config` (by default notebook 01's, read from
    its page); return counts, throughput and offsets."""
    topic = topic or settings.kafka_topic
    services.require(settings, "kafka")
    services.kafka.ensure_topic(settings, topic)
    bid = batch_id(batch.config)
    done = _already_produced(settings, topic, bid)
    if done is not None:
        return ProduceResult(
            topic, bid, 0, 0, 0, 0.0, skipped=True, first_offset=done.get("first_offset"),
            last_offset=done.get("last_offset"), expected=done["expected"], counts=done["counts"],
        )

    messages, resumed = _start_or_resume(settings, topic, bid, batch.messages)
    producer = _producer(settings, timeout_s, producer_config or page_producer_config())
    start = time.monotonic()
    try:
        delivered, errors = _send_all(producer, topic, messages, [("batch_id", bid.encode())], progress, timeout_s)
    finally:
        producer.close(timeout=10)
    seconds = time.monotonic() - start

    sent, failed = len(messages), len(messages) - len(delivered)
    expected, counts = batch.expected, batch.counts  # each a pass over the messages: once
    result = ProduceResult(
        topic, bid, sent, len(delivered), failed, round(seconds, 3), resumed=resumed,
        first_offset=min(delivered) if delivered else None, last_offset=max(delivered) if delivered else None,
        errors=errors[:5], expected=expected, counts=counts,
    )
    if failed:
        raise ProduceError(_failure(settings, result, len(batch.messages)), result)
    _record(settings, batch, result)
    return result


def _record(settings: Settings, batch: Batch, result: ProduceResult) -> None:
    """Write the batch's manifest (the batch is produced) and drop its pending marker."""
    from kafka.errors import KafkaError

    try:
        end_offset_total = _end_offset(settings, result.topic)
    except KafkaError as exc:  # the broker went away just after the last acknowledgement
        raise ProduceError(
            f"All {result.sent} messages were delivered, but the batch could not be recorded ({exc!r}). "
            "Re-run once Kafka answers: the re-run finds them in the topic and sends nothing again.", result,
        ) from exc
    manifest = {
        "batch_id": result.batch_id, "topic": result.topic, "config": asdict(batch.config), "produced_at": time.time(),
        "first_offset": result.first_offset, "last_offset": result.last_offset,
        "end_offset_total": end_offset_total, "expected": result.expected, "counts": result.counts,
    }
    (layout.manifest_dir(settings, result.topic) / f"{result.batch_id}.json").write_text(
        json.dumps(manifest, indent=2, default=str))
    _pending_path(settings, result.topic, result.batch_id).unlink(missing_ok=True)


def _failure(settings: Settings, result: ProduceResult, total: int) -> str:
    """What a failed send delivered, and how to deliver the rest."""
    offsets = f" (offsets {result.first_offset}..{result.last_offset})" if result.delivered else ""
    earlier = f" and {result.resumed} from an earlier attempt" if result.resumed else ""
    return (
        f"{result.failed} of {result.sent} messages were not delivered, {result.delivered} were{offsets}{earlier}: "
        f"{result.delivered + result.resumed} of the batch's {total} are in {result.topic} at "
        f"{settings.kafka_bootstrap}, with any the broker wrote but could not acknowledge. "
        f"First errors: {result.errors[:3]}. Fix the cause (is Kafka up? `make services-up`) and re-run: "
        "the re-run reads which of this batch's messages the topic holds and sends exactly the rest."
    )
