"""Silver and gold: the expectations engine on crafted rows (one test per action), the MERGE
rules of notebook 06 on crafted duplicates (same batch, across batches, a replayed batch), the
cleaning and rescue repair, and the ground truth the notebook is checked against."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lakehouse_helpers.pipeline import medallion, truth
from lakehouse_helpers.pipeline.drops import drift_batch
from lakehouse_helpers.pipeline.events import CURRENCIES, PRODUCT_ID_PATTERN, GeneratorConfig, generate
from lakehouse_helpers.pipeline.expectations import Expectation
from lakehouse_helpers.runtime.pages import NOTEBOOKS_DIR

NOTEBOOK = NOTEBOOKS_DIR / "06_medallion_silver_gold.ipynb"
EXPECTATIONS = [
    Expectation("has_event_id", "event_id IS NOT NULL", "fail"),
    Expectation("positive_quantity", "quantity > 0", "drop"),
    Expectation("plausible_email", "customer_email LIKE '%_@_%._%'", "warn"),
]
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def bronze_rows(n: int = 3, seed: int = 5) -> list[dict]:
    """Valid bronze-like rows from the generator, each at its own Kafka offset."""
    events = [json.loads(m.value) for m in generate(events=n, seed=seed, malformed_rate=0, invalid_rate=0,
                                                     duplicate_rate=0, late_rate=0, drift_after=1).messages]
    rows = []
    for i, e in enumerate(events):
        e["event_ts"] = datetime.fromisoformat(e["event_ts"].replace("Z", "+00:00"))
        rows.append({**e, "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": i,
                     "ingested_at": T0 + timedelta(seconds=i), "_rescued_data": None, "_source_file": f"f{i}"})
    return rows


# --- the expectations engine, one test per action -------------------------------------------

def test_expectations_are_validated():
    with pytest.raises(ValueError, match="action must be one of"):
        Expectation("x", "true", "ignore")
    with pytest.raises(ValueError, match="unique"):
        from lakehouse_helpers.pipeline.expectations import validate

        validate([Expectation("a", "true"), Expectation("a", "false", "drop")])


def test_notebook_06_expectations_take_the_catalog_from_the_package(tmp_path):
    """06's tagged cells run as the bench and the fault tests run them (their scope names what
    they take from 06's set-up cell), and its expectations use the package's product-id pattern
    and currencies rather than copies of them."""
    from lakehouse_helpers.bench.lake_stages import notebook_06
    from lakehouse_helpers.runtime.settings import load_settings

    tables = medallion.names(load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=None))
    scope = notebook_06(tables)
    predicates = {e.name: e.predicate for e in scope["expectations"]}
    assert predicates["known_product"] == f"product_id RLIKE '{PRODUCT_ID_PATTERN}'"
    assert predicates["known_currency"] == "currency IN ('USD', 'EUR', 'GBP')" and len(CURRENCIES) == 3
    assert callable(scope["upsert_to_silver"]) and set(scope["gold_sql"]) == set(tables.gold_tables)



# --- the ground truth -----------------------------------------------------------------------

def test_truth_counts_each_valid_event_once():
    config = GeneratorConfig(events=500, seed=3, malformed_rate=0.05, invalid_rate=0.1, duplicate_rate=0.1,
        late_rate=0.1)
    batch = generate(config)
    t = truth.from_batches([batch, drift_batch(20, 99)])
    assert t.silver_rows == batch.expected["distinct_valid_events"] + 20
    assert t.bronze_rows == batch.expected["raw"] + 20
    assert t.duplicates == batch.expected["duplicates"] > 0
    assert t.late_events == sum(1 for m in batch.messages if m.kind == "late") > 0


def test_truth_gold_adds_up_to_the_cent_and_compare_finds_one_cent():
    t = truth.from_batches([generate(events=300, seed=4)])
    gold = truth.gold(t, medallion.FX_RATES)
    daily = gold["daily_revenue"]
    assert sum(daily["revenue"]) == sum(t.lines["line_total"])
    assert sum(daily["lines"]) == t.silver_rows
    assert sum(gold["loyalty"]["revenue_usd"]) == sum(daily["revenue_usd"]) == sum(
        gold["product_performance"]["revenue_usd"])
    keys = truth.KEYS["daily_revenue"]
    assert truth.compare(daily, daily, keys).empty
    off = daily.copy()
    off.loc[0, "revenue_usd"] += Decimal("0.01")
    assert len(truth.compare(off, daily, keys)) == 1
    assert len(truth.compare(daily.iloc[1:], daily, keys)) == 1  # a missing row is a difference
