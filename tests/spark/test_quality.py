"""Each quality check passes on good data and fails on a frame crafted to break it."""

from __future__ import annotations

import pytest

from lakehouse_helpers.pipeline import quality
from lakehouse_helpers.runtime.contract import EVENT_FIELDS

# The `spark` fixture is a session on the test stack: every service, and Spark.


@pytest.fixture
def good(spark):
    rows = [
        ("e1", "o1", 1, "ARA-L-0.2", 2, 6.0, 0.2, "C1"),
        ("e2", "o1", 2, "ROB-D-1", 1, 17.6, 1.0, "C1"),
        ("e3", "o2", 1, "EXC-M-2.5", 3, 61.42, 2.5, "C2"),
    ]
    return spark.createDataFrame(
        rows, "event_id string, order_id string, line_no int, product_id string, quantity int, unit_price double, "
        "size_kg double, customer_id string"
    ).selectExpr("*", "timestamp'2026-01-05 08:00:00' as event_ts")


# Every check the standard suite must run on `good` (no expected schema given), spelled out here
# rather than read from the helper, so a suite that silently drops a check, or runs none at all,
# fails instead of passing vacuously.
GOOD_FRAME_CHECKS = {
    "not null: event_id",
    "not null: order_id",
    "not null: event_ts",
    "not null: customer_id",
    "not null: product_id",
    "not null: quantity",
    "range: quantity in [1, 1000]",
    "range: unit_price in [0.01, 1000]",
    "size_kg in bag sizes",
    "product_id in product catalog",
}


def test_good_frame_passes_everything(good):
    results = quality.order_checks(good)
    names = [r.name for r in results]
    # Each check exactly once: a list comparison of sorted names also catches a check run twice.
    assert sorted(names) == sorted(GOOD_FRAME_CHECKS)
    assert [r.name for r in results if not r.passed] == []
    assert quality.failures(results) == []


def _broken(good, sql: str):
    return good.selectExpr(*[sql if c == sql.split(" as ")[-1].strip() else c for c in good.columns])


@pytest.mark.parametrize(
    ("column_sql", "failing_check"),
    [
        ("CASE WHEN event_id = 'e2' THEN NULL ELSE event_id END as event_id", "not null: event_id"),
        ("CASE WHEN event_id = 'e1' THEN NULL ELSE order_id END as order_id", "not null: order_id"),
        ("CASE WHEN event_id = 'e3' THEN -2 ELSE quantity END as quantity", "range: quantity in [1, 1000]"),
        ("CASE WHEN event_id = 'e3' THEN 0.0 ELSE unit_price END as unit_price", "range: unit_price in [0.01, 1000]"),
        ("CASE WHEN event_id = 'e1' THEN 'NOPE-1' ELSE product_id END as product_id", "product_id in product catalog"),
        ("CASE WHEN event_id = 'e1' THEN 0.3 ELSE size_kg END as size_kg", "size_kg in bag sizes"),
    ],
)
def test_each_check_fails_on_its_crafted_frame(good, column_sql, failing_check):
    bad = _broken(good, column_sql)
    failed = {r.name for r in quality.failures(quality.order_checks(bad))}
    assert failed == {failing_check}
    with pytest.raises(quality.QualityError, match="1 quality check"):
        quality.gate(bad)


def test_schema_check_names_missing_and_mistyped_columns(good):
    expected = {n: t for n, t in EVENT_FIELDS}
    result = quality.check_schema(
        good.selectExpr("*", "cast(line_no as string) as line_no2").drop("line_no").withColumnRenamed("line_no2",
            "line_no"), expected)
    assert not result.passed
    assert "missing" in result.observed and "coffee_type" in result.observed
    assert "line_no:string!=int" in result.observed


def test_error_lists_every_failing_check(good):
    bad = good.selectExpr("NULL as event_id", "order_id", "line_no", "'X' as product_id", "-1 as quantity",
        "unit_price", "size_kg", "customer_id", "event_ts")
    with pytest.raises(quality.QualityError) as info:
        quality.gate(bad)
    text = str(info.value)
    assert "3 quality check(s) failed" in text
    for name in ("not null: event_id", "product_id in product catalog", "range: quantity"):
        assert name in text
