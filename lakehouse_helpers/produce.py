"""Produce generated events to Kafka with kafka-python: idempotent, acks=all, keyed by order id.

Re-running is safe: every batch is identified by its generator settings, and a batch that the
topic already holds (its manifest says so and the topic still has those offsets) is not sent
again. Delivery failures are counted and reported, never hidden.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import services
from .events import Batch, GeneratorConfig
from .settings import Settings

SEND_CHUNK = 5000  # messages between progress-bar updates


class ProduceError(RuntimeError):
    """Some messages were not delivered."""


@dataclass
class ProduceResult:
    topic: str
    batch_id: str
    sent: int
    delivered: int
    failed: int
    seconds: float
    skipped: bool = False
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


def manifest_dir(settings: Settings, topic: str) -> Path:
    return settings.data_dir / "produced" / topic


def load_manifests(settings: Settings, topic: str | None = None) -> list[dict]:
    """What 01 produced to the topic: one manifest per batch, oldest first."""
    folder = manifest_dir(settings, topic or settings.kafka_topic)
    manifests = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    return sorted(manifests, key=lambda m: m["produced_at"])


def _end_offset(settings: Settings, topic: str) -> int:
    """The sum of the topic's end offsets (0 when it does not exist). Asked of the admin client:
    a KafkaConsumer gives the same figure but first waits out a fixed 100 ms metadata back-off."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="lakehouse-offsets")
    try:
        [described] = admin.describe_topics([topic])  # never creates the topic
        partitions = [TopicPartition(topic, p["partition_index"]) for p in described["partitions"]]
        if not partitions:
            return 0
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        return sum(end.offset for end in ends.values())
    finally:
        admin.close()


def _already_produced(settings: Settings, topic: str, bid: str) -> dict | None:
    path = manifest_dir(settings, topic) / f"{bid}.json"
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    # The topic may have been wiped (make clean of Kafka data): then the manifest is stale.
    if _end_offset(settings, topic) >= manifest["end_offset_total"]:
        return manifest
    path.unlink()
    return None


def _progress_bar():
    """A widget in JupyterLab; plain text when the runner executes the notebook headless."""
    from .runner import HEADLESS_ENV

    if os.environ.get(HEADLESS_ENV):
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm


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
    from kafka.errors import KafkaError

    # A one-partition topic: name the partition, which skips hashing each key (the same partition
    # the partitioner would pick). Otherwise the producer's partitioner places each key as usual.
    partition = 0 if producer.partitions_for(topic) == {0} else None
    futures, errors = [], []
    send, add = producer.send, futures.append
    bar = _progress_bar()(total=len(messages), desc=f"producing to {topic}", unit="msg", disable=not progress, mininterval=0.5)
    with bar, _gc_paused():
        for start in range(0, len(messages), SEND_CHUNK):  # the bar moves per chunk, not per message
            chunk = messages[start:start + SEND_CHUNK]
            for message in chunk:
                try:
                    add(send(topic, key=message.key, value=message.value, headers=headers, partition=partition))
                except KafkaError as exc:  # refused before sending (too large, ...): counted, not hidden
                    errors.append(repr(exc))
            bar.update(len(chunk))
        producer.flush(timeout=timeout_s)
    delivered = [f.value.offset for f in futures if f.succeeded()]
    errors += [repr(f.exception) if f.is_done else f"not acknowledged within {timeout_s:g} s" for f in futures if not f.succeeded()]
    return delivered, errors


def _producer(settings: Settings, timeout_s: float):
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="lakehouse-workbook",
        acks="all",
        enable_idempotence=True,
        # Large compressed batches, up to 5 in flight (idempotence keeps their order): the
        # broker and the wire see a fifth of the bytes, and the client 2-3x the rate.
        compression_type="zstd",
        linger_ms=50,
        batch_size=1024 * 1024,
        max_in_flight_requests_per_connection=5,
        delivery_timeout_ms=int(timeout_s * 1000),
    )


def produce(
    settings: Settings,
    batch: Batch,
    topic: str | None = None,
    progress: bool = True,
    timeout_s: float = 120.0,
) -> ProduceResult:
    """Send every message of `batch`; return counts, throughput and offsets."""
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

    producer = _producer(settings, timeout_s)
    start = time.monotonic()
    try:
        delivered, errors = _send_all(producer, topic, batch.messages, [("batch_id", bid.encode())], progress, timeout_s)
    finally:
        producer.close(timeout=10)
    seconds = time.monotonic() - start

    sent = len(batch.messages)
    failed = sent - len(delivered)
    expected, counts = batch.expected, batch.counts  # each a pass over the messages: once
    result = ProduceResult(
        topic, bid, sent, len(delivered), failed, round(seconds, 3),
        first_offset=min(delivered) if delivered else None, last_offset=max(delivered) if delivered else None,
        errors=errors[:5], expected=expected, counts=counts,
    )
    if failed:
        raise ProduceError(
            f"{failed} of {sent} messages were not delivered to {topic} at {settings.kafka_bootstrap}; "
            f"first errors: {errors[:3]}. The batch is not recorded as produced: fix the cause and re-run; "
            "events already delivered are then sent again, and silver removes them by event_id."
        )
    folder = manifest_dir(settings, topic)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "batch_id": bid, "topic": topic, "config": asdict(batch.config), "produced_at": time.time(),
        "first_offset": result.first_offset, "last_offset": result.last_offset,
        "end_offset_total": _end_offset(settings, topic), "expected": expected, "counts": counts,
    }
    (folder / f"{bid}.json").write_text(json.dumps(manifest, indent=2, default=str))
    return result
