"""A notebook run out of order stops before it creates anything, naming what to run first
(lakehouse_helpers/notebook/upstream.py, the first cell of 03-07)."""

from __future__ import annotations

import uuid

import pytest

from lakehouse_helpers.notebook.upstream import NotRunYet, require_upstream
from lakehouse_helpers.runtime import layout


@pytest.fixture
def fresh(spark_stack, tmp_path):
    """Settings of a workbook nothing has run in: a new schema prefix and data folder."""
    return spark_stack.replace(schema_prefix=f"u{uuid.uuid4().hex[:8]}_", data_dir_override=str(tmp_path))


def test_each_notebook_names_the_one_that_writes_its_input(spark, fresh):
    for notebook, writer, runs in (("03", "02_stream_kafka_to_delta", '"01 02"'),
                                   ("06", "05_auto_loader_bronze", '"01 02 03 04 05"'),
                                   ("07", "06_medallion_silver_gold", '"01 02 03 04 05 06"')):
        with pytest.raises(NotRunYet) as error:
            require_upstream(spark, fresh, notebook)
        assert writer in str(error.value) and f"make run NOTEBOOKS={runs}" in str(error.value)
    assert not spark.catalog.databaseExists(fresh.schema("silver"))  # stopped before 06 creates its schemas


def test_with_its_input_there_a_notebook_goes_on(spark, fresh, tmp_path):
    (tmp_path / "raw" / "orders" / "_delta_log").mkdir(parents=True)
    require_upstream(spark, fresh, "03")
    spark.sql(f"CREATE SCHEMA {fresh.schema('bronze')}")
    try:
        spark.sql(f"CREATE TABLE {layout.bronze_table(fresh)} (event_id STRING) USING DELTA")
        require_upstream(spark, fresh, "06")
    finally:
        spark.sql(f"DROP SCHEMA {fresh.schema('bronze')} CASCADE")
