"""What the workbook asks of a Databricks runtime, checked against a recording stand-in.

A Databricks workspace cannot run here, so `RecordingSpark` (a mock, named as such) records the
calls a notebook's helpers make; the assertions are on the options Databricks documents.
"""

from __future__ import annotations

import pytest

from lakehouse_helpers.pipeline import autoloader
from lakehouse_helpers.runtime.settings import load_settings


class RecordingSpark:
    """Mock of the parts of a Databricks SparkSession the Auto Loader helper touches."""

    def __init__(self):
        self.calls: list[tuple] = []

    @property
    def readStream(self):  # noqa: N802 - Spark's name
        return self

    def format(self, name):
        self.calls.append(("format", name))
        return self

    def options(self, **opts):
        self.calls.append(("options", opts))
        return self

    def schema(self, schema):
        self.calls.append(("schema", schema))
        return self

    def load(self, path):
        self.calls.append(("load", path))
        return self

    def selectExpr(self, *exprs):  # noqa: N802 - Spark's name
        self.calls.append(("selectExpr", *exprs))
        return self


@pytest.fixture
def databricks(tmp_path):
    return load_settings(env={"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_STATE_DIR": str(tmp_path)},
        dotenv=tmp_path / "none")


def test_auto_loader_uses_native_cloudfiles_with_documented_options(databricks):
    spark = RecordingSpark()
    autoloader.read_stream(
        spark, databricks, "s3://landing/orders/", "parquet", schema_location="s3://chk/schema",
        schema_hints="ingestion_date date", max_files_per_trigger=50, max_bytes_per_trigger="10m",
        include_existing_files=False,
    )
    assert ("format", "cloudFiles") in spark.calls
    opts = next(c[1] for c in spark.calls if c[0] == "options")
    assert opts["cloudFiles.format"] == "parquet"
    assert opts["cloudFiles.schemaLocation"] == "s3://chk/schema"
    assert opts["cloudFiles.schemaHints"] == "ingestion_date date"
    assert opts["cloudFiles.schemaEvolutionMode"] == "addNewColumns"
    assert opts["cloudFiles.includeExistingFiles"] == "false"
    assert opts["cloudFiles.maxFilesPerTrigger"] == "50"
    assert opts["cloudFiles.maxBytesPerTrigger"] == str(10 * 1024 * 1024)
    assert opts["rescuedDataColumn"] == "_rescued_data"
    # No secret travels as an option on Databricks: the workspace's credentials are used.
    assert not any("secret" in k or "access.key" in k for k in opts)
    assert ("load", "s3://landing/orders/") in spark.calls
    assert ("selectExpr", "*", "_metadata.file_path AS `_source_file`") in spark.calls


def test_databricks_profile_gets_the_runtime_session(databricks, monkeypatch):
    from pyspark.sql import SparkSession

    from lakehouse_helpers.runtime import spark as spark_module

    sentinel = object()
    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: sentinel))  # tier: a stand-in session
    assert spark_module.get_spark(databricks) is sentinel  # tier: returns the stand-in
