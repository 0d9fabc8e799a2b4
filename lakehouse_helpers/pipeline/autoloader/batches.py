"""From raw Arrow batches (as read from a file) to record batches of the stream's schema.

Columns are converted whole (`columns.convert_column`); the rows that need Python (a value
that does not fit, a field the schema lacks, a case-mismatched name) are converted one by one by
`rescue.convert_record` and put back in place, so they carry the rescued data column.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lakehouse_helpers.pipeline.autoloader.columns import convert_column
from lakehouse_helpers.pipeline.autoloader.rescue import convert_record, rows_to_batch

SPLIT_TAG = "\x01"  # prefix of the part columns of a split JSON key (see `jsonl`)


@dataclass
class RawBatch:
    """Rows as Arrow read them, and how to get them as Python records."""

    data: object  # pyarrow.RecordBatch: JSON with inferred types, CSV as strings, Parquet as stored
    records: Callable[[list[int]], list[dict]]  # the rows, as the Python path sees them
    typed: bool = False  # the Arrow types are the file's own (Parquet)
    keys_always_present: bool = True  # every column is a field of every record (CSV, Parquet)
    lines: object = None  # JSON: each row's text (a key present as null, `1` versus `1.0`)
    forced: object = None  # rows only Python can read (a broken line), their columns null
    file_index: object = None  # each row's file in the plan (small JSON files are read together)


@dataclass
class PyRecords:
    """Records only Python reads (a corrupt line, a CSV row with too many values), of one file."""

    records: list[dict]
    file: int = 0


@dataclass
class Plan:
    """What rows become: the schema, and each file's path and partition values."""

    fields: list[tuple[str, str]]
    schema: object  # pyarrow.Schema of the output
    files: list[tuple[str, dict]]  # (path, partition values) of the files the rows come from
    rescued: str | None = None
    source: str | None = None

    def row(self, rec: dict, file: int = 0) -> tuple:
        path, partition_values = self.files[file]
        return convert_record(rec, self.fields, self.rescued, path, partition_values, self.source)

    def per_row(self, values: list, raw: RawBatch):
        """A string column holding each row's file's value (None: no value)."""
        import pyarrow as pa

        n = raw.data.num_rows
        if raw.file_index is None or len(set(values)) == 1:
            return pa.nulls(n, pa.string()) if values[0] is None else pa.nulls(n, pa.string()).fill_null(values[0])
        return pa.array(values, pa.string()).take(raw.file_index)


def python_batch(records: list[dict], plan: Plan, file: int = 0):
    """Records only Python can read (corrupt lines, broken rows), converted one by one."""
    return rows_to_batch([plan.row(rec, file) for rec in records], plan.schema)


def convert_batch(raw: RawBatch, plan: Plan):
    """One raw batch as a record batch of the plan's schema."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data, n = raw.data, raw.data.num_rows
    if len(set(data.schema.names)) != len(data.schema.names):  # duplicate columns: Python keeps the last
        return _python_rows(raw, plan, list(range(n)))
    parts = _parts(data)
    slow = raw.forced if raw.forced is not None else pa.nulls(n, pa.bool_()).fill_null(False)
    out = []
    for (name, t), target in zip(plan.fields, plan.schema, strict=True):
        if name in (plan.rescued, plan.source):
            out.append(pa.nulls(n, target.type) if name == plan.rescued
                else plan.per_row([p for p, _ in plan.files], raw))
            continue
        cols = parts.get(name, [])
        folder = [pv.get(name) for _, pv in plan.files]
        if any(v is not None for v in folder):
            if not cols:
                cols = [("", plan.per_row(folder, raw))]
            elif not raw.keys_always_present:  # a missing key takes the folder's value, a null does not
                slow = pc.or_(slow, pc.and_(pc.invert(_present(cols)), pc.is_valid(plan.per_row(folder, raw))))
        converted = [convert_column(c, t, target.type, raw.typed, _literal_check(raw, name) if not kind else None)
            for kind, c in cols]
        out.append(_first_valid([v for v, _ in converted], n, target.type))
        for _, bad in converted:
            slow = slow if bad is None else pc.or_(slow, bad)
    slow = _extra_fields(raw, parts, {n for n, _ in plan.fields}, slow)
    batch = pa.RecordBatch.from_arrays(out, schema=plan.schema)
    if not pc.any(slow).as_py():
        return batch
    rows = pc.indices_nonzero(slow).to_pylist()
    return _replace_rows(batch, rows, _python_rows(raw, plan, rows))


def _python_rows(raw: RawBatch, plan: Plan, rows: list[int]):
    files = raw.file_index.take(rows).to_pylist() if raw.file_index is not None else [0] * len(rows)
    return rows_to_batch([plan.row(rec, f) for rec, f in zip(raw.records(rows), files, strict=True)], plan.schema)


def part_key(column: str) -> tuple[str, str]:
    """(key, part) of a column: JSON parses a key whose values change kind into tagged parts
    (`SPLIT_TAG` + "s:" + key for its strings, ...); other columns are their key's only part."""
    if column.startswith(SPLIT_TAG) and column[2:3] == ":":
        return column[3:], column[1]
    return column, ""


def _parts(data) -> dict[str, list]:
    parts: dict[str, list] = {}
    for i, column in enumerate(data.schema.names):
        key, kind = part_key(column)
        parts.setdefault(key, []).append((kind, data.column(i)))
    return parts


def _present(cols):
    """Rows where any part of a key holds a value."""
    import pyarrow.compute as pc

    present = pc.is_valid(cols[0][1])
    for _, c in cols[1:]:
        present = pc.or_(present, pc.is_valid(c))
    return present


def _first_valid(values: list, n: int, out_type):
    import pyarrow as pa
    import pyarrow.compute as pc

    if not values:
        return pa.nulls(n, out_type)
    return values[0] if len(values) == 1 else pc.coalesce(*values)


def _extra_fields(raw: RawBatch, parts: dict, known: set[str], slow):
    """Rows with a field the schema does not have (rescued). In JSON a null column may be a
    key missing from that row (nothing to rescue) or present as null (rescued as null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for key, cols in parts.items():
        if key in known:
            continue
        if raw.keys_always_present:
            return pa.nulls(raw.data.num_rows, pa.bool_()).fill_null(True)
        present = _present(cols)
        slow = pc.or_(slow, present)
        if not pc.all(present).as_py():
            slow = pc.or_(slow, pc.and_(pc.invert(present), _may_have_key(raw.lines, key)))
    return slow


def _may_have_key(lines, name: str):
    """Lines whose text may contain `name` as a key. A key with characters JSON may escape
    (non-ASCII, quotes, control characters) counts in any line with an escape; an ASCII key
    is taken to be written as it is (nobody writes `"\\u0070romo"` for `"promo"`)."""
    import pyarrow.compute as pc

    spelled = json.dumps(name, ensure_ascii=False)
    found = pc.match_substring(lines, spelled)
    if spelled != json.dumps(name) or any(c in name for c in '"\\') or not name.isprintable():
        found = pc.or_(found, pc.match_substring(lines, "\\"))
    return found


def _literal_check(raw: RawBatch, name: str):
    """For JSON: which rows write this key's number as an integer (`24`, not `24.0`)."""
    if raw.lines is None or raw.typed:
        return None

    def check(rows):
        import pyarrow as pa
        import pyarrow.compute as pc

        unknown = pa.nulls(len(rows), pa.bool_())
        if not pc.any(rows).as_py():
            return unknown
        lines = raw.lines.filter(rows)
        key = json.dumps(name, ensure_ascii=False)
        once = pc.equal(pc.count_substring(lines, key), 1)
        integer = pc.match_substring_regex(lines, re2_escape(key) + r"\s*:\s*-?[0-9]+\s*[,}]")
        answer = pc.if_else(once, integer, pa.scalar(None, pa.bool_()))
        return pc.replace_with_mask(unknown, rows, answer)

    return check


def re2_escape(text: str) -> str:
    return "".join("\\" + c if c in string.punctuation else c for c in text)


def _replace_rows(batch, rows: list[int], replacement):
    """`batch` with the given rows replaced, in order, by the rows of `replacement`."""
    import numpy as np
    import pyarrow as pa

    n = batch.num_rows
    index = np.arange(n)
    index[rows] = n + np.arange(len(rows))
    index = pa.array(index)
    columns = [pa.concat_arrays([batch.column(i), replacement.column(i)]).take(index) for i in range(batch.num_columns)]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def coalesce(batches: Iterator, max_rows: int, max_bytes: int) -> Iterator:
    """Small batches joined up to `max_rows` / `max_bytes` (many small files: fewer, larger
    batches to send to Spark); a batch already that large passes as it is."""
    import pyarrow as pa

    pending, rows, size = [], 0, 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if pending and (rows + batch.num_rows > max_rows or size + batch.nbytes > max_bytes):
            yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
            pending, rows, size = [], 0, 0
        pending.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
    if pending:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
