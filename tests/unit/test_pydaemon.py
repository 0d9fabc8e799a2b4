"""The idle watch of the Spark Connect server's Python daemons (lakehouse_helpers/runtime/services/pydaemon.py),
on a plain Python process that stands in for pyspark's daemon: same signal, same /proc reading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from lakehouse_helpers.runtime.services import pydaemon

# A process that watches itself with short intervals, optionally holding a child, then idles.
WATCHED = """
import subprocess, sys, time
from lakehouse_helpers.runtime.services import pydaemon
pydaemon.IDLE_S, pydaemon.CHECK_S = 0.3, 0.05
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) if sys.argv[1] == "busy" else None
pydaemon.watch()
print("watching", flush=True)
while True:
    time.sleep(0.05)
"""


def _start(kind: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WATCHED, kind], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # its group: the child goes with it
    assert proc.stdout.readline().strip() == "watching"
    return proc


def test_an_idle_daemon_exits_by_pyspark_s_own_sigterm_path():
    proc = _start("idle")
    assert proc.wait(timeout=20) == -signal.SIGTERM


def test_a_daemon_with_a_worker_stays():
    proc = _start("busy")
    try:
        with pytest.raises(subprocess.TimeoutExpired):  # five idle periods pass: it is still there
            proc.wait(timeout=5 * 0.3)
        assert pydaemon.has_children(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_children_are_found_by_their_parent():
    assert not pydaemon.has_children(os.getpid() + 10_000_000)  # no such process has children
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pydaemon.has_children(os.getpid())
    finally:
        child.kill()
        child.wait()
