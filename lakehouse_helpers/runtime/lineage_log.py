"""OpenLineage's event file: read as runs, and kept small.

The Spark listener appends every event to `openlineage.jsonl`, with facets the lineage never
reads (the logical plan, the environment, schemas, ...), for every job of every run: the file
grew by megabytes a run. What the lineage reads of a job is its parent (the Spark application),
its inputs, its outputs with their column lineage, and where it ran relative to the streaming
read around it (a foreachBatch write has no inputs of its own). `compact` keeps exactly that: one
line per job that wrote something, with the inputs of the stream around it worked out once, and
one line for any number of jobs that did the same (a re-run of the workbook adds nothing). It
runs while no Spark writes the file (before the Spark Connect server starts), so no event is
lost between reading the file and replacing it.

Files, in the order they are read: `openlineage.compact.jsonl` (the compacted runs),
`openlineage.jsonl.<n>.taken` (events a compaction took and has not yet folded in: only after a
crash), `openlineage.jsonl` (what the listener wrote since).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ENCLOSING_FACET = "workbook_enclosingStream"  # a compacted run's stream around it: its inputs
TERMINAL = ("COMPLETE", "FAIL", "ABORT")

Dataset = tuple[str, str]


@dataclass
class Run:
    """One Spark job as OpenLineage saw it, from its START to its COMPLETE (or FAIL) event."""

    run_id: str
    app: str
    job: str
    start: int
    end: int = -1
    inputs: set[Dataset] = field(default_factory=set)
    outputs: set[Dataset] = field(default_factory=set)
    columns: dict[Dataset, dict] = field(default_factory=dict)  # output -> columnLineage fields
    enclosing: set[Dataset] | None = None  # inputs of the stream around it, when compaction worked them out


def compacted_file(path: Path) -> Path:
    return path.with_name(f"{path.stem}.compact{path.suffix}")


def _taken(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.*.taken"), key=lambda p: int(p.name.split(".")[-2]))


def files(path: Path) -> list[Path]:
    """Every file of the lineage, oldest events first: delete them all to forget it."""
    return [compacted_file(path), *_taken(path), path]


def _lines(paths: Iterable[Path]) -> Iterable[str]:
    for p in paths:
        if p.exists():
            yield from p.read_text().splitlines()


def read_runs(path: Path) -> list[Run]:
    """Jobs from the lineage files, in start order. The application's own run is left out."""
    return _runs(_lines(files(path)))


def _runs(lines: Iterable[str]) -> list[Run]:
    runs: dict[str, Run] = {}
    for i, line in enumerate(lines):
        try:
            event = json.loads(line)
        except ValueError:  # a line cut short by a killed process: the job is re-run anyway
            continue
        facets = event["run"].get("facets", {})
        parent = facets.get("parent")
        if parent is None:
            continue
        run = runs.setdefault(
            event["run"]["runId"],
            Run(event["run"]["runId"], parent["run"]["runId"], event["job"]["name"], start=i),
        )
        run.inputs |= {(d["namespace"], d["name"]) for d in event.get("inputs", [])}
        for d in event.get("outputs", []):
            key = (d["namespace"], d["name"])
            run.outputs.add(key)
            fields = d.get("facets", {}).get("columnLineage", {}).get("fields")
            if fields:
                run.columns[key] = fields
        if ENCLOSING_FACET in facets:
            run.enclosing = {(d["namespace"], d["name"]) for d in facets[ENCLOSING_FACET]["inputs"]}
        if event["eventType"] in TERMINAL:
            run.end = i
    return sorted(runs.values(), key=lambda r: r.start)


def _inside(run: Run, outer: Run) -> bool:
    return outer.app == run.app and outer.start < run.start and run.end != -1 and run.end < outer.end


def enclosing_inputs(run: Run, runs: list[Run]) -> set[Dataset]:
    """The inputs of the streaming read running around `run` in the same application (started
    before it, completed after it): what a foreachBatch write inside a stream really reads."""
    if run.enclosing is not None:
        return run.enclosing
    around = [o for o in runs if o.inputs and _inside(run, o)]
    return around[-1].inputs if around else set()


def _datasets(keys: Iterable[Dataset]) -> list[dict]:
    return [{"namespace": ns, "name": name} for ns, name in sorted(keys)]


def _compact_event(run: Run, enclosing: set[Dataset]) -> tuple[str, dict]:
    """The run as one OpenLineage-shaped event, and what it says apart from its ids."""
    outputs = [
        {**d, "facets": {"columnLineage": {"fields": run.columns[(d["namespace"], d["name"])]}}}
        if (d["namespace"], d["name"]) in run.columns else d
        for d in _datasets(run.outputs)
    ]
    body = {"inputs": _datasets(run.inputs), "outputs": outputs, "enclosing": _datasets(enclosing)}
    event = {
        "eventType": "COMPLETE" if run.end != -1 else "START",
        "run": {"runId": run.run_id, "facets": {"parent": {"run": {"runId": run.app}},
                                                ENCLOSING_FACET: {"inputs": body["enclosing"]}}},
        "job": {"name": run.job}, "inputs": body["inputs"], "outputs": outputs,
    }
    return json.dumps(event, sort_keys=True), body


def compact_lines(lines: Iterable[str]) -> list[str]:
    """The lines that say everything the lineage reads of `lines`: one per job that wrote
    something (a job that only read makes no edge, and its part as a stream around a write is
    kept in that write's line), and one for any number of jobs that said the same."""
    runs, kept, seen = _runs(lines), [], set()
    for run in runs:
        if not run.outputs:
            continue
        line, body = _compact_event(run, enclosing_inputs(run, runs))
        said = json.dumps(body, sort_keys=True)
        if said not in seen:
            seen.add(said)
            kept.append(line + "\n")
    return kept


@contextmanager
def _locked(path: Path):
    """One compaction at a time (two servers starting, a reset)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def size(path: Path) -> int:
    """Bytes of every lineage file."""
    return sum(p.stat().st_size for p in files(path) if p.exists())


def _held_open(path: Path, writers: Iterable[int]) -> bool:
    """Whether one of the processes `writers` still has `path` open (Linux's /proc)."""
    target = str(path.resolve())
    for pid in writers:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:  # gone, or no /proc: nothing of it is open
            continue
        if target in links:
            return True
    return False


def _closed(taken: list[Path], writers: list[int], wait_s: float) -> list[Path]:
    """The taken files no writer holds open any more. The listener opens the file by name for
    each event, so after the rename only an event already under way can still be writing into
    a taken file: wait for it (a short deadline); one still open is folded in next time."""
    deadline = time.monotonic() + wait_s
    while True:
        open_now = [p for p in taken if _held_open(p, writers)]
        if not open_now or time.monotonic() >= deadline:
            return [p for p in taken if p not in open_now]
        time.sleep(0.01)  # polls the writers' open files until the deadline, not a fixed wait


def compact(path: Path, writers: Iterable[int] = (), wait_s: float = 2.0) -> tuple[int, int]:
    """Fold what the listener wrote into the compacted file; the lineage's size before and after.
    `writers`: the processes that may be appending to `path` now (a running Spark Connect
    server): the file is renamed away first, and a renamed file is read only once none of them
    holds it open, so an event being written at the rename is not lost."""
    writers = list(writers)
    with _locked(path):
        before = size(path)
        if path.exists():  # renamed first, so a crash from here on loses nothing: it is read back as taken
            path.rename(path.with_name(f"{path.name}.{time.time_ns()}.taken"))
        taken, target = _closed(_taken(path), writers, wait_s), compacted_file(path)
        if taken:
            scratch = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            scratch.write_text("".join(compact_lines(_lines([target, *taken]))))
            scratch.replace(target)
            for p in taken:
                p.unlink()
        return before, size(path)
