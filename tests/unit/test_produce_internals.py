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
