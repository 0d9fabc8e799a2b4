"""The Auto Loader's Python reader on its own (no Spark, no services): list columns converted
column-wise, and files larger than its memory read in bounded memory. Rows of the behaviour table
in tests/services/test_autoloader.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_helpers.pipeline import autoloader as al


def test_parquet_string_lists_become_json_text_column_wise(tmp_path, monkeypatch):
    """A list<string> column (the raw table's unknown_fields) is JSON text, spelled as the
    Python path spells it; only lists that need escaping take the Python path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lakehouse_helpers.pipeline.autoloader import batches

    lists = [[], ["promo_code"], ["a", "b"], None, ['q"x'], ["é"], [None], ["", "x]"]] * 500
    path = str(tmp_path / "lists.parquet")
    pq.write_table(pa.table({"id": list(range(len(lists))), "tags": pa.array(lists, pa.list_(pa.string()))}), path)
    calls = []
    real = batches.convert_record
    monkeypatch.setattr(batches, "convert_record", lambda rec, *args: calls.append(rec) or real(rec, *args))
    fields = [("id", "bigint"), ("tags", "string")]
    out = [r for b in al.read_file({"path": path, "rel": "lists.parquet"}, "parquet", fields, al.arrow_schema(fields),
        {}, None, None)
           for r in b.to_pylist()]
    assert [r["tags"] for r in out] == [None if v is None else json.dumps(v) for v in lists]
    assert sorted({json.dumps(rec["tags"]) for rec in calls}) == sorted(json.dumps(v) for v in (['q"x'], ["é"], [None]))


# Peak memory from /proc: ru_maxrss survives exec, so a child would report its parent's peak.
MEMORY_SCRIPT = """
import json, sys
from lakehouse_helpers.pipeline.autoloader import arrow_schema, read_file
small, big, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
fields = [(n, t) for n, t in json.loads(sys.argv[4])] + [("_rescued_data", "string"), ("_source_file", "string")]
schema = arrow_schema(fields)

def rows(path):
    batches = read_file({"path": path, "rel": path}, fmt, fields, schema, {}, "_rescued_data", "_source_file")
    return sum(b.num_rows for b in batches)

def status(key):
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith(key + ":")))

rows(small)  # the interpreter, pyarrow and its thread pools, warmed up: the baseline
try:
    open("/proc/self/clear_refs", "w").write("5")  # peak := now
except OSError:
    pass
base = max(status("VmRSS"), status("VmHWM"))
n = rows(big)
print(json.dumps({"rows": n, "baseline_kb": base, "peak_kb": status("VmHWM")}))
"""


def _write_big_json(path: Path, size: int) -> int:
    lines = "".join(json.dumps({"id": i, "name": f"customer-{i:08d}", "price": i * 0.25, "ts": "2026-01-05T08:00:00Z",
                                "note": "x" * 60}) + "\n" for i in range(10_000)).encode()
    with path.open("wb") as fh:
        for _ in range(size // len(lines)):
            fh.write(lines)
    return size // len(lines) * 10_000


def _write_big_parquet(path: Path, size: int) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, width = size // 116, 100  # random letters: the file does not compress below `size`
    letters = np.random.default_rng(7).integers(97, 123, size=(rows, width), dtype=np.uint8)
    text = pa.array(letters.view(f"S{width}").ravel(), pa.binary()).cast(pa.string())
    pq.write_table(pa.table({"id": np.arange(rows), "text": text, "x": np.arange(rows) * 0.5}), path,
        compression="none")
    return rows


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_large_files_in_bounded_memory(tmp_path, fmt):
    size = 200 * 1024 * 1024
    big, small = tmp_path / f"big.{fmt}", tmp_path / f"small.{fmt}"
    if fmt == "json":
        rows = _write_big_json(big, size)
        small.write_text(
            json.dumps({"id": 1, "name": "a", "price": 1.5, "ts": "2026-01-05T08:00:00Z", "note": "x"}) + "\n")
        fields = [["id", "bigint"], ["name", "string"], ["price", "double"], ["ts", "timestamp"], ["note", "string"]]
    else:
        rows = _write_big_parquet(big, size)
        _write_big_parquet(small, 116 * 10)
        fields = [["id", "bigint"], ["text", "string"], ["x", "double"]]
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(small), str(big), fmt, json.dumps(fields)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == rows
    grown = (result["peak_kb"] - result["baseline_kb"]) * 1024
    assert big.stat().st_size >= size * 0.95
    assert grown < big.stat().st_size / 2, f"reading a {big.stat().st_size >> 20} MB file took {grown >> 20} MB"
