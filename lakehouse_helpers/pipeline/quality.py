"""Data quality checks on order DataFrames: schema, nulls, ranges, reference data, and the
equality of two counts (04 reconciles its counts and duplicates on its page with it). Each check
returns a `CheckResult`; `raise_on_failure` raises one error that lists every failing check, so a
broken gate says everything that is wrong at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse_helpers.pipeline.events import PRODUCT_IDS, REQUIRED_FIELDS, SIZES_KG


class QualityError(RuntimeError):
    """One or more error-level checks failed."""

    def __init__(self, failures: list[CheckResult]):
        self.failures = failures
        lines = "\n".join(f"  - {f.name}: observed {f.observed}, expected {f.expected}. {f.detail}".rstrip()
            for f in failures)
        super().__init__(f"{len(failures)} quality check(s) failed:\n{lines}")


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    observed: object
    expected: object
    severity: str = "error"  # error: fails the gate; warn: reported only
    detail: str = ""


def check_schema(df, expected: dict[str, str]) -> CheckResult:
    """Every expected column is present with the expected Spark type (extra columns allowed)."""
    actual = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    missing = sorted(c for c in expected if c not in actual)
    wrong = sorted(f"{c}:{actual[c]}!={t}" for c, t in expected.items() if c in actual and actual[c] != t)
    problems = [f"missing {missing}"] * bool(missing) + [f"wrong types {wrong}"] * bool(wrong)
    return CheckResult(
        "schema", not problems, "; ".join(problems) or "as expected", f"{len(expected)} typed columns",
        detail="Columns must match the raw table contract (contract.EVENT_FIELDS)." if problems else "",
    )


def check_not_null(df, column: str) -> CheckResult:
    from pyspark.sql import functions as F

    nulls = df.where(F.col(column).isNull()).count()
    return CheckResult(f"not null: {column}", nulls == 0, nulls, 0)


def check_range(df, column: str, minimum=None, maximum=None) -> CheckResult:
    from pyspark.sql import functions as F

    cond = F.lit(False)
    if minimum is not None:
        cond = cond | (F.col(column) < minimum)
    if maximum is not None:
        cond = cond | (F.col(column) > maximum)
    bad = df.where(cond).count()
    bounds = f"[{minimum if minimum is not None else '-inf'}, {maximum if maximum is not None else 'inf'}]"
    return CheckResult(f"range: {column} in {bounds}", bad == 0, bad, 0,
                       detail=f"{bad} rows out of range" if bad else "")


def check_in_set(df, column: str, allowed, label: str | None = None) -> CheckResult:
    from pyspark.sql import functions as F

    values = sorted(allowed)
    bad_df = df.where(F.col(column).isNotNull() & ~F.col(column).isin(values))
    bad = bad_df.count()
    examples = [r[0] for r in bad_df.select(column).distinct().limit(3).collect()] if bad else []
    return CheckResult(
        f"{column} in {label or 'allowed set'}", bad == 0, bad, 0, detail=f"e.g. {examples}" if examples else ""
    )


def check_equal(name: str, observed, expected, detail: str = "") -> CheckResult:
    return CheckResult(name, observed == expected, observed, expected, detail=detail if observed != expected else "")


def order_checks(df, expected_schema: dict[str, str] | None = None) -> list[CheckResult]:
    """The standard suite for order events (the export gate in 03, and 04): schema, nulls, ranges,
    reference data. Duplicates and the reconciliation of counts are on 04's page."""
    ours = not df.is_cached  # a caller's cache (03 keeps the change feed for its write) stays
    df = df.persist() if ours else df
    try:
        results = []
        if expected_schema:
            results.append(check_schema(df, expected_schema))
        results += [check_not_null(df, c) for c in REQUIRED_FIELDS if c in df.columns]
        results.append(check_range(df, "quantity", minimum=1, maximum=1000))
        results.append(check_range(df, "unit_price", minimum=0.01, maximum=1000))
        results.append(check_in_set(df, "size_kg", SIZES_KG, "bag sizes"))
        results.append(check_in_set(df, "product_id", PRODUCT_IDS, "product catalog"))
        return results
    finally:
        if ours:
            df.unpersist()


def failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed and r.severity == "error"]


def raise_on_failure(results: list[CheckResult]) -> list[CheckResult]:
    failed = failures(results)
    if failed:
        raise QualityError(failed)
    return results


def gate(df) -> list[CheckResult]:
    """The export gate (03): keys present, values in range, products known."""
    return raise_on_failure(order_checks(df))


def as_frame(results: list[CheckResult]):
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "check": r.name,
                "status": "PASS" if r.passed else ("FAIL" if r.severity == "error" else "WARN"),
                "observed": str(r.observed),
                "expected": str(r.expected),
                "detail": r.detail,
            }
            for r in results
        ]
    )
