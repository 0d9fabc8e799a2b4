"""`make bench`: the start-up costs users feel most, measured on this machine.

Each figure is a wall-clock measurement of the real thing: the services' cold start (after
`down`), their warm reuse (`up` again), a Spark session with every jar, the memory the running
stack holds and, with `BENCH_EVENTS=N`, the produce / stream / export rates for N events.
Results are printed and written to `<state_dir>/bench/latest.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import jvm, services
from .settings import Settings


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, from /proc."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(c) for c in children]
    except FileNotFoundError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def _spark_start(settings: Settings) -> dict:
    """What a fresh notebook kernel pays for Spark: an in-process Spark with every jar (classic),
    or attaching to the warm Spark Connect server (connect); first query included in both."""
    classic = (
        "import time,json;t=time.monotonic();"
        "from lakehouse_helpers import get_spark;s=get_spark();"
        "s.range(1).count();dt=time.monotonic()-t;"
        "pid=s.sparkContext._jvm.java.lang.ProcessHandle.current().pid();"
        "rss=[int(l.split()[1]) for l in open(f'/proc/{pid}/status') if l.startswith('VmRSS:')][0]/1024;"
        "print(json.dumps({'spark_classic_start_s':round(dt,1),'spark_driver_rss_mb':round(rss)}))"
    )
    connect = (
        "import time,json;t=time.monotonic();"
        "from lakehouse_helpers import get_spark;s=get_spark();"
        "s.range(1).count();print(json.dumps({'spark_connect_attach_s':round(time.monotonic()-t,2)}))"
    )
    figures = {}
    for mode, code in (("classic", classic), ("connect", connect)):
        env = {**os.environ, "LAKEHOUSE_SPARK_MODE": mode}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        figures.update(json.loads(out.strip().splitlines()[-1]))
    return figures


def workbook(settings: Settings, mode: str) -> dict:
    """Every notebook at its defaults in `mode`, on a data folder, topic, bucket and schemas of
    its own (the user's tables are not touched)."""
    import uuid

    from .runner import run_notebooks
    from .storage import ensure_bucket

    run = uuid.uuid4().hex[:8]
    env = {"LAKEHOUSE_DATA_DIR": str(settings.state_dir / "bench" / f"workbook-{run}"), "KAFKA_TOPIC": f"bench.{run}",
           "S3_BUCKET": f"bench-{run}", "LAKEHOUSE_SCHEMA_PREFIX": f"bench{run}_", "LAKEHOUSE_SPARK_MODE": mode}
    run_settings = settings.replace(data_dir_override=env["LAKEHOUSE_DATA_DIR"], kafka_topic=env["KAFKA_TOPIC"],
                                    s3_bucket=env["S3_BUCKET"], schema_prefix=env["LAKEHOUSE_SCHEMA_PREFIX"], spark_mode=mode)
    ensure_bucket(run_settings)
    saved = dict(os.environ)
    os.environ.update(env)  # the notebook kernels inherit it
    try:
        start = time.monotonic()
        _, results = run_notebooks(run_settings, out_dir=settings.state_dir / "bench" / f"runs-{run}", log=lambda *_: None)
        seconds = time.monotonic() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    failed = [r for r in results if r.status != "ok"]
    if failed:
        raise RuntimeError(f"workbook benchmark ({mode}) failed in {failed[0].notebook}: {failed[0].error}")
    return {f"workbook_{mode}_s": round(seconds, 1),
            **{f"workbook_{mode}_{r.notebook[:2]}_s": r.seconds for r in results}}


def pipeline(settings: Settings, events: int) -> dict:
    """Produce -> stream -> export for `events` order events, in a data folder, topic and bucket
    of its own (the user's tables are not touched), in a fresh interpreter like a notebook."""
    import uuid

    run = uuid.uuid4().hex[:8]
    code = f"""
import json, time
from lakehouse_helpers import get_spark, load_settings, storage
from lakehouse_helpers.events import generate
from lakehouse_helpers.produce import produce
from lakehouse_helpers.stream import run_stream
from lakehouse_helpers.export import export_to_landing
s = load_settings(data_dir_override={str(settings.state_dir / "bench" / run)!r},
                  kafka_topic="bench.{run}", s3_bucket="bench-{run}")
storage.ensure_bucket(s)
t = time.monotonic(); batch = generate(events={events}); gen_s = time.monotonic() - t
p = produce(s, batch, progress=False)
spark = get_spark(s)
st = run_stream(spark, s)
ex = export_to_landing(spark, s)
print(json.dumps({{
    "events": {events}, "messages": len(batch.messages), "generate_s": round(gen_s, 1),
    "produce_s": p.seconds, "produce_msgs_per_s": round(p.rate),
    "stream_s": st.seconds, "stream_rows_per_s": round(st.rows_per_second),
    "raw_rows": st.raw_rows_added, "quarantine_rows": st.quarantine_rows_added,
    "export_s": ex.seconds, "export_rows_per_s": round(ex.rows / ex.seconds) if ex.seconds else 0,
}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pipeline benchmark failed:\n{out.stderr[-3000:]}")
    return {f"pipeline_{k}": v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


AUTOLOADER_SCRIPT = """
import json, os, shutil, sys, time
from lakehouse_helpers import get_spark, load_settings
from lakehouse_helpers import autoloader as al
from lakehouse_helpers.events import generate
root, files, rows_per_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
shutil.rmtree(root, ignore_errors=True)
os.makedirs(f"{root}/src")
lines = [m.value.decode() for m in generate(events=rows_per_file, malformed_rate=0, invalid_rate=0, duplicate_rate=0).messages]
body = "\\n".join(lines) + "\\n"
for i in range(files):
    with open(f"{root}/src/f{i:05d}.json", "w") as fh:
        fh.write(body)
spark = get_spark(load_settings())
t = time.monotonic()
df = al.read_stream(spark, load_settings(), f"{root}/src", "json", schema_location=f"{root}/schema",
                    schema_hints="quantity int, event_ts timestamp", max_files_per_trigger=1000)
q = (df.writeStream.format("delta").option("checkpointLocation", f"{root}/checkpoint")
     .trigger(availableNow=True).start(f"{root}/out"))
q.awaitTermination()
seconds = time.monotonic() - t
rows = spark.read.format("delta").load(f"{root}/out").count()
assert rows == files * len(lines), (rows, files * len(lines))
print(json.dumps({"files": files, "rows": rows, "seconds": round(seconds, 1),
                  "files_per_s": round(files / seconds, 1), "rows_per_s": round(rows / seconds)}))
shutil.rmtree(root, ignore_errors=True)
"""


def autoloader(settings: Settings, files: int, rows_per_file: int) -> dict:
    """Auto Loader (open-source) ingesting `files` JSON files into Delta, from a fresh checkpoint."""
    root = str(settings.state_dir / "bench" / f"autoloader-{files}x{rows_per_file}")
    out = subprocess.run(
        [sys.executable, "-c", AUTOLOADER_SCRIPT, root, str(files), str(rows_per_file)], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"Auto Loader benchmark failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {f"autoloader_{files}x{rows_per_file}_{k}": v for k, v in result.items() if k in ("seconds", "files_per_s", "rows_per_s")}


def main(settings: Settings, events: int = 0, autoloader_files: bool = False, notebooks: bool = False) -> int:
    figures: dict = {"jar_cache_mb": round(jvm.cache_size_bytes(settings) / 1e6)}
    services.down(settings, log=lambda *_: None)
    t = time.monotonic()
    statuses = services.up(settings, log=lambda *_: None)
    figures["services_cold_start_s"] = round(time.monotonic() - t, 1)
    for st in statuses:
        figures[f"{st.name}_start_s"] = round(st.start_seconds or 0, 1)
    t = time.monotonic()
    services.up(settings, log=lambda *_: None)
    figures["services_warm_up_s"] = round(time.monotonic() - t, 2)
    figures["services_rss_mb"] = round(sum(_rss_mb(st.pid) for st in statuses if st.pid))
    figures.update(_spark_start(settings))
    figures["stack_peak_rss_mb"] = figures["services_rss_mb"] + figures["spark_driver_rss_mb"]  # classic
    if notebooks:
        for mode in ("connect", "classic"):
            figures.update(workbook(settings, mode))
        figures["workbook_classic_over_connect"] = round(figures["workbook_classic_s"] / figures["workbook_connect_s"], 2)
        # `make run` from services down: a cold start, then every notebook on the warm server.
        figures["run_from_services_down_s"] = round(figures["services_cold_start_s"] + figures["workbook_connect_s"], 1)
    if events:
        figures.update(pipeline(settings, events))
    if autoloader_files:
        figures.update(autoloader(settings, 1000, 10))  # many small files
        figures.update(autoloader(settings, 10, 100_000))  # a few large ones (about 40 MB each)
    out = settings.state_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(figures, indent=2))
    for k, v in figures.items():
        print(f"{k:28s} {v}")
    print(f"\nwritten to {out / 'latest.json'}")
    return 0
