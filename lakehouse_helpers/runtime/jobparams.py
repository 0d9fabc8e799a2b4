"""A Databricks job's parameters, read where a notebook can see them: its widgets.

Locally papermill writes overrides into the notebook after its `parameters` cell. A Databricks job
cannot: its parameters reach each notebook task as widgets, strings read with
`dbutils.widgets.get(name)`. So each notebook's first code cell, right after the parameters, runs

    globals().update(read_job_parameters(settings, globals()))

which in the databricks profile returns the notebook's parameters that the job sets, typed like
their defaults, and everywhere else returns nothing. `load_settings()` reads the job's settings
parameters (`SETTING_PARAMETERS`: landing bucket, region, catalog, schema prefix) the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakehouse_helpers.runtime.widgets import SETTING_PARAMETERS, runtime_widgets, widget_reader

if TYPE_CHECKING:
    from lakehouse_helpers.runtime.settings import Settings



class JobParameterError(ValueError):
    """A job parameter's value cannot be read as the type of the notebook parameter it sets."""


def parse_value(name: str, raw: str, default: bool | int | float | str) -> bool | int | float | str:
    """`raw` (a widget's string) typed like `default`; a value that does not parse is refused."""
    kind = type(default)
    text = raw.strip()
    try:
        if kind is bool:
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise ValueError(raw)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        expected = {bool: "a bool (true or false)", int: "an int", float: "a float"}[kind]
        raise JobParameterError(
            f"job parameter {name}={raw!r} is not {expected} (the notebook's default is {default!r}); "
            f"fix it in the job's parameters or in the run's."
        ) from None
    return raw


def read_job_parameters(settings: Settings, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook parameters the Databricks job sets, typed like their defaults.

    `namespace` is the notebook's `globals()` right after its parameters cell: the parameters are
    its plain values (bool, int, float, str). Each one with a widget of its name takes the widget's
    value; one without keeps its default. Outside the databricks profile this returns {} (papermill
    has already injected the overrides there), even if a `dbutils` exists.
    """
    if settings.profile != "databricks":
        return {}
    widgets = runtime_widgets(namespace) or runtime_widgets()
    if widgets is None:
        return {}
    values, value_of = {}, widget_reader(widgets)
    for name, default in namespace.items():
        # Settings parameters belong to load_settings(); names with _ are IPython's history.
        if name.startswith("_") or name in SETTING_PARAMETERS or type(default) not in (bool, int, float, str):
            continue
        raw = value_of(name)
        if raw is not None:
            values[name] = parse_value(name, raw, default)
    return values
