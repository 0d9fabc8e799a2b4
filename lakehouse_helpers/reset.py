"""`make reset`: the workbook's data back to where it was before notebook 01, in seconds, keeping
what was downloaded (the virtualenv, the jar cache), the running services and the executed runs.

What goes: the Kafka topic (deleted; 01 creates it again, as on a new broker), the workbook's
schemas in the catalog with every table and view in them (raw, bronze, silver, gold, governance),
the landing zone's objects in the bucket (`landing/`: the exported Parquet, 03's watermark, 05's
dropped-in files) and the data folder (raw Delta tables, checkpoints and schema histories, 01's
manifests, the lineage files: the listener's and the compacted one). What stays: `.lakehouse/jars`,
`.venv`, the services and their own data, `.lakehouse/runs` (the executed notebooks: delete that
folder yourself to drop them). `make clean` removes all of `.lakehouse`, the jar cache included.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field

from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.settings import Settings

SCHEMAS = ("raw", "bronze", "silver", "gold", layout.GOVERNANCE_SCHEMA)
LANDING_ROOT = layout.LANDING_PREFIX.split("/")[0] + "/"  # every key the workbook writes: landing/...


class ResetRefused(RuntimeError):
    """A reset deletes data: it runs on the embedded local stack only."""


@dataclass
class Report:
    schemas: list[str] = field(default_factory=list)  # dropped (they existed)
    topics: list[str] = field(default_factory=list)  # deleted (01 creates the topic again)
    landing_objects: int = 0
    data_dir: str = ""  # removed, if it existed
    seconds: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"catalog: dropped {', '.join(self.schemas) or 'nothing (no workbook schema)'}",
            f"kafka:   {'deleted topic ' + ', '.join(self.topics) + ' (01 creates it)' if self.topics else 'no topic'}",
            f"s3:      {self.landing_objects} landing object(s) deleted",
            f"local:   {self.data_dir + ' removed' if self.data_dir else 'no data folder'}",
            f"reset in {self.seconds:.1f} s; kept: the virtualenv, the jar cache, the services, the runs",
        ]


def _raw_folders(settings: Settings) -> list[str]:
    return [folder(settings) for folder in layout.RAW_TABLES.values()]


def reset(settings: Settings, spark=None) -> Report:
    """Delete the workbook's data (the module docstring lists it); the services must be up."""
    if settings.profile != "local":
        raise ResetRefused(
            f"reset deletes the workbook's data and runs on the local profile only (this is {settings.profile!r}): "
            "on your own Kafka, S3 or catalog, drop what you no longer want yourself.")
    from lakehouse_helpers.runtime.services.kafka import delete_topics
    from lakehouse_helpers.runtime.spark import get_spark
    from lakehouse_helpers.runtime.storage import delete_keys

    start, report = time.monotonic(), Report()
    spark = spark or get_spark(settings)
    for schema in SCHEMAS:
        name = settings.schema(schema)
        if spark.catalog.databaseExists(name):
            spark.sql(f"DROP SCHEMA {name} CASCADE")
            report.schemas.append(name)
        # A folder an interrupted run left in the warehouse would make the schema's next CREATE fail.
        shutil.rmtree(settings.warehouse_dir / f"{settings.schema_prefix}{schema}.db", ignore_errors=True)
    # Not created again: 02 run before 01 then names the missing topic instead of reading nothing.
    report.topics = delete_topics(settings, [settings.kafka_topic])
    report.landing_objects = delete_keys(settings, LANDING_ROOT)
    # The server keeps file listings and footers of what it read; the next export writes the same
    # file names with other contents, which a stale listing would read at the old lengths.
    for path in (layout.landing_url(settings), layout.json_drop_url(settings), *_raw_folders(settings)):
        spark.catalog.refreshByPath(path)
    spark.catalog.clearCache()
    if settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
        report.data_dir = str(settings.data_dir)
    report.seconds = round(time.monotonic() - start, 1)
    return report
