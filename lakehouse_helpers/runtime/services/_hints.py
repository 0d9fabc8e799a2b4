from __future__ import annotations

from lakehouse_helpers.runtime.services._process import ServiceError, port_open
from lakehouse_helpers.runtime.settings import Settings


def start_hint(settings: Settings, env_var: str) -> str:
    if settings.embedded:
        return "Start the embedded services with `make services-up`."
    return f"Check that your service is running and that {env_var} points at it."


def require_port(settings: Settings, service: str, what: str, bind: tuple[str, int], env_var: str,
                 address: str | None = None) -> None:
    """A service's first check, a port probe: refused names the service, where it was looked
    for and how to start it (or which setting points at it)."""
    host, port = bind
    address = address or f"{host}:{port}"
    if not port_open(host, port, settings.connect_timeout_s):
        raise ServiceError(f"{what} is not reachable at {address}.", service=service, address=address,
                           fix=start_hint(settings, env_var))
