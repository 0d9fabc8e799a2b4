"""Apache Kafka, single node in KRaft mode (broker and controller in one JVM), from the
official Maven artifacts. Storage is formatted once with a cluster id kept in the data folder."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from lakehouse_helpers.runtime import jvm
from lakehouse_helpers.runtime.services._hints import require_port, start_hint
from lakehouse_helpers.runtime.services._process import ServiceError
from lakehouse_helpers.runtime.settings import Settings

NAME = "kafka"
TITLE = "Kafka broker"

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


def endpoint(settings: Settings) -> str:
    return settings.kafka_bootstrap


def bind(settings: Settings) -> tuple[str, int]:
    return settings.kafka_host, settings.kafka_port


def _server_properties(settings: Settings, base: Path) -> str:
    host, port, cport = settings.kafka_host, settings.kafka_port, settings.kafka_controller_port
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{cport}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={base / "data"}
num.partitions=1
# Topics are created by the workbook only (01's producer, the tests for their own): a deleted or
# mistyped topic fails with its name instead of coming back empty on the first read or send.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Keep the workbook's events for a week and small segments for a laptop disk.
log.retention.hours=168
log.segment.bytes=104857600
"""


def _java(settings: Settings, marker: str) -> list[str]:
    # Headless, as Kafka's own start scripts run it.
    options = jvm.options(settings, "kafka", properties={"java.awt.headless": "true"})
    return ["java", marker, *options, "-cp", jvm.classpath(settings, "kafka")]


def new_cluster_id() -> str:
    """A random cluster id as Kafka makes one: never starting with "-", which the storage tool
    would read as an option (one id in 64 would fail the first start)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def prepare(settings: Settings, base: Path) -> None:
    import subprocess

    (base / "server.properties").write_text(_server_properties(settings, base))
    (base / "log4j2.properties").write_text(LOG4J2)
    if (base / "data" / "meta.properties").is_file():
        return
    cluster_id = new_cluster_id()
    result = subprocess.run(
        _java(settings, "-Dlakehouse.format=1")
        + ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", "server.properties"],
        cwd=base, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise ServiceError(
            f"Formatting Kafka storage in {base / 'data'} failed:\n{result.stdout}{result.stderr}",
            service=NAME, fix="Fix the cause above, then run `make services-up` again.",
        )


def command(settings: Settings, base: Path, marker: str) -> list[str]:
    return _java(settings, marker) + ["kafka.Kafka", "server.properties"]


def environment(settings: Settings) -> dict[str, str]:
    """Nothing beyond the inherited environment."""
    return {}


def check(settings: Settings) -> str:
    """Reachable and answering metadata requests."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    where = settings.kafka_bootstrap
    hint = start_hint(settings, "KAFKA_BOOTSTRAP_SERVERS")
    require_port(settings, NAME, "Kafka", bind(settings), "KAFKA_BOOTSTRAP_SERVERS", where)
    timeout_ms = int(settings.connect_timeout_s * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=where, client_id="lakehouse-health",
            request_timeout_ms=max(timeout_ms, 2000), bootstrap_timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        raise ServiceError(
            f"Kafka at {where} accepts connections but does not answer ({exc!r}).", service=NAME, address=where,
            fix=hint,
        ) from None
    try:
        cluster = admin.describe_cluster()
        topics = admin.list_topics()
    except KafkaError as exc:
        # Usually still starting: `make services-up` waits until it answers.
        raise ServiceError(f"Kafka at {where} is not ready: {exc!r}.", service=NAME, address=where, fix=hint) from None
    finally:
        admin.close()
    return f"{len(cluster.get('brokers', []))} broker(s), {len([t for t in topics if not t.startswith('__')])} topic(s)"


def after_start(settings: Settings) -> None:
    """Nothing: the broker starts without the workbook's topic, which 01's producer creates. A
    topic made here would let 02 read an empty one after a reset or a deleted topic, silently."""


class MissingTopic(ServiceError):
    """A topic the workbook reads does not exist (the broker does not create topics on use)."""


def require_topic(settings: Settings, topic: str) -> None:
    """Raise MissingTopic, naming the topic, the broker, the topics it has and what to run, when
    `topic` does not exist. Spark's Kafka source would otherwise fail deep in a stack trace."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="lakehouse-setup")
    try:
        topics = admin.list_topics()
    finally:
        admin.close()
    if topic in topics:
        return
    others = sorted(t for t in topics if not t.startswith("__"))
    raise MissingTopic(
        f"Kafka topic {topic!r} does not exist at {settings.kafka_bootstrap} "
        f"(topics there: {', '.join(others) or 'none'}).", service=NAME, address=settings.kafka_bootstrap,
        fix="Notebook 01 creates and fills it: run 01_produce_events (or `make run`), "
            "or set KAFKA_TOPIC to the topic you mean.",
    )


def ensure_topic(settings: Settings, topic: str, partitions: int = 1) -> bool:
    """Create the topic if it does not exist; True when it was created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="lakehouse-setup")
    try:
        if topic in admin.list_topics():
            return False
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()


def delete_topics(settings: Settings, topics: list[str], client_id: str = "lakehouse-setup") -> list[str]:
    """Delete those of `topics` that exist and wait until the broker no longer lists them (a
    deletion is asynchronous: a topic created again too early would be refused); the deleted."""
    import contextlib
    import time

    from kafka import KafkaAdminClient
    from kafka.errors import UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id=client_id)
    try:
        existing = [t for t in topics if t in admin.list_topics()]
        if existing:
            with contextlib.suppress(UnknownTopicOrPartitionError):  # deleted meanwhile by someone else
                admin.delete_topics(existing)
        deadline = time.monotonic() + 30
        while set(existing) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise ServiceError(f"Kafka still lists {existing} 30 s after deleting them.", service=NAME,
                                   address=settings.kafka_bootstrap, fix="Run the command again.")
            time.sleep(0.2)
        return existing
    finally:
        admin.close()
