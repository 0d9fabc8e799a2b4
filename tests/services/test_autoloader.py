"""Conformance of the open-source Auto Loader (lakehouse_helpers.pipeline.autoloader) with the behaviour
the Databricks documentation gives for `cloudFiles`: one line per behaviour, and its tests.

- formats: json (JSON Lines), csv with a header row, parquet: test_formats
- schemaLocation: inferred schema recorded as _schemas/0: test_inference_records_version_0
- JSON/CSV inference: every column a string unless inferColumnTypes:
  test_inference_strings_by_default
- inferColumnTypes: JSON/CSV columns typed (long, double, boolean): test_infer_column_types
- inference samples existing files, bounded by a file count and by bytes:
  test_inference_sample_is_bounded
- Parquet: schemas of the sampled files merge to the widest type: test_parquet_merges_to_widest_type
- key=value folders become partition columns: test_partition_columns_from_folders
- schemaHints pin column types: test_schema_hints
- rescued data column: type mismatches, case-mismatched names, the file path:
  test_rescued_data_column
- rescued data column name is configurable: test_rescued_data_column_name
- addNewColumns (default without schema): record merged schema, fail naming fields and file;
  restarted, read with the wider schema; old rows null; types not widened: test_add_new_columns
- rescue: schema never changes, stream never fails, new columns rescued: test_rescue_mode
- failOnNewColumns: fails, and keeps failing until the schema is changed: test_fail_on_new_columns
- none (default with a schema): new columns ignored, nothing fails: test_none_mode
- includeExistingFiles=false: only files that arrive later; read on first start only:
  test_include_existing_files
- maxFilesPerTrigger, maxBytesPerTrigger: test_read_limits
- availableNow: everything present at start, then stop: test_available_now_stops
- exactly once per file across restarts: test_exactly_once_across_restarts
- exactly once per file when the process is killed mid-run:
  test_killed_process_restarts_exactly_once
- a job retry restarts after an unknown-field error, with a bound: test_run_with_restarts
- bad options get a clear error: test_bad_options
- a value that does not fit, amid a large clean batch, is rescued with its file path; the other rows
  keep their typed values (and only the misfits take the slow path):
  test_misfits_rescued_amid_a_large_batch, test_only_misfits_take_the_python_path
- a file larger than the reader's memory is read in bounded memory (JSON Lines in blocks of lines,
  Parquet in row batches): test_large_files_in_bounded_memory (in test_autoloader_reading.py)

A behaviour that touches storage runs on the local filesystem and on S3 (s3a:// paths; the `place`
fixture: [local] and [s3]): the formats, the schema history, inference's sample, partition folders,
the rescued file path, new columns recorded, discovery (includeExistingFiles, read limits, exactly
once across restarts). A behaviour decided from the rows and the schema alone (types, hints,
rescue and evolution modes, restarts, options, misfits) runs on local disk only (`LOCAL_ONLY`):
both storages are read and written through the same pyarrow filesystem (`autoloader.filesystem`),
and the S3 copies of those rows added two minutes to the suite and proved nothing more. So do the
kill test (its checkpoint is local either way; the file log's commit on S3 is proved by exactly
once across restarts) and the bounded-memory test, which writes a 200 MB file per format and
measures the reader's own peak memory in a subprocess. Stream outputs and checkpoints are local
Delta tables in every test. The files and the stream each test uses are in tests/autoloader_places.py.
"""

from __future__ import annotations

import json
import time

import pytest
from pyspark.errors import StreamingQueryException

from lakehouse_helpers.pipeline import autoloader as al
from lakehouse_helpers.pipeline.stream import input_rows
from tests.autoloader_places import (
    Place,
    Stream,
    committed,
    kill_group,
    start_killable,
    write_csv,
    write_json,
    write_parquet,
)


@pytest.fixture(params=["local", "s3"])
def place(request, stack, tmp_path):
    """A behaviour that touches storage runs on the local filesystem and on the S3 server."""
    return Place(request.param, tmp_path, stack)


# A behaviour decided from the rows and the schema alone, whatever storage held the file.
LOCAL_ONLY = pytest.mark.parametrize("place", ["local"], indirect=True)


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


@LOCAL_ONLY
def test_inference_strings_by_default(spark, place):
    write_json(place, "j/src/a.json", [{"id": 1, "price": 2.5, "ok": True, "tags": ["x"]}])
    write_csv(place, "c/src/a.csv", ["id", "price"], [[1, 2.5]])
    s = Stream(spark, place, "j", "json")
    s.run()
    assert s.schema() == {"id": "string", "price": "string", "ok": "string", "tags": "string",
        "_rescued_data": "string"}
    assert s.rows()[0]["ok"] == "true" and json.loads(s.rows()[0]["tags"]) == ["x"]
    c = Stream(spark, place, "c", "csv")
    c.run()
    assert c.schema() == {"id": "string", "price": "string", "_rescued_data": "string"}


@LOCAL_ONLY
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


@LOCAL_ONLY
def test_parquet_merges_to_widest_type(spark, place):
    import pyarrow as pa

    write_parquet(place, "src/a.parquet", pa.table({"id": pa.array([1], pa.int32()), "x": pa.array([1], pa.int32())}))
    write_parquet(place, "src/b.parquet",
        pa.table({"id": pa.array([2], pa.int64()), "x": pa.array([2.5], pa.float64())}))
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


@LOCAL_ONLY
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
    path = write_json(place, "src/a.json",
        [{"id": 1, "name": "ok"}, {"id": "two", "name": "bad type"}, {"id": 3, "NAME": "case"}])
    s = Stream(spark, place, "", "json", schema_hints="id int")
    s.run()
    rows = s.rows("name")
    by_name = {r["name"]: r for r in rows}
    assert by_name["ok"]["_rescued_data"] is None
    bad = json.loads(by_name["bad type"]["_rescued_data"])
    assert bad["id"] == "two" and bad["_file_path"] == path and by_name["bad type"]["id"] is None
    case = next(r for r in rows if r["name"] is None)
    assert json.loads(case["_rescued_data"])["NAME"] == "case"


@LOCAL_ONLY
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


@LOCAL_ONLY
def test_rescue_mode(spark, place):
    write_json(place, "src/a.json", [{"id": 1}])
    s = Stream(spark, place, "", "json", schema_evolution_mode="rescue")
    s.run()
    write_json(place, "src/b.json", [{"id": 2, "promo": "P"}])
    s.run()
    assert s.versions() == [0]
    assert json.loads(s.rows("id")[1]["_rescued_data"])["promo"] == "P"


@LOCAL_ONLY
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


@LOCAL_ONLY
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


@LOCAL_ONLY
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


@LOCAL_ONLY
def test_killed_process_restarts_exactly_once(spark, test_env, place):
    files, interval_s, kill_after = 12, 3.0, 2
    for i in range(files):
        write_json(place, f"src/f{i:02d}.json", [{"id": i, "k": j} for j in range(25)])
    s = Stream(spark, place, "", "json")  # the killed run's source, schema history, checkpoint and table
    output = place.tmp / "killed-run.log"
    proc = start_killable(s, test_env, interval_s, output)
    deadline = time.monotonic() + 240
    while len(committed(s.out)) < kill_after and proc.poll() is None:  # killed after a committed batch
        assert time.monotonic() < deadline, output.read_text()[-2000:]
        time.sleep(0.2)
    assert proc.poll() is None, output.read_text()[-2000:]
    last = committed(s.out)[-1]
    # Each batch reads one file and starts on its own trigger boundary, after the previous commit:
    # the last file cannot be committed before `finish_floor`, so a kill before it is mid-run.
    finish_floor = last.stat().st_mtime + (files - int(last.stem) - 3) * interval_s
    names, killed_at = kill_group(proc)
    assert killed_at < finish_floor, "the kill came too late to be sure it was mid-run"
    assert "java" in names  # the stream's own JVM died with the process, not just a client
    done = len(committed(s.out))
    assert kill_after <= done < files, done  # killed mid-run: some files committed, others not

    s.run()
    counts = {}
    for r in s.rows():
        counts[r["_source_file"]] = counts.get(r["_source_file"], 0) + 1
    assert len(counts) == files and set(counts.values()) == {25}


@LOCAL_ONLY
def test_run_with_restarts(spark, place):
    write_json(place, "src/a.json", [{"id": 1}])
    s = Stream(spark, place, "", "json")
    s.run()
    write_json(place, "src/b.json", [{"id": 2, "x": 1}])
    write_json(place, "src/c.json", [{"id": 3, "y": 1}])
    s.kwargs["max_files_per_trigger"] = 1
    assert al.run_with_restarts(s.start, max_restarts=3) == 2
    assert s.versions() == [0, 1, 2]
    write_json(place, "src/d.json", [{"id": 4, "z": 1}])
    with pytest.raises(StreamingQueryException, match="UNKNOWN_FIELD_EXCEPTION"):
        al.run_with_restarts(s.start, max_restarts=0)


@LOCAL_ONLY
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
    return write_json(place, rel,
        [{"id": i, "n": i, "ts": "2026-01-05T08:00:00Z", "name": f"c{i}", **MISFITS.get(i, {})}
                                   for i in range(rows)])


@LOCAL_ONLY
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


@LOCAL_ONLY
def test_only_misfits_take_the_python_path(place, monkeypatch):
    from lakehouse_helpers.pipeline.autoloader import batches

    path = _large_clean_file(place, "big.json")
    calls = []
    real = batches.convert_record
    monkeypatch.setattr(batches, "convert_record", lambda rec, *args: calls.append(rec) or real(rec, *args))
    fields = [("id", "bigint"), ("n", "int"), ("ts", "timestamp"), ("name", "string"), ("_rescued_data", "string"),
        ("_source_file", "string")]
    options = al.s3_options(place.settings)
    out = [r for b in al.read_file({"path": path, "rel": "big.json"}, "json", fields, al.arrow_schema(fields), options,
                                   "_rescued_data", "_source_file")
           for r in b.to_pylist()]
    assert len(out) == 20_000 and sorted(rec["id"] for rec in calls) == sorted(MISFITS)
    assert out[12_000]["n"] is None and json.loads(out[12_000]["_rescued_data"])["n"] == 1e20
    assert out[12_001]["n"] == 12_001 and out[12_001]["_source_file"] == path
