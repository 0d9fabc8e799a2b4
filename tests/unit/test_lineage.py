"""Lineage from OpenLineage events: which jobs make edges, and what a foreachBatch write inherits."""

from __future__ import annotations

import json

from lakehouse_helpers.govern import lineage

APP = "app-run"
DATASETS = {
    ("kafka://127.0.0.1:9092", "orders"): "topic",
    ("file", "/data/raw/orders"): "raw",
    ("file", "/wh/bronze.db/orders/_delta_log"): "bronze",
    ("file", "/wh/bronze.db/orders"): "bronze",
    ("file", "/wh/silver.db/orders"): "silver",
    ("file", "/wh/gold.db/daily"): "gold",
}


def _event(kind: str, run: str, inputs=(), outputs=(), app: str = APP, columns=None) -> dict:
    out = []
    for ns, name in outputs:
        facets = {"columnLineage": {"fields": columns}} if columns else {}
        out.append({"namespace": ns, "name": name, "facets": facets})
    return {
        "eventType": kind, "job": {"name": f"job.{run}"},
        "run": {"runId": run, "facets": {"parent": {"run": {"runId": app}}}},
        "inputs": [{"namespace": ns, "name": name} for ns, name in inputs], "outputs": out,
    }


def _edges(tmp_path, events: list[dict]) -> set[tuple[str, str, str]]:
    path = tmp_path / "openlineage.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"cut short')
    runs = lineage.read_runs(path)
    return {(e.source, e.target, e.evidence) for e in lineage.spark_edges(runs, DATASETS.get)}


KAFKA, RAW, BRONZE_LOG, BRONZE, SILVER, GOLD = DATASETS


def test_a_job_that_reads_and_writes_makes_edges_and_self_edges_are_left_out(tmp_path):
    events = [
        _event("START", "g", [SILVER], [GOLD]), _event("COMPLETE", "g", [SILVER], [GOLD]),
        _event("START", "m", [SILVER], [SILVER]), _event("COMPLETE", "m", [SILVER], [SILVER]),  # a MERGE into itself
        _event("COMPLETE", "q", [GOLD], []),  # a query: reads, writes nothing
    ]
    assert _edges(tmp_path, events) == {("silver", "gold", lineage.OPENLINEAGE)}


def test_a_foreachbatch_write_inherits_the_stream_around_it(tmp_path):
    events = [
        _event("START", "stream", [KAFKA]),
        _event("START", "write", [], [RAW]), _event("COMPLETE", "write", [], [RAW]),
        _event("COMPLETE", "stream", [KAFKA]),
        # after the stream: no source
        _event("START", "later", [], [SILVER]), _event("COMPLETE", "later", [], [SILVER]),
    ]
    assert _edges(tmp_path, events) == {("topic", "raw", lineage.ENCLOSING_STREAM)}


def test_the_stream_must_belong_to_the_same_application(tmp_path):
    events = [
        _event("START", "stream", [KAFKA], app="another notebook"),
        _event("START", "write", [], [RAW]), _event("COMPLETE", "write", [], [RAW]),
        _event("COMPLETE", "stream", [KAFKA], app="another notebook"),
    ]
    assert _edges(tmp_path, events) == set()


def test_delta_log_reads_name_the_table_and_unknown_datasets_are_ignored(tmp_path):
    events = [
        _event("START", "s", [BRONZE_LOG]),
        _event("COMPLETE", "w", [("file", "/tmp/elsewhere")], [SILVER]),
        _event("COMPLETE", "s", [BRONZE_LOG]),
    ]
    assert lineage.dataset_path(*BRONZE_LOG) == "/wh/bronze.db/orders"
    assert _edges(tmp_path, events) == {("bronze", "silver", lineage.ENCLOSING_STREAM)}


def test_the_picture_puts_every_edge_left_to_right():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = {lineage.Edge(a, b, lineage.OPENLINEAGE) for a, b in
             [("topic", "raw"), ("raw", "bronze"), ("bronze", "silver"), ("silver", "gold"), ("fx", "gold")]}
    fig = lineage.draw(edges)
    pos = {box.get_text(): box.get_position() for box in fig.axes[0].texts if box.get_text()}  # not the arrows
    plt.close(fig)
    assert set(pos) == {"topic", "raw", "bronze", "silver", "gold", "fx"}
    assert all(pos[e.source][0] < pos[e.target][0] for e in edges)
    assert pos["fx"][0] == pos["silver"][0]  # a side input sits just left of what it feeds
