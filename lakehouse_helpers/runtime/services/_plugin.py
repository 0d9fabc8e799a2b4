"""What `services` needs from each service module (kafka, s3, metastore, spark_connect).

A module conforms by defining these names at its top level; the registry in `services` is typed
with this protocol, and tests/unit/test_services_contract.py checks every module against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from lakehouse_helpers.runtime.settings import Settings


@runtime_checkable
class ServicePlugin(Protocol):
    NAME: str
    """Short name: the key in `services.SERVICES`, the folder under `<state_dir>/services/`, the
    name on the command line (`services up kafka`)."""

    TITLE: str
    """Human name for messages ("Kafka broker")."""

    def endpoint(self, settings: Settings) -> str:
        """Where clients reach the service, as they spell it (a bootstrap list, a URL, a JDBC URL)."""

    def bind(self, settings: Settings) -> tuple[str, int]:
        """The host and port the service listens on: `up` refuses to start when a process it did
        not start already holds them."""

    def prepare(self, settings: Settings, base: Path) -> None:
        """Write config files and create folders in `base` (the service's state folder) before a
        start; may run once-only steps (Kafka's storage format). Raises ServiceError on failure."""

    def command(self, settings: Settings, base: Path, marker: str) -> list[str]:
        """The command that runs the service in the foreground with `base` as working folder.
        `marker` must appear in it verbatim: it tells this project's process from a recycled pid."""

    def environment(self, settings: Settings) -> dict[str, str]:
        """Variables added to the inherited environment of `command` (often none)."""

    def check(self, settings: Settings) -> str:
        """Probe the service with a short timeout: a one-line description when healthy, else raise
        ServiceError naming the service, its address and the fix. Also called where nothing
        embedded runs (external profile), so it must not assume this project started it."""

    def after_start(self, settings: Settings) -> None:
        """Idempotent set-up once healthy (the bucket, the topic); runs on every `up`, as a reused
        service may have lost them."""
