"""Export the raw Delta table to the S3 landing zone as Parquet, idempotently.

Each run exports the Delta versions committed since the last export (read through the change
data feed), writes them under `ingestion_date=<day>/export_from=<first version>/`, and only then
commits the new watermark (`layout.EXPORT_STATE_KEY`, see `ledgers.py`). Re-running exports nothing
new. A crash between the write and the commit is repaired by the next run: it exports the same
range again from the same first version, and dynamic partition overwrite replaces exactly the
partitions the failed attempt wrote, so no row lands twice. The files get fixed names
(`part-<task>.c<n>.snappy.parquet`, see `settle_files`), so the retried range lands under the same
keys with the same bytes as an uninterrupted export would have written. The steps themselves are
notebook 03's cells (`export_to_landing` runs them from the page); this module keeps the plumbing.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse_helpers.runtime import errors, layout, ledgers, pages, services
from lakehouse_helpers.runtime.ledgers import commit_watermark, read_watermark
from lakehouse_helpers.runtime.settings import Settings
from lakehouse_helpers.runtime.storage import list_keys, s3_client


class ExportBlocked(RuntimeError):
    """The quality gate failed: nothing was exported."""


@dataclass
class ExportResult:
    from_version: int | None
    to_version: int
    rows: int
    seconds: float
    partitions: list[str] = field(default_factory=list)
    skipped_reason: str = ""


def table_version(spark, path: str) -> int:
    """The latest committed version of the Delta table at `path`."""
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["version"]


def pending_range(spark, settings: Settings) -> tuple[int, int]:
    """(first, last): the raw table's versions not exported yet; nothing is new when first > last."""
    first = read_watermark(settings)["last_exported_version"] + 1
    return first, table_version(spark, layout.raw_orders(settings))


def require_append_only(feed, raw_path: str) -> None:
    """Raise ExportBlocked if the change data feed holds updates or deletes: the landing zone
    only ever receives appended rows, so it cannot follow them."""
    from pyspark.sql import functions as F

    rewritten = feed.where(F.col("_change_type") != "insert").select("_commit_version").distinct().collect()
    if rewritten:
        raise ExportBlocked(
            f"The raw table at {raw_path} is append-only, but version(s) {sorted(r[0] for r in rewritten)} "
            "updated or deleted rows, which the landing zone cannot follow. Restore the table "
            "(RESTORE ... TO VERSION AS OF) or rebuild raw and landing from Kafka."
        )


STAGING_PREFIX = ".spark-staging-"  # dynamic partition overwrite stages a write here
# Spark's name for a written file: part-<task>-<the write's random job id>.c<n>.<codec>.parquet
_SPARK_FILE = re.compile(r"^(part-\d{5})-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}(\.c\d{3}\..+)$")
# The same file once settled (an earlier attempt of this export renamed it already).
_SETTLED_FILE = re.compile(r"^part-\d{5}\.c\d{3}\..+$")


class UnexpectedFileNames(RuntimeError):
    """Files in an export's folder that neither Spark's naming nor the settled naming explain."""


def settled_names(folder: str, keys: list[str]) -> dict[str, str]:
    """Each key's fixed name (a settled key keeps its own). Raises, naming the files, when a key
    matches neither naming: Spark may have changed how it names files, and keeping the random
    names would make a retried export land under new keys and be ingested twice."""
    names, unknown = {}, []
    for key in keys:
        name = key[len(folder):]
        m = _SPARK_FILE.match(name)
        if m:
            names[key] = folder + m.group(1) + m.group(2)
        elif _SETTLED_FILE.match(name):
            names[key] = key
        else:
            unknown.append(key)
    if unknown:
        raise UnexpectedFileNames(
            f"{len(unknown)} file(s) in {folder} do not look like Spark's Parquet output "
            f"(part-<task>-<uuid>.c<n>.<codec>.parquet): {', '.join(unknown[:5])}. "
            "The export is not committed, so nothing is lost: if this Spark names files differently, "
            "update export._SPARK_FILE; if the files are foreign, remove them and run the export again.")
    return names


def settle_files(settings: Settings, first: int, partitions: list[str]) -> list[str]:
    """After a successful write: give its files fixed names and remove what failed writes left.

    Spark names files after a random id per write, so a retried export (same rows, same tasks,
    same bytes) would land under new keys, and a reader that tracks files by key (Auto Loader)
    would take them for new files and ingest the range twice. `part-<task>.c<n>...` keys make the
    retry overwrite the same objects. A write that died with S3 could not remove its staged files
    (`.spark-staging-<job>/`, skipped by readers): they go too. Returns the export's keys."""
    client, bucket = s3_client(settings), settings.s3_bucket
    for key in list_keys(settings, f"{layout.LANDING_PREFIX}/{STAGING_PREFIX}"):
        client.delete_object(Bucket=bucket, Key=key)
    # Every folder's names are checked before any is renamed: an unknown name stops the export whole.
    renames = {}
    for day in partitions:
        folder = layout.landing_key_prefix(day, first)
        renames.update(settled_names(folder, list_keys(settings, folder)))
    for key, final in renames.items():
        if final != key:
            # Copy, then delete: a crash in between leaves a duplicate in a folder whose export is
            # not committed yet, and the re-run's partition overwrite replaces that folder whole.
            client.copy({"Bucket": bucket, "Key": key}, bucket, final)
            client.delete_object(Bucket=bucket, Key=key)
    return sorted(renames.values())


def ingestion_dates(changes) -> list[str]:
    """The ingestion_date partitions the rows fall in (kept with each export in the watermark file)."""
    return sorted(str(r[0]) for r in changes.select("ingestion_date").distinct().collect())


def commit_export(settings: Settings, first: int, last: int, rows: int, partitions: list[str]) -> dict:
    """Move the watermark to `last`, after the write: a crash before this re-exports the range."""
    state = read_watermark(settings)
    state["last_exported_version"] = last
    state["exports"].append(
        {"from_version": first, "to_version": last, "rows": rows, "partitions": partitions, "at": time.time()}
    )
    commit_watermark(settings, state)
    return state


def export_history(settings: Settings, last: int = 3):
    """The last exports from the watermark file, with a readable UTC time."""
    import pandas as pd

    frame = pd.DataFrame(read_watermark(settings)["exports"][-last:])
    if not frame.empty:
        frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
        frame["partitions"] = frame["partitions"].str.join(", ")
    return frame


# Notebook 03's page holds the export's steps (its cells tagged change-feed, landing-write and
# watermark-commit); they are their only copy: export_to_landing (the fault rows, the bench, the
# tests) executes them from there.
PAGE = pages.NOTEBOOKS_DIR / "03_export_delta_to_s3.ipynb"
STEPS = ("change-feed", "landing-write", "watermark-commit")


def export_to_landing(spark, settings: Settings, gate=None, page: Path = PAGE) -> ExportResult:
    """Export what is new in the raw table with notebook 03's own cells (or those of `page`, a
    copy of it). `gate(df)` runs before anything is written and raises to stop the export (see
    quality.gate). If S3 goes down meanwhile, the error names it and the fix (not Spark's trace);
    nothing is marked exported."""
    import sys

    from pyspark.sql import functions as F

    services.require(settings, "s3")
    start = time.monotonic()
    scope = {"spark": spark, "settings": settings, "export": sys.modules[__name__], "F": F, "time": time,
             "ledgers": ledgers, "raw_path": layout.raw_orders(settings), "landing_url": layout.landing_url(settings),
             "print": lambda *args, **kwargs: None}  # the page's notes on what each step did
    with s3_named(settings):
        first, last = pending_range(spark, settings)
        scope.update(first=first, last=last, new=first <= last)
        pages.run_cells(page, STEPS[:1], scope)
    if not scope["new"]:
        return ExportResult(None, last, 0, round(time.monotonic() - start, 2),
            skipped_reason="nothing new since the last export")
    if gate is not None:
        try:
            gate(scope["changes"])
        except Exception:
            scope["changes"].unpersist()  # the write, which releases it, will not run
            raise
    pages.run_cells(page, STEPS[1:], scope)
    return ExportResult(first, last, scope["rows"], round(time.monotonic() - start, 2), scope["partitions"])


@contextlib.contextmanager
def s3_named(settings: Settings):
    """Around a step that reads or writes S3: if it fails because S3 is down, raise that (the
    service, its address, the fix) instead of Spark's trace. The watermark is committed last, so
    a failure inside leaves nothing marked exported."""
    try:
        yield
    except services.ServiceError:
        raise
    except Exception as exc:
        down = _s3_down(settings)
        if down is None:
            raise
        raise services.ServiceError(
            f"{down.problem}\nThe export stopped before its watermark was committed, so nothing is marked "
            f"exported (it failed with: {errors.first_line(exc)}).",
            service=down.service, address=down.address,
            fix=f"{down.fix} Then run the export again: it exports what is missing and rewrites the same files.",
        ) from None


def _s3_down(settings: Settings) -> services.ServiceError | None:
    """Why S3 cannot be used now (its check's error, with the fix), or None when it answers."""
    try:
        services.check(settings, "s3")
    except services.ServiceError as exc:
        return exc
    return None


def landing_files(settings: Settings) -> list[str]:
    return [k for k in list_keys(settings, layout.LANDING_PREFIX + "/") if k.endswith(".parquet")]
