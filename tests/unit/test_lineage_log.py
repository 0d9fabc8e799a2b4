"""The lineage file stays small: compaction keeps what the lineage reads, and the same work run
again adds nothing, while the edges and the column lineage stay exactly those of the raw events."""

from __future__ import annotations

import json

from lakehouse_helpers.govern import lineage
from lakehouse_helpers.runtime import lineage_log
from tests.unit.test_lineage import BRONZE, DATASETS, GOLD, KAFKA, RAW, SILVER, _event

COLUMNS = {"total": {"inputFields": [{"namespace": "file", "name": "/wh/silver.db/orders", "field": "amount",
                                      "transformations": [{"type": "INDIRECT", "subtype": "AGGREGATION"}]}]}}
PLAN = {"spark.logicalPlan": {"plan": [{"class": "org.apache.spark.sql.catalyst.plans.logical.Project",
                                        "projectList": ["x" * 60] * 60}]}}


def _heavy(event: dict) -> dict:
    """An event as the listener writes it: with facets the lineage never reads."""
    event["run"]["facets"] |= PLAN | {"environment-properties": {"environment-properties": {"k": "v" * 500}}}
    return event


def _one_run(app: str) -> list[dict]:
    """The events of one run of the pipeline in one Spark application (run ids unique to it)."""
    def ev(kind, run, inputs=(), outputs=(), columns=None):
        return _heavy(_event(kind, f"{app}.{run}", inputs, outputs, app=app, columns=columns))

    return [
        {"eventType": "START", "job": {"name": "app"}, "run": {"runId": app, "facets": {}}},  # the application
        ev("START", "stream", [KAFKA]),
        ev("START", "write", [], [RAW]), ev("RUNNING", "write", [], [RAW]), ev("COMPLETE", "write", [], [RAW]),
        ev("COMPLETE", "stream", [KAFKA]),
        ev("START", "bronze", [RAW], [BRONZE]), ev("COMPLETE", "bronze", [RAW], [BRONZE]),
        ev("START", "silver", [BRONZE], [SILVER]), ev("COMPLETE", "silver", [BRONZE], [SILVER]),
        ev("START", "gold", [SILVER], [GOLD], COLUMNS), ev("COMPLETE", "gold", [SILVER], [GOLD], COLUMNS),
        ev("START", "count", [GOLD]), ev("COMPLETE", "count", [GOLD]),  # a query: reads only
    ]


def _append(path, events: list[dict]) -> None:
    with path.open("a") as fh:
        fh.write("".join(json.dumps(e) + "\n" for e in events))


def _seen(path):
    runs = lineage.read_runs(path)
    edges = {(e.source, e.target, e.evidence) for e in lineage.spark_edges(runs, DATASETS.get)}
    columns = {(DATASETS[out], col, json.dumps(spec, sort_keys=True)) for r in runs for out, f in r.columns.items()
               for col, spec in f.items()}
    return edges, columns


def test_compaction_keeps_the_edges_and_the_same_work_again_adds_nothing(tmp_path):
    path = tmp_path / "lineage" / "openlineage.jsonl"
    path.parent.mkdir()
    _append(path, _one_run("app-1"))
    raw_size, raw_seen = path.stat().st_size, _seen(path)
    assert ("topic", "raw", lineage.ENCLOSING_STREAM) in raw_seen[0] and len(raw_seen[0]) == 4

    before, after = lineage_log.compact(path)
    assert (before, not path.exists()) == (raw_size, True)
    assert after < raw_size / 20  # the plan and the environment are gone
    assert _seen(path) == raw_seen

    sizes = []
    for app in ("app-2", "app-3", "app-4"):  # the workbook run again, each time by a new server
        _append(path, _one_run(app))
        assert _seen(path) == raw_seen  # compacted and new events read together
        sizes.append(lineage_log.compact(path)[1])
        assert _seen(path) == raw_seen
    assert sizes == [after] * 3  # bounded: the same work leaves the same file


def test_new_work_is_kept_and_a_compaction_cut_short_loses_nothing(tmp_path):
    path = tmp_path / "openlineage.jsonl"
    _append(path, _one_run("app-1"))
    lineage_log.compact(path)
    other = ("file", "/wh/gold.db/other")
    datasets = {**DATASETS, other: "other"}
    # A compaction that crashed after taking the file: its events wait as a taken file.
    _append(path, [_event("START", "o", [SILVER], [other], app="app-2"),
                   _event("COMPLETE", "o", [SILVER], [other], app="app-2")])
    path.rename(path.with_name(f"{path.name}.1.taken"))
    _append(path, [_event("COMPLETE", "late", [GOLD], [other], app="app-3")])

    def edges():
        return {(e.source, e.target) for e in lineage.spark_edges(lineage.read_runs(path), datasets.get)}

    expected = {("topic", "raw"), ("raw", "bronze"), ("bronze", "silver"), ("silver", "gold"),
                ("silver", "other"), ("gold", "other")}
    assert edges() == expected
    lineage_log.compact(path)
    assert edges() == expected
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["openlineage.compact.jsonl"]


def test_an_event_being_written_at_the_compaction_is_kept(tmp_path):
    """Compaction while Spark runs: a writer that opened the file before it was renamed (an event
    under way) keeps its taken file out of the fold until it closes it; nothing it writes is lost."""
    import subprocess
    import sys

    path = tmp_path / "openlineage.jsonl"
    _append(path, _one_run("app-1"))
    writer = subprocess.Popen(  # holds the file open, writes the line it is given, then closes it
        [sys.executable, "-c", "import sys; f = open(sys.argv[1], 'a'); print('open', flush=True); "
         "f.write(sys.stdin.readline()); f.close(); print('closed', flush=True)", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "open\n"
        lineage_log.compact(path, writers=[writer.pid], wait_s=0.2)
        (taken,) = path.parent.glob("*.taken")  # still open by the writer: left for the next time
        late = _event("COMPLETE", "late-write", [SILVER], [GOLD], app="app-2")
        writer.stdin.write(json.dumps(late) + "\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "closed\n"
    finally:
        writer.stdin.close()
        writer.wait(timeout=10)
    assert "late-write" in taken.read_text()  # the event landed in the taken file, after the rename
    lineage_log.compact(path, writers=[writer.pid])
    assert not list(path.parent.glob("*.taken"))
    assert "late-write" in {r.run_id for r in lineage.read_runs(path)}
