"""Start, watch and stop one local JVM process: pid file, log file, health wait, clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class ServiceError(RuntimeError):
    """A service is down, failed to start, or answered wrongly.

    `service`: its name (comma-separated when one error reports several; empty when about all);
    `address`: where it was expected, as the message names it (host:port or a URL); `problem`:
    what went wrong; `fix`: what to do. str() is the problem followed by the fix."""

    def __init__(self, problem: str, *, service: str = "", address: str = "", fix: str = ""):
        self.problem, self.service, self.address, self.fix = problem, service, address, fix
        # A multi-line problem (a log tail) gets its fix on a line of its own.
        super().__init__(problem + (("\n" if "\n" in problem else " ") + fix if fix else ""))


def port_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int, marker: str) -> bool:
    """Alive and still ours: a recycled pid running something else does not count."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the signal check
    return marker in cmdline


def log_tail(log_file: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def spawn(cmd: list[str], cwd: Path, log_file: Path, pid_file: Path,
        env: dict[str, str] | None = None) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        log.flush()
        # Own session: Ctrl-C in a notebook or make does not kill the services.
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen | None, timeout: float, what: str, log_file: Path
) -> float:
    """Poll `ready` with a short back-off until true; fail fast if the process died."""
    start = time.monotonic()
    delay = 0.05
    while True:
        if ready():
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            raise ServiceError(
                f"{what} exited with code {proc.returncode} while starting.\n"
                f"Last lines of {log_file}:\n{log_tail(log_file)}"
            )
        if time.monotonic() - start > timeout:
            raise ServiceError(
                f"{what} did not become healthy within {timeout:.0f}s.\n"
                f"Last lines of {log_file}:\n{log_tail(log_file)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def exists(pid: int, group: bool = False) -> bool:
    """Whether a process (or, with `group`, any process of that group) still exists: signal 0
    checks without sending anything; another user's process exists but refuses it."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(pid: int, marker: str, timeout: float = 30.0) -> None:
    """Stop the service's whole process group (a wrapper and its JVM) and wait until all of it
    is gone, so its ports are free when this returns."""
    if not pid_alive(pid, marker):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Reap it if it is our child, so it does not linger as a zombie.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid, marker) and not exists(pid, group=True):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
