"""Reading files in bounded memory: each format as a stream of raw Arrow batches.

JSON Lines is parsed by pyarrow a block of lines at a time (`jsonl`), small files several at
once; CSV by pyarrow's streaming reader; Parquet a batch of rows at a time. What Arrow cannot
parse (a corrupt line, a row with the wrong number of values) comes as Python records
(`PyRecords`), read exactly as it always was.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from lakehouse_helpers.pipeline.autoloader.badfiles import _read_errors, guarded
from lakehouse_helpers.pipeline.autoloader.batches import (
    Plan,
    PyRecords,
    RawBatch,
    coalesce,
    convert_batch,
    python_batch,
)
from lakehouse_helpers.pipeline.autoloader.files import (
    _partition_values,
    _read_bytes,
    open_random_access,
    open_stream,
)
from lakehouse_helpers.pipeline.autoloader.jsonl import JsonLines
from lakehouse_helpers.pipeline.autoloader.rescue import csv_record
from lakehouse_helpers.pipeline.autoloader.schema import AutoLoaderError

# Memory: a block or batch takes about 15 times its size while it is converted (measured with
# tests/unit/test_autoloader_reading.py::test_large_files_in_bounded_memory); Spark gets batches of about this size.
BLOCK_BYTES = 4 * 1024 * 1024  # JSON / CSV text parsed at a time (and small JSON files together)
BATCH_BYTES = 4 * 1024 * 1024  # Parquet rows decoded at a time (uncompressed size)
PYTHON_ROWS = 10_000  # records per batch on the Python path
SMALL_FILE = 1024 * 1024  # JSON files up to this size are parsed together


def raw_batches(path: str, fmt: str, options: dict, learn: set[str] | None = None,
        json_reader: JsonLines | None = None) -> Iterator:
    """RawBatch and PyRecords objects of one file, in file order. `learn`: the JSON columns
    whose text may be kept as strings from one block to the next (the schema's)."""
    if fmt == "json":
        return (json_reader or JsonLines(learn)).batches(path, options, BLOCK_BYTES)
    if fmt == "csv":
        return csv_batches(path, options)
    if fmt == "parquet":
        return parquet_batches(path, options)
    raise AutoLoaderError(f"cloudFiles.format={fmt!r} is not supported here; use json, csv or parquet.")


def groups(files: list[dict], fmt: str) -> Iterator[list[dict]]:
    """Files in reading order, small JSON files together (one parse for up to BLOCK_BYTES)."""
    group: list[dict] = []
    size = 0
    for f in files:
        if fmt != "json" or f["size"] > SMALL_FILE:
            yield from [group, [f]] if group else [[f]]
            group, size = [], 0
            continue
        if group and size + f["size"] > BLOCK_BYTES:
            yield group
            group, size = [], 0
        group.append(f)
        size += f["size"]
    if group:
        yield group


def group_batches(group: list[dict], fmt: str, options: dict, json_reader: JsonLines) -> Iterator:
    """RawBatch and PyRecords objects of a group of files (`file` and `file_index` count in it)."""
    if len(group) == 1:
        return raw_batches(group[0]["path"], fmt, options, json_reader=json_reader)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:  # many small objects: fetch them side by side
        contents = list(pool.map(lambda f: _read_bytes(f["path"], options), group))
    return json_reader.bundle(contents)


def read_files(files: list[dict], fmt: str, fields, schema, options: dict, rescued, source) -> Iterator:
    """Record batches of `schema` for discovered files (`path`, `rel`), small ones joined."""
    folders = [_partition_values(f["rel"]) for f in files]
    reader = JsonLines({n for n, _ in fields} - {k for pv in folders for k in pv})
    batches = (b for group in groups(files, fmt)
        for b in _read_group(group, fmt, fields, schema, options, rescued, source, reader))
    return coalesce(batches, max_rows=64 * 1024, max_bytes=BLOCK_BYTES)


def read_file(file: dict, fmt: str, fields, schema, options: dict, rescued, source) -> Iterator:
    """Record batches of `schema` for one discovered file."""
    reader = JsonLines({n for n, _ in fields} - set(_partition_values(file["rel"])))
    return _read_group([file], fmt, fields, schema, options, rescued, source, reader)


def _read_group(group, fmt, fields, schema, options, rescued, source, reader) -> Iterator:
    if len(group) > 1:
        try:
            raws = group_batches(group, fmt, options, reader)  # fetches every file's bytes first
        except _read_errors():  # one of them cannot be read: file by file, so the error names it
            for f in group:
                yield from _read_group([f], fmt, fields, schema, options, rescued, source, reader)
            return
    else:  # a corrupt or missing file fails naming it, or is skipped and recorded (badfiles)
        raws = guarded(group[0]["path"], options,
            lambda: raw_batches(group[0]["path"], fmt, options, json_reader=reader), _rows)
    plan = Plan(fields, schema, [(f["path"], _partition_values(f["rel"])) for f in group], rescued, source)
    for raw in raws:
        if isinstance(raw, PyRecords):
            if raw.records:
                yield python_batch(raw.records, plan, raw.file)
        elif raw.data.num_rows:
            yield convert_batch(raw, plan)


def _rows(raw) -> int:
    return len(raw.records) if isinstance(raw, PyRecords) else raw.data.num_rows


# --------------------------------------------------------------------------------------------
# CSV (header row) and Parquet


def csv_batches(path: str, options: dict) -> Iterator:
    """pyarrow's streaming CSV reader, every value a string; rows with too few or too many
    values go to Python (missing values null, surplus values rescued)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _csv_header(path, options)
    if not header or len(set(header)) != len(header):
        yield from _python_csv(path, options, skip=0)
        return
    names = [f"c{i}" for i in range(len(header))]
    broken: list[str] = []

    def on_invalid(row) -> str:
        broken.append(row.text)
        return "skip"

    done = 0
    try:
        with open_stream(path, options) as fh:
            reader = pacsv.open_csv(  # the header is read as the first row (it may hold a quoted line break)
                fh,
                read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                    strings_can_be_null=False, quoted_strings_can_be_null=False),
            )
            for batch in reader:
                batch = pa.RecordBatch.from_arrays(batch.columns, names=header)
                if done == 0 and _first_row(batch) == [h.removeprefix("\ufeff") for h in header]:
                    batch, done = batch.slice(1), -1
                if done == 0:  # Arrow did not read the header as Python does
                    raise pa.ArrowInvalid("header")
                done = max(done, 0)
                yield RawBatch(batch, lambda idx, b=batch: b.take(idx).to_pylist())
                records = [csv_record(header, row) for text in broken for row in csv.reader(io.StringIO(text)) if row]
                yield PyRecords(records)
                done += batch.num_rows + len(records)
                broken.clear()
    except pa.ArrowInvalid:  # e.g. invalid UTF-8: Python reads the rest, replacing bad bytes
        yield from _python_csv(path, options, skip=done)


def _first_row(batch) -> list | None:
    return [c[0].as_py() for c in batch.columns] if batch.num_rows else None


def _csv_header(path: str, options: dict) -> list[str] | None:
    """The first row, read as `csv.reader` reads it (a quoted name may hold a line break)."""
    with open_stream(path, options) as fh:
        head = b""
        while not _has_complete_row(head):
            chunk = fh.read(64 * 1024)
            if not chunk:
                break
            head += chunk
    return next(csv.reader(io.StringIO(head.decode("utf-8", errors="replace"))), None)


def _has_complete_row(head: bytes) -> bool:
    return any(head[:m.start()].count(b'"') % 2 == 0 for m in re.finditer(rb"[\r\n]", head))


def python_csv_records(path: str, options: dict) -> Iterator[dict]:
    """CSV rows as `csv.DictReader` reads them, streamed."""
    with open_stream(path, options) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
        for row in csv.DictReader(text):
            extra = row.pop(None, None)
            if extra:
                row["__extra_values__"] = extra
            yield row


def _python_csv(path: str, options: dict, skip: int) -> Iterator[PyRecords]:
    batch: list[dict] = []
    for i, rec in enumerate(python_csv_records(path, options)):
        if i >= skip:
            batch.append(rec)
        if len(batch) >= PYTHON_ROWS:
            yield PyRecords(batch)
            batch = []
    yield PyRecords(batch)


def parquet_batches(path: str, options: dict) -> Iterator[RawBatch]:
    """Row batches of about BATCH_BYTES (from the row groups' uncompressed sizes)."""
    import pyarrow.parquet as pq

    with open_random_access(path, options) as fh:
        pf = pq.ParquetFile(fh, buffer_size=1024 * 1024)
        meta = pf.metadata
        width = max(1,
            sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) // max(1, meta.num_rows))
        rows = max(1024, min(64 * 1024, BATCH_BYTES // width))
        for batch in pf.iter_batches(batch_size=rows):
            yield RawBatch(batch, lambda idx, b=batch: b.take(idx).to_pylist(), typed=True)
