"""Run by every Python process the Spark Connect server starts (its PYTHONPATH names this folder):
in pyspark's worker daemon, and only there, start the idle watch (lakehouse_helpers/runtime/services/pydaemon.py)."""

with open("/proc/self/cmdline", "rb") as _fh:
    if _fh.read().split(b"\0")[1:3] == [b"-m", b"pyspark.daemon"]:
        from lakehouse_helpers.runtime.services.pydaemon import watch

        watch()
