"""The export's file naming: Spark's random names become fixed ones, and a name it does not know
stops the export, naming the file (kept under a random name, a retry would be ingested twice)."""

from __future__ import annotations

import pytest

from lakehouse_helpers.pipeline.export import UnexpectedFileNames, settled_names

FOLDER = "landing/orders/ingestion_date=2026-12-01/export_from=1/"
SPARK = FOLDER + "part-00003-1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9.c000.snappy.parquet"


def test_spark_names_become_fixed_and_settled_names_stay():
    settled = FOLDER + "part-00001.c000.snappy.parquet"
    assert settled_names(FOLDER, [SPARK, settled]) == {
        SPARK: FOLDER + "part-00003.c000.snappy.parquet", settled: settled}


@pytest.mark.parametrize("name", [
    "part-00003-1f2e3d4c.c000.snappy.parquet",  # a shorter id than Spark's UUID
    "data-00000-1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9.parquet",  # another writer's naming
    "notes.txt",
])
def test_an_unknown_name_is_refused_with_the_file_named(name):
    with pytest.raises(UnexpectedFileNames) as info:
        settled_names(FOLDER, [SPARK, FOLDER + name])
    assert FOLDER + name in str(info.value) and "not committed" in str(info.value)
