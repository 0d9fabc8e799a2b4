"""Where the Auto Loader conformance tests put their files (a local folder or an S3 prefix) and
the stream they run over them."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from lakehouse_helpers.pipeline import autoloader as al
from lakehouse_helpers.runtime import storage


class Place:
    """Where the source files and the schema history live: a local folder or an S3 prefix."""

    def __init__(self, kind: str, tmp_path: Path, settings):
        self.kind, self.tmp, self.settings = kind, tmp_path, settings
        if kind == "s3":
            from uuid import uuid4

            self.settings = settings.replace(s3_bucket=f"al-{uuid4().hex[:12]}")
            storage.ensure_bucket(self.settings)

    def url(self, *parts: str) -> str:
        rel = "/".join(p for p in parts if p)
        return self.settings.s3_url("al", rel) if self.kind == "s3" else str(self.tmp / rel)

    def put(self, rel: str, data: bytes) -> str:
        if self.kind == "s3":
            storage.s3_client(self.settings).put_object(Bucket=self.settings.s3_bucket, Key=f"al/{rel}", Body=data)
        else:
            path = self.tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return self.url(rel)


def write_json(place: Place, rel: str, rows: list[dict]) -> str:
    return place.put(rel, "".join(json.dumps(r) + "\n" for r in rows).encode())


def write_csv(place: Place, rel: str, header: list[str], rows: list[list]) -> str:
    return place.put(rel, (",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)).encode())


def write_parquet(place: Place, rel: str, table) -> str:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return place.put(rel, buf.getvalue())


class Stream:
    """One Auto Loader stream (source and schema history in `place`) into a local Delta table."""

    def __init__(self, spark, place: Place, sub: str, fmt: str, **kwargs):
        self.spark, self.settings, self.fmt, self.kwargs = spark, place.settings, fmt, kwargs
        self.source = kwargs.pop("source", place.url(sub, "src"))
        self.schema_location = place.url(sub, "schema")
        local = place.tmp / "local" / sub
        self.checkpoint, self.out = str(local / "checkpoint"), str(local / "out")

    def df(self):
        return al.read_stream(self.spark, self.settings, self.source, self.fmt, schema_location=self.schema_location,
            **self.kwargs)

    def start(self, trigger=None):
        writer = self.df().writeStream.format("delta").option("mergeSchema", "true").option("checkpointLocation",
            self.checkpoint)
        return writer.trigger(**(trigger or {"availableNow": True})).start(self.out)

    def run(self):
        query = self.start()
        query.awaitTermination()
        return query

    def rows(self, order="_source_file"):
        if not Path(self.out).exists():
            return []
        return [r.asDict() for r in self.spark.read.format("delta").load(self.out).orderBy(order).collect()]

    def versions(self):
        return al.schema_versions(self.schema_location, al.s3_options(self.settings))

    def schema(self, version=None):
        versions = self.versions()
        entry = al.read_schema_version(self.schema_location, versions[-1] if version is None else version,
            al.s3_options(self.settings))
        return dict(map(tuple, entry["fields"]))


# The stream a test kills: in a process of its own with Spark inside it (classic mode), so that
# killing the process group kills the JVM that runs the query. A Spark Connect client would be
# only the query's remote control: the server goes on committing batches after the client dies.
# One file per micro-batch and a trigger interval make the run long enough to be killed mid-way.
KILLABLE_STREAM = """
import sys
from lakehouse_helpers import get_spark, load_settings
from lakehouse_helpers.pipeline import autoloader as al
source, schema_location, checkpoint, out, interval = sys.argv[1:6]
settings = load_settings()
assert not settings.uses_connect, "the killed run must hold its own Spark, not a Spark Connect client"
spark = get_spark(settings)
df = al.read_stream(spark, settings, source, "json", schema_location=schema_location, max_files_per_trigger=1)
q = (df.writeStream.format("delta").option("checkpointLocation", checkpoint)
     .trigger(processingTime=f"{interval} seconds").start(out))
q.awaitTermination()
"""


def start_killable(stream: Stream, env: dict[str, str], interval_s: float, log: Path) -> subprocess.Popen:
    """`stream` (source, schema history, checkpoint, table), one file per batch, in a new session.
    Its output goes to `log`, a file: Spark's logging would fill a pipe nobody reads and stall it."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", KILLABLE_STREAM, stream.source, stream.schema_location, stream.checkpoint,
             stream.out, str(interval_s)],
            env={**env, "LAKEHOUSE_SPARK_MODE": "classic"}, start_new_session=True,
            stdout=out, stderr=subprocess.STDOUT)


def committed(table: str) -> list[Path]:
    """The Delta commits of `table`, oldest first (one per micro-batch that wrote rows)."""
    return sorted((Path(table) / "_delta_log").glob("[0-9]*.json"))


def kill_group(proc: subprocess.Popen, timeout_s: float = 60) -> tuple[list[str], float]:
    """SIGKILL `proc`'s process group and wait until none of its processes runs: their names, and
    the time (time.time()) of the kill."""
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    names = [_name(p) for p in family]
    killed_at = time.time()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + timeout_s
    while any(_running(p) for p in family):
        assert time.monotonic() < deadline, f"still running after SIGKILL: {[p.pid for p in family if _running(p)]}"
        time.sleep(0.1)
    return names, killed_at


def _running(proc: psutil.Process) -> bool:
    try:  # an orphan killed with its group may stay a zombie until its new parent reaps it
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.NoSuchProcess:  # a short-lived child that ended between listing and reading
        return ""
