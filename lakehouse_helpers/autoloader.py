"""Auto Loader (`cloudFiles`) with Databricks semantics, on Databricks and on plain Spark.

On Databricks `read_stream` is `spark.readStream.format("cloudFiles")` with the options spelled
the Databricks way. Everywhere else it is an open-source implementation: a Spark 4.2 Python
streaming data source registered under the same format name, `cloudFiles`, that does what the
Databricks documentation describes:

- formats json (JSON Lines), csv (header row) and parquet;
- `schemaLocation` turns on inference and evolution, with a versioned schema history
  (`_schemas/0`, `_schemas/1`, ...); inference samples existing files, bounded by a file count
  and bytes; JSON and CSV columns are strings unless `inferColumnTypes`; Parquet schemas merge
  to the widest type; `schemaHints` pin types; `key=value` folders become partition columns;
- the rescued data column (`_rescued_data`): a JSON object with the fields not in the schema,
  values whose type does not fit, case-mismatched names, and `_file_path`;
- `schemaEvolutionMode` addNewColumns (record the merged schema, then fail with
  UnknownFieldException; a restart reads with the wider schema), rescue, failOnNewColumns, none;
- `includeExistingFiles` (first start of a checkpoint only), `maxFilesPerTrigger`,
  `maxBytesPerTrigger`, the `availableNow` trigger;
- exactly once per file: files are appended to a discovery log, and the streaming checkpoint
  stores positions in that log, so each file is planned in exactly one committed micro-batch.

File access goes through pyarrow's filesystems (local disk and S3, including S3-compatible
endpoints), in the Spark driver for planning and in the Python workers for reading.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

FORMAT = "cloudFiles"
SCHEMAS_DIR = "_schemas"
FILE_LOG_DIR = "_file_log"
SOURCE_FILE_COLUMN = "_source_file"
EVOLUTION_MODES = ("addNewColumns", "rescue", "failOnNewColumns", "none")
DEFAULTS = {
    "maxFilesPerTrigger": 1000,
    "sampleFiles": 1000,
    "sampleBytes": 50 * 1024**3,
    "rescuedDataColumn": "_rescued_data",
}


class UnknownFieldException(RuntimeError):
    """New columns were found. With addNewColumns the wider schema is already recorded: restart."""


class AutoLoaderError(ValueError):
    """Bad options or input: the message says which and what to do."""


# --------------------------------------------------------------------------------------------
# Types and schemas, as plain data: [(name, type string)], type strings in Spark's simple form.

_WIDTH = {"boolean": 0, "int": 1, "bigint": 2, "double": 3, "string": 9}


def widest(a: str, b: str) -> str:
    """The type both fit in (Parquet merge, JSON inference). Unknown pairs become string."""
    if a == b:
        return a
    if a in _WIDTH and b in _WIDTH and "boolean" not in (a, b):
        return a if _WIDTH[a] > _WIDTH[b] else b
    return "string"


def parse_hints(hints: str) -> list[tuple[str, str]]:
    """`"quantity int, event_ts timestamp"` -> [("quantity", "int"), ("event_ts", "timestamp")]."""
    out = []
    for part in filter(None, (p.strip() for p in (hints or "").split(","))):
        bits = part.split(None, 1)
        if len(bits) != 2:
            raise AutoLoaderError(f"schemaHints entry {part!r} is not 'column type' (e.g. 'quantity int').")
        out.append((bits[0].strip("`"), _normalise_type(bits[1])))
    return out


def _normalise_type(t: str) -> str:
    t = t.strip().lower()
    return {"long": "bigint", "integer": "int", "float": "double", "bool": "boolean", "str": "string"}.get(t, t)


def to_struct(fields: list[tuple[str, str]]):
    from pyspark.sql.types import StructType

    ddl = ", ".join(f"`{n}` {t}" for n, t in fields)
    return StructType.fromDDL(ddl) if fields else StructType([])


def _py_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    return "string"


def _arrow_type_name(t) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_int32(t):
        return "int"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    return "string"


# --------------------------------------------------------------------------------------------
# File systems (pyarrow): local paths and s3a:// / s3:// URLs.


def filesystem(path: str, options: dict):
    """(pyarrow FileSystem, path inside it) for a local path or an S3 URL."""
    from pyarrow import fs

    m = re.match(r"^s3a?://([^/]+)/?(.*)$", path)
    if not m:
        return fs.LocalFileSystem(), re.sub(r"^file:(//)?", "", path)
    endpoint = options.get("s3.endpoint", "")
    kwargs = {"region": options.get("s3.region") or "us-east-1"}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host, scheme=scheme, force_virtual_addressing=False)
    if options.get("s3.access.key"):
        kwargs.update(access_key=options["s3.access.key"], secret_key=options["s3.secret.key"])
    return fs.S3FileSystem(**kwargs), f"{m.group(1)}/{m.group(2)}".rstrip("/")


def _to_url(original_root: str, fs_root: str, fs_path: str) -> str:
    """Map a path inside the filesystem back to the user's URL form."""
    return original_root.rstrip("/") + fs_path[len(fs_root.rstrip("/")) :]


def list_files(root: str, options: dict) -> list[dict]:
    """Data files under root, recursively; hidden and `_`-prefixed names are skipped like Spark."""
    from pyarrow import fs as pafs

    filesys, base = filesystem(root, options)
    try:
        infos = filesys.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return []
    files = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) :].lstrip("/")
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        mtime = info.mtime.timestamp() if info.mtime else 0.0
        files.append({"path": _to_url(root, base, info.path), "size": info.size, "mtime": mtime, "rel": rel})
    return sorted(files, key=lambda f: (f["mtime"], f["path"]))


def _read_bytes(path: str, options: dict) -> bytes:
    filesys, p = filesystem(path, options)
    with filesys.open_input_stream(p) as fh:
        return fh.read()


def _write_text(path: str, text: str, options: dict) -> None:
    filesys, p = filesystem(path, options)
    parent = p.rsplit("/", 1)[0]
    filesys.create_dir(parent, recursive=True)
    with filesys.open_output_stream(p) as fh:
        fh.write(text.encode())


def _exists(path: str, options: dict) -> bool:
    from pyarrow import fs as pafs

    filesys, p = filesystem(path, options)
    return filesys.get_file_info(p).type != pafs.FileType.NotFound


# --------------------------------------------------------------------------------------------
# Reading one file into records ({column: raw python value}), per format.


def _partition_values(rel: str) -> dict[str, str]:
    return dict(seg.split("=", 1) for seg in rel.split("/")[:-1] if "=" in seg)


def file_records(path: str, fmt: str, options: dict) -> Iterator[dict]:
    data = _read_bytes(path, options)
    if fmt == "json":
        for line in data.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                value = None
            if not isinstance(value, dict):
                yield {"__corrupt__": line}
                continue
            yield value
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(data.decode("utf-8", errors="replace")))
        for row in reader:
            extra = row.pop(None, None)
            if extra:
                row["__extra_values__"] = extra
            yield row
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        yield from table.to_pylist()
    else:
        raise AutoLoaderError(f"cloudFiles.format={fmt!r} is not supported here; use json, csv or parquet.")


def file_columns(path: str, fmt: str, options: dict, infer_types: bool) -> list[tuple[str, str]]:
    """The columns (and types) one file carries, in order of first appearance."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(io.BytesIO(_read_bytes(path, options)))
        return [(f.name, _arrow_type_name(f.type)) for f in schema]
    if fmt == "csv":
        header = next(csv.reader(io.StringIO(_read_bytes(path, options).decode("utf-8", errors="replace"))), [])
        if not infer_types:
            return [(h, "string") for h in header]
        types: dict[str, str] = {}
        for rec in file_records(path, fmt, options):
            for h in header:
                types[h] = widest(types.get(h, _csv_type(rec.get(h))), _csv_type(rec.get(h)))
        return [(h, types.get(h, "string")) for h in header]
    if not infer_types:
        names = _json_keys_fast(_read_bytes(path, options))
        if names is not None:
            return [(n, "string") for n in names]
    seen: dict[str, str] = {}
    for rec in file_records(path, fmt, options):
        for key, value in rec.items():
            if key == "__corrupt__":
                continue
            t = _py_type(value) if infer_types and value is not None else ("string" if not infer_types else None)
            if key not in seen:
                seen[key] = t
            elif t is not None:
                seen[key] = t if seen[key] is None else widest(seen[key], t)
    return [(k, t or "string") for k, t in seen.items()]


def _json_keys_fast(data: bytes) -> list[str] | None:
    """Top-level keys of a JSON Lines file, parsed in C++ by pyarrow (planning reads every new
    file to find new columns; this keeps that cheap). None when pyarrow cannot parse it (a
    broken line, a type that changes between lines): the Python parser then decides."""
    import pyarrow as pa
    import pyarrow.json as pj

    if not data.strip():
        return []
    try:
        table = pj.read_json(io.BytesIO(data), parse_options=pj.ParseOptions(unexpected_field_behavior="infer"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table.column_names


def _csv_type(value: str | None) -> str:
    if value is None or value == "":
        return "int"  # no evidence: narrowest
    for t, conv in (("int", int), ("double", float)):
        try:
            conv(value)
            return "int" if t == "int" and -(2**31) <= int(value) < 2**31 else ("bigint" if t == "int" else t)
        except ValueError:
            continue
    return "boolean" if value.lower() in ("true", "false") else "string"


# --------------------------------------------------------------------------------------------
# Conversion of one record to the schema, with rescue.

_MISSING = object()


def _convert(value: Any, t: str, strings: bool):
    """(converted value, ok). Strings mode keeps every value as its JSON text."""
    if value is None:
        return None, True
    if t == "string":
        if isinstance(value, str):
            return value, True
        return (json.dumps(value) if isinstance(value, (dict, list)) else (str(value).lower() if isinstance(value, bool) else str(value))), True
    try:
        if t in ("int", "bigint"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                return None, False
            v = int(value) if not isinstance(value, str) else int(value.strip())
            if t == "int" and not -(2**31) <= v < 2**31:
                return None, False
            return v, True
        if t == "double":
            if isinstance(value, bool):
                return None, False
            return float(value), True
        if t == "boolean":
            if isinstance(value, bool):
                return value, True
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true", True
            return None, False
        if t == "timestamp":
            if isinstance(value, datetime):
                return value if value.tzinfo else value.replace(tzinfo=UTC), True
            ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)), True
        if t == "date":
            return (value if isinstance(value, date) else date.fromisoformat(str(value))), True
    except (ValueError, TypeError):
        return None, False
    return None, False


def convert_record(rec: dict, fields: list[tuple[str, str]], rescued_column: str | None, path: str, partition_values: dict, source_column: str | None) -> tuple:
    out = []
    rescued: dict[str, Any] = {}
    lower = {k.lower(): k for k in rec}
    names = {n for n, _ in fields}
    for name, t in fields:
        if name in (rescued_column, source_column):
            out.append(None)
            continue
        value = rec.get(name, _MISSING)
        if value is _MISSING and name in partition_values:
            value = partition_values[name]
        if value is _MISSING:
            if name.lower() in lower and lower[name.lower()] not in names:
                rescued[lower[name.lower()]] = rec[lower[name.lower()]]  # case mismatch
            out.append(None)
            continue
        converted, ok = _convert(value, t, strings=False)
        if not ok:
            rescued[name] = value
        out.append(converted)
    for key, value in rec.items():
        if key == "__corrupt__":
            rescued["_corrupt_record"] = value
        elif key == "__extra_values__":
            rescued["_extra_values"] = value
        elif key not in names and key not in rescued:
            rescued[key] = value
    if rescued_column:
        index = [n for n, _ in fields].index(rescued_column)
        out[index] = json.dumps({**rescued, "_file_path": path}, default=str) if rescued else None
    if source_column:
        out[[n for n, _ in fields].index(source_column)] = path
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Schema inference and the schema history.


def schema_versions(schema_location: str, options: dict) -> list[int]:
    from pyarrow import fs as pafs

    filesys, base = filesystem(schema_location.rstrip("/") + "/" + SCHEMAS_DIR, options)
    infos = filesys.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    return sorted(int(i.base_name) for i in infos if i.base_name.isdigit())


def read_schema_version(schema_location: str, version: int, options: dict) -> dict:
    text = _read_bytes(f"{schema_location.rstrip('/')}/{SCHEMAS_DIR}/{version}", options).decode()
    lines = text.splitlines()
    if not lines or lines[0] != "v1":
        raise AutoLoaderError(f"{schema_location}/{SCHEMAS_DIR}/{version} is not a schema file (expected 'v1').")
    entry = json.loads(lines[1])
    entry["version"] = version
    return entry


def write_schema_version(schema_location: str, version: int, fields, options: dict, **info) -> None:
    path = f"{schema_location.rstrip('/')}/{SCHEMAS_DIR}/{version}"
    if _exists(path, options):
        raise AutoLoaderError(f"schema version {version} already exists at {path}")
    body = {"fields": [list(f) for f in fields], **info}
    _write_text(path, "v1\n" + json.dumps(body) + "\n", options)


def infer_schema(files: list[dict], fmt: str, options: dict, infer_types: bool, sample_files: int, sample_bytes: int) -> list[tuple[str, str]]:
    # Keyed case-insensitively: `Name` next to `name` is one column (first spelling wins);
    # the other spelling's values are rescued, as Spark's case-insensitive analysis requires.
    merged: dict[str, tuple[str, str]] = {}
    total = 0
    for used, f in enumerate(files):
        if used >= sample_files or (used and total + f["size"] > sample_bytes):
            break
        total += f["size"]
        for name, t in file_columns(f["path"], fmt, options, infer_types):
            key = name.lower()
            merged[key] = (merged[key][0], widest(merged[key][1], t)) if key in merged else (name, t)
        for name in _partition_values(f["rel"]):
            merged.setdefault(name.lower(), (name, "string"))
    return list(merged.values())


def apply_hints(fields: list[tuple[str, str]], hints: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = {n.lower(): (n, t) for n, t in fields}
    for name, t in hints:
        out[name.lower()] = (out.get(name.lower(), (name, t))[0], t)
    return list(out.values())


# --------------------------------------------------------------------------------------------
# The Spark Python streaming source.


def _options_dict(options) -> dict:
    return {k: v for k, v in dict(options).items()}


def _get(options: dict, key: str, default=None):
    """Options as users write them on Databricks (`cloudFiles.x`), case-insensitively."""
    want = key.lower()
    for k, v in options.items():
        if k.lower() in (want, f"cloudfiles.{want}"):
            return v
    return default


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

    class CloudFilesStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
        def __init__(self, schema, options: dict):
            self.schema = schema
            self.options = options
            self.fmt = (_get(options, "format") or "").lower()
            self.root = options["path"]
            self.schema_location = _get(options, "schemaLocation")
            self.log_path = (_get(options, "fileLogLocation") or f"{self.schema_location.rstrip('/')}/{FILE_LOG_DIR}") + "/files.jsonl"
            self.mode = _get(options, "schemaEvolutionMode", "addNewColumns")
            self.include_existing = str(_get(options, "includeExistingFiles", "true")).lower() == "true"
            self.max_files = int(_get(options, "maxFilesPerTrigger", DEFAULTS["maxFilesPerTrigger"]))
            self.max_bytes = int(_get(options, "maxBytesPerTrigger", 0) or 0)
            self.infer_types = str(_get(options, "inferColumnTypes", "false")).lower() == "true"
            self.fields = [(f.name, f.dataType.simpleString()) for f in schema.fields]
            self.rescued = _get(options, "rescuedDataColumn", DEFAULTS["rescuedDataColumn"])
            self.log: list[dict] = self._load_log()
            self.frozen_end: int | None = None

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
            if self.max_bytes and not _get(self.options, "maxFilesPerTrigger"):
                return ReadMaxBytes(self.max_bytes)
            return ReadMaxFiles(self.max_files)

        def prepareForTriggerAvailableNow(self) -> None:
            self._discover()
            self.frozen_end = len(self.log)

        def latestOffset(self, start: dict, limit) -> dict:
            if self.frozen_end is None:
                self._discover()
            first = start["index"]
            end = len(self.log) if self.frozen_end is None else self.frozen_end
            if not isinstance(limit, ReadAllAvailable):
                max_files = limit.max_files if isinstance(limit, ReadMaxFiles) else len(self.log)
                max_bytes = limit.max_bytes if isinstance(limit, ReadMaxBytes) else self.max_bytes
                stop, total = first, 0
                while stop < end and stop - first < max_files:
                    size = self.log[stop]["size"]
                    if max_bytes and stop > first and total + size > max_bytes:
                        break
                    total += size
                    stop += 1
                end = stop
            if end > first:
                self._check_new_columns(self.log[first:end])
            return {"index": end}

        def _check_new_columns(self, files: list[dict]) -> None:
            if self.mode in ("rescue", "none"):
                return
            known = {n.lower() for n, _ in self.fields}
            found: dict[str, str] = {}
            where = ""
            for f in files:
                for name, t in file_columns(f["path"], self.fmt, self.options, self.infer_types):
                    if name.lower() not in known and name not in found:
                        found[name] = t
                        where = where or f["path"]
            if not found:
                return
            new = sorted(found)
            if self.mode == "addNewColumns":
                versions = schema_versions(self.schema_location, self.options)
                current = read_schema_version(self.schema_location, versions[-1], self.options)["fields"]
                current = [tuple(f) for f in current]
                # New columns go before the rescued data column, as Databricks lays them out.
                merged = [f for f in current if f[0] != self.rescued] + [(n, found[n]) for n in found]
                if any(f[0] == self.rescued for f in current):
                    merged.append((self.rescued, "string"))
                write_schema_version(self.schema_location, versions[-1] + 1, merged, self.options, reason="new columns", new_fields=new, file=where)
                raise UnknownFieldException(
                    f"[UNKNOWN_FIELD_EXCEPTION.NEW_FIELDS_IN_FILE] Encountered unknown fields during parsing: {new}, "
                    f"in file {where}. The schema in {self.schema_location}/{SCHEMAS_DIR} was updated to version "
                    f"{versions[-1] + 1}; restart the stream to read with it (run_with_restarts does so)."
                )
            raise UnknownFieldException(
                f"[UNKNOWN_FIELD_EXCEPTION.NEW_FIELDS_IN_FILE] Encountered unknown fields during parsing: {new}, "
                f"in file {where}. schemaEvolutionMode=failOnNewColumns: update the schema (schemaHints or a "
                "new schema version) or change the mode, then restart."
            )

        def partitions(self, start: dict, end: dict):
            files = self.log[start["index"] : end["index"]]
            if not files:
                return []
            # Few tasks for many small files (per-task overhead dominates), one task per big
            # file, and at least two tasks so both local cores work.
            total = sum(f["size"] for f in files)
            tasks = min(len(files), max(2, -(-total // (64 * 1024 * 1024))))
            per_task = -(-len(files) // tasks)
            return [FilesPartition(files[i : i + per_task]) for i in range(0, len(files), per_task)]

        def read(self, partition):
            import pyarrow as pa
            from pyspark.sql.pandas.types import to_arrow_schema

            arrow_schema = to_arrow_schema(self.schema, timezone="UTC")
            source_col = _get(self.options, "sourceFileColumn")
            columns = [n for n, _ in self.fields]
            for f in partition.files:
                pv = _partition_values(f["rel"])
                rows = [
                    convert_record(rec, self.fields, self.rescued if self.rescued in columns else None, f["path"], pv, source_col if source_col in columns else None)
                    for rec in file_records(f["path"], self.fmt, self.options)
                ]
                if rows:
                    cols = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays([pa.array(c, type=arrow_schema.field(i).type) for i, c in enumerate(cols)], schema=arrow_schema)

        def commit(self, end: dict) -> None:
            return None

    class CloudFilesDataSource(DataSource):
        @classmethod
        def name(cls) -> str:
            return FORMAT

        def schema(self):
            raise AutoLoaderError("The open-source cloudFiles source needs a schema: use lakehouse_helpers.autoloader.read_stream.")

        def streamReader(self, schema):
            return CloudFilesStreamReader(schema, _options_dict(self.options))

    return CloudFilesDataSource


_REGISTERED: set[int] = set()


def register(spark) -> None:
    """Register the open-source `cloudFiles` format in this Spark session (once)."""
    key = id(spark)
    if key not in _REGISTERED:
        spark.dataSource.register(_make_source_classes())
        _REGISTERED.add(key)


# --------------------------------------------------------------------------------------------
# The one call.


@dataclass(frozen=True)
class SchemaState:
    version: int
    fields: list[tuple[str, str]]


def resolve_schema(source: str, fmt: str, schema_location: str | None, options: dict, schema=None, hints: str = "", infer_types: bool = False, rescued: str | None = "_rescued_data", source_column: str | None = None) -> SchemaState:
    """The schema a (re)started stream reads with: the newest version in the schema history,
    or, on first start, inferred from a sample of the existing files (version 0)."""
    if schema is not None:
        fields = [(f.name, f.dataType.simpleString()) for f in schema.fields]
        if rescued and rescued not in {n for n, _ in fields}:
            fields.append((rescued, "string"))
        return SchemaState(-1, _with_source(fields, source_column))
    if not schema_location:
        raise AutoLoaderError("Without a schema, cloudFiles needs schemaLocation (where the inferred schema history is kept).")
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
    fields = infer_schema(
        files, fmt, options, infer_types or fmt == "parquet",
        int(_get(options, "schemaInference.sampleSize.numFiles", DEFAULTS["sampleFiles"])),
        int(_get(options, "schemaInference.sampleSize.numBytes", DEFAULTS["sampleBytes"])),
    )
    fields = apply_hints(fields, parse_hints(hints))
    if rescued:
        fields = [f for f in fields if f[0] != rescued] + [(rescued, "string")]
    write_schema_version(schema_location, 0, fields, options, reason="inferred", files_sampled=min(len(files), int(_get(options, "schemaInference.sampleSize.numFiles", DEFAULTS["sampleFiles"]))))
    return SchemaState(0, _with_source(fields, source_column))


def _with_source(fields, source_column):
    if source_column and source_column not in {n for n, _ in fields}:
        return [*fields, (source_column, "string")]
    return fields


def s3_options(settings) -> dict:
    """Options that let the Python reader reach the configured S3 endpoint. The key options'
    names contain `access.key` / `secret`, which Spark redacts from plans and logs."""
    out = {"s3.region": settings.s3_region}
    if settings.s3_endpoint:
        out["s3.endpoint"] = settings.s3_endpoint
    if settings.s3_access_key:
        out["s3.access.key"] = settings.s3_access_key.reveal()
        out["s3.secret.key"] = settings.s3_secret_key.reveal()
    return out


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
    cf = {
        "cloudFiles.format": fmt,
        "cloudFiles.schemaEvolutionMode": mode,
        "cloudFiles.includeExistingFiles": str(include_existing_files).lower(),
        "cloudFiles.inferColumnTypes": str(infer_column_types).lower(),
    }
    if schema_location:
        cf["cloudFiles.schemaLocation"] = schema_location
    if schema_hints:
        cf["cloudFiles.schemaHints"] = schema_hints
    if rescued_data_column:
        cf["rescuedDataColumn"] = rescued_data_column
    if max_files_per_trigger:
        cf["cloudFiles.maxFilesPerTrigger"] = str(max_files_per_trigger)
    if max_bytes_per_trigger:
        cf["cloudFiles.maxBytesPerTrigger"] = str(_bytes(max_bytes_per_trigger))
    if fmt == "csv":
        cf["header"] = "true"
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
    state = resolve_schema(source, fmt, schema_location, {**cf, **fs_options}, schema, schema_hints, infer_column_types, rescued_data_column, source_file_column)
    if source_file_column:
        cf["sourceFileColumn"] = source_file_column
    if schema_location is None:
        raise AutoLoaderError("The open-source cloudFiles needs schemaLocation (it keeps the file log there) even with a schema.")
    return spark.readStream.format(FORMAT).schema(to_struct(state.fields)).options(**cf, **fs_options).load(source)


def _bytes(value) -> int:
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", str(value).lower())
    if not m:
        raise AutoLoaderError(f"maxBytesPerTrigger={value!r}: use a byte count or e.g. '10m', '1g'.")
    return int(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")


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
    return "UNKNOWN_FIELD_EXCEPTION" in str(exc)


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
    m = re.search(r"unknown fields during parsing: \[([^\]]*)\], in file (\S+?)\.?\s+([^\n]*)", str(exc))
    if not is_unknown_field_error(exc) or m is None:
        return None
    fields = [f.strip().strip("'\"") for f in m.group(1).split(",") if f.strip()]
    return SchemaChange("UnknownFieldException", fields, m.group(2), m.group(3).split(" (run_with_restarts")[0].strip())


def run_with_restarts(start: Callable[[], Any], max_restarts: int = 3, log=print) -> int:
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
        first = str(exc).split("UNKNOWN_FIELD_EXCEPTION", 1)[1].split("\n", 1)[0]
        log(f"restart {restarts}/{max_restarts} after a schema change: UNKNOWN_FIELD_EXCEPTION{first[:300]}")
