"""Fault rows 3, 7 and 7b of the fault suite: the S3 server dying while an export writes its
files, and corrupt or truncated files in the landing zone read by Auto Loader (the Auto Loader
conformance rows for bad files, beside tests/services/test_autoloader.py). Each test fills its
row of the published table (tests/faults_table.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
import time
from collections import Counter

import pytest

from lakehouse_helpers.pipeline import autoloader as al
from lakehouse_helpers.pipeline.export import export_to_landing
from lakehouse_helpers.pipeline.stream import ensure_tables
from lakehouse_helpers.runtime import layout, services, storage
from lakehouse_helpers.runtime.ledgers import read_watermark
from tests.autoloader_places import Place, Stream, write_json
from tests.services.test_autoloader import place  # noqa: F401 - a fixture
from tests.services.test_stream_export import _append_raw, _objects, export_settings  # noqa: F401 - a fixture

# Every row runs against the real services and a Spark session.


class S3Killer(threading.Thread):
    """SIGKILLs the S3 server as soon as a write has staged its first file in `bucket` (seen in
    s3proxy's folder on disk, so the kill lands mid-write, not before or after it)."""

    def __init__(self, settings, bucket: str, timeout: float = 120):
        super().__init__(daemon=True)
        self.settings, self.timeout, self.killed_at = settings, timeout, None
        self.landing = settings.services_dir / "s3" / "data" / bucket / layout.LANDING_PREFIX

    def run(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and self.killed_at is None:
            if any(p.is_file() for p in self.landing.glob(".spark-staging-*/**/*")):
                pid = next(st.pid for st in services.status(self.settings) if st.name == "s3")
                os.killpg(pid, signal.SIGKILL)
                self.killed_at = time.monotonic()
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)  # our child when this session started it: no zombie
            time.sleep(0.002)


def _exports(state: dict) -> list[dict]:
    """The watermark's export records without their times: what two runs must agree on."""
    return [{k: v for k, v in e.items() if k != "at"} for e in state["exports"]]


@pytest.mark.restarts_services
@pytest.mark.faults(
    row="3", fault="the S3 server SIGKILLed while an export writes its files (when Spark has staged "
                   "the first one), then the export run again while S3 is down",
    must_hold="a clear error within 10 s naming the S3 endpoint and `make services-up`; nothing marked "
              "exported; after a restart the re-run exports exactly the missing rows, and the landing "
              "objects (keys, sizes, checksums) equal an uninterrupted export's")
def test_s3_down_mid_export_then_rerun(spark, stack, export_settings, observed):  # noqa: F811 - fixtures
    s = export_settings
    reference = s.replace(s3_bucket=f"{s.s3_bucket}-ref")  # the same raw table, exported without a fault
    storage.ensure_bucket(reference)
    ensure_tables(spark, s)
    done = _append_raw(spark, s, 200, seed=31)
    assert export_to_landing(spark, s).rows == export_to_landing(spark, reference).rows == done
    missing = _append_raw(spark, s, 400, seed=32)
    uninterrupted = export_to_landing(spark, reference)

    killer = S3Killer(stack, s.s3_bucket)
    killer.start()
    with pytest.raises(services.ServiceError) as failed:
        export_to_landing(spark, s)
    failed_after = time.monotonic() - killer.killed_at
    start = time.monotonic()
    with pytest.raises(services.ServiceError) as refused:
        export_to_landing(spark, s)  # S3 still down: refused before anything runs
    refused_after = time.monotonic() - start
    services.down(stack, ["s3"])  # the killed server's pid file
    services.up(stack, ["s3"])

    marked = read_watermark(s)
    staged = [k for k, _, _ in _objects(s, f"{layout.LANDING_PREFIX}/.spark-staging-")]
    rerun = export_to_landing(spark, s)
    got, want = _objects(s, layout.LANDING_PREFIX), _objects(reference, layout.LANDING_PREFIX)
    landing = spark.read.parquet(layout.landing_url(s))
    rows, distinct = landing.count(), landing.select("event_id").distinct().count()
    endpoint = s.s3_endpoint.removeprefix("http://")
    message = str(failed.value)
    observed(f"S3 killed once Spark staged a file; ServiceError {failed_after:.1f} s later: "
             f"{message.splitlines()[0]!r}; run again while down: refused in {refused_after:.2f} s; "
             f"watermark after the failure at version {marked['last_exported_version']}; {len(staged)} staged "
             f"objects left by the dead write; after a restart the re-run exported {rerun.rows} rows (versions "
             f"{rerun.from_version}..{rerun.to_version}, missing {missing}); {len(got)} landing objects "
             f"{'identical to' if got == want else 'DIFFERENT from'} the uninterrupted export's; "
             f"landing rows {rows} ({distinct} distinct event ids)")
    assert failed_after < 10, f"the export took {failed_after:.1f} s to fail"
    for text in (message, str(refused.value)):
        assert endpoint in text and "make services-up" in text and "JVM stacktrace" not in text
    assert refused_after < 10
    assert marked["last_exported_version"] == uninterrupted.from_version - 1, "the failed export was marked done"
    assert (rerun.rows, rerun.from_version, rerun.to_version) == (missing, uninterrupted.from_version,
        uninterrupted.to_version)
    assert got and got == want, f"objects only here: {sorted(got - want)}; only in the reference: {sorted(want - got)}"
    assert _exports(read_watermark(s)) == _exports(read_watermark(reference))
    assert rows == distinct == done + missing
    assert export_to_landing(spark, s).rows == 0  # nothing twice


def _parquet(first_id: int, rows: int) -> bytes:
    """A real Parquet file of ids first_id.. (uncompressed, a row group every 100 rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = list(range(first_id, first_id + rows))
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": ids, "v": [f"v{i}" for i in ids]}), buf, compression="none", row_group_size=100)
    return buf.getvalue()


def _damaged_page(data: bytes) -> bytes:
    """The file with its second row group's first page header overwritten: the footer (schema)
    still reads, the rows do not."""
    import pyarrow.parquet as pq

    at = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(1).column(0).data_page_offset
    return data[:at] + b"\xff" * 64 + data[at + 64:]


def _move_away(where: Place, rel: str) -> None:
    """What the error tells a user to do: move the file out of the source folder."""
    if where.kind == "s3":
        client, bucket = storage.s3_client(where.settings), where.settings.s3_bucket
        client.copy_object(Bucket=bucket, Key=f"moved/{rel}", CopySource={"Bucket": bucket, "Key": f"al/{rel}"})
        client.delete_object(Bucket=bucket, Key=f"al/{rel}")
    else:
        target = where.tmp / "moved" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        (where.tmp / rel).rename(target)


def _run_until_done(stream: Stream, where: Place, bad: dict[str, str], attempts: int = 4) -> list[tuple[str, str]]:
    """Run the stream; each time it fails naming a file, move that file away and restart.
    (the file named, the error's FAILED_READ_FILE line) for each failure, in order."""
    bad, errors = dict(bad), []
    for _ in range(attempts):
        try:
            stream.run()
            return errors
        except Exception as exc:  # noqa: BLE001 - a failed stream is what is observed
            named = [rel for rel, url in bad.items() if url in str(exc)]
            assert len(named) == 1, f"the error names no corrupt file (or several): {str(exc)[:600]}"
            line = next((ln.strip() for ln in str(exc).splitlines() if "FAILED_READ_FILE" in ln), str(exc)[:300])
            name = named[0].rsplit("/", 1)[-1]
            errors.append((name, line[line.find("[FAILED"):].split(". Move the file")[0].replace(bad[named[0]], name)))
            _move_away(where, named[0])
            del bad[named[0]]
    raise AssertionError(f"the stream still fails after {attempts} restarts: {errors}")


def _per_file(stream: Stream) -> Counter:
    return Counter(r["_source_file"] for r in stream.rows())


def _put_good(where: Place, sub: str, files: list[int]) -> dict[str, int]:
    """Good Parquet files of 100 rows in a stream's source folder: {url: rows}."""
    return {where.put(f"{sub}/src/good{i}.parquet", _parquet(i * 1000, 100)): 100 for i in files}


def _put_corrupt(where: Place, sub: str) -> dict[str, str]:
    """A Parquet file cut in half and one with a damaged page: {rel: url}."""
    whole = _parquet(5000, 300)
    bad = {f"{sub}/src/cut.parquet": whole[: len(whole) // 2], f"{sub}/src/damaged.parquet": _damaged_page(whole)}
    return {rel: where.put(rel, data) for rel, data in bad.items()}


@pytest.fixture
def landing(stack, tmp_path) -> Place:
    """A prefix of its own on the S3 server, where the workbook's landing zone lives."""
    return Place("s3", tmp_path, stack)


@pytest.mark.faults(
    row="7", fault="a Parquet file cut in half and one with a damaged page land among good files on S3; read "
                   "by Auto Loader (notebook 05's read) by default, and with ignoreCorruptFiles",
    must_hold="by default the stream fails naming the file and, once it is moved away, restarts with every "
              "other file's rows exactly once; with ignoreCorruptFiles it is skipped; each corrupt file "
              "recorded in the bad-files ledger")
def test_corrupt_parquet_named_then_skipped(spark, landing, observed):
    strict = Stream(spark, landing, "strict", "parquet")
    first = _put_good(landing, "strict", [0])
    strict.run()  # the schema comes from a good file, as on a stream that has been running
    first_run = _per_file(strict)
    good, bad = {**first, **_put_good(landing, "strict", [1, 2])}, _put_corrupt(landing, "strict")
    errors = _run_until_done(strict, landing, bad)
    strict_rows = _per_file(strict)
    strict_ledger = {e["path"]: e["status"] for e in al.bad_files(landing.settings, strict.schema_location)}

    lenient = Stream(spark, landing, "lenient", "parquet", options={"ignoreCorruptFiles": "true"})
    lenient_good, lenient_bad = _put_good(landing, "lenient", [0, 1, 2]), _put_corrupt(landing, "lenient")
    lenient.run()  # the first start: inference skips the corrupt files too
    lenient_rows = _per_file(lenient)
    ledger = {e["path"]: e for e in al.bad_files(landing.settings, lenient.schema_location)}
    observed(f"[{landing.kind}] default: {len(errors)} failures, each naming its file: {errors}; after moving "
             f"them: rows per good file {sorted(strict_rows.values())}, ledger {sorted(strict_ledger.values())}; "
             f"ignoreCorruptFiles: rows per good file {sorted(lenient_rows[u] for u in lenient_good)}, "
             f"from corrupt files {sum(lenient_rows[u] for u in lenient_bad.values())}, ledger "
             f"{sorted((e['status'], e['reason'][:50]) for e in ledger.values())}")
    assert first_run == Counter(first)
    # The cut file fails planning (its footer is gone); the damaged one the read (its footer is fine).
    assert [name for name, _ in errors] == ["cut.parquet", "damaged.parquet"]
    assert all(line.startswith("[FAILED_READ_FILE.NO_HINT] Encountered error while reading file") for _, line in errors)
    assert strict_rows == Counter(good), "a good file's rows were lost or doubled"
    assert strict_ledger == {url: "removed" for url in bad.values()}
    assert {u: lenient_rows[u] for u in lenient_good} == lenient_good
    assert set(ledger) == set(lenient_bad.values()) and {e["status"] for e in ledger.values()} == {"skipped"}
    for url in lenient_bad.values():  # rows read before the damage are kept and counted (none here:
        assert lenient_rows[url] == ledger[url]["rows_read"]  # the reader's first batch spans the damage)


@pytest.mark.faults(
    row="7b", fault="a JSON Lines file whose last line is cut mid-object, among good JSON files, read by Auto Loader",
    must_hold="every row of the good files and the whole lines of the cut file arrive once; the cut line is "
              "kept in _rescued_data (_corrupt_record) with its file's path; nothing fails")
def test_truncated_json_line_is_rescued_with_its_file(spark, place, observed):  # noqa: F811 - fixtures
    good = {write_json(place, f"src/good{i}.json", [{"id": i * 100 + j, "v": f"v{j}"} for j in range(50)]): 50
            for i in range(2)}
    lines = [json.dumps({"id": 900 + j, "v": f"v{j}"}) for j in range(50)]
    cut_line = lines[-1][: len(lines[-1]) // 2]
    cut = place.put("src/cut.json", ("\n".join(lines[:-1]) + "\n" + cut_line).encode())
    stream = Stream(spark, place, "", "json")
    stream.run()
    rows = stream.rows()
    per_file = Counter(r["_source_file"] for r in rows)
    rescued = [json.loads(r["_rescued_data"]) for r in rows if r["_rescued_data"]]
    ids = Counter(r["id"] for r in rows if r["id"] is not None)
    ledger = al.bad_files(place.settings, stream.schema_location)
    observed(f"[{place.kind}] rows from the good files {sum(per_file[u] for u in good)}, from the cut file "
             f"{per_file[cut]}; rescued rows {len(rescued)}: {rescued}; bad-files ledger {ledger}")
    assert {u: per_file[u] for u in good} == good and per_file[cut] == 50
    assert len(ids) == 149 and set(ids.values()) == {1}, "a whole line was lost or doubled"
    assert rescued == [{"_corrupt_record": cut_line, "_file_path": cut}]
    assert ledger == []
