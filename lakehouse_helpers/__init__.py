"""Lakehouse Workbook helpers: the thin library the notebooks call, one module per concern."""

from lakehouse_helpers.runtime.settings import Secret, Settings, SettingsError, load_settings

__all__ = ["Secret", "Settings", "SettingsError", "load_settings", "get_spark"]
__version__ = "0.1.0"


def get_spark(settings: Settings | None = None, **kwargs):
    """Shortcut for `lakehouse_helpers.runtime.spark.get_spark` (imported lazily: pyspark is heavy)."""
    from lakehouse_helpers.runtime.spark import get_spark as _get_spark

    return _get_spark(settings, **kwargs)
