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

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings

# Job parameter -> (setting, the environment variable load_settings() otherwise reads it from).
# The deploy defines these job parameters; load_settings() reads them, not the notebooks.
SETTING_PARAMETERS = {"landing_bucket": ("s3_bucket", "S3_BUCKET"), "aws_region": ("s3_region", "AWS_REGION"),
                      "catalog": ("catalog", "LAKEHOUSE_CATALOG"),
                      "schema_prefix": ("schema_prefix", "LAKEHOUSE_SCHEMA_PREFIX")}
# What a runtime without widgets.getAll() raises for a widget nobody defined (a notebook run by
# hand): a Java InputWidgetNotDefined, seen from Python through py4j, whose message names it.
_UNDEFINED = ("InputWidgetNotDefined", "No input widget named")


class JobParameterError(ValueError):
    """A job parameter's value cannot be read as the type of the notebook parameter it sets."""


def runtime_widgets(namespace: Mapping[str, Any] | None = None):
    """`dbutils.widgets` of the running Databricks notebook, or None where there is none.

    Databricks puts `dbutils` into the notebook's namespace; without one given, IPython's user
    namespace is that notebook's. Not `databricks.sdk.runtime`: off a cluster, importing it opens a
    Databricks Connect session and builds a workspace client.
    """
    if namespace is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        shell = get_ipython()
        namespace = shell.user_ns if shell is not None else {}
    dbutils = namespace.get("dbutils")
    return getattr(dbutils, "widgets", None)


def widget_reader(widgets) -> Callable[[str], str | None]:
    """name -> the widget's value, or None when no widget of that name is defined.

    Runtimes with `getAll()` (a map of every defined widget's value) answer from that map. Older
    ones can only be asked one `get` at a time, and an undefined widget is then told apart from
    other errors by the runtime's error name or message.
    """
    get_all = getattr(widgets, "getAll", None)
    if callable(get_all):
        return dict(get_all()).get
    return lambda name: _get_or_none(widgets, name)


def _get_or_none(widgets, name: str) -> str | None:
    try:
        return widgets.get(name)
    except Exception as exc:  # py4j wraps the Java error: its name is only in the text
        if any(mark in f"{type(exc).__name__}: {exc}" for mark in _UNDEFINED):
            return None
        raise


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


def setting_widgets(widgets) -> dict[str, str]:
    """The settings the job's parameters set, by setting name (`s3_bucket`, not `landing_bucket`)."""
    if widgets is None:
        return {}
    value_of = widget_reader(widgets)
    found = {attr: value_of(name) for name, (attr, _) in SETTING_PARAMETERS.items()}
    return {attr: value for attr, value in found.items() if value is not None}
