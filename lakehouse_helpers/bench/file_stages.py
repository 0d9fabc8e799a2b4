"""Auto Loader: the workbook's open-source `cloudFiles` (availableNow into Delta) against
Spark's own file readers, on the same files: JSON, CSV and Parquet, and many small JSON files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lakehouse_helpers.bench.sandbox import Sandbox
from lakehouse_helpers.bench.scoreboard import Side, Stage, timed
from lakehouse_helpers.pipeline import autoloader
from lakehouse_helpers.pipeline.events import generate

FORMATS = ("json", "csv", "parquet")


def records(events: int) -> list[dict]:
    """Valid order events with one schema throughout (no faults, no drift column), so every
    format holds the same rows and columns."""
    batch = generate(events=events, malformed_rate=0, invalid_rate=0, duplicate_rate=0, drift_after=1.0)
    return [json.loads(m.value) for m in batch.messages]


def write_files(folder: Path, fmt: str, rows: list[dict], files: int) -> str:
    """`rows` split over `files` files of `fmt` in `folder`; returns the folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(rows) // files)
    for i in range(files):
        chunk, path = rows[i * size:(i + 1) * size], folder / f"part-{i:05d}.{fmt}"
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pylist(chunk), path)
        elif fmt == "csv":
            with path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(chunk)
        else:
            path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in chunk))
    return str(folder.resolve())


def autoloader_stage(spark, box: Sandbox, name: str, fmt: str, source: str, files: int, per_file: bool) -> Stage:
    """Auto Loader availableNow into a fresh Delta table, against spark.read of the same folder
    written to another one (with the source file as a column, as Auto Loader adds it)."""
    base = box.path("autoloader", name.replace(" ", "-"))

    def workbook_run():
        df = autoloader.read_stream(spark, box.workbook, source, fmt, schema_location=f"{base}/schema")
        (df.writeStream.format("delta").option("checkpointLocation", f"{base}/checkpoint")
         .trigger(availableNow=True).start(f"{base}/workbook").awaitTermination())

    def native_run():
        reader = spark.read.format(fmt).option("header", "true") if fmt == "csv" else spark.read.format(fmt)
        (reader.load(source).selectExpr("*", "_metadata.file_path AS _source_file")
         .write.format("delta").save(f"{base}/native"))

    sides = []
    for run, out in ((workbook_run, "workbook"), (native_run, "native")):
        _, seconds = timed(run)
        rows = spark.read.format("delta").load(f"{base}/{out}").count()
        sides.append(Side(files if per_file else rows, seconds, rows))
    unit = "files/s" if per_file else "rows/s"
    return Stage(f"Auto Loader {name}", unit, f"spark.read.{fmt}", *sides)


def autoloader_stages(spark, box: Sandbox, events: int, small_files: int, rows_per_small_file: int = 10) -> list[Stage]:
    rows = records(events)
    stages = []
    for fmt in FORMATS:
        source = write_files(box.root / "files" / fmt, fmt, rows, 10)
        stages.append(autoloader_stage(spark, box, fmt, fmt, source, 10, per_file=False))
    if small_files:
        small = records(small_files * rows_per_small_file)
        source = write_files(box.root / "files" / "small", "json", small, small_files)
        stages.append(
            autoloader_stage(spark, box, f"{small_files} small JSON", "json", source, small_files, per_file=True))
    return stages
