"""Produce generated events to Kafka with kafka-python: idempotent, acks=all, keyed by order id.

Re-running is safe: every batch is identified by its generator settings, and a batch that the
topic already holds (its manifest says so and the topic still has those offsets) is not sent
again. Delivery failures are counted and reported, never hidden.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import services
from .events import Batch, GeneratorConfig
from .settings import Settings


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
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, client_id="lakehouse-offsets")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


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


def _send_all(producer, topic: str, messages, headers, progress: bool, timeout_s: float) -> tuple[list[int], list[str]]:
    """Send every message; after the flush, each one's future says delivered (its offset) or why not."""
    from kafka.errors import KafkaError

    futures, errors = [], []
    send = producer.send
    for message in _progress_bar()(messages, desc=f"producing to {topic}", unit="msg", disable=not progress, mininterval=0.5):
        try:
            futures.append(send(topic, key=message.key, value=message.value, headers=headers))
        except KafkaError as exc:  # refused before sending (too large, ...): counted, not hidden
            errors.append(repr(exc))
    producer.flush(timeout=timeout_s)
    delivered = [f.value.offset for f in futures if f.succeeded()]
    errors += [repr(f.exception) if f.is_done else f"not acknowledged within {timeout_s:g} s" for f in futures if not f.succeeded()]
    return delivered, errors


def produce(
    settings: Settings,
    batch: Batch,
    topic: str | None = None,
    progress: bool = True,
    timeout_s: float = 120.0,
) -> ProduceResult:
    """Send every message of `batch`; return counts, throughput and offsets."""
    from kafka import KafkaProducer

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

    producer = KafkaProducer(
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
    start = time.monotonic()
    try:
        delivered, errors = _send_all(producer, topic, batch.messages, [("batch_id", bid.encode())], progress, timeout_s)
    finally:
        producer.close(timeout=10)
    seconds = time.monotonic() - start

    sent = len(batch.messages)
    failed = sent - len(delivered)
    result = ProduceResult(
        topic, bid, sent, len(delivered), failed, round(seconds, 3),
        first_offset=min(delivered) if delivered else None, last_offset=max(delivered) if delivered else None,
        errors=errors[:5], expected=batch.expected, counts=batch.counts,
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
        "end_offset_total": _end_offset(settings, topic), "expected": batch.expected, "counts": batch.counts,
    }
    (folder / f"{bid}.json").write_text(json.dumps(manifest, indent=2, default=str))
    return result
