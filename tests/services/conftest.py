"""Fixtures shared by the service tests."""

import uuid

import pytest

from lakehouse_helpers.govern import governance
from tests.governance_spec import SPEC


@pytest.fixture
def governed(spark, stack):
    """A silver table governed by SPEC in schemas of its own, dropped after the test."""
    settings = stack.replace(schema_prefix=f"g{uuid.uuid4().hex[:8]}_")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.schema('silver')}")
    table = SPEC[0].table(settings)
    spark.sql(f"CREATE TABLE {table} (id INT, email STRING, country STRING) USING DELTA")
    spark.sql(f"INSERT INTO {table} VALUES (1, 'ana@example.com', 'Ireland'), (2, 'ben@example.org', 'United States')")
    governance.apply(spark, settings, SPEC)
    yield settings
    for schema in ("silver", governance.GOVERNANCE_SCHEMA):
        spark.sql(f"DROP SCHEMA IF EXISTS {settings.schema(schema)} CASCADE")

