"""Spark Structured Streaming from Kafka into the local raw Delta table, with a quarantine.

Every message ends up in exactly one place: parsed and valid in the raw table, or in the
quarantine table with its raw payload, the reason and its Kafka coordinates. Nothing is dropped.
The query is checkpointed (re-running reads only new offsets) and each micro-batch is written
with Delta's idempotent `txnAppId`/`txnVersion`, so a retried batch is never written twice.
`failOnDataLoss` stays on: if Kafka lost offsets the stream stops instead of skipping data.
The tables' columns are the contract in `contract.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse_helpers.pipeline import stream_owner
from lakehouse_helpers.pipeline.events import (
    INVALID_QUANTITY,
    MALFORMED_JSON,
    MISSING_REQUIRED,
    PRODUCT_IDS,
    REQUIRED_FIELDS,
    UNKNOWN_PRODUCT,
)
from lakehouse_helpers.pipeline.stream_owner import EarlierRun, StreamBusy  # noqa: F401 - part of this module's API
from lakehouse_helpers.runtime import layout, pages, services
from lakehouse_helpers.runtime.contract import EVENT_FIELDS, QUARANTINE_DDL, RAW_DDL
from lakehouse_helpers.runtime.settings import Settings


def event_schema():
    from pyspark.sql.types import StructType

    # Timestamps are parsed explicitly below, so a bad one is a clear missing value, not a corrupt row.
    ddl = ", ".join(f"{n} {'string' if t == 'timestamp' else t}" for n, t in EVENT_FIELDS)
    return StructType.fromDDL(ddl + ", _corrupt_record string")


def _reason_and_detail():
    """`reason` (null when valid) and `detail` of a classified row, as column expressions over the
    parsed event's columns, `payload` and `_corrupt_record`."""
    from pyspark.sql import functions as F

    # PERMISSIVE from_json gives a row of nulls, not null, for broken JSON: detect it explicitly.
    # Jackson reads the first value and stops, so `{..}}junk`, two objects in one message (the
    # second would vanish) and single quotes parse too: a payload is valid only as exactly one
    # strict JSON value when wrapped in brackets.
    one_value = F.expr(
        "coalesce(size(from_json(concat('[', payload, ']'), 'array<string>',"
        " map('allowSingleQuotes', 'false'))), 0) = 1"
    )
    malformed = F.expr("json_object_keys(payload)").isNull() | F.col("_corrupt_record").isNotNull() | ~one_value
    # An object whose field has the wrong type (a string quantity) is corrupt too: say which field.
    typed = [(n, t) for n, t in EVENT_FIELDS if t not in ("string", "timestamp")]
    wrong_types = F.concat_ws("; ", *[
        F.when(F.get_json_object("payload", f"$.{n}").isNotNull() & F.col(n).isNull(),
               F.concat(F.lit(f"{n} is not {'an' if t == 'int' else 'a'} {t}: "),
                        F.get_json_object("payload", f"$.{n}")))
        for n, t in typed
    ])
    missing = [F.when(F.col(c).isNull(), F.lit(c)) for c in REQUIRED_FIELDS]
    missing_list = F.concat_ws(",", *missing)  # event_ts also counts when unparseable
    products = F.array(*[F.lit(p) for p in sorted(PRODUCT_IDS)])
    reason = (
        F.when(malformed, F.lit(MALFORMED_JSON))
        .when(missing_list != "", F.lit(MISSING_REQUIRED))
        .when(F.col("quantity") <= 0, F.lit(INVALID_QUANTITY))
        .when(~F.array_contains(products, F.col("product_id")), F.lit(UNKNOWN_PRODUCT))
    )
    detail = (
        F.when(malformed & (wrong_types != ""), wrong_types)
        .when(malformed, F.lit("payload is not a JSON object"))
        .when(missing_list != "", F.concat(F.lit("missing: "), missing_list))
        .when(F.col("quantity") <= 0, F.concat(F.lit("quantity="), F.col("quantity").cast("string")))
        .when(~F.array_contains(products, F.col("product_id")), F.concat(F.lit("product_id="), F.col("product_id")))
    )
    return reason, detail


def classify(kafka_df):
    """Parse Kafka records and add `reason` (null when valid) and `detail`. Pure DataFrame code,
    used by the stream and testable on a plain batch DataFrame with Kafka's columns."""
    from pyspark.sql import functions as F

    known = [n for n, _ in EVENT_FIELDS]
    payload = F.col("value").cast("string")
    parsed = F.from_json(payload, event_schema(),
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    df = kafka_df.select(
        payload.alias("payload"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        parsed.alias("e"),
    )
    df = df.select(
        "*",
        *[F.col(f"e.{n}").alias(n) for n, t in EVENT_FIELDS if t != "timestamp"],
        # try_: a malformed timestamp makes the event invalid (quarantined), not the stream fail.
        F.try_to_timestamp(F.col("e.event_ts")).alias("event_ts"),
        F.col("e._corrupt_record").alias("_corrupt_record"),
    )
    reason, detail = _reason_and_detail()
    unknown = F.array_except(
        F.coalesce(F.expr("json_object_keys(payload)"), F.array().cast("array<string>")),
        F.array(*[F.lit(k) for k in known]),
    )
    now = F.current_timestamp()
    return df.drop("e").select(
        "*", reason.alias("reason"), detail.alias("detail"), unknown.alias("unknown_fields"),
        now.alias("ingested_at"), F.to_date(now).alias("ingestion_date"),
    ).drop("_corrupt_record")


def ensure_tables(spark, settings: Settings) -> None:
    """Create the raw and quarantine tables once, with change data feed on (03 exports by version)."""
    for path, ddl in ((layout.raw_orders(settings), RAW_DDL), (layout.quarantine(settings), QUARANTINE_DDL)):
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS delta.`{path}` ({ddl}) USING DELTA "
            "TBLPROPERTIES (delta.enableChangeDataFeed = true)"
        )


QUERY_NAME = layout.RAW_STREAM  # the streaming query's name and its checkpoint folder
MODES = ("availableNow", "live")


def txn_app_id(topic: str) -> str:
    """Delta's `txnAppId` for the query: Delta remembers the last `txnVersion` committed per id."""
    return f"{QUERY_NAME}:{topic}"


def kafka_options(settings: Settings, topic: str | None = None, max_offsets_per_trigger: int | None = None) -> dict:
    """Options of a Kafka read of the whole topic from its earliest offset. `failOnDataLoss`
    stays on: lost offsets stop the read instead of being skipped."""
    options = {
        "kafka.bootstrap.servers": settings.kafka_bootstrap,
        "subscribe": topic or settings.kafka_topic,
        "startingOffsets": "earliest",  # a new checkpoint starts at the beginning of the topic
        "failOnDataLoss": "true",
    }
    if max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(max_offsets_per_trigger)
    return options


def kafka_reader(spark, settings: Settings, topic: str | None = None, streaming: bool = False):
    """A reader of the topic: streaming (02) or one batch of everything there now (to inspect it).
    A missing topic raises MissingTopic here, naming it and what to run."""
    services.kafka.require_topic(settings, topic or settings.kafka_topic)
    reader = (spark.readStream if streaming else spark.read).format("kafka").options(**kafka_options(settings, topic))
    return reader if streaming else reader.option("endingOffsets", "latest")


PAGE = pages.NOTEBOOKS_DIR / "02_stream_kafka_to_delta.ipynb"  # the stream's steps: see run_stream
WRITER_TAG = "raw-writer"  # the foreachBatch writer's cell


class CheckpointLost(RuntimeError):
    """The raw tables hold rows of the topic, but the stream's checkpoint is new."""


def require_checkpoint(spark, settings: Settings, topic: str | None = None) -> None:
    """Exactly once rests on the checkpoint: a new one re-reads the topic from its first offset,
    with batch ids from 0 again, which Delta skips as already written (same txnAppId), so the
    messages that arrived since would be marked done and lost. Refuse to start instead."""
    from pyspark.sql import functions as F

    checkpoint = Path(layout.checkpoint(settings, QUERY_NAME))
    if any((checkpoint / "offsets").glob("[0-9]*")):
        return
    topic = topic or settings.kafka_topic
    paths = (layout.raw_orders(settings), layout.quarantine(settings))
    if any(spark.read.format("delta").load(p).where(F.col("kafka_topic") == topic).limit(1).count() for p in paths):
        raise CheckpointLost(
            f"The raw tables already hold messages of topic {topic}, but the stream's checkpoint "
            f"{checkpoint} is new (deleted?). A new checkpoint would read the topic from the start "
            "and Delta would skip its batches as already written, losing what arrived since. "
            "Restore the checkpoint, or re-ingest from scratch: remove raw, quarantine and the checkpoint together."
        )


def claim_checkpoint(spark, settings: Settings, mode: str, wait_s: float = stream_owner.WAIT_S):
    """Before a run starts: a run of this checkpoint that a dead kernel left on the Spark server is
    waited for (availableNow, up to `wait_s`) or stopped; one of a live process raises StreamBusy.
    Then this session is recorded as the checkpoint's runner. Returns the earlier run, if any."""
    return stream_owner.claim(spark, settings, QUERY_NAME, mode, wait_s)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be 'availableNow' or 'live', got {mode!r}")


def watch(query, seconds: float, on_progress=None) -> list:
    """Let a live query run for `seconds`, passing each new progress to `on_progress`, then stop
    it. Waits on the query (awaitTermination with a timeout), never a blind sleep. Returns every
    progress, read after stopping so a batch that finished meanwhile is counted too."""
    deadline = time.monotonic() + seconds
    seen = 0
    while query.isActive:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            query.awaitTermination(timeout=max(0.1, min(1.0, remaining)))
        else:
            query.stop()
        recent = query.recentProgress
        if on_progress:
            for p in recent[seen:]:
                on_progress(p)
        seen = len(recent)
    if query.exception() is not None:
        raise query.exception()
    return list(query.recentProgress)


@dataclass
class StreamResult:
    mode: str
    batches: int
    input_rows: int
    seconds: float
    raw_rows_added: int
    quarantine_rows_added: int
    progress: list[dict] = field(default_factory=list)
    earlier: EarlierRun | None = None  # a run still active at the start, waited for or stopped first

    @property
    def rows_per_second(self) -> float:
        return self.input_rows / self.seconds if self.seconds else 0.0


def summarize(mode: str, progress: list, seconds: float, before: dict, after: dict) -> StreamResult:
    """What a run did, from its progress and the table counts before and after it."""
    return StreamResult(
        mode=mode,
        batches=sum(1 for p in progress if input_rows(p) > 0),
        input_rows=sum(input_rows(p) for p in progress),
        seconds=round(seconds, 2),
        raw_rows_added=after["raw"] - before["raw"],
        quarantine_rows_added=after["quarantine"] - before["quarantine"],
        progress=[
            {"batch": p.batchId, "rows": input_rows(p), "rows_per_second": round(p.processedRowsPerSecond or 0.0, 1)}
            for p in progress
        ],
    )


# Notebook 02's page holds the stream (its cells tagged kafka-reader, raw-writer, raw-stream and
# raw-trigger): run_stream executes them from there, so the fault rows, the bench and live mode
# run what a learner reads; this module keeps the plumbing those cells call.
STREAM_CELLS = ("kafka-reader", WRITER_TAG, "raw-stream", "raw-trigger")


class _PageStream:
    """This module as the page's cells see it (`stream.*`), with the caller's wait for a run a
    dead kernel left behind (a fault row waits 1 s, not the default)."""

    def __init__(self, wait_s: float):
        self.wait_s = wait_s

    def __getattr__(self, name):
        try:
            return globals()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self):  # travels with the foreachBatch writer (cloudpickle) to Spark's Python worker
        return _PageStream, (self.wait_s,)

    def claim_checkpoint(self, spark, settings: Settings, mode: str):
        return claim_checkpoint(spark, settings, mode, self.wait_s)


def run_stream(
    spark,
    settings: Settings,
    mode: str = "availableNow",
    live_seconds: float = 20.0,
    trigger_interval: str = "2 seconds",
    max_offsets_per_trigger: int | None = None,
    topic: str | None = None,
    on_progress=None,
    wait_s: float = stream_owner.WAIT_S,
    page: Path = PAGE,
) -> StreamResult:
    """Kafka -> raw + quarantine with notebook 02's own cells (or those of `page`, a copy of it).
    `availableNow` processes everything available and stops; `live` runs for `live_seconds` and
    then stops cleanly. A run a dead kernel left behind is settled first (`wait_s`)."""
    import pandas as pd

    from lakehouse_helpers.runtime import contract

    check_mode(mode)
    services.require(settings, "kafka")
    settings = settings.replace(kafka_topic=topic or settings.kafka_topic)
    services.kafka.require_topic(settings, settings.kafka_topic)  # named, with what to run, before Spark's own error
    ensure_tables(spark, settings)
    scope = {"spark": spark, "settings": settings, "stream": _PageStream(wait_s), "contract": contract,
             "layout": layout, "time": time, "pd": pd, "raw_path": layout.raw_orders(settings),
             "quarantine_path": layout.quarantine(settings), "mode": mode, "live_seconds": live_seconds,
             "trigger_interval": trigger_interval, "max_offsets_per_trigger": max_offsets_per_trigger or 0,
             "follow": lambda query, label: query.awaitTermination(),  # the page's progress bar, without the bar
             "print": lambda *args, **kwargs: None}  # the page's notes on what each step did
    pages.run_cells(page, STREAM_CELLS[:3], scope)
    if on_progress is not None:
        scope["show_progress"] = on_progress  # live mode's progress goes to the caller, not the page's print
    pages.run_cells(page, STREAM_CELLS[3:], scope)
    result = scope["result"]
    result.earlier = scope["earlier"]
    return result


def input_rows(progress) -> int:
    """Rows a micro-batch read. Read the attribute: over Spark Connect the progress's dict and
    JSON leave numInputRows and the rates out (None); the attributes sum them from the sources."""
    return int(progress.numInputRows or 0)


def row_counts(spark, settings: Settings) -> dict[str, int]:
    """Rows in the raw and quarantine tables."""
    return {
        "raw": spark.read.format("delta").load(layout.raw_orders(settings)).count(),
        "quarantine": spark.read.format("delta").load(layout.quarantine(settings)).count(),
    }


def table_counts(spark, settings: Settings) -> dict:
    """Row counts of raw and quarantine, and quarantine per reason."""
    from pyspark.sql import functions as F

    out = row_counts(spark, settings)
    reasons = (
        spark.read.format("delta").load(layout.quarantine(settings)).groupBy("reason").agg(
            F.count("*").alias("n")).collect()
    )
    out.update({f"quarantine_{r['reason']}": r["n"] for r in sorted(reasons, key=lambda r: r["reason"])})
    return out
