"""Lineage from what actually ran, at table level and for columns.

Spark's side comes from OpenLineage: its Spark listener (configured in `spark.py`) writes one
JSON event per job start and end to `<data folder>/lineage/openlineage.jsonl`, naming the
datasets the job read and wrote and, for SQL writes, the input columns of every output column.
`lineage_log` reads that file and keeps it small (a compacted file beside it).

The listener has two blind spots, filled from evidence the workbook itself keeps:
- A write inside `foreachBatch` is reported without inputs. It is attributed to the streaming
  read that was running around it in the same Spark application (started before the write,
  completed after it): 02's Kafka read, 06's read of bronze.
- Rows handed over through a cached DataFrame (03's export) or read by a Python data source
  (05's Auto Loader) have no visible input. Those two hops come from 03's export watermark
  (which raw versions went to the landing zone) and from bronze's `_source_file` column (every
  bronze row names the landing file it came from).

Every edge carries the evidence it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.lineage_log import Run, enclosing_inputs, read_runs
from lakehouse_helpers.runtime.settings import Settings

OPENLINEAGE = "OpenLineage"
ENCLOSING_STREAM = "OpenLineage, foreachBatch inside a stream"
EXPORT_WATERMARK = "03's export watermark"
SOURCE_FILE = "bronze's _source_file column"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    evidence: str


def events_file(settings: Settings, spark=None) -> Path:
    """The listener's file: the Spark Connect server's own in connect mode (one file for every
    session it serves), else the one this process's Spark writes."""
    if spark is not None and settings.uses_connect:
        return Path(spark.conf.get("spark.openlineage.transport.location", str(layout.lineage_events(settings))))
    return layout.lineage_events(settings)


def dataset_path(namespace: str, name: str) -> str:
    """An OpenLineage dataset as one path: `kafka://topic`, or a table's folder (a read of its
    Delta log names the table)."""
    if namespace.startswith("kafka://"):
        return f"kafka://{name}"
    path = name if namespace == "file" else f"{namespace.rstrip('/')}/{name.lstrip('/')}"
    return path.removeprefix("file:").rstrip("/").removesuffix("/_delta_log")


def resolver(spark, settings: Settings, tables: list[str]):
    """A function from an OpenLineage dataset to a workbook name (None for anything else)."""
    locations = {}
    for table in tables:
        if spark.catalog.tableExists(table):
            location = spark.sql(f"DESCRIBE DETAIL {table}").first()["location"]
            locations[location.removeprefix("file:").rstrip("/")] = table
    topic, landing = f"kafka://{settings.kafka_topic}", layout.landing_url(settings)

    def resolve(dataset: tuple[str, str]) -> str | None:
        path = dataset_path(*dataset)
        if path == topic:
            return topic_name(settings)
        if path.startswith(landing):
            return landing_name(settings)
        return locations.get(path)

    return resolve


def topic_name(settings: Settings) -> str:
    return f"kafka topic {settings.kafka_topic}"


def landing_name(settings: Settings) -> str:
    return f"landing zone {layout.landing_url(settings)}"


def spark_edges(runs: list[Run], resolve) -> set[Edge]:
    """Edges from every job that read and wrote workbook datasets (self-edges left out)."""
    edges: set[Edge] = set()
    for run in runs:
        targets = {resolve(d) for d in run.outputs} - {None}
        sources, evidence = {resolve(d) for d in run.inputs} - {None}, OPENLINEAGE
        if targets and not (sources - targets):
            # No visible input: the streaming read around this foreachBatch write, if any.
            around = enclosing_inputs(run, runs)
            if around:
                sources = {resolve(d) for d in around} - {None}
                evidence = ENCLOSING_STREAM
        edges |= {Edge(s, t, evidence) for s in sources for t in targets if s != t}
    return edges


def recorded_edges(spark, settings: Settings) -> set[Edge]:
    """The two hops Spark's plans do not show, from what 03 and 05 keep."""
    from lakehouse_helpers.runtime.ledgers import read_watermark

    edges = set()
    if read_watermark(settings)["exports"]:
        edges.add(Edge(layout.raw_table(settings), landing_name(settings), EXPORT_WATERMARK))
    bronze = layout.bronze_table(settings)
    if spark.catalog.tableExists(bronze):
        landing = layout.landing_url(settings)
        from_landing = spark.sql(
            f"SELECT count(*) AS n FROM {bronze} WHERE startswith(_source_file, '{landing}/')").first()["n"]
        if from_landing:
            edges.add(Edge(landing_name(settings), bronze, SOURCE_FILE))
    return edges


def table_edges(spark, settings: Settings, tables: list[str]) -> set[Edge]:
    runs = read_runs(events_file(settings, spark))
    return spark_edges(runs, resolver(spark, settings, tables)) | recorded_edges(spark, settings)


def column_lineage(spark, settings: Settings, tables: list[str], table: str, column: str):
    """Where `table.column` comes from, step by step upstream, as OpenLineage recorded it."""
    import pandas as pd

    runs, resolve = read_runs(events_file(settings, spark)), resolver(spark, settings, tables)
    sources: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for run in runs:
        for output, fields in run.columns.items():
            target = resolve(output)
            for out_col, spec in fields.items():
                for f in spec.get("inputFields", []):
                    source = resolve((f["namespace"], f["name"]))
                    kind = ", ".join(
                        sorted({t.get("subtype", t.get("type", "")) for t in f.get("transformations", [])}))
                    if target and source and (source, f["field"]) != (target, out_col):
                        sources.setdefault((target, out_col), set()).add((source, f["field"], kind))
    rows, todo, seen = [], [(table, column)], set()
    while todo:
        node = todo.pop(0)
        for source, field_name, kind in sorted(sources.get(node, ())):
            rows.append({"column": f"{node[0]}.{node[1]}", "comes from": f"{source}.{field_name}", "how": kind})
            if (source, field_name) not in seen:
                seen.add((source, field_name))
                todo.append((source, field_name))
    return pd.DataFrame(rows, columns=["column", "comes from", "how"])


def _layout(edges: set[Edge]) -> dict[str, tuple[float, float]]:
    """Columns by longest path from a source (a source sits just left of its first target);
    within a column, nodes ordered by where their inputs are, to keep arrows from crossing."""
    nodes = sorted({e.source for e in edges} | {e.target for e in edges})
    depth = {n: 0 for n in nodes}
    for _ in nodes:  # a DAG settles within len(nodes) rounds
        for e in edges:
            depth[e.target] = max(depth[e.target], depth[e.source] + 1)
    for n in nodes:
        targets = [depth[e.target] for e in edges if e.source == n]
        if targets and not any(e.target == n for e in edges):
            depth[n] = min(targets) - 1
    pos: dict[str, tuple[float, float]] = {}
    for d in sorted(set(depth.values())):
        column = [n for n in nodes if depth[n] == d]
        inputs = {n: [pos[e.source][1] for e in edges if e.target == n and e.source in pos] for n in column}
        column.sort(key=lambda n: (-sum(inputs[n]) / len(inputs[n]) if inputs[n] else 0, n))
        pos.update({n: (d * 2.8, (len(column) - 1) / 2 - i) for i, n in enumerate(column)})
    return pos


def draw(edges: set[Edge], label=lambda n: n, title: str = "Lineage of the workbook's tables"):
    """A left-to-right picture: solid arrows seen by OpenLineage, dashed ones from records."""
    import matplotlib.pyplot as plt

    pos = _layout(edges)
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    fig, ax = plt.subplots(figsize=(max(xs) - min(xs) + 3, max(ys) - min(ys) + 2))
    boxes = {n: ax.text(x, y, label(n), ha="center", va="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.35", "fc": "#eef4fb", "ec": "#4a78a8"})
             for n, (x, y) in pos.items()}
    fig.canvas.draw()  # sizes the boxes, so arrows can stop at their edges
    for e in sorted(edges, key=lambda e: (e.source, e.target)):
        style = "solid" if e.evidence.startswith(OPENLINEAGE) else "dashed"
        ax.annotate("", xy=pos[e.target], xytext=pos[e.source],
                    arrowprops={"arrowstyle": "-|>", "color": "#555", "linestyle": style, "lw": 1.0,
                                "patchA": boxes[e.source].get_bbox_patch(),
                                "patchB": boxes[e.target].get_bbox_patch(), "shrinkA": 2, "shrinkB": 2})
    ax.set_xlim(min(xs) - 1.4, max(xs) + 1.4)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_title(f"{title}\n(solid: seen by OpenLineage; dashed: from the workbook's records)", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def picture_file(settings: Settings) -> Path:
    """In this data folder (in connect mode the events file is the server's, elsewhere)."""
    path = events_file(settings).parent / "lineage.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
