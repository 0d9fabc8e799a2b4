"""Who runs the stream's checkpoint, and what to do with a run a dead notebook kernel left behind.

With Spark Connect (the default) a streaming query runs on the Spark server, not in the kernel
that started it. A kernel killed mid-run (a crash, SIGKILL, the OOM killer) leaves its query
running on the server for as long as the dead client's session lives: an hour after its last
request, and the query's own foreachBatch worker makes requests in that session every batch. Re-running notebook 02 then
meets that
run: Spark's default (`spark.sql.streaming.stopActiveRunOnRestart`) stops it mid-batch, killing
its foreachBatch worker with a Delta write perhaps in flight; with the setting off the re-run
fails with "another query with same id is already active".

So every run records its session next to the checkpoint. The next run re-attaches to that
session by id (Spark Connect's `session_id` connection parameter), lets a bounded
(`availableNow`) run finish its micro-batches, stops a live one (or one that takes too long),
interrupts what its worker still runs, releases the dead session and only then starts. A run
whose kernel is still alive is refused instead: two runs of one checkpoint would stop each other.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.settings import Settings

log = logging.getLogger(__name__)
WAIT_S = 120.0  # how long a re-run waits for a dead kernel's availableNow run to finish


class StreamBusy(RuntimeError):
    """The stream's checkpoint is being run by another live process."""


@dataclass(frozen=True)
class EarlierRun:
    """A run of the checkpoint that was still active when a new one started, and what became of it."""

    query_id: str
    pid: int
    mode: str
    outcome: str  # "finished" (waited for) or "stopped"
    seconds: float


def _query_id(settings: Settings, name: str) -> str | None:
    """The query's id, fixed by its checkpoint (`metadata`, written by its first run)."""
    metadata = Path(layout.checkpoint(settings, name)) / "metadata"
    if not metadata.is_file():
        return None
    return json.loads(metadata.read_text().splitlines()[0])["id"]


def _process_start(pid: int) -> str | None:
    """The process's start time (Linux /proc), so a recycled pid is not taken for the kernel."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(record: dict) -> bool:
    """Whether the process that started the recorded run still runs (on another host: assume so)."""
    if record.get("host") != socket.gethostname():
        return True
    try:
        os.kill(record["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    start = _process_start(record["pid"])
    return start is None or start == record.get("started")


def _session_id(spark) -> str | None:
    """The Spark Connect session's id; None for a classic (in-process) session."""
    from pyspark.sql.connect.session import SparkSession

    return spark.session_id if isinstance(spark, SparkSession) else None


def _attach(settings: Settings, session_id: str):
    """A second client of an existing Spark Connect session (not made this process's default)."""
    from pyspark.sql.connect.session import SparkSession

    from lakehouse_helpers.runtime import services
    from lakehouse_helpers.runtime.spark import channel

    url = settings.spark_remote or services.spark_connect.endpoint(settings)
    return SparkSession(connection=channel(settings, url, session_id=session_id))


def claim(spark, settings: Settings, name: str, mode: str, wait_s: float = WAIT_S) -> EarlierRun | None:
    """Settle an earlier run of checkpoint `name` that is still active (see the module's doc), then
    record this session as the checkpoint's runner. Returns what was found, or None."""
    if settings.profile == "databricks":
        return None  # the runtime owns its sessions and their queries: nothing here to re-attach to
    path = layout.run_file(settings, name)
    earlier = json.loads(path.read_text()) if path.is_file() else None
    query_id = _query_id(settings, name)
    found = _settle(spark, settings, earlier, query_id, wait_s) if earlier and query_id else None
    record = {"session": _session_id(spark), "pid": os.getpid(), "started": _process_start(os.getpid()),
              "host": socket.gethostname(), "mode": mode, "at": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return found


def _settle(spark, settings: Settings, earlier: dict, query_id: str, wait_s: float) -> EarlierRun | None:
    """Find the recorded run's query in its session (this one, or re-attached) and settle it."""
    from pyspark.errors import PySparkException

    if earlier["pid"] == os.getpid() and earlier.get("host") == socket.gethostname():
        owner = "this process"
    else:
        owner = "alive" if _alive(earlier) else "exited"
    if earlier.get("session") is None or earlier["session"] == _session_id(spark):
        # A classic session's query lives in its process's JVM: only this process can still hold it.
        session = spark if owner == "this process" else None
    else:
        try:
            session = _attach(settings, earlier["session"])
        except PySparkException as exc:
            log.info(f"The earlier run's session cannot be reached ({str(exc).splitlines()[0][:120]}).")
            return None
    if session is None:
        return None
    try:
        return _finish_or_stop(session, session is not spark, earlier, query_id, owner, wait_s)
    finally:
        if session is not spark:
            session.release_session_on_close = owner == "exited"  # a live process's session is not ours to end
            session.stop()


def _finish_or_stop(session, attached: bool, earlier: dict, query_id: str, owner: str, wait_s: float):
    """Wait for (availableNow) or stop the earlier run in `session`; refuse if its process lives."""
    from pyspark.errors import PySparkException

    try:
        query = session.streams.get(query_id)
    except PySparkException as exc:  # the session was closed: its queries were stopped with it
        log.info(f"The earlier run's session is closed ({str(exc).splitlines()[0][:120]}).")
        return None
    if query is None or not query.isActive:
        return None
    who = f"process {earlier['pid']} on {earlier.get('host')}"
    if owner == "alive":
        raise StreamBusy(
            f"The stream (query {query_id}) is running, started by {who}, which is still alive. "
            "Wait for that run to finish or stop it there (interrupt or restart that kernel); "
            "two runs of one checkpoint would stop each other."
        )
    who += f" ({owner})"
    start, mode = time.monotonic(), earlier.get("mode", "live")
    if mode == "availableNow" and wait_s > 0:
        # It reads a fixed range and stops: letting it finish is cheaper and cleaner than a stop
        # that cuts a micro-batch (and its worker's Delta write) in half.
        log.warning(f"A run of this stream started by {who} is still running on the Spark server: "
            f"waiting up to {wait_s:.0f} s for it to finish its micro-batches.")
        with contextlib.suppress(PySparkException):  # it failed: not running any more, all this needs
            query.awaitTermination(wait_s)
    outcome = "finished"
    if query.isActive:
        log.warning(f"Stopping the run started by {who} ({mode}); this run goes on from the checkpoint.")
        query.stop()
        outcome = "stopped"
        if attached:
            # Its foreachBatch worker may still have a Delta write in flight on the server: interrupt
            # it, so it cannot race this run's first batch (Delta would then refuse one of the two).
            session.interruptAll()
    seconds = round(time.monotonic() - start, 1)
    log.warning(f"The earlier run {outcome} after {seconds} s.")
    return EarlierRun(query_id, earlier["pid"], mode, outcome, seconds)
