"""A Databricks notebook's widgets (how a job's parameters reach each task), read without anything
of the workbook's: `settings` reads the job's settings parameters here, `jobparams` the notebook
parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lakehouse_helpers.runtime import errors

# Job parameter -> (setting, the environment variable load_settings() otherwise reads it from).
# The deploy defines these job parameters; load_settings() reads them, not the notebooks.
SETTING_PARAMETERS = {"landing_bucket": ("s3_bucket", "S3_BUCKET"), "aws_region": ("s3_region", "AWS_REGION"),
                      "catalog": ("catalog", "LAKEHOUSE_CATALOG"),
                      "schema_prefix": ("schema_prefix", "LAKEHOUSE_SCHEMA_PREFIX")}


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
        if errors.undefined_widget(exc):
            return None
        raise


def setting_widgets(widgets) -> dict[str, str]:
    """The settings the job's parameters set, by setting name (`s3_bucket`, not `landing_bucket`)."""
    if widgets is None:
        return {}
    value_of = widget_reader(widgets)
    found = {attr: value_of(name) for name, (attr, _) in SETTING_PARAMETERS.items()}
    return {attr: value for attr, value in found.items() if value is not None}
