"""The Spark Connect server's Python daemons (pyspark.daemon, which forks Python workers) exit once
they have had no worker for `IDLE_S` seconds.

Spark keeps one daemon per worker environment, and a streaming query's environment names the
query's own session (`SPARK_JOB_ARTIFACT_UUID`): every stream (an Auto Loader source, a
foreachBatch writer) started daemons that outlived it by the server's whole life, about 50 MB
each (86 of them, 4.8 GB, after the Auto Loader tests). Spark starts a daemon again when it finds
one gone ("Failed to open socket to Python daemon ... attempting to restart"), so exiting when
idle costs at most one start. The server's PYTHONPATH names `SITE`, whose sitecustomize calls
`watch()` in the daemons and nowhere else.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

SITE = Path(__file__).resolve().parent / "daemon_site"
IDLE_S = 30.0  # Spark retires an idle worker after 60 s; its daemon goes 30 s later
CHECK_S = 5.0

_watched = {"pid": 0, "busy_at": 0.0}


def has_children(pid: int) -> bool:
    """Whether any process's parent is `pid` (a kernel may not offer /proc/<pid>/task/*/children)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:  # ended while listed
            continue
        if int(stat.rsplit(b")", 1)[1].split()[1]) == pid:  # the field after the state: the parent
            return True
    return False


def _check(signum, frame) -> None:
    pid = os.getpid()
    if pid != _watched["pid"]:  # a forked worker inherits the handler, never the timer
        return
    now = time.monotonic()
    if has_children(pid):
        _watched["busy_at"] = now
    elif now - _watched["busy_at"] >= IDLE_S:
        signal.setitimer(signal.ITIMER_REAL, 0)
        os.kill(pid, signal.SIGTERM)  # pyspark's own shutdown: SIGHUP to its group, then exit


def watch() -> None:
    """Check every CHECK_S seconds; exit after `IDLE_S` without a worker. A signal, not a thread:
    the daemon forks workers, and a fork must not copy a second thread's state. The handler
    runs in the main thread, between two of the daemon's poll() calls."""
    _watched.update(pid=os.getpid(), busy_at=time.monotonic())
    signal.signal(signal.SIGALRM, _check)
    signal.setitimer(signal.ITIMER_REAL, CHECK_S, CHECK_S)
