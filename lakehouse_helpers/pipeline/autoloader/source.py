"""The Spark Python streaming data source registered as format `cloudFiles`.

The logic lives in `CloudFilesStream`, a plain class; the pyspark classes it is combined with
are imported only when a Spark session registers the source (`register`), so importing this
package does not import pyspark.
"""

from __future__ import annotations

import json

from lakehouse_helpers.pipeline.autoloader.badfiles import columns_or_skip
from lakehouse_helpers.pipeline.autoloader.files import FILE_LOG_NAME, _exists, _read_bytes, _write_text, list_files
from lakehouse_helpers.pipeline.autoloader.history import (
    file_columns,
    group_columns,
    read_schema_version,
    schema_versions,
    write_schema_version,
)
from lakehouse_helpers.pipeline.autoloader.readers import groups, read_files
from lakehouse_helpers.pipeline.autoloader.schema import (
    DEFAULTS,
    FILE_LOG_DIR,
    FORMAT,
    SCHEMAS_DIR,
    AutoLoaderError,
    UnknownFieldException,
    _get,
)


class CloudFilesStream:
    """Discovery, offsets, read limits and new-column checks of one stream (driver side), and
    the reading of one partition of files (worker side)."""

    limits: tuple = ()  # (ReadAllAvailable, ReadMaxFiles, ReadMaxBytes), set by register
    partition_class: type = object

    def __init__(self, schema, options: dict):
        self.schema = schema
        self.options = options
        self.fmt = (_get(options, "format") or "").lower()
        self.root = options["path"]
        self.schema_location = _get(options, "schemaLocation")
        log_dir = _get(options, "fileLogLocation") or f"{self.schema_location.rstrip('/')}/{FILE_LOG_DIR}"
        self.log_path = f"{log_dir}/{FILE_LOG_NAME}"
        self.mode = _get(options, "schemaEvolutionMode", "addNewColumns")
        self.include_existing = str(_get(options, "includeExistingFiles", "true")).lower() == "true"
        self.max_files = int(_get(options, "maxFilesPerTrigger", DEFAULTS["maxFilesPerTrigger"]))
        self.max_bytes = int(_get(options, "maxBytesPerTrigger", 0) or 0)
        self.infer_types = str(_get(options, "inferColumnTypes", "false")).lower() == "true"
        self.fields = [(f.name, f.dataType.simpleString()) for f in schema.fields]
        self.rescued = _get(options, "rescuedDataColumn", DEFAULTS["rescuedDataColumn"])
        self.log: list[dict] = self._load_log()
        self.frozen_end: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "log": []}  # workers read the files of their partition, not the log

    # The discovery log: append-only, so a position in it names the same file forever.
    def _load_log(self) -> list[dict]:
        if not _exists(self.log_path, self.options):
            return []
        return [json.loads(line) for line in _read_bytes(self.log_path, self.options).decode().splitlines() if line]

    def _discover(self) -> None:
        known = {f["path"] for f in self.log}
        new = [f for f in list_files(self.root, self.options) if f["path"] not in known]
        if new:
            self.log.extend(new)
            _write_text(self.log_path, "".join(json.dumps(f) + "\n" for f in self.log), self.options)

    def initialOffset(self) -> dict:
        self._discover()
        # includeExistingFiles=false: the first start begins after what is already there.
        return {"index": 0 if self.include_existing else len(self.log)}

    def getDefaultReadLimit(self):
        _, read_max_files, read_max_bytes = self.limits
        if self.max_bytes and not _get(self.options, "maxFilesPerTrigger"):
            return read_max_bytes(self.max_bytes)
        return read_max_files(self.max_files)

    def prepareForTriggerAvailableNow(self) -> None:
        self._discover()
        self.frozen_end = len(self.log)

    def latestOffset(self, start: dict, limit) -> dict:
        if self.frozen_end is None:
            self._discover()
        first = start["index"]
        end = len(self.log) if self.frozen_end is None else self.frozen_end
        read_all, read_max_files, read_max_bytes = self.limits
        if not isinstance(limit, read_all):
            max_files = limit.max_files if isinstance(limit, read_max_files) else len(self.log)
            max_bytes = limit.max_bytes if isinstance(limit, read_max_bytes) else self.max_bytes
            end = self._admit(first, end, max_files, max_bytes)
        if end > first:
            self._check_new_columns(self.log[first:end])
        return {"index": end}

    def _admit(self, first: int, end: int, max_files: int, max_bytes: int) -> int:
        """Where a micro-batch from `first` stops under the file and byte limits (at least one file)."""
        stop, total = first, 0
        while stop < end and stop - first < max_files:
            size = self.log[stop]["size"]
            if max_bytes and stop > first and total + size > max_bytes:
                break
            total += size
            stop += 1
        return stop

    def _check_new_columns(self, files: list[dict]) -> None:
        if self.mode in ("rescue", "none"):
            return
        known = {n.lower() for n, _ in self.fields}
        found: dict[str, str] = {}
        where = ""
        # A corrupt file fails the stream naming it, or is skipped and recorded (badfiles).
        together = lambda g: group_columns(g, self.fmt, self.options, False)  # noqa: E731
        one = lambda g: file_columns(g[0]["path"], self.fmt, self.options, self.infer_types)  # noqa: E731
        for group in groups(files, self.fmt):  # small JSON files: one parse, file by file only if new
            if len(group) > 1 and all(n.lower() in known for n, _ in columns_or_skip(group, self.options, together)):
                continue
            for f in group:
                for name, t in columns_or_skip([f], self.options, one):
                    if name.lower() not in known and name not in found:
                        found[name] = t
                        where = where or f["path"]
        if not found:
            return
        if self.mode == "addNewColumns":
            version = self._record_new_columns(found, where)
            raise UnknownFieldException(
                "[UNKNOWN_FIELD_EXCEPTION.NEW_FIELDS_IN_FILE] Encountered unknown fields during parsing: "
                f"{sorted(found)}, "
                f"in file {where}. The schema in {self.schema_location}/{SCHEMAS_DIR} was updated to version "
                f"{version}; restart the stream to read with it (run_with_restarts does so)."
            )
        raise UnknownFieldException(
            f"[UNKNOWN_FIELD_EXCEPTION.NEW_FIELDS_IN_FILE] Encountered unknown fields during parsing: {sorted(found)}, "
            f"in file {where}. schemaEvolutionMode=failOnNewColumns: update the schema (schemaHints or a "
            "new schema version) or change the mode, then restart."
        )

    def _record_new_columns(self, found: dict[str, str], where: str) -> int:
        """Write the merged schema as the next version; return its number."""
        versions = schema_versions(self.schema_location, self.options)
        current = [tuple(f) for f in read_schema_version(self.schema_location, versions[-1], self.options)["fields"]]
        # New columns go before the rescued data column, as Databricks lays them out.
        merged = [f for f in current if f[0] != self.rescued] + [(n, found[n]) for n in found]
        if any(f[0] == self.rescued for f in current):
            merged.append((self.rescued, "string"))
        write_schema_version(self.schema_location, versions[-1] + 1, merged, self.options, reason="new columns",
                             new_fields=sorted(found), file=where)
        return versions[-1] + 1

    def partitions(self, start: dict, end: dict):
        files = self.log[start["index"] : end["index"]]
        if not files:
            return []
        # Few tasks for many small files (per-task overhead dominates), one task per big
        # file, and at least two tasks so both local cores work.
        total = sum(f["size"] for f in files)
        tasks = min(len(files), max(2, -(-total // (64 * 1024 * 1024))))
        per_task = -(-len(files) // tasks)
        return [self.partition_class(files[i : i + per_task]) for i in range(0, len(files), per_task)]

    def read(self, partition):
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(self.schema, timezone="UTC")  # exactly the schema Spark checks against
        columns = [n for n, _ in self.fields]
        rescued = self.rescued if self.rescued in columns else None
        source = _get(self.options, "sourceFileColumn")
        source = source if source in columns else None
        yield from read_files(partition.files, self.fmt, self.fields, schema, self.options, rescued, source)

    def commit(self, end: dict) -> None:
        return None


def _make_source_classes():
    from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
    from pyspark.sql.streaming.datasource import (
        ReadAllAvailable,
        ReadMaxBytes,
        ReadMaxFiles,
        SupportsTriggerAvailableNow,
    )

    class FilesPartition(InputPartition):
        def __init__(self, files: list[dict]):
            self.files = files

    class CloudFilesStreamReader(CloudFilesStream, DataSourceStreamReader, SupportsTriggerAvailableNow):
        limits = (ReadAllAvailable, ReadMaxFiles, ReadMaxBytes)
        partition_class = FilesPartition

    class CloudFilesDataSource(DataSource):
        @classmethod
        def name(cls) -> str:
            return FORMAT

        def schema(self):
            raise AutoLoaderError(
                "The open-source cloudFiles source needs a schema: use lakehouse_helpers.pipeline.autoloader"
                ".read_stream.")

        def streamReader(self, schema):
            return CloudFilesStreamReader(schema, dict(self.options))

    return CloudFilesDataSource


_REGISTERED: set[int] = set()


def register(spark) -> None:
    """Register the open-source `cloudFiles` format in this Spark session (once)."""
    key = id(spark)
    if key not in _REGISTERED:
        spark.dataSource.register(_make_source_classes())
        _REGISTERED.add(key)
