"""The one kafka-python internal the producer relies on (produce._force_close): a real
KafkaProducer, no broker. If a kafka-python release renames or drops it, this fails here, not
in a dead-broker recovery that would leave futures pending."""

from __future__ import annotations

import socket

import pytest

from lakehouse_helpers.pipeline.produce import _force_close


@pytest.fixture
def producer():
    from kafka import KafkaProducer

    with socket.socket() as sock:  # a port nothing listens on: no broker, no connection
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # api_version given: the constructor does not probe the (absent) broker for it.
    p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", api_version=(2, 8), enable_idempotence=True)
    yield p
    p.close(timeout=0)


def test_the_producer_has_the_io_thread_force_close_relies_on(producer):
    sender = producer._sender
    assert callable(getattr(sender, "force_close", None))
    assert sender.is_alive()


def test_force_close_stops_the_io_thread_and_close_returns(producer):
    _force_close(producer)
    producer._sender.join(timeout=10)
    assert not producer._sender.is_alive()
    producer.close(timeout=0)  # nothing pending any more: returns instead of raising


def test_the_producer_is_configured_by_01_s_page(tmp_path):
    """One copy: produce() builds its producer from 01's cell tagged producer-config (the page
    passes it, every other caller reads it), so one line changed on a copy of the page is what
    the runner sees, and the page's durable, idempotent settings are the ones in use."""
    import json

    from lakehouse_helpers.pipeline.produce import PAGE, page_producer_config

    assert {k: page_producer_config()[k] for k in ("acks", "enable_idempotence")} == {
        "acks": "all", "enable_idempotence": True}
    nb = json.loads(PAGE.read_text())
    cell = next(c for c in nb["cells"] if "producer-config" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    assert source.count('"linger_ms": 50') == 1
    cell["source"] = source.replace('"linger_ms": 50', '"linger_ms": 7')
    copy = tmp_path / PAGE.name
    copy.write_text(json.dumps(nb))
    assert page_producer_config(copy)["linger_ms"] == 7 and page_producer_config()["linger_ms"] == 50
