"""Types and schemas as plain data, schemaHints, option names, and the package's errors.

A schema is a list of `(name, type)` with types in Spark's simple form (`string`, `int`,
`bigint`, `double`, `boolean`, `timestamp`, `date`, ...), so the schema history stays readable
JSON and nothing here needs pyspark.
"""

from __future__ import annotations

import re
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


def apply_hints(fields: list[tuple[str, str]], hints: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = {n.lower(): (n, t) for n, t in fields}
    for name, t in hints:
        out[name.lower()] = (out.get(name.lower(), (name, t))[0], t)
    return list(out.values())


def to_struct(fields: list[tuple[str, str]]):
    from pyspark.sql.types import StructType

    ddl = ", ".join(f"`{n}` {t}" for n, t in fields)
    return StructType.fromDDL(ddl) if fields else StructType([])


def arrow_type(t: str):
    """The Arrow type Spark exchanges a column of Spark type `t` in (timestamps in UTC)."""
    import pyarrow as pa

    simple = {
        "string": pa.string(), "int": pa.int32(), "bigint": pa.int64(), "double": pa.float64(),
        "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
        "smallint": pa.int16(), "tinyint": pa.int8(), "float": pa.float32(), "binary": pa.binary(),
    }
    if t in simple:
        return simple[t]
    decimal = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", t)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    from pyspark.sql.pandas.types import to_arrow_schema  # other types: Spark's mapping (needs a session)

    return to_arrow_schema(to_struct([("c", t)]), timezone="UTC").field(0).type


def arrow_schema(fields: list[tuple[str, str]]):
    import pyarrow as pa

    return pa.schema([pa.field(n, arrow_type(t)) for n, t in fields])


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


def _get(options: dict, key: str, default=None):
    """Options as users write them on Databricks (`cloudFiles.x`), case-insensitively."""
    want = key.lower()
    for k, v in options.items():
        if k.lower() in (want, f"cloudfiles.{want}"):
            return v
    return default
