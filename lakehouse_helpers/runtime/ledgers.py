"""The landing zone's ledgers: what reached `landing/orders/` and from where.

Two small JSON objects beside the data (keys in `layout`), each replaced whole by one S3 PUT:
- the export watermark (03 writes it): the last raw table version exported, and every export;
- the drops ledger (05's demo writes it): files other systems dropped into the landing zone.
04 reconciles the landing rows with both, 06 rebuilds its ground truth from the drops, and
07's lineage reads the export's hop from the watermark.
"""

from __future__ import annotations

import time

from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.settings import Settings
from lakehouse_helpers.runtime.storage import read_json, write_json

NO_EXPORT = {"last_exported_version": -1, "exports": []}
NO_DROPS: dict = {"drops": []}


def read_watermark(settings: Settings) -> dict:
    """The export's state: `last_exported_version` (-1 before the first export) and `exports`."""
    return read_json(settings, layout.EXPORT_STATE_KEY, NO_EXPORT)


def commit_watermark(settings: Settings, state: dict) -> None:
    write_json(settings, layout.EXPORT_STATE_KEY, state)


def read_drops(settings: Settings) -> dict:
    """The drops ledger: `drops`, one entry per dropped folder (`id`, `rows`, `path`, ...)."""
    return read_json(settings, layout.DROPS_STATE_KEY, NO_DROPS)


def find_drop(settings: Settings, drop_id: str) -> dict | None:
    return next((d for d in read_drops(settings)["drops"] if d["id"] == drop_id), None)


def record_drop(settings: Settings, drop_id: str, rows: int, path: str, new_columns: list[str], **extra) -> dict:
    """Add a drop to the ledger, after its files are written (a crash before leaves no entry,
    and the next call writes the same folder again)."""
    state = read_drops(settings)
    entry = {"id": drop_id, "rows": rows, "path": path, "new_columns": new_columns, "at": time.time(), **extra}
    state["drops"].append(entry)
    write_json(settings, layout.DROPS_STATE_KEY, state)
    return entry


def dropped_rows(settings: Settings) -> int:
    """Rows that arrived in the landing zone from outside the export (04 reconciles them)."""
    return sum(d["rows"] for d in read_drops(settings)["drops"])
