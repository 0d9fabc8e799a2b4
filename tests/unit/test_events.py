"""The generator: deterministic for a seed, fault counts exact and each labelled with its destination."""

from __future__ import annotations

import json
import re

import pytest

from lakehouse_helpers.pipeline.events import (
    CURRENCIES,
    CURRENCY,
    DRIFT_FIELD,
    PRODUCT_ID_PATTERN,
    PRODUCT_IDS,
    PRODUCTS,
    REQUIRED_FIELDS,
    GeneratorConfig,
    generate,
)
from lakehouse_helpers.pipeline.medallion import FX_RATES


def test_catalog_has_48_products_with_positive_prices():
    assert len(PRODUCTS) == 48 == len(PRODUCT_IDS)
    assert all(p.unit_price > 0 for p in PRODUCTS)


def test_product_id_pattern_matches_exactly_the_catalog():
    # 06's known_product expectation: every catalog id passes, near misses and the generator's
    # unknown products (XXX-nnn) do not. [.] keeps a dot literal in Spark SQL as in Python.
    assert PRODUCT_ID_PATTERN == "^(ARA|ROB|LIB|EXC)-[LMD]-(0[.]2|0[.]5|1|2[.]5)$"
    assert all(re.fullmatch(PRODUCT_ID_PATTERN, p) for p in PRODUCT_IDS)
    for wrong in ("ARA-L-0x2", "ARA-L-025", "ARA-L-0.25", "ARA-L-1.0", "ara-l-1", "ARA-X-1", "XXX-123", " ARA-L-1"):
        assert not re.search(PRODUCT_ID_PATTERN, wrong), wrong


def test_currencies_are_those_sales_are_made_in_and_gold_has_a_rate_for_each():
    # 06's known_currency expectation and gold's FX join rely on the same three currencies.
    assert CURRENCIES == ("USD", "EUR", "GBP")
    assert set(CURRENCIES) == set(CURRENCY.values()) == set(FX_RATES)
    events = [json.loads(m.value) for m in generate(events=300, seed=1).messages if m.destination == "raw"]
    assert {e["currency"] for e in events} <= set(CURRENCIES)


def test_same_seed_same_messages_other_seed_other_messages():
    a, b = generate(events=500, seed=7), generate(events=500, seed=7)
    assert [m.value for m in a.messages] == [m.value for m in b.messages]
    c = generate(events=500, seed=8)
    assert [m.value for m in a.messages] != [m.value for m in c.messages]


def test_fault_counts_are_exact():
    cfg = GeneratorConfig(events=1000, malformed_rate=0.03, invalid_rate=0.05, duplicate_rate=0.04, late_rate=0.02)
    batch = generate(cfg)
    counts, expected = batch.counts, batch.expected
    assert counts["malformed_json"] == 30
    assert counts["invalid_quantity"] + counts["unknown_product"] + counts["missing_required_field"] == 50
    assert counts["duplicate"] == 40
    assert expected["messages"] == 1040
    assert expected["quarantine"] == 80
    assert expected["raw"] == 1040 - 80
    assert expected["distinct_valid_events"] == 1000 - 80


def test_each_message_is_what_its_label_says():
    batch = generate(events=2000, malformed_rate=0.02, invalid_rate=0.05, duplicate_rate=0.03, drift_after=0.5)
    first_seen = {}
    for index, m in enumerate(batch.messages):
        if m.kind == "malformed_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(m.value)
            continue
        event = json.loads(m.value)
        if m.kind == "missing_required_field":
            assert any(f not in event for f in REQUIRED_FIELDS)
        elif m.kind == "invalid_quantity":
            assert event["quantity"] <= 0
        elif m.kind == "unknown_product":
            assert event["product_id"] not in PRODUCT_IDS
        else:
            assert all(f in event for f in REQUIRED_FIELDS) and event["quantity"] > 0
            assert event["product_id"] in PRODUCT_IDS
            assert m.destination == "raw"
            if m.kind == "duplicate":
                assert event["event_id"] in first_seen and first_seen[event["event_id"]] < index
            else:
                first_seen.setdefault(event["event_id"], index)
    assert len(first_seen) == batch.expected["distinct_valid_events"]


def test_drift_field_appears_only_after_the_drift_point():
    batch = generate(events=400, malformed_rate=0, invalid_rate=0, duplicate_rate=0, late_rate=0, drift_after=0.25)
    has = [DRIFT_FIELD in json.loads(m.value) for m in batch.messages]
    assert not any(has[:100]) and all(has[100:])
    never = generate(events=200, drift_after=1.0, malformed_rate=0)
    assert not any(DRIFT_FIELD in m.value.decode() for m in never.messages)


def test_late_events_are_hours_behind_their_neighbours():
    from datetime import datetime

    batch = generate(events=1000, late_rate=0.05, malformed_rate=0, invalid_rate=0, duplicate_rate=0, drift_after=1.0)
    ts = [datetime.fromisoformat(json.loads(m.value)["event_ts"].replace("Z", "+00:00")) for m in batch.messages]
    late = [i for i, m in enumerate(batch.messages) if m.kind == "late"]
    assert len(late) == 50
    stream_time = None  # the newest on-time event seen so far
    for i, m in enumerate(batch.messages):
        if m.kind == "late":
            if stream_time is not None:
                assert (stream_time - ts[i]).total_seconds() > 3600
        else:
            stream_time = max(stream_time or ts[i], ts[i])


@pytest.mark.parametrize("bad", [{"events": -1}, {"malformed_rate": 1.5}, {"malformed_rate": 0.6, "invalid_rate": 0.6}])
def test_bad_config_is_refused_with_the_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        GeneratorConfig(**bad)
