"""The scoreboard: each stage's rate next to its limit, as a table, JSON and a bar chart."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Side:
    """One side of a comparison: how many units (messages, rows, files) it processed in how long,
    what it wrote (checked equal between the sides where it must be), and figures for diagnosis."""

    count: int
    seconds: float
    output: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Stage:
    name: str
    unit: str  # msgs/s, rows/s, files/s
    limit_is: str  # what the limit is, in a few words
    workbook: Side
    limit: Side

    @property
    def ratio(self) -> float:
        """Workbook rate over limit rate: 1.0 means the workbook runs as fast as plain Spark/librdkafka."""
        return self.workbook.rate / self.limit.rate if self.limit.rate else 0.0

    def as_dict(self) -> dict:
        out = {"stage": self.name, "unit": self.unit, "limit_is": self.limit_is,
               "workbook_rate": round(self.workbook.rate, 1), "limit_rate": round(self.limit.rate, 1),
               "ratio": round(self.ratio, 3)}
        for side, s in (("workbook", self.workbook), ("limit", self.limit)):
            out.update({f"{side}_count": s.count, f"{side}_s": round(s.seconds, 3), f"{side}_output": s.output,
                        f"{side}_detail": s.detail})
        return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """fn's result and its wall-clock seconds: what a user waits for, bookkeeping included."""
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def format_table(stages: list[Stage]) -> str:
    head = f"{'stage':30s} {'workbook':>10s} {'limit':>10s} {'ratio':>6s}  {'unit':8s} limit is"
    lines = [head, "-" * len(head)]
    for s in stages:
        lines.append(f"{s.name:30s} {s.workbook.rate:10,.0f} {s.limit.rate:10,.0f} {s.ratio:6.2f}  "
                     f"{s.unit:8s} {s.limit_is}")
    return "\n".join(lines)


def plot_ratios(stages: list[Stage], path: Path, title: str) -> Path:
    """Horizontal bars of the ratios with a line at 1.0 (as fast as the limit)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

    fig = Figure(figsize=(8, 0.45 * len(stages) + 1.4))
    ax = fig.add_subplot()
    names = [s.name for s in stages][::-1]
    ratios = [s.ratio for s in stages][::-1]
    bars = ax.barh(names, ratios, color=["tab:green" if r >= 1 else "tab:orange" for r in ratios])
    ax.bar_label(bars, labels=[f"{r:.2f}" for r in ratios], padding=3, fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("workbook rate / limit rate")
    ax.set_xlim(0, max([1.2, *ratios]) * 1.15)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
