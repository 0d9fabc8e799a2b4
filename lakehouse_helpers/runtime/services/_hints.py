from __future__ import annotations

from lakehouse_helpers.runtime.settings import Settings


def start_hint(settings: Settings, env_var: str) -> str:
    if settings.embedded:
        return "Start the embedded services with `make services-up`."
    return f"Check that your service is running and that {env_var} points at it."
