"""Progress a learner can see: a widget bar in JupyterLab, plain lines when the runner executes a
notebook headless (papermill cannot show a widget, and would store it as a warning-laden blob).

`follow(query)` is `query.awaitTermination()` with the stream's progress shown as it goes.
"""

from __future__ import annotations

import os

from lakehouse_helpers.runtime.settings import HEADLESS_ENV

# How long one wait for the query lasts before the bar is brought up to date: the wait returns
# at once when the query stops, so this bounds only how stale the bar can be.
POLL_S = 0.5


def progress_bar():
    """tqdm's bar class: the notebook widget in a kernel with a front end, text headless.
    None where tqdm is not installed (a Databricks cluster without it): no bar, same waits."""
    try:
        if os.environ.get(HEADLESS_ENV):
            from tqdm import tqdm
        else:
            from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _rows(progress) -> tuple[int, int]:
    """(batch id, rows read) of one progress report, as Spark Connect and classic Spark give it."""
    if isinstance(progress, dict):
        return int(progress.get("batchId", -1)), int(progress.get("numInputRows") or 0)
    return int(progress.batchId), int(progress.numInputRows or 0)


def follow(query, desc: str = "", unit: str = "rows") -> int:
    """Wait until `query` stops, as `awaitTermination()` does (its failure is raised the same
    way), while a bar counts the rows its micro-batches read. Returns the rows counted."""
    bar_class = progress_bar()
    bar = bar_class(desc=desc or (query.name or "stream"), unit=unit) if bar_class else None
    seen: set[int] = set()
    rows = 0

    def update() -> None:
        nonlocal rows
        for progress in query.recentProgress:
            batch, read = _rows(progress)
            if batch not in seen:
                seen.add(batch)
                rows += read
                if bar is not None:
                    bar.update(read)

    try:
        while not query.awaitTermination(POLL_S):  # True once the query has stopped
            update()
        update()  # the last batches, reported as the query stopped
    finally:
        if bar is not None:
            bar.close()
    query.awaitTermination()  # raises the query's failure, if it failed
    return rows
