"""Peak memory of the whole stack while notebooks run.

The stack is every process the workbook needs: the embedded services this project started (and
their children: Spark's Python workers), this process, and everything it starts (papermill's
kernels, a classic Spark JVM, its workers). A background thread adds up their resident memory
a few times a second; `section()` gives the peak since the previous call (one notebook), `peak`
the peak of the whole run. Each process counts its proportional set size (PSS): a page shared
by n processes (Spark's forked Python workers share most of theirs) counts 1/n in each, so the
sum is what the stack really occupies; plain resident sizes would count shared pages n times.
"""

from __future__ import annotations

import os
import threading

import psutil

from lakehouse_helpers.runtime.settings import Settings

MB = 1024 * 1024


def stack_roots(settings: Settings) -> list[int]:
    """This process and the services this project started (their pid files)."""
    from lakehouse_helpers.runtime.services import SERVICES, _paths
    from lakehouse_helpers.runtime.services._process import read_pid

    pids = [os.getpid()]
    for name in SERVICES:
        pid = read_pid(_paths(settings, name)[2])
        if pid is not None:
            pids.append(pid)
    return pids


def resident_bytes(roots: list[int]) -> int:
    """Memory (PSS) of `roots` and all their descendants, each process counted once."""
    seen: set[int] = set()
    total = 0
    for pid in roots:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:  # gone between the listing and the read
            continue
        for proc in family:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                total += _pss(proc)
            except psutil.Error:
                continue
    return total


def _pss(proc: psutil.Process) -> int:
    """Proportional set size; resident size where the kernel gives no PSS (not Linux)."""
    try:
        return proc.memory_full_info().pss
    except AttributeError:
        return proc.memory_info().rss


class PeakMemory:
    """Samples the stack's memory in the background; a context manager."""

    def __init__(self, settings: Settings, interval_s: float = 0.25):
        self._roots = stack_roots(settings)
        self._interval = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self.peak = 0
        self._section = 0

    def _sample(self) -> None:
        while True:
            used = resident_bytes(self._roots)
            with self._lock:
                self.peak = max(self.peak, used)
                self._section = max(self._section, used)
            if self._stop.wait(self._interval):
                return

    def section(self) -> int:
        """Peak since the previous call, in bytes (one sample now, so a short section counts)."""
        used = resident_bytes(self._roots)
        with self._lock:
            peak = max(self._section, used)
            self.peak = max(self.peak, used)
            self._section = 0
        return peak

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
