"""The calls notebooks make: `read_stream`, the schema history, and restarting after a schema change."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lakehouse_helpers.pipeline.autoloader.badfiles import ledger_dir, read_ledger
from lakehouse_helpers.pipeline.autoloader.files import list_files
from lakehouse_helpers.pipeline.autoloader.history import (
    infer_schema,
    read_schema_version,
    schema_versions,
    write_schema_version,
)
from lakehouse_helpers.pipeline.autoloader.schema import (
    DEFAULTS,
    EVOLUTION_MODES,
    FORMAT,
    SOURCE_FILE_COLUMN,
    AutoLoaderError,
    _get,
    apply_hints,
    parse_hints,
    to_struct,
)
from lakehouse_helpers.pipeline.autoloader.source import register
from lakehouse_helpers.runtime import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchemaState:
    version: int
    fields: list[tuple[str, str]]


def resolve_schema(source: str, fmt: str, schema_location: str | None, options: dict, schema=None, hints: str = "",
        infer_types: bool = False, rescued: str | None = "_rescued_data",
        source_column: str | None = None) -> SchemaState:
    """The schema a (re)started stream reads with: the newest version in the schema history,
    or, on first start, inferred from a sample of the existing files (version 0)."""
    if schema is not None:
        fields = [(f.name, f.dataType.simpleString()) for f in schema.fields]
        if rescued and rescued not in {n for n, _ in fields}:
            fields.append((rescued, "string"))
        return SchemaState(-1, _with_source(fields, source_column))
    if not schema_location:
        raise AutoLoaderError(
            "Without a schema, cloudFiles needs schemaLocation (where the inferred schema history is kept).")
    versions = schema_versions(schema_location, options)
    if versions:
        entry = read_schema_version(schema_location, versions[-1], options)
        fields = [tuple(f) for f in entry["fields"]]
        # Hints given later still pin types (as on Databricks, hints apply on every start).
        fields = apply_hints(fields, parse_hints(hints))
        return SchemaState(versions[-1], _with_source(fields, source_column))
    files = list_files(source, options)
    if not files:
        raise AutoLoaderError(f"No files in {source} to infer a schema from: add files, or pass a schema.")
    sample_files = int(_get(options, "schemaInference.sampleSize.numFiles", DEFAULTS["sampleFiles"]))
    sample_bytes = int(_get(options, "schemaInference.sampleSize.numBytes", DEFAULTS["sampleBytes"]))
    fields = infer_schema(files, fmt, options, infer_types or fmt == "parquet", sample_files, sample_bytes)
    fields = apply_hints(fields, parse_hints(hints))
    if rescued:
        fields = [f for f in fields if f[0] != rescued] + [(rescued, "string")]
    write_schema_version(schema_location, 0, fields, options, reason="inferred",
        files_sampled=min(len(files), sample_files))
    return SchemaState(0, _with_source(fields, source_column))


def _with_source(fields, source_column):
    if source_column and source_column not in {n for n, _ in fields}:
        return [*fields, (source_column, "string")]
    return fields


def s3_options(settings) -> dict:
    """Options that let the Python reader reach the configured S3 endpoint (see
    `storage.s3_connection`): plain strings, so they travel to Spark Connect's workers."""
    from lakehouse_helpers.runtime.storage import s3_connection

    return s3_connection(settings).as_options()


def read_stream(
    spark,
    settings,
    source: str,
    fmt: str,
    schema_location: str | None = None,
    schema=None,
    schema_hints: str = "",
    infer_column_types: bool = False,
    schema_evolution_mode: str | None = None,
    rescued_data_column: str | None = "_rescued_data",
    include_existing_files: bool = True,
    max_files_per_trigger: int | None = None,
    max_bytes_per_trigger: str | int | None = None,
    source_file_column: str | None = SOURCE_FILE_COLUMN,
    options: dict | None = None,
):
    """A streaming DataFrame over the files under `source`, with Auto Loader's behaviour.

    The same arguments on Databricks become `cloudFiles.*` options of the real Auto Loader, and
    `source_file_column` comes from `_metadata.file_path` there.
    """
    fmt = fmt.lower()
    if fmt not in ("json", "csv", "parquet"):
        raise AutoLoaderError(f"format {fmt!r} is not supported; use json, csv or parquet.")
    mode = schema_evolution_mode or ("none" if schema is not None else "addNewColumns")
    if mode not in EVOLUTION_MODES:
        raise AutoLoaderError(f"schemaEvolutionMode={mode!r}; one of {', '.join(EVOLUTION_MODES)}.")
    if mode == "rescue" and not rescued_data_column:
        raise AutoLoaderError("schemaEvolutionMode=rescue needs a rescued data column.")
    cf = _cloud_files_options(fmt, mode, include_existing_files, infer_column_types, schema_location, schema_hints,
                              rescued_data_column, max_files_per_trigger, max_bytes_per_trigger)
    cf.update(options or {})

    if settings.profile == "databricks":
        reader = spark.readStream.format("cloudFiles").options(**cf)
        if schema is not None:
            reader = reader.schema(schema)
        df = reader.load(source)
        if source_file_column:
            df = df.selectExpr("*", f"_metadata.file_path AS `{source_file_column}`")
        return df

    register(spark)
    fs_options = s3_options(settings)
    state = resolve_schema(source, fmt, schema_location, {**cf, **fs_options}, schema, schema_hints, infer_column_types,
        rescued_data_column, source_file_column)
    if source_file_column:
        cf["sourceFileColumn"] = source_file_column
    if schema_location is None:
        raise AutoLoaderError(
            "The open-source cloudFiles needs schemaLocation (it keeps the file log there) even with a schema.")
    return spark.readStream.format(FORMAT).schema(to_struct(state.fields)).options(**cf, **fs_options).load(source)


def _cloud_files_options(fmt, mode, include_existing, infer_types, schema_location, hints, rescued, max_files,
        max_bytes) -> dict:
    """read_stream's arguments as the `cloudFiles.*` options Databricks knows them by."""
    cf = {
        "cloudFiles.format": fmt,
        "cloudFiles.schemaEvolutionMode": mode,
        "cloudFiles.includeExistingFiles": str(include_existing).lower(),
        "cloudFiles.inferColumnTypes": str(infer_types).lower(),
    }
    if schema_location:
        cf["cloudFiles.schemaLocation"] = schema_location
    if hints:
        cf["cloudFiles.schemaHints"] = hints
    if rescued:
        cf["rescuedDataColumn"] = rescued
    if max_files:
        cf["cloudFiles.maxFilesPerTrigger"] = str(max_files)
    if max_bytes:
        cf["cloudFiles.maxBytesPerTrigger"] = str(_bytes(max_bytes))
    if fmt == "csv":
        cf["header"] = "true"
    return cf


def _bytes(value) -> int:
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", str(value).lower())
    if not m:
        raise AutoLoaderError(f"maxBytesPerTrigger={value!r}: use a byte count or e.g. '10m', '1g'.")
    return int(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")


def bad_files(settings, schema_location: str | None = None, bad_records_path: str | None = None) -> list[dict]:
    """The files a stream could not read, one record each (`path`, `status`, `reason`,
    `rows_read`): `failed` (the stream stopped on it), `skipped` (ignoreCorruptFiles or
    badRecordsPath), `removed` (moved away after it failed), `missing` (ignoreMissingFiles).
    Pass the stream's schemaLocation, or its badRecordsPath if it has one (see `badfiles`)."""
    folder = ledger_dir({"schemaLocation": schema_location, "badRecordsPath": bad_records_path})
    return read_ledger(folder, s3_options(settings)) if folder else []


def schema_history(settings, schema_location: str):
    """The schema versions side by side: one row per column, one column per version."""
    import pandas as pd

    opts = s3_options(settings)
    versions = schema_versions(schema_location, opts)
    table: dict[str, dict[str, str]] = {}
    for v in versions:
        for name, t in read_schema_version(schema_location, v, opts)["fields"]:
            table.setdefault(name, {})[f"v{v}"] = t
    return pd.DataFrame(table).T.fillna("")


def is_unknown_field_error(exc: BaseException) -> bool:
    """An unknown-field error: new columns in a file (see `errors.is_unknown_field`)."""
    return errors.is_unknown_field(exc)


@dataclass
class SchemaChange:
    """An unknown-field error in a few lines: what a learner needs from a 40-line trace."""

    name: str
    new_fields: list[str]
    file: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: new field(s) {', '.join(self.new_fields)}\n  in file {self.file}\n  {self.detail}"


def schema_change(exc: BaseException) -> SchemaChange | None:
    """The unknown-field error inside `exc` (a StreamingQueryException), or None if it is another one."""
    found = errors.new_fields(exc)
    return None if found is None else SchemaChange("UnknownFieldException", found.fields, found.file, found.detail)


def run_with_restarts(start: Callable[[], Any], max_restarts: int = 3) -> int:
    """Run a stream to completion, restarting it after an unknown-field error (the schema was
    already widened) the way a Databricks job retry does; give up after `max_restarts`.

    `start()` must build the DataFrame anew and return the started query, so each restart reads
    the newest schema. Returns how many restarts it took."""
    restarts = 0
    while True:
        query = start()
        try:
            query.awaitTermination()
            exc = query.exception()
        except Exception as error:  # noqa: BLE001 - classified below, re-raised when not ours
            exc = error
        if exc is None:
            return restarts
        if not is_unknown_field_error(exc) or restarts >= max_restarts:
            raise exc
        restarts += 1
        # A warning: a job's log shows it, and so does a notebook (Python's last-resort handler).
        log.warning(f"restart {restarts}/{max_restarts} after a schema change: {errors.unknown_field_line(exc)}")
