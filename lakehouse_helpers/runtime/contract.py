"""The raw and quarantine tables' contract: their columns and types, shared by every stage.

02 writes these tables (stream), 03 exports raw's columns to the landing zone (so the landing
files carry them too), 04 checks the landing schema against `EVENT_FIELDS` (quality), 05's
demo drops write the same columns, and the bench compares its stages on them.
"""

from __future__ import annotations

# An order event's fields, as the generator writes them (events.py) and raw stores them.
EVENT_FIELDS = [
    ("event_id", "string"),
    ("order_id", "string"),
    ("line_no", "int"),
    ("event_ts", "timestamp"),
    ("customer_id", "string"),
    ("customer_email", "string"),
    ("country", "string"),
    ("loyalty_member", "boolean"),
    ("product_id", "string"),
    ("coffee_type", "string"),
    ("roast", "string"),
    ("size_kg", "double"),
    ("unit_price", "double"),
    ("currency", "string"),
    ("quantity", "int"),
]
# Where and when a message arrived: both tables carry these after their own columns.
KAFKA_FIELDS = [
    ("kafka_topic", "string"),
    ("kafka_partition", "int"),
    ("kafka_offset", "long"),
    ("kafka_timestamp", "timestamp"),
    ("ingested_at", "timestamp"),
    ("ingestion_date", "date"),
]
RAW_COLUMNS = [n for n, _ in EVENT_FIELDS] + ["unknown_fields", "payload"] + [n for n, _ in KAFKA_FIELDS]
QUARANTINE_COLUMNS = ["reason", "detail", "kafka_key", "payload"] + [n for n, _ in KAFKA_FIELDS]

RAW_DDL = (
    ", ".join(f"{n} {t}" for n, t in EVENT_FIELDS) + ", unknown_fields array<string>, payload string, "
    + ", ".join(f"{n} {t}" for n, t in KAFKA_FIELDS)
)
QUARANTINE_DDL = "reason string, detail string, kafka_key string, payload string, " + ", ".join(
    f"{n} {t}" for n, t in KAFKA_FIELDS
)
