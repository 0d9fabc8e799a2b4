"""The embedded services: Apache Kafka (KRaft), an S3 API server (s3proxy, filesystem backend)
and the metastore database (Derby network server), as plain local processes on 127.0.0.1.

`up` is idempotent (a healthy service is reused, a stale pid file cleaned), waits on a real
health check and says what to do when something fails; `down` stops only what `up` started.
Data and logs live under `<state_dir>/services/<name>/` and survive `down` then `up`.
In the `external` and `databricks` profiles nothing starts: `check` only probes the endpoints.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from lakehouse_helpers.runtime.services import kafka, metastore, s3, spark_connect
from lakehouse_helpers.runtime.services._plugin import ServicePlugin
from lakehouse_helpers.runtime.services._process import (
    ServiceError,
    pid_alive,
    port_open,
    read_pid,
    spawn,
    stop,
    wait_until,
)
from lakehouse_helpers.runtime.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["ServiceError", "ServicePlugin", "ServiceStatus", "SERVICES", "up", "down", "status", "check"]

# Start order: the metastore is the quickest, Kafka the slowest; all three start in parallel
# anyway, so order only matters for the printed lines.
SERVICES: dict[str, ServicePlugin] = {m.NAME: m for m in (kafka, s3, metastore, spark_connect)}


def wanted(settings: Settings, name: str) -> bool:
    """The Spark Connect server runs only in connect mode without a server of the user's own."""
    if name == spark_connect.NAME:
        return settings.uses_connect and not settings.spark_remote
    return True


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    endpoint: str
    healthy: bool
    pid: int | None
    managed: bool  # started by this project (pid file present and alive)
    detail: str = ""
    start_seconds: float | None = None


def _paths(settings: Settings, name: str):
    base = settings.services_dir / name
    return base, base / "service.log", base / "service.pid"


def _marker(settings: Settings, name: str) -> str:
    # Appears on the command line of the process we start, so a recycled pid is never ours.
    return f"-Dlakehouse.service={name}@{settings.state_dir.resolve()}"


def check(settings: Settings, name: str) -> str:
    """Probe one service; return a one-line description or raise ServiceError with the fix."""
    return SERVICES[name].check(settings)


def _names(names) -> list[str]:
    names = list(names or SERVICES)
    unknown = set(names) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown services {sorted(unknown)}; known: {sorted(SERVICES)}")
    return names


def up(settings: Settings, names=None) -> list[ServiceStatus]:
    """Start the embedded services that are not already healthy, wait for all, return status."""
    if not settings.embedded:
        raise ServiceError(
            f"profile={settings.profile!r} uses your own endpoints, so nothing embedded starts.",
            fix="Use `python -m lakehouse_helpers doctor` to check them.",
        )
    from lakehouse_helpers.runtime.settings import local_connect_token, local_s3_keys

    local_s3_keys(settings.state_dir, create=True)
    local_connect_token(settings.state_dir, create=True)
    settings = settings.replace()  # re-read the generated keys
    results: dict[str, ServiceStatus] = {}
    names = [n for n in _names(names) if wanted(settings, n)]
    # Start all first, then wait: the JVMs start in parallel.
    pending = []
    for name in names:
        started = _start(settings, name)
        if isinstance(started, ServiceStatus):
            results[name] = started
        else:
            pending.append(started)
    for name, proc, pid, since in pending:
        results[name] = _await(settings, name, proc, pid, since)
    return [results[n] for n in names]


def _start(settings: Settings, name: str) -> ServiceStatus | tuple:
    """Reuse the service when this project already runs it (its status if healthy), else start
    it; what to wait on: (name, process or None, pid, start time)."""
    svc = SERVICES[name]
    base, log_file, pid_file = _paths(settings, name)
    base.mkdir(parents=True, exist_ok=True)
    marker = _marker(settings, name)
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid, marker):
        try:
            svc.check(settings)
            svc.after_start(settings)  # idempotent: bucket / topic may have been deleted
            detail = svc.check(settings)
            log.info("%-10s already up (%s)", name, detail)
            return ServiceStatus(name, svc.endpoint(settings), True, pid, True, detail, 0.0)
        except ServiceError:
            return name, None, pid, time.monotonic()  # alive but not healthy yet (still starting)
    if pid is not None:
        pid_file.unlink(missing_ok=True)  # stale: the process is gone
    host, port = svc.bind(settings)
    if port_open(host, port, settings.connect_timeout_s):
        raise ServiceError(
            f"{svc.TITLE}: port {host}:{port} is taken by a process this project did not start.",
            service=name, address=f"{host}:{port}",
            fix="Stop it, or point the workbook at it with LAKEHOUSE_PROFILE=external.",
        )
    svc.prepare(settings, base)
    cmd = svc.command(settings, base, marker)
    proc = spawn(cmd, cwd=base, log_file=log_file, pid_file=pid_file, env=svc.environment(settings))
    return name, proc, proc.pid, time.monotonic()


def _await(settings: Settings, name: str, proc, pid: int, since: float) -> ServiceStatus:
    """Wait until the service is healthy, then run its set-up; a failure names the log."""
    svc = SERVICES[name]
    _, log_file, _ = _paths(settings, name)

    def ready() -> bool:
        try:
            svc.check(settings)
            return True
        except ServiceError:
            return False

    try:
        wait_until(ready, proc, settings.service_timeout_s, svc.TITLE, log_file)
        svc.after_start(settings)
    except ServiceError as exc:
        raise ServiceError(
            str(exc), service=name, address=svc.endpoint(settings),
            fix="Fix the cause above, then run `make services-up` again.",
        ) from None
    elapsed = time.monotonic() - since
    detail = svc.check(settings)
    log.info("%-10s up in %4.1fs  %s  (log: %s)", name, elapsed, svc.endpoint(settings), log_file)
    return ServiceStatus(name, svc.endpoint(settings), True, pid, True, detail, elapsed)


def down(settings: Settings, names=None) -> None:
    """Stop the services this project started (pid files); never anything else."""
    for name in reversed(_names(names)):
        _, _, pid_file = _paths(settings, name)
        pid = read_pid(pid_file)
        if pid is None:
            log.info("%-10s not started by this project", name)
            continue
        stop(pid, _marker(settings, name))
        pid_file.unlink(missing_ok=True)
        log.info("%-10s stopped", name)


def pid_of(settings: Settings, name: str) -> int | None:
    """The process id of a service this project started and that still runs, else None."""
    _, _, pid_file = _paths(settings, name)
    pid = read_pid(pid_file)
    return pid if pid is not None and pid_alive(pid, _marker(settings, name)) else None


def status(settings: Settings) -> list[ServiceStatus]:
    out = []
    for name, svc in SERVICES.items():
        _, log_file, pid_file = _paths(settings, name)
        pid = read_pid(pid_file)
        managed = pid is not None and pid_alive(pid, _marker(settings, name))
        try:
            detail, healthy = svc.check(settings), True
        except ServiceError as exc:
            detail, healthy = str(exc).splitlines()[0], False
        out.append(ServiceStatus(name, svc.endpoint(settings), healthy, pid if managed else None, managed, detail))
    return out


def require(settings: Settings, *names: str) -> None:
    """Raise one clear error naming every service that is down, with the command to start it."""
    errors = []
    for name in names or SERVICES:
        try:
            check(settings, name)
        except ServiceError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise _combined(errors)


def _combined(errors: list[ServiceError]) -> ServiceError:
    """One error for several services: a fix they share is said once, else each keeps its own."""
    fixes = {e.fix for e in errors}
    shared = fixes.pop() if len(fixes) == 1 else ""
    return ServiceError(
        "\n".join(e.problem if shared else str(e) for e in errors),
        service=", ".join(e.service for e in errors), address=", ".join(e.address for e in errors), fix=shared,
    )
