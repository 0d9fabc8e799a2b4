"""`make bench`: the start-up costs users feel most, measured on this machine.

Each figure is a wall-clock measurement of the real thing: the services' cold start (after
`down`), their warm reuse (`up` again), a Spark session with every jar, and the memory the
running stack holds. Results are printed and written to `<state_dir>/bench/latest.json`.
"""

from __future__ import annotations

import json
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
    """Spark start in a fresh interpreter (what a notebook kernel pays), plus its memory."""
    code = (
        "import time,json,os;t=time.monotonic();"
        "from lakehouse_helpers import get_spark;s=get_spark();"
        "s.range(1).count();dt=time.monotonic()-t;"
        "pid=s.sparkContext._jvm.java.lang.ProcessHandle.current().pid();"
        "rss=[int(l.split()[1]) for l in open(f'/proc/{pid}/status') if l.startswith('VmRSS:')][0]/1024;"
        "print(json.dumps({'spark_start_s':round(dt,1),'spark_driver_rss_mb':round(rss)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(settings: Settings) -> int:
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
    figures["stack_peak_rss_mb"] = figures["services_rss_mb"] + figures["spark_driver_rss_mb"]
    out = settings.state_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(figures, indent=2))
    for k, v in figures.items():
        print(f"{k:28s} {v}")
    print(f"\nwritten to {out / 'latest.json'}")
    return 0
