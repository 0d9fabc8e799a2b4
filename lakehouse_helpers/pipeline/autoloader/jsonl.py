"""JSON Lines in bounded memory: a block of lines at a time, parsed by Arrow.

Arrow infers one type per column and stops at the first line that breaks that. So:
- a line that does not start an object (`null`, a byte-order mark, garbage) never reaches
  Arrow: Python reads it, as a corrupt record;
- a key whose values change kind (numbers, then a string) is split: its strings, booleans,
  objects and arrays are renamed in the text to tagged part columns (`SPLIT_TAG`), so the
  block still parses in one go and the parts are converted (or rescued) column by column;
- any other parse error (a broken line) is located, the line goes to Python, and the lines
  around it are parsed by Arrow again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from lakehouse_helpers.pipeline.autoloader.batches import SPLIT_TAG, PyRecords, RawBatch, re2_escape
from lakehouse_helpers.pipeline.autoloader.files import line_blocks
from lakehouse_helpers.pipeline.autoloader.rescue import json_record, json_records

_KINDS = {"s": '"', "b": "tf", "o": r"\{", "l": r"\["}
MAX_SPLIT = 32  # keys split per file
MAX_FRAGMENTS = 64  # broken lines in one block before the rest of it goes to Python


class JsonLines:
    """The reader of one or more files, remembering what it learned about their columns.

    `learn`: the keys whose string values are parsed as text from the second block on (Arrow
    would otherwise turn date-like strings into timestamps); None when only the keys matter."""

    def __init__(self, learn: set[str] | None = None):
        self.learn = learn
        self.strings: dict[str, object] = {}
        self.split: list[str] = []

    def batches(self, path: str, options: dict, block_bytes: int) -> Iterator:
        """One file, a block of lines at a time."""
        self.split = []
        for block in line_blocks(path, options, block_bytes):
            yield from self.block(block)

    def bundle(self, contents: list[bytes]) -> Iterator:
        """Several small files parsed as one block; each row knows its file (its index here)."""
        import numpy as np

        self.split = []
        valid = [i for i, data in enumerate(contents) if _utf8(data)]
        for i in sorted(set(range(len(contents))) - set(valid)):
            yield from self.block(contents[i], file=i)
        parts = [contents[i] if contents[i].endswith(b"\n") else contents[i] + b"\n" for i in valid]
        if parts:
            starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
            yield from self.block(b"".join(parts), (starts, np.array(valid)))

    def block(self, block, files=None, file: int = 0) -> Iterator:
        """RawBatch and PyRecords objects for one block of whole lines (bytes or a pyarrow
        buffer). `files`: (byte offset where each file starts, its index) when the block joins
        several files."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        buf = block if isinstance(block, pa.Buffer) else pa.py_buffer(block)
        if not _utf8(buf):  # Python reads it, replacing the bad bytes
            yield PyRecords(json_records(buf.to_pybytes().decode("utf-8", errors="replace")), file)
            return
        text = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(np.array([0, buf.size], np.int32)), buf])
        lines = pc.split_pattern(text, "\n").flatten()
        lengths = pc.binary_length(lines).to_numpy().astype(np.int64)
        self.ends = np.cumsum(lengths + 1) - 1
        self.starts, self.buf, self.lines = self.ends - lengths, buf, lines
        self.line_file = (files[1][np.searchsorted(files[0], self.starts, side="right") - 1] if files is not None
                          else np.full(len(lines), file))
        good = pc.match_substring_regex(lines, r"^[ \t\r]*\{").to_numpy(zero_copy_only=False)
        blank = pc.match_substring_regex(lines, r"^[ \t\r]*$").to_numpy(zero_copy_only=False)
        first = 0
        for bad in [*np.flatnonzero(~(good | blank)), len(lines)]:
            rows = first + np.flatnonzero(good[first:bad])
            if len(rows):
                yield from self.run(rows)
            if bad < len(lines):
                yield from self.python(np.array([bad]))
            first = bad + 1

    def python(self, rows) -> Iterator:
        """The given lines read by Python, as PyRecords per file."""
        files = self.line_file[rows]
        for f in dict.fromkeys(files.tolist()):
            yield PyRecords(json_records("\n".join(self.lines.take(rows[files == f]).to_pylist())), f)

    def run(self, rows) -> Iterator:
        """Lines that each start an object, parsed by Arrow in as few pieces as it allows."""
        pieces = []  # (table, rows) parsed by Arrow, (None, rows) left to Python, in file order
        while len(rows):
            table, error = self.parse(rows)
            if table is not None:
                pieces.append((table if table.num_rows == len(rows) else None, rows))
                break
            if self.split_on(error):
                continue
            where, error = self.locate(rows) if len(pieces) < MAX_FRAGMENTS else (None, "")
            if self.split_on(error):
                continue
            if where is None or where >= len(rows):
                pieces.append((None, rows))
                break
            if where:
                head, _ = self.parse(rows[:where])
                pieces.append((head if head is not None and head.num_rows == where else None, rows[:where]))
            changed = where and "changed from" in error  # a nested type changes: a new piece starts here
            pieces += [] if changed else [(None, rows[where : where + 1])]
            rows = rows[where:] if changed else rows[where + 1 :]
        yield from self.emit(pieces)

    def emit(self, pieces) -> Iterator:
        """The pieces as one RawBatch in file order, Python's lines in it as rows it must
        convert; if the pieces' columns do not unify, each piece on its own."""
        import numpy as np
        import pyarrow as pa

        tables = [t for t, _ in pieces if t is not None]
        python = np.concatenate([r for t, r in pieces if t is None] or [np.array([], np.int64)])
        single = np.array([len(json_records(self.lines[int(i)].as_py())) == 1 for i in python], bool)
        try:
            table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        except (IndexError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            for t, r in pieces:
                yield from self.raw(t, r) if t is not None else self.python(r)
            return
        rows = np.concatenate([r for t, r in pieces if t is not None] + [python[single]])
        order = np.argsort(rows, kind="stable")
        filler = pa.table({f.name: pa.nulls(int(single.sum()), f.type) for f in table.schema}, schema=table.schema)
        forced = pa.array(order >= table.num_rows)
        yield from self.raw(pa.concat_tables([table, filler]).take(pa.array(order)), rows[order], forced)
        if not single.all():
            yield from self.python(python[~single])

    def raw(self, table, rows, forced=None) -> Iterator:
        """Parsed rows (line numbers `rows` of the block) as a RawBatch."""
        import pyarrow as pa

        if table.num_columns == 0:  # only `{}`: rows with no fields
            yield from self.python(rows)
            return
        lines = self.lines.take(rows)
        data = table.combine_chunks().to_batches()[0]
        files = self.line_file[rows]
        yield RawBatch(data, lambda idx: [json_record(lines[i].as_py().rstrip("\r")) for i in idx],
                       keys_always_present=False, lines=lines, forced=forced,
                       file_index=pa.array(files, pa.int32()) if files.any() else None)

    def parse(self, rows, whole: bool = False):
        """(table, None), or (None, Arrow's message). `whole`: one chunk, so a row number in
        the message counts from the first of `rows`."""
        import pyarrow as pa

        buf = self.text(rows)
        table, error = _read_json(buf, self.explicit(), whole)
        if table is None or not self.learn:
            return table, error
        seen = {f.name: f.type for f in table.schema if f.name in self.learn and _stringish(f.type)}
        timestamps = [n for n, t in seen.items() if pa.types.is_timestamp(t)]
        self.strings.update({n: pa.string() for n in seen})
        if timestamps:  # Arrow turned date-like strings into timestamps: read them as text
            again, _ = _read_json(buf, self.explicit(), whole)
            table = again if again is not None and again.num_rows == table.num_rows else table
        return table, None

    def locate(self, rows) -> tuple[int | None, str]:
        """The row (counted in `rows`) Arrow stops at, and its message."""
        _, error = self.parse(rows, whole=True)
        m = re.search(r"in row (\d+)", error or "")
        return (int(m.group(1)) if m else None), error or ""

    def explicit(self):
        import pyarrow as pa

        fields = dict(self.strings)
        fields.update({f"{SPLIT_TAG}s:{k}": pa.string() for k in self.split if self.learn and k in self.learn})
        return pa.schema(list(fields.items())) if fields else None

    def split_on(self, error: str | None) -> bool:
        """Split the top-level key whose values changed kind, if it can be; True if it was."""
        m = re.search(r"Column\(/(.*)\) changed from", error or "")
        key = m.group(1).replace("~1", "/").replace("~0", "~") if m and "/" not in m.group(1) else None
        plain = key is not None and json.dumps(key, ensure_ascii=False) == f'"{key}"'
        if not plain or key in self.split or len(self.split) >= MAX_SPLIT:
            return False
        self.split.append(key)
        self.strings.pop(key, None)
        return True

    def text(self, rows):
        """The bytes of `rows` (and the blank lines between them), keys split as needed."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        start, end = int(self.starts[rows[0]]), int(self.ends[rows[-1]])
        if not self.split:
            return self.buf.slice(start, end - start)
        lines = self.lines.slice(int(rows[0]), int(rows[-1]) - int(rows[0]) + 1)
        for key in self.split:
            quoted = re2_escape(key)
            for kind, first in _KINDS.items():
                pattern = rf'(^|[{{,\s])"{quoted}"(\s*:\s*)({"[" + first + "]" if kind == "b" else first})'
                lines = pc.replace_substring_regex(lines, pattern, rf'\1"\\u0001{kind}:{key}"\2\3')
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n")
        first, last = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset : joined.offset + 2]
        return joined.buffers()[2].slice(int(first), int(last - first))


def _utf8(data) -> bool:
    import numpy as np
    import pyarrow as pa

    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    text = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(np.array([0, buf.size], np.int32)), buf])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _read_json(buf, explicit, whole: bool):
    import pyarrow as pa
    import pyarrow.json as pj

    read = pj.ReadOptions(use_threads=not whole, block_size=len(buf) + 1 if whole else 1 << 20)
    try:
        return pj.read_json(pa.BufferReader(buf), read_options=read,
                            parse_options=pj.ParseOptions(explicit_schema=explicit,
                                unexpected_field_behavior="infer")), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        return None, str(error)


def _stringish(t) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_timestamp(t)
