"""A notebook run out of order stops in its first cell, before it creates anything, naming the
notebook that writes what it reads and the command that runs the notebooks before it."""

from __future__ import annotations

from pathlib import Path

from lakehouse_helpers.runtime import layout, storage
from lakehouse_helpers.runtime.settings import Settings


class NotRunYet(RuntimeError):
    """What a notebook reads does not exist yet: the notebooks before it have not run."""


def _raw_written(spark, settings: Settings) -> bool:
    return (Path(layout.raw_orders(settings)) / "_delta_log").is_dir()


def _landing_written(spark, settings: Settings) -> bool:
    try:
        keys = storage.list_keys(settings, layout.LANDING_PREFIX + "/")
    except Exception:  # noqa: BLE001 - S3 down or no access: the notebook's own read names that, with its fix
        return True
    return any(key.endswith(".parquet") for key in keys)


def _bronze_written(spark, settings: Settings) -> bool:
    return spark.catalog.tableExists(layout.bronze_table(settings))


def _silver_written(spark, settings: Settings) -> bool:
    return spark.catalog.tableExists(layout.silver(settings))


# notebook -> (the notebook whose output it reads, that output, how to see it is there)
NEEDS = {
    "03": ("02_stream_kafka_to_delta", "the raw Delta table", _raw_written),
    "04": ("03_export_delta_to_s3", "the S3 landing zone's Parquet files", _landing_written),
    "05": ("03_export_delta_to_s3", "the S3 landing zone's Parquet files", _landing_written),
    "06": ("05_auto_loader_bronze", "the bronze table", _bronze_written),
    "07": ("06_medallion_silver_gold", "the silver table", _silver_written),
}


def require_upstream(spark, settings: Settings, notebook: str) -> None:
    """Raise NotRunYet, naming what to run, when `notebook`'s input is missing."""
    if notebook not in NEEDS:
        return
    writer, what, written = NEEDS[notebook]
    if written(spark, settings):
        return
    before = " ".join(f"{n:02d}" for n in range(1, int(notebook)))
    raise NotRunYet(
        f"{what} does not exist yet: notebook {notebook} reads what {writer} writes. Run the notebooks "
        f"before this one first: `make run NOTEBOOKS=\"{before}\"` (or each of them in order here in the lab)."
    )
