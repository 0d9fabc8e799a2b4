"""Start-up costs users feel most: the services' cold start and warm reuse, Spark for a kernel
(attach to the warm server, or a classic in-process start), memory, and optionally every
notebook in connect and in classic mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from lakehouse_helpers.runtime import jvm, services
from lakehouse_helpers.runtime.settings import Settings


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


KERNEL_START = Path(__file__).with_name("kernel_start.py")
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # where `import lakehouse_helpers` finds this copy


def spark_start() -> dict:
    """What a fresh notebook kernel pays for Spark: an in-process Spark with every jar (classic),
    or attaching to the warm Spark Connect server (connect); first query included in both."""
    figures = {}
    path = os.pathsep.join(p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")) if p)
    for mode in ("classic", "connect"):
        env = {**os.environ, "LAKEHOUSE_SPARK_MODE": mode, "PYTHONPATH": path}
        out = subprocess.run([sys.executable, "-P", str(KERNEL_START), mode], env=env,
                             capture_output=True, text=True, check=True).stdout
        figures.update(json.loads(out.strip().splitlines()[-1]))
    return figures


def services_start(settings: Settings) -> dict:
    """Cold start (after `down`: this restarts the stack), warm `up` and the services' memory."""
    figures: dict = {"jar_cache_mb": round(jvm.cache_size_bytes(settings) / 1e6)}
    services.down(settings)
    t = time.monotonic()
    statuses = services.up(settings)
    figures["services_cold_start_s"] = round(time.monotonic() - t, 1)
    for st in statuses:
        figures[f"{st.name}_start_s"] = round(st.start_seconds or 0, 1)
    t = time.monotonic()
    services.up(settings)
    figures["services_warm_up_s"] = round(time.monotonic() - t, 2)
    figures["services_rss_mb"] = round(sum(_rss_mb(st.pid) for st in statuses if st.pid))
    return figures


def startup(settings: Settings) -> dict:
    figures = services_start(settings)
    figures.update(spark_start())
    figures["stack_peak_rss_mb"] = figures["services_rss_mb"] + figures["spark_driver_rss_mb"]  # classic
    return figures


def workbook(settings: Settings, mode: str) -> dict:
    """Every notebook at its defaults in `mode`, on a data folder, topic, bucket and schemas of
    its own (the user's tables are not touched)."""
    from lakehouse_helpers.notebook.runner import run_notebooks
    from lakehouse_helpers.runtime.storage import ensure_bucket

    run = uuid.uuid4().hex[:8]
    env = {"LAKEHOUSE_DATA_DIR": str(settings.state_dir / "bench" / f"workbook-{run}"), "KAFKA_TOPIC": f"bench.{run}",
           "S3_BUCKET": f"bench-{run}", "LAKEHOUSE_SCHEMA_PREFIX": f"bench{run}_", "LAKEHOUSE_SPARK_MODE": mode}
    run_settings = settings.replace(data_dir_override=env["LAKEHOUSE_DATA_DIR"], kafka_topic=env["KAFKA_TOPIC"],
                                    s3_bucket=env["S3_BUCKET"], schema_prefix=env["LAKEHOUSE_SCHEMA_PREFIX"],
                                    spark_mode=mode)
    ensure_bucket(run_settings)
    saved = dict(os.environ)
    os.environ.update(env)  # the notebook kernels inherit it
    try:
        start = time.monotonic()
        _, results = run_notebooks(run_settings, out_dir=settings.state_dir / "bench" / f"runs-{run}")
        seconds = time.monotonic() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    failed = [r for r in results if r.status != "ok"]
    if failed:  # its tables stay, to look at
        raise RuntimeError(f"workbook benchmark ({mode}) failed in {failed[0].notebook}: {failed[0].error}")
    from lakehouse_helpers.bench.sandbox import discard
    from lakehouse_helpers.runtime.spark import get_spark

    discard(get_spark(settings), run_settings)  # the executed notebooks (runs-<run>) stay
    return {f"workbook_{mode}_s": round(seconds, 1),
            **{f"workbook_{mode}_{r.notebook[:2]}_s": r.seconds for r in results}}


def notebooks(settings: Settings, services_cold_start_s: float | None) -> dict:
    figures: dict = {}
    for mode in ("connect", "classic"):
        figures.update(workbook(settings, mode))
    figures["workbook_classic_over_connect"] = round(figures["workbook_classic_s"] / figures["workbook_connect_s"], 2)
    if services_cold_start_s is not None:
        # `make run` from services down: a cold start, then every notebook on the warm server.
        figures["run_from_services_down_s"] = round(services_cold_start_s + figures["workbook_connect_s"], 1)
    return figures
