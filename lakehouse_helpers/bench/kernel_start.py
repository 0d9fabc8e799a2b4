"""What a fresh notebook kernel pays for Spark, measured in a process of its own (`startup`
runs it): `python -P kernel_start.py classic|connect` prints one line of JSON.

Run as a file, not with `-m`: `-m` would import `lakehouse_helpers` before the clock starts,
and a kernel pays for that import. `-P` keeps this folder off `sys.path`; the caller puts the
package on `PYTHONPATH`. So no relative imports here."""

from __future__ import annotations

import json
import sys
import time


def classic(start: float) -> dict:
    """An in-process Spark with every jar, first query included, and its driver's memory."""
    from lakehouse_helpers import get_spark

    spark = get_spark()
    spark.range(1).count()
    seconds = time.monotonic() - start
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {"spark_classic_start_s": round(seconds, 1), "spark_driver_rss_mb": round(rss_kb / 1024)}


def connect(start: float) -> dict:
    """Attaching to the warm Spark Connect server, first query included."""
    from lakehouse_helpers import get_spark

    get_spark().range(1).count()
    return {"spark_connect_attach_s": round(time.monotonic() - start, 2)}


MODES = {"classic": classic, "connect": connect}

if __name__ == "__main__":
    start = time.monotonic()  # before `lakehouse_helpers` is imported, as in a fresh kernel
    print(json.dumps(MODES[sys.argv[1]](start)))
