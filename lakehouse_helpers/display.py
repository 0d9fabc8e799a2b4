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


def show(df, rows: int = 10):
    """Pandas view of a Spark or pandas DataFrame, limited to `rows`."""
    if hasattr(df, "limit") and hasattr(df, "toPandas"):
        return df.limit(rows).toPandas()
    return df.head(rows)
