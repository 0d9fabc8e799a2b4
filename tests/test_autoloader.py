"""Conformance of the open-source Auto Loader (lakehouse_helpers.autoloader) with the behaviour
the Databricks documentation gives for `cloudFiles`. One row per behaviour, and its test:

| behaviour (Databricks docs)                                                        | test                                            |
|------------------------------------------------------------------------------------|-------------------------------------------------|
| formats: json (JSON Lines), csv with a header row, parquet                          | test_formats                                    |
| schemaLocation: inferred schema recorded as _schemas/0                              | test_inference_records_version_0                |
| JSON/CSV inference: every column a string unless inferColumnTypes                   | test_inference_strings_by_default               |
| inferColumnTypes: JSON/CSV columns typed (long, double, boolean)                    | test_infer_column_types                         |
| inference samples existing files, bounded by a file count and by bytes              | test_inference_sample_is_bounded                |
| Parquet: schemas of the sampled files merge to the widest type                      | test_parquet_merges_to_widest_type              |
| key=value folders become partition columns                                          | test_partition_columns_from_folders             |
| schemaHints pin column types                                                        | test_schema_hints                               |
| rescued data column: type mismatches, case-mismatched names, the file path          | test_rescued_data_column                        |
| rescued data column name is configurable                                            | test_rescued_data_column_name                   |
| addNewColumns (default without schema): record merged schema, fail naming fields    | test_add_new_columns                            |
|   and file; restarted, read with the wider schema; old rows null; types not widened |                                                 |
| rescue: schema never changes, stream never fails, new columns rescued               | test_rescue_mode                                |
| failOnNewColumns: fails, and keeps failing until the schema is changed              | test_fail_on_new_columns                        |
| none (default with a schema): new columns ignored, nothing fails                    | test_none_mode                                  |
| includeExistingFiles=false: only files that arrive later; read on first start only  | test_include_existing_files                     |
| maxFilesPerTrigger, maxBytesPerTrigger                                              | test_read_limits                                |
| availableNow: everything present at start, then stop                                | test_available_now_stops                        |
| exactly once per file across restarts                                               | test_exactly_once_across_restarts               |
| exactly once per file when the process is killed mid-run                            | test_killed_process_restarts_exactly_once       |
| a job retry restarts after an unknown-field error, with a bound                     | test_run_with_restarts                          |
| bad options get a clear error                                                       | test_bad_options                                |
| a value that does not fit, amid a large clean batch, is rescued with its file path; | test_misfits_rescued_amid_a_large_batch         |
|   the other rows keep their typed values (and only the misfits take the slow path)  | test_only_misfits_take_the_python_path          |
| a file larger than the reader's memory is read in bounded memory (JSON Lines in     | test_large_files_in_bounded_memory              |
|   blocks of lines, Parquet in row batches)                                          |                                                 |

Every row runs on the local filesystem and on S3 (s3a:// paths; the `place` fixture: [local] and
[s3]) except the last: the bounded-memory test writes a 200 MB file per format and measures the
reader's own peak memory in a subprocess, on local disk only, since uploading and reading 400 MB
through the S3 server would add minutes to the suite (both storages are read through the same
pyarrow filesystem, `autoloader.filesystem`). Stream outputs and checkpoints are local Delta tables in every row.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.errors import StreamingQueryException

from lakehouse_helpers import autoloader as al
from lakehouse_helpers import storage
from lakehouse_helpers.stream import input_rows

pytestmark = [pytest.mark.spark, pytest.mark.services]


class Place:
    """Where the source files and the schema history live: a local folder or an S3 prefix."""

    def __init__(self, kind: str, tmp_path: Path, settings):
        self.kind, self.tmp, self.settings = kind, tmp_path, settings
        if kind == "s3":
            from uuid import uuid4

            self.settings = settings.replace(s3_bucket=f"al-{uuid4().hex[:12]}")
            storage.ensure_bucket(self.settings)

    def url(self, *parts: str) -> str:
        rel = "/".join(p for p in parts if p)
        return self.settings.s3_url("al", rel) if self.kind == "s3" else str(self.tmp / rel)

    def put(self, rel: str, data: bytes) -> str:
        if self.kind == "s3":
            storage.s3_client(self.settings).put_object(Bucket=self.settings.s3_bucket, Key=f"al/{rel}", Body=data)
        else:
            path = self.tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return self.url(rel)


def write_json(place: Place, rel: str, rows: list[dict]) -> str:
    return place.put(rel, "".join(json.dumps(r) + "\n" for r in rows).encode())


def write_csv(place: Place, rel: str, header: list[str], rows: list[list]) -> str:
    return place.put(rel, (",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)).encode())


def write_parquet(place: Place, rel: str, table) -> str:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return place.put(rel, buf.getvalue())


class Stream:
    """One Auto Loader stream (source and schema history in `place`) into a local Delta table."""

    def __init__(self, spark, place: Place, sub: str, fmt: str, **kwargs):
        self.spark, self.settings, self.fmt, self.kwargs = spark, place.settings, fmt, kwargs
        self.source = kwargs.pop("source", place.url(sub, "src"))
        self.schema_location = place.url(sub, "schema")
        local = place.tmp / "local" / sub
        self.checkpoint, self.out = str(local / "checkpoint"), str(local / "out")

    def df(self):
        return al.read_stream(self.spark, self.settings, self.source, self.fmt, schema_location=self.schema_location, **self.kwargs)

    def start(self, trigger=None):
        writer = self.df().writeStream.format("delta").option("mergeSchema", "true").option("checkpointLocation", self.checkpoint)
        return writer.trigger(**(trigger or {"availableNow": True})).start(self.out)

    def run(self):
        query = self.start()
        query.awaitTermination()
        return query

    def rows(self, order="_source_file"):
        if not Path(self.out).exists():
            return []
        return [r.asDict() for r in self.spark.read.format("delta").load(self.out).orderBy(order).collect()]

    def versions(self):
        return al.schema_versions(self.schema_location, al.s3_options(self.settings))

    def schema(self, version=None):
        versions = self.versions()
        entry = al.read_schema_version(self.schema_location, versions[-1] if version is None else version, al.s3_options(self.settings))
        return dict(map(tuple, entry["fields"]))


@pytest.fixture(params=["local", "s3"])
def place(request, stack, tmp_path):
    """Each conformance test runs on the local filesystem and on the S3 server."""
    return Place(request.param, tmp_path, stack)


def test_formats(spark, place):
    import pyarrow as pa

    write_json(place, "j/src/a.json", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
    write_csv(place, "c/src/a.csv", ["id", "v"], [[1, "a"], [2, "b"]])
    write_parquet(place, "p/src/a.parquet", pa.table({"id": [1, 2], "v": ["a", "b"]}))
    for sub, fmt in (("j", "json"), ("c", "csv"), ("p", "parquet")):
        s = Stream(spark, place, sub, fmt)
        s.run()
        assert [(str(r["id"]), r["v"]) for r in s.rows("id")] == [("1", "a"), ("2", "b")], fmt


def test_inference_records_version_0(spark, place):
    write_json(place, "src/a.json", [{"id": 1}])
    s = Stream(spark, place, "", "json")
    s.run()
    assert s.versions() == [0]
    filesys, path = al.filesystem(f"{s.schema_location}/_schemas/0", al.s3_options(s.settings))
    with filesys.open_input_stream(path) as fh:
        raw = fh.read().decode().splitlines()
    assert raw[0] == "v1" and json.loads(raw[1])["fields"][0] == ["id", "string"]


def test_inference_strings_by_default(spark, place):
    write_json(place, "j/src/a.json", [{"id": 1, "price": 2.5, "ok": True, "tags": ["x"]}])
    write_csv(place, "c/src/a.csv", ["id", "price"], [[1, 2.5]])
    s = Stream(spark, place, "j", "json")
    s.run()
    assert s.schema() == {"id": "string", "price": "string", "ok": "string", "tags": "string", "_rescued_data": "string"}
    assert s.rows()[0]["ok"] == "true" and json.loads(s.rows()[0]["tags"]) == ["x"]
    c = Stream(spark, place, "c", "csv")
    c.run()
    assert c.schema() == {"id": "string", "price": "string", "_rescued_data": "string"}


def test_infer_column_types(spark, place):
    write_json(place, "j/src/a.json", [{"id": 1, "price": 2, "ok": True}, {"id": 2, "price": 2.5, "ok": False}])
    write_csv(place, "c/src/a.csv", ["id", "price", "name"], [[1, 2.5, "x"], [3, 4, "y"]])
    s = Stream(spark, place, "j", "json", infer_column_types=True)
    s.run()
    assert s.schema() == {"id": "bigint", "price": "double", "ok": "boolean", "_rescued_data": "string"}
    assert [r["price"] for r in s.rows("id")] == [2.0, 2.5]
    c = Stream(spark, place, "c", "csv", infer_column_types=True)
    c.run()
    assert c.schema() == {"id": "int", "price": "double", "name": "string", "_rescued_data": "string"}


def test_inference_sample_is_bounded(spark, place):
    write_json(place, "src/a.json", [{"a": 1}])
    write_json(place, "src/b.json", [{"b": 1}])  # same second on S3: the path orders them
    s = Stream(spark, place, "files", "json", source=place.url("src"), schema_evolution_mode="rescue",
               options={"cloudFiles.schemaInference.sampleSize.numFiles": "1"})
    s.run()
    assert set(s.schema()) == {"a", "_rescued_data"}  # b.json was not sampled
    rows = {r["_source_file"].rsplit("/", 1)[1]: r for r in s.rows()}
    assert json.loads(rows["b.json"]["_rescued_data"])["b"] == 1
    by_bytes = Stream(spark, place, "bytes", "json", source=place.url("src"), schema_evolution_mode="rescue",
                      options={"cloudFiles.schemaInference.sampleSize.numBytes": "1"})
    by_bytes.run()
    assert set(by_bytes.schema()) == {"a", "_rescued_data"}  # the first file is always sampled


def test_parquet_merges_to_widest_type(spark, place):
    import pyarrow as pa

    write_parquet(place, "src/a.parquet", pa.table({"id": pa.array([1], pa.int32()), "x": pa.array([1], pa.int32())}))
    write_parquet(place, "src/b.parquet", pa.table({"id": pa.array([2], pa.int64()), "x": pa.array([2.5], pa.float64())}))
    s = Stream(spark, place, "", "parquet")
    s.run()
    assert s.schema()["id"] == "bigint" and s.schema()["x"] == "double"
    assert sorted(r["x"] for r in s.rows()) == [1.0, 2.5]


def test_partition_columns_from_folders(spark, place):
    write_json(place, "src/ingestion_date=2026-01-05/a.json", [{"id": 1}])
    write_json(place, "src/ingestion_date=2026-01-06/b.json", [{"id": 2}])
    s = Stream(spark, place, "", "json", schema_hints="ingestion_date date")
    s.run()
    assert s.schema()["ingestion_date"] == "date"
    assert [str(r["ingestion_date"]) for r in s.rows("id")] == ["2026-01-05", "2026-01-06"]


def test_schema_hints(spark, place):
    write_json(place, "src/a.json", [{"quantity": "3", "event_ts": "2026-01-05T08:00:00Z", "price": 1}])
    s = Stream(spark, place, "", "json", schema_hints="quantity int, event_ts timestamp, extra string")
    s.run()
    schema = s.schema()
    assert schema["quantity"] == "int" and schema["event_ts"] == "timestamp" and schema["price"] == "string"
    assert schema["extra"] == "string"  # a hint may name a column no file has yet
    row = s.rows()[0]
    assert row["quantity"] == 3 and row["event_ts"].year == 2026


def test_rescued_data_column(spark, place):
    path = write_json(place, "src/a.json", [{"id": 1, "name": "ok"}, {"id": "two", "name": "bad type"}, {"id": 3, "NAME": "case"}])
    s = Stream(spark, place, "", "json", schema_hints="id int")
    s.run()
    rows = s.rows("name")
    by_name = {r["name"]: r for r in rows}
    assert by_name["ok"]["_rescued_data"] is None
    bad = json.loads(by_name["bad type"]["_rescued_data"])
    assert bad["id"] == "two" and bad["_file_path"] == path and by_name["bad type"]["id"] is None
    case = next(r for r in rows if r["name"] is None)
    assert json.loads(case["_rescued_data"])["NAME"] == "case"


def test_rescued_data_column_name(spark, place):
    write_json(place, "src/a.json", [{"id": "x"}])
    s = Stream(spark, place, "", "json", schema_hints="id int", rescued_data_column="_bad")
    s.run()
    row = s.rows()[0]
    assert "_rescued_data" not in row and json.loads(row["_bad"])["id"] == "x"


def test_add_new_columns(spark, place):
    write_json(place, "src/a.json", [{"id": 1, "n": 1}])
    s = Stream(spark, place, "", "json", schema_hints="n int")
    s.run()
    new_file = write_json(place, "src/b.json", [{"id": 2, "n": 2.5, "promo": "P"}])
    with pytest.raises(StreamingQueryException, match="UNKNOWN_FIELD_EXCEPTION") as info:
        s.run()
    text = str(info.value)
    assert "'promo'" in text and new_file in text
    assert s.versions() == [0, 1]  # recorded before failing
    assert s.schema(1)["promo"] == "string"
    s.run()  # restarted: the wider schema
    rows = s.rows("id")
    assert [r["promo"] for r in rows] == [None, "P"]  # null for the old rows
    assert s.schema()["n"] == "int"  # existing types are not widened...
    assert rows[1]["n"] is None and json.loads(rows[1]["_rescued_data"])["n"] == 2.5  # ...the value is rescued


def test_rescue_mode(spark, place):
    write_json(place, "src/a.json", [{"id": 1}])
    s = Stream(spark, place, "", "json", schema_evolution_mode="rescue")
    s.run()
    write_json(place, "src/b.json", [{"id": 2, "promo": "P"}])
    s.run()
    assert s.versions() == [0]
    assert json.loads(s.rows("id")[1]["_rescued_data"])["promo"] == "P"


def test_fail_on_new_columns(spark, place):
    write_json(place, "src/a.json", [{"id": 1}])
    s = Stream(spark, place, "", "json", schema_evolution_mode="failOnNewColumns")
    s.run()
    write_json(place, "src/b.json", [{"id": 2, "promo": "P"}])
    for _ in range(2):  # keeps failing: the schema is not changed for the user
        with pytest.raises(StreamingQueryException, match="UNKNOWN_FIELD_EXCEPTION"):
            s.run()
    assert s.versions() == [0]
    s.kwargs["schema_hints"] = "promo string"  # the user changes the schema
    s.run()
    assert [r["promo"] for r in s.rows("id")] == [None, "P"]


def test_none_mode(spark, place):
    from pyspark.sql.types import StructType

    # No schema_evolution_mode: with a schema the default is none. addNewColumns or
    # failOnNewColumns would fail on the second file; none ignores its new column.
    first = write_json(place, "src/a.json", [{"id": 1}])
    s = Stream(spark, place, "", "json", schema=StructType.fromDDL("id bigint"), rescued_data_column=None)
    s.run()
    later = write_json(place, "src/b.json", [{"id": 2, "promo": "P"}])
    s.run()
    assert s.rows("id") == [{"id": 1, "_source_file": first}, {"id": 2, "_source_file": later}]


def test_include_existing_files(spark, place):
    write_json(place, "src/old.json", [{"id": 1}])
    s = Stream(spark, place, "", "json", include_existing_files=False)
    s.run()
    assert s.rows() == []
    write_json(place, "src/new.json", [{"id": 2}])
    s.run()
    assert [r["id"] for r in s.rows()] == ["2"]
    s.kwargs["include_existing_files"] = True  # only read on the first start of a checkpoint
    s.run()
    assert [r["id"] for r in s.rows()] == ["2"]


def _batches(query) -> list[int]:
    return [input_rows(p) for p in query.recentProgress if input_rows(p)]


def test_read_limits(spark, place):
    for i in range(5):
        write_json(place, f"src/f{i}.json", [{"id": i, "pad": "x" * 200}])
    by_files = Stream(spark, place, "files", "json", source=place.url("src"), max_files_per_trigger=2)
    assert _batches(by_files.run()) == [2, 2, 1]
    by_bytes = Stream(spark, place, "bytes", "json", source=place.url("src"), max_bytes_per_trigger=450)
    assert _batches(by_bytes.run()) == [2, 2, 1]


def test_available_now_stops(spark, place):
    for i in range(3):
        write_json(place, f"src/f{i}.json", [{"id": i}])
    s = Stream(spark, place, "", "json", max_files_per_trigger=1)
    query = s.run()
    assert not query.isActive and query.exception() is None
    assert len(s.rows()) == 3 and _batches(query) == [1, 1, 1]


def test_exactly_once_across_restarts(spark, place):
    for i in range(4):
        write_json(place, f"src/a{i}.json", [{"id": i, "k": j} for j in range(10)])
    s = Stream(spark, place, "", "json")
    s.run()
    s.run()  # nothing new
    for i in range(3):
        write_json(place, f"src/b{i}.json", [{"id": 10 + i, "k": j} for j in range(10)])
    s.run()
    counts = {}
    for r in s.rows():
        counts[r["_source_file"]] = counts.get(r["_source_file"], 0) + 1
    assert len(counts) == 7 and set(counts.values()) == {10}


KILL_SCRIPT = """
import sys
from lakehouse_helpers import get_spark, load_settings
from lakehouse_helpers import autoloader as al
source, schema_location, checkpoint, out = sys.argv[1:5]
settings = load_settings()
spark = get_spark(settings)
df = al.read_stream(spark, settings, source, "json", schema_location=schema_location, max_files_per_trigger=1)
q = (df.writeStream.format("delta").option("checkpointLocation", checkpoint)
     .trigger(processingTime="100 milliseconds").start(out))
q.awaitTermination()
"""


def test_killed_process_restarts_exactly_once(spark, test_env, place):
    files = 12
    for i in range(files):
        write_json(place, f"src/f{i:02d}.json", [{"id": i, "k": j} for j in range(25)])
    s = Stream(spark, place, "", "json")  # the killed run's source, schema history, checkpoint and table
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, s.source, s.schema_location, s.checkpoint, s.out],
                            env=test_env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = Path(s.out) / "_delta_log"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait for a few committed micro-batches, then kill
        if len(list(log.glob("*.json"))) >= 4 or proc.poll() is not None:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(log.glob("*.json"))) < files + 1  # killed mid-run

    s.run()
    counts = {}
    for r in s.rows():
        counts[r["_source_file"]] = counts.get(r["_source_file"], 0) + 1
    assert len(counts) == files and set(counts.values()) == {25}


def test_run_with_restarts(spark, place):
    write_json(place, "src/a.json", [{"id": 1}])
    s = Stream(spark, place, "", "json")
    s.run()
    write_json(place, "src/b.json", [{"id": 2, "x": 1}])
    write_json(place, "src/c.json", [{"id": 3, "y": 1}])
    s.kwargs["max_files_per_trigger"] = 1
    assert al.run_with_restarts(s.start, max_restarts=3, log=lambda *_: None) == 2
    assert s.versions() == [0, 1, 2]
    write_json(place, "src/d.json", [{"id": 4, "z": 1}])
    with pytest.raises(StreamingQueryException, match="UNKNOWN_FIELD_EXCEPTION"):
        al.run_with_restarts(s.start, max_restarts=0, log=lambda *_: None)


def test_bad_options(spark, place):
    settings, src = place.settings, place.url("src")
    write_json(place, "src/a.json", [{"id": 1}])
    with pytest.raises(al.AutoLoaderError, match="json, csv or parquet"):
        al.read_stream(spark, settings, src, "xml", schema_location=place.url("schema"))
    with pytest.raises(al.AutoLoaderError, match="schemaEvolutionMode"):
        al.read_stream(spark, settings, src, "json", schema_location=place.url("schema"), schema_evolution_mode="merge")
    with pytest.raises(al.AutoLoaderError, match="schemaLocation"):
        al.read_stream(spark, settings, src, "json")
    with pytest.raises(al.AutoLoaderError, match="No files"):
        al.read_stream(spark, settings, place.url("empty"), "json", schema_location=place.url("schema2"))
    with pytest.raises(al.AutoLoaderError, match="schemaHints"):
        al.read_stream(spark, settings, src, "json", schema_location=place.url("schema3"), schema_hints="justaname")


MISFITS = {7_000: {"n": "three"}, 12_000: {"n": 1e20}, 15_000: {"ts": "x"}}


def _large_clean_file(place: Place, rel: str, rows: int = 20_000) -> str:
    return write_json(place, rel, [{"id": i, "n": i, "ts": "2026-01-05T08:00:00Z", "name": f"c{i}", **MISFITS.get(i, {})}
                                   for i in range(rows)])


def test_misfits_rescued_amid_a_large_batch(spark, place):
    path = _large_clean_file(place, "src/big.json")
    s = Stream(spark, place, "", "json", schema_hints="id bigint, n int, ts timestamp")
    s.run()
    rows = {r["id"]: r for r in s.rows("id")}
    assert len(rows) == 20_000
    assert json.loads(rows[7_000]["_rescued_data"]) == {"n": "three", "_file_path": path} and rows[7_000]["n"] is None
    assert json.loads(rows[12_000]["_rescued_data"]) == {"n": 1e20, "_file_path": path} and rows[12_000]["n"] is None
    assert json.loads(rows[15_000]["_rescued_data"]) == {"ts": "x", "_file_path": path} and rows[15_000]["ts"] is None
    assert rows[7_000]["ts"].year == 2026 and rows[15_000]["n"] == 15_000  # the rest of a misfit's row is typed
    clean = [r for i, r in rows.items() if i not in MISFITS]
    assert all(r["_rescued_data"] is None for r in clean)
    assert [r["n"] for r in clean[:3]] == [0, 1, 2] and clean[-1]["n"] == 19_999 and clean[-1]["ts"].hour == 8


def test_only_misfits_take_the_python_path(place, monkeypatch):
    from lakehouse_helpers.autoloader import batches

    path = _large_clean_file(place, "big.json")
    calls = []
    real = batches.convert_record
    monkeypatch.setattr(batches, "convert_record", lambda rec, *args: calls.append(rec) or real(rec, *args))
    fields = [("id", "bigint"), ("n", "int"), ("ts", "timestamp"), ("name", "string"), ("_rescued_data", "string"), ("_source_file", "string")]
    options = al.s3_options(place.settings)
    out = [r for b in al.read_file({"path": path, "rel": "big.json"}, "json", fields, al.arrow_schema(fields), options,
                                   "_rescued_data", "_source_file")
           for r in b.to_pylist()]
    assert len(out) == 20_000 and sorted(rec["id"] for rec in calls) == sorted(MISFITS)
    assert out[12_000]["n"] is None and json.loads(out[12_000]["_rescued_data"])["n"] == 1e20
    assert out[12_001]["n"] == 12_001 and out[12_001]["_source_file"] == path



def test_parquet_string_lists_become_json_text_column_wise(tmp_path, monkeypatch):
    """A list<string> column (the raw table's unknown_fields) is JSON text, spelled as the
    Python path spells it; only lists that need escaping take the Python path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lakehouse_helpers.autoloader import batches

    lists = [[], ["promo_code"], ["a", "b"], None, ['q"x'], ["é"], [None], ["", "x]"]] * 500
    path = str(tmp_path / "lists.parquet")
    pq.write_table(pa.table({"id": list(range(len(lists))), "tags": pa.array(lists, pa.list_(pa.string()))}), path)
    calls = []
    real = batches.convert_record
    monkeypatch.setattr(batches, "convert_record", lambda rec, *args: calls.append(rec) or real(rec, *args))
    fields = [("id", "bigint"), ("tags", "string")]
    out = [r for b in al.read_file({"path": path, "rel": "lists.parquet"}, "parquet", fields, al.arrow_schema(fields), {}, None, None)
           for r in b.to_pylist()]
    assert [r["tags"] for r in out] == [None if v is None else json.dumps(v) for v in lists]
    assert sorted({json.dumps(rec["tags"]) for rec in calls}) == sorted(json.dumps(v) for v in (['q"x'], ["é"], [None]))


# Peak memory from /proc: ru_maxrss survives exec, so a child would report its parent's peak.
MEMORY_SCRIPT = """
import json, sys
from lakehouse_helpers.autoloader import arrow_schema, read_file
small, big, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
fields = [(n, t) for n, t in json.loads(sys.argv[4])] + [("_rescued_data", "string"), ("_source_file", "string")]
schema = arrow_schema(fields)

def rows(path):
    return sum(b.num_rows for b in read_file({"path": path, "rel": path}, fmt, fields, schema, {}, "_rescued_data", "_source_file"))

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
    pq.write_table(pa.table({"id": np.arange(rows), "text": text, "x": np.arange(rows) * 0.5}), path, compression="none")
    return rows


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_large_files_in_bounded_memory(tmp_path, fmt):
    size = 200 * 1024 * 1024
    big, small = tmp_path / f"big.{fmt}", tmp_path / f"small.{fmt}"
    if fmt == "json":
        rows = _write_big_json(big, size)
        small.write_text(json.dumps({"id": 1, "name": "a", "price": 1.5, "ts": "2026-01-05T08:00:00Z", "note": "x"}) + "\n")
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
