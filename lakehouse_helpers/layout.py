"""Where each notebook reads and writes: one place, so every notebook agrees."""

from __future__ import annotations

from .settings import Settings


def raw_orders(settings: Settings) -> str:
    """Local Delta table of parsed order events (02 writes, 03 reads)."""
    return str((settings.data_dir / "raw" / "orders").resolve())


def quarantine(settings: Settings) -> str:
    """Local Delta table of rejected messages, with the raw payload and the reason."""
    return str((settings.data_dir / "raw" / "orders_quarantine").resolve())


def checkpoint(settings: Settings, name: str) -> str:
    return str((settings.data_dir / "checkpoints" / name).resolve())


LANDING_PREFIX = "landing/orders"
EXPORT_STATE_KEY = "landing/_export_state/orders.json"


def landing_url(settings: Settings) -> str:
    """The S3 landing zone: Parquet partitioned by ingestion_date (03 writes, 04 and 05 read)."""
    return settings.s3_url(LANDING_PREFIX)


def silver(settings: Settings, name: str = "orders") -> str:
    """Catalog tables of the silver layer (06): `orders`, `orders_rejected`, the logs, `fx_rates`."""
    return settings.table("silver", name)


def gold(settings: Settings, name: str) -> str:
    """Catalog tables of the gold layer (06): `daily_revenue`, `product_performance`, `loyalty`."""
    return settings.table("gold", name)
