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
  stores positions in that log, so each file is planned in exactly one committed micro-batch;
- a corrupt file fails the stream naming it, or with `ignoreCorruptFiles` / `badRecordsPath` is
  skipped; a file listed but gone fails unless `ignoreMissingFiles`; each is recorded in a ledger
  (`bad_files`). A malformed JSON line is not a corrupt file: it is rescued (`_corrupt_record`).

File access goes through pyarrow's filesystems (local disk and S3, including S3-compatible
endpoints), in the Spark driver for planning and in the Python workers for reading. Reading is
Arrow end to end and in bounded memory: files are parsed a block or a row batch at a time,
columns are converted whole with Arrow compute, and only the values that do not fit (or fields
the schema lacks) take the value-by-value Python path into the rescued data column.

Modules: `schema` (types, hints, options, errors), `files` (filesystems, listing, reading in
blocks), `history` (inference, the schema history), `readers` (each format as raw Arrow
batches; `jsonl` for JSON Lines), `columns` (column conversion), `rescue` (the value-by-value
reference conversion), `batches` (raw batches to the stream's schema), `source` (the Spark data
source), `badfiles` (files that cannot be read), `api` (what notebooks call).
"""

from lakehouse_helpers.pipeline.autoloader.api import (
    SchemaChange,
    SchemaState,
    bad_files,
    is_unknown_field_error,
    read_stream,
    resolve_schema,
    run_with_restarts,
    s3_options,
    schema_change,
    schema_history,
)
from lakehouse_helpers.pipeline.autoloader.files import filesystem, list_files
from lakehouse_helpers.pipeline.autoloader.history import (
    file_columns,
    file_records,
    infer_schema,
    read_schema_version,
    schema_versions,
    write_schema_version,
)
from lakehouse_helpers.pipeline.autoloader.readers import read_file, read_files
from lakehouse_helpers.pipeline.autoloader.rescue import convert_record
from lakehouse_helpers.pipeline.autoloader.schema import (
    DEFAULTS,
    EVOLUTION_MODES,
    FILE_LOG_DIR,
    FORMAT,
    SCHEMAS_DIR,
    SOURCE_FILE_COLUMN,
    AutoLoaderError,
    UnknownFieldException,
    apply_hints,
    arrow_schema,
    parse_hints,
    to_struct,
    widest,
)
from lakehouse_helpers.pipeline.autoloader.source import register

__all__ = [
    "DEFAULTS", "EVOLUTION_MODES", "FILE_LOG_DIR", "FORMAT", "SCHEMAS_DIR", "SOURCE_FILE_COLUMN",
    "AutoLoaderError", "SchemaChange", "SchemaState", "UnknownFieldException",
    "apply_hints", "arrow_schema", "bad_files", "convert_record", "file_columns", "file_records", "filesystem",
    "infer_schema", "is_unknown_field_error", "list_files", "parse_hints", "read_file", "read_files",
    "read_schema_version", "read_stream", "register", "resolve_schema", "run_with_restarts",
    "s3_options", "schema_change", "schema_history", "schema_versions", "to_struct", "widest",
    "write_schema_version",
]
