"""The value-by-value conversion of one record to the schema, with the rescued data column.

This is the reference behaviour, in plain Python. The Arrow data plane (`columns`, `batches`)
converts whole columns at once and sends only the rows it cannot decide alone here: a value
that does not fit its type, a field the schema does not have, a corrupt line.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

_MISSING = object()
_INT_RANGE = {"int": 2**31, "bigint": 2**63}


def _convert(value: Any, t: str):
    """(converted value, ok): `ok` is False when the value does not fit type `t`."""
    if value is None:
        return None, True
    if t == "string":
        if isinstance(value, str):
            return value, True
        if isinstance(value, (dict, list)):
            return json.dumps(value), True
        return (str(value).lower() if isinstance(value, bool) else str(value)), True
    try:
        return _convert_typed(value, t)
    except (ValueError, TypeError, OverflowError):
        return None, False


def _convert_typed(value: Any, t: str):
    if t in _INT_RANGE:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            return None, False
        v = int(value) if not isinstance(value, str) else int(value.strip())
        return (v, True) if -_INT_RANGE[t] <= v < _INT_RANGE[t] else (None, False)
    if t == "double":
        return (None, False) if isinstance(value, bool) else (float(value), True)
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
    return None, False


def convert_record(rec: dict, fields: list[tuple[str, str]], rescued_column: str | None, path: str,
        partition_values: dict, source_column: str | None) -> tuple:
    """One record as a row of the schema. Values that do not fit, fields the schema lacks and
    case-mismatched names go, with the file path, into the rescued data column as JSON."""
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
        converted, ok = _convert(value, t)
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
    columns = [n for n, _ in fields]
    if rescued_column:
        out[columns.index(rescued_column)] = (
            json.dumps({**rescued, "_file_path": path}, default=str) if rescued else None)
    if source_column:
        out[columns.index(source_column)] = path
    return tuple(out)


def json_record(line: str) -> dict:
    """One JSON Lines record; a line that is not a JSON object is kept whole as corrupt."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"__corrupt__": line}


def json_records(text: str) -> list[dict]:
    return [json_record(line) for line in text.splitlines() if line.strip()]


def csv_record(header: list[str], row: list[str]) -> dict:
    """A CSV row as `csv.DictReader` gives it: missing values None, surplus values listed."""
    rec: dict = dict(zip(header, row, strict=False))
    if len(row) > len(header):
        rec["__extra_values__"] = row[len(header) :]
    for name in header[len(row) :]:
        rec[name] = None
    return rec


def rows_to_batch(rows: list[tuple], schema):
    """Converted rows (tuples in schema order) as one Arrow record batch."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.RecordBatch.from_arrays([pa.array(c, type=schema.field(i).type) for i, c in enumerate(columns)],
        schema=schema)
