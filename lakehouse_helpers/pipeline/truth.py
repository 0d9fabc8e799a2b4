"""The ground truth of silver and gold, computed with pandas from what the generator meant to
send, independently of Spark: the batches 01 produced (their manifests hold the generator
settings) and the drift files 05 dropped (their ledger holds theirs). Faults are known by
construction, so the expected silver rows and every gold figure follow exactly: counts to the
unit, money to the cent (Python `Decimal`, rounded half up like Spark's DECIMAL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from lakehouse_helpers.runtime.settings import Settings

CENT = Decimal("0.01")


@dataclass
class Truth:
    lines: object  # pandas DataFrame: one row per distinct valid event, silver's columns
    bronze_rows: int  # rows that reach bronze (valid events and their duplicates, drift files)
    late_events: int  # distinct valid events the generator sent hours late

    @property
    def silver_rows(self) -> int:
        return len(self.lines)

    @property
    def duplicates(self) -> int:
        return self.bronze_rows - self.silver_rows


def _config(raw: dict):
    from lakehouse_helpers.pipeline.events import GeneratorConfig

    values = dict(raw)
    if isinstance(values.get("start"), str):
        values["start"] = datetime.fromisoformat(values["start"])
    return GeneratorConfig(**values)


def batches(settings: Settings) -> list:
    """Every generator batch whose events reach bronze: produced batches, then drift drops."""
    from lakehouse_helpers.pipeline.drops import drift_batch
    from lakehouse_helpers.pipeline.events import generate
    from lakehouse_helpers.pipeline.produce import load_manifests
    from lakehouse_helpers.runtime.ledgers import read_drops

    out = [generate(_config(m["config"])) for m in load_manifests(settings)]
    for drop in read_drops(settings)["drops"]:
        # Ledgers written before the generator settings were recorded: the id names them.
        _, seed, events = drop["id"].split("-")
        out.append(drift_batch(**drop.get("generator", {"events": int(events), "seed": int(seed)})))
    return out


def from_batches(generated: list) -> Truth:
    import pandas as pd

    rows, seen, bronze_rows, late = [], set(), 0, 0
    for batch in generated:
        for m in batch.messages:
            if m.destination != "raw":
                continue  # quarantined by 02: never reaches bronze
            bronze_rows += 1
            if m.event_id in seen:
                continue
            seen.add(m.event_id)
            late += m.kind == "late"
            e = json.loads(m.value)
            price = Decimal(str(e["unit_price"]))
            rows.append({
                "event_id": e["event_id"], "order_id": e["order_id"], "order_date": e["event_ts"][:10],
                "customer_id": e["customer_id"], "country": e["country"], "currency": e["currency"],
                "loyalty_member": bool(e["loyalty_member"]), "coffee_type": e["coffee_type"],
                "roast": e["roast"], "size_kg": float(e["size_kg"]), "quantity": int(e["quantity"]),
                "unit_price": price, "line_total": (price * e["quantity"]).quantize(CENT, ROUND_HALF_UP),
                "promo_code": e.get("promo_code"),
            })
    return Truth(pd.DataFrame(rows), bronze_rows, late)


def load(settings: Settings) -> Truth:
    return from_batches(batches(settings))


def _usd(lines, rates: dict[str, str]):
    rate = lines["currency"].map(lambda c: Decimal(rates[c]))
    return [(t * r).quantize(CENT, ROUND_HALF_UP) for t, r in zip(lines["line_total"], rate, strict=True)]


def gold(truth: Truth, rates: dict[str, str]) -> dict:
    """The three gold tables as pandas DataFrames, with the same columns as 06's SQL."""
    lines = truth.lines.assign(line_total_usd=_usd(truth.lines, rates))
    daily = lines.groupby(["order_date", "country", "currency"], as_index=False).agg(
        orders=("order_id", "nunique"), lines=("event_id", "count"), units=("quantity", "sum"),
        revenue=("line_total", "sum"), revenue_usd=("line_total_usd", "sum"),
    )
    products = lines.groupby(["coffee_type", "roast", "size_kg"], as_index=False).agg(
        lines=("event_id", "count"), units=("quantity", "sum"), revenue_usd=("line_total_usd", "sum"),
    )
    total = sum(products["revenue_usd"], Decimal(0))
    products["share_of_revenue"] = [float(r / total) for r in products["revenue_usd"]]
    loyalty = lines.groupby("loyalty_member", as_index=False).agg(
        customers=("customer_id", "nunique"), orders=("order_id", "nunique"),
        lines=("event_id", "count"), revenue_usd=("line_total_usd", "sum"),
    )
    loyalty["avg_order_value_usd"] = [
        (r / o).quantize(CENT, ROUND_HALF_UP) for r, o in zip(loyalty["revenue_usd"], loyalty["orders"], strict=True)
    ]
    return {"daily_revenue": daily, "product_performance": products, "loyalty": loyalty}


KEYS = {
    "daily_revenue": ["order_date", "country", "currency"],
    "product_performance": ["coffee_type", "roast", "size_kg"],
    "loyalty": ["loyalty_member"],
}
# Shares are ratios, not money: compared to four decimals.
APPROXIMATE = {"share_of_revenue": 1e-4}


def _normalise(df, keys: list[str]):
    out = df.copy()
    if "order_date" in out:
        out["order_date"] = out["order_date"].astype(str)
    if "size_kg" in out:
        out["size_kg"] = out["size_kg"].astype(float)
    return out.sort_values(keys).reset_index(drop=True)


def compare(actual, expected, keys: list[str]):
    """Rows where the actual table (pandas) differs from the expected one: missing, extra, or a
    value that is not equal (exactly, except the ratios in APPROXIMATE). Empty means equal."""
    import pandas as pd

    a, e = _normalise(actual, keys), _normalise(expected, keys)
    values = [c for c in e.columns if c not in keys]
    both = a.merge(e, on=keys, how="outer", suffixes=("", "_expected"), indicator=True)
    bad = both["_merge"] != "both"
    for c in values:
        got, want = both[c], both[f"{c}_expected"]
        if c in APPROXIMATE:
            differs = [abs(float(x) - float(y)) > APPROXIMATE[c] for x, y in zip(got, want, strict=True)]
        else:
            differs = [x != y for x, y in zip(got, want, strict=True)]
        bad |= pd.Series(differs, index=both.index)
    return both[bad]
