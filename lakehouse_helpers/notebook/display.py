"""Small, consistent charts and tables for the notebooks."""

from __future__ import annotations


def bar_chart(values: dict, title: str, xlabel: str = "count", highlight=()):
    """A horizontal bar chart of a {label: number} dict; `highlight` labels are drawn in red."""
    import matplotlib.pyplot as plt

    labels = list(values)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(labels) + 1.2))
    colors = ["#c0392b" if label in highlight else "#2c7fb8" for label in labels]
    bars = ax.barh(labels, [values[k] for k in labels], color=colors)
    ax.bar_label(bars, padding=3)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def heatmap(frame, title: str, fmt: str = "{:,.0f}"):
    """A labelled heatmap of a pandas DataFrame (rows x columns of numbers)."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(1.4 * len(frame.columns) + 2.5, 0.6 * len(frame.index) + 1.4))
    image = ax.imshow(frame.to_numpy(dtype=float), cmap="YlOrBr")
    ax.set_xticks(range(len(frame.columns)), labels=list(frame.columns))
    ax.set_yticks(range(len(frame.index)), labels=list(frame.index))
    middle = frame.to_numpy(dtype=float).mean()
    for (i, j), value in np.ndenumerate(frame.to_numpy(dtype=float)):
        ax.text(j, i, fmt.format(value), ha="center", va="center", color="white" if value > middle else "black")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def short_error(error: BaseException, lines: int = 4) -> str:
    """An expected error as a lesson: its name (Spark's error condition where there is one) and
    the first lines of its message, without the JVM stack trace."""
    condition = getattr(error, "getCondition", None) or getattr(error, "getErrorClass", None)
    name = type(error).__name__
    if callable(condition) and condition():
        name = f"{name} [{condition()}]"
    text = str(error)
    java = getattr(error, "java_exception", None)  # classic Spark: an exception pyspark does not convert
    if java is not None:
        name = java.getClass().getSimpleName()
        text = str(java.getMessage())
    message = [m for m in text.splitlines() if m.strip() and not m.lstrip().startswith(("at ", "JVM stacktrace"))]
    return f"{name}: " + "\n".join(message[:lines])


def pass_fail_chart(names, passed, failed, title: str):
    """Horizontal stacked bars: rows that passed (blue) and failed (red) each check."""
    import matplotlib.pyplot as plt

    names, passed, failed = list(names), [int(p) for p in passed], [int(f) for f in failed]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    ax.barh(names, passed, color="#2c7fb8", label="passed")
    bars = ax.barh(names, failed, left=passed, color="#c0392b", label="failed")
    ax.bar_label(bars, labels=[f"{f} failed" for f in failed], padding=3)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel("rows")
    ax.legend(loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
