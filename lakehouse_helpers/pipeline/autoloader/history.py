"""Schema inference and the versioned schema history (`<schemaLocation>/_schemas/0`, `1`, ...)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from lakehouse_helpers.pipeline.autoloader.badfiles import columns_or_skip
from lakehouse_helpers.pipeline.autoloader.batches import PyRecords, part_key
from lakehouse_helpers.pipeline.autoloader.files import (
    _exists,
    _partition_values,
    _read_bytes,
    _write_text,
    filesystem,
    open_random_access,
)
from lakehouse_helpers.pipeline.autoloader.jsonl import JsonLines
from lakehouse_helpers.pipeline.autoloader.readers import group_batches, groups, python_csv_records, raw_batches
from lakehouse_helpers.pipeline.autoloader.schema import (
    SCHEMAS_DIR,
    AutoLoaderError,
    _arrow_type_name,
    _csv_type,
    _py_type,
    widest,
)


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


def infer_schema(files: list[dict], fmt: str, options: dict, infer_types: bool, sample_files: int,
        sample_bytes: int) -> list[tuple[str, str]]:
    # Keyed case-insensitively: `Name` next to `name` is one column (first spelling wins);
    # the other spelling's values are rescued, as Spark's case-insensitive analysis requires.
    merged: dict[str, tuple[str, str]] = {}
    total, sample = 0, []
    for used, f in enumerate(files):
        if used >= sample_files or (used and total + f["size"] > sample_bytes):
            break
        total += f["size"]
        sample.append(f)
    read = lambda g: group_columns(g, fmt, options, infer_types)  # noqa: E731
    for group in _inference_groups(sample, fmt, infer_types):
        for name, t in columns_or_skip(group, options, read):  # a corrupt file: named, or skipped
            key = name.lower()
            merged[key] = (merged[key][0], widest(merged[key][1], t)) if key in merged else (name, t)
        for f in group:
            for name in _partition_values(f["rel"]):
                merged.setdefault(name.lower(), (name, "string"))
    return list(merged.values())


def _inference_groups(files: list[dict], fmt: str, infer_types: bool) -> Iterator[list[dict]]:
    """Files whose columns can be taken together without changing the inferred schema: small
    JSON files read as strings, cut after each file with partition names not seen before (its
    folder's columns go right after its own)."""
    if fmt != "json" or infer_types:  # a file's null-only key counts as a string: file by file
        yield from ([f] for f in files)
        return
    seen: set[str] = set()
    for group in groups(files, fmt):
        start = 0
        for i, f in enumerate(group):
            names = set(_partition_values(f["rel"]))
            if names - seen:
                seen |= names
                yield group[start : i + 1]
                start = i + 1
        if start < len(group):
            yield group[start:]


def group_columns(group: list[dict], fmt: str, options: dict, infer_types: bool) -> list[tuple[str, str]]:
    """The columns of a group of files (see `readers.groups`), in order of first appearance,
    types widened over the group; one file: `file_columns`."""
    if len(group) == 1 or fmt != "json":
        return file_columns(group[0]["path"], fmt, options, infer_types)
    return _json_union(group_batches(group, fmt, options, JsonLines()), infer_types)


def file_records(path: str, fmt: str, options: dict) -> Iterator[dict]:
    """One file's records as Python dicts (every column as the file holds it), streamed."""
    if fmt == "csv":
        yield from python_csv_records(path, options)
        return
    for raw in raw_batches(path, fmt, options):
        yield from raw.records if isinstance(raw, PyRecords) else raw.records(range(raw.data.num_rows))


def file_columns(path: str, fmt: str, options: dict, infer_types: bool) -> list[tuple[str, str]]:
    """The columns (and types) one file carries, in order of first appearance. Planning reads
    every new file for this: Parquet its footer, CSV its header, JSON a block at a time."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with open_random_access(path, options) as fh:
            return [(f.name, _arrow_type_name(f.type)) for f in pq.read_schema(fh)]
    if fmt == "csv":
        return _csv_columns(path, options, infer_types)
    return _json_union(raw_batches(path, fmt, options), infer_types)


def _json_union(raws, infer_types: bool) -> list[tuple[str, str]]:
    seen: dict[str, str | None] = {}
    for raw in raws:
        for key, t in _json_columns(raw, infer_types):
            if key not in seen:
                seen[key] = t
            elif t is not None:
                seen[key] = t if seen[key] is None else widest(seen[key], t)
    return [(k, t or "string") for k, t in seen.items()]


def _json_columns(raw, infer_types: bool) -> Iterator[tuple[str, str | None]]:
    """(key, type or None for no evidence) for a batch of JSON rows, in order of appearance."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(raw, PyRecords):
        raw = raw.records
    if not isinstance(raw, list) and infer_types:
        for f in raw.data.schema:
            if pa.types.is_floating(f.type) and pc.any(
                    pc.greater_equal(pc.abs(raw.data.column(f.name)), 2**53)).as_py():
                raw = raw.records(range(raw.data.num_rows))  # integers too big for a double: Python decides
                break
    if not isinstance(raw, list):
        for f in raw.data.schema:
            key, part = part_key(f.name)  # a key whose values change kind comes in parts
            kind = {"s": "string", "b": "boolean", "o": "string", "l": "string"}.get(part) or _json_arrow_type(f.type)
            yield key, (kind if infer_types else "string")
        return
    for rec in raw:
        for key, value in rec.items():
            if key != "__corrupt__":
                yield key, (_py_type(value) if value is not None else None) if infer_types else "string"


def _json_arrow_type(t) -> str | None:
    import pyarrow as pa

    if pa.types.is_null(t):
        return None
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "bigint"
    return "double" if pa.types.is_floating(t) else "string"


def _csv_columns(path: str, options: dict, infer_types: bool) -> list[tuple[str, str]]:
    from lakehouse_helpers.pipeline.autoloader.readers import _csv_header

    header = _csv_header(path, options) or []
    if not infer_types:
        return [(h, "string") for h in header]
    types: dict[str, str] = {}
    for rec in python_csv_records(path, options):
        for h in header:
            types[h] = widest(types.get(h, _csv_type(rec.get(h))), _csv_type(rec.get(h)))
    return [(h, types.get(h, "string")) for h in header]

