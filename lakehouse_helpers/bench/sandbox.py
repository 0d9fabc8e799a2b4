"""Where a benchmark run writes: a data folder, topics, buckets and schemas of its own, so the
user's tables are never touched, and all of it removed afterwards."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from lakehouse_helpers.runtime.services.kafka import delete_topics
from lakehouse_helpers.runtime.settings import Settings
from lakehouse_helpers.runtime.storage import delete_keys, ensure_bucket, s3_client


@dataclass(frozen=True)
class Sandbox:
    run: str
    root: Path
    workbook: Settings  # the workbook's path: the public functions read and write through these
    native: Settings  # the limit's side: its own data folder, topic, bucket and schemas

    @classmethod
    def create(cls, settings: Settings) -> Sandbox:
        run = uuid.uuid4().hex[:8]
        root = settings.state_dir / "bench" / f"run-{run}"

        def side(name: str, suffix: str) -> Settings:
            return settings.replace(
                data_dir_override=root / name, kafka_topic=f"bench.{run}{suffix}",
                s3_bucket=f"bench-{run}{suffix.replace('.', '-')}",
                schema_prefix=f"bench{run}{suffix.replace('.', '_')}_",
            )

        box = cls(run, root, side("workbook", ""), side("native", ".native"))
        for s in (box.workbook, box.native):
            s.data_dir.mkdir(parents=True, exist_ok=True)
            ensure_bucket(s)
        return box

    def path(self, *parts: str) -> str:
        """A local folder of the run (files for Auto Loader, Delta outputs of the native side)."""
        return str(self.root.joinpath(*parts).resolve())

    def cleanup(self, spark) -> None:
        """Drop the run's schemas, topics and buckets and delete its folder."""
        for s in (self.workbook, self.native):
            discard(spark, s)
        shutil.rmtree(self.root, ignore_errors=True)


def discard(spark, settings: Settings) -> None:
    """Drop every schema under the settings' (bench) prefix, its topic, data folder and bucket."""
    if not settings.schema_prefix.startswith("bench"):
        raise ValueError(f"refusing to discard schemas with prefix {settings.schema_prefix!r}: not a benchmark's")
    catalog = settings.spark_catalog_name
    for row in spark.sql(f"SHOW SCHEMAS IN {catalog} LIKE '{settings.schema_prefix}*'").collect():
        spark.sql(f"DROP SCHEMA IF EXISTS {catalog}.{row[0]} CASCADE")
    delete_topics(settings, [settings.kafka_topic], client_id="lakehouse-bench")
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    _delete_bucket(settings)


def _delete_bucket(settings: Settings) -> None:
    from botocore.exceptions import ClientError

    delete_keys(settings)
    try:
        s3_client(settings).delete_bucket(Bucket=settings.s3_bucket)
    except ClientError as exc:
        # The embedded server's filesystem backend can keep an empty folder that Spark's staging
        # left (no key lists it): the bucket then stays, empty.
        if exc.response.get("Error", {}).get("Code") != "BucketNotEmpty":
            raise
        print(f"note: bucket {settings.s3_bucket} is empty but could not be deleted ({exc})")
