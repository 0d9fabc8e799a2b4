"""Data quality expectations declared as data and evaluated per micro-batch, the way Lakeflow
Declarative Pipelines (DLT) evaluate `@dp.expect`, `@dp.expect_or_drop` and `@dp.expect_or_fail`.

An `Expectation` is a name, a SQL predicate and an action:
- `warn`: the row is kept and counted;
- `drop`: the row is kept out of the target and written to a rejected table with the names of
  the expectations it failed and its original values;
- `fail`: the batch stops with `ExpectationFailed`, which names the expectation and shows a row.

A predicate that evaluates to NULL counts as failed (DLT does the same), so `quantity > 0`
rejects a missing quantity too. Pure DataFrame code: runs on classic Spark, on a Spark Connect
server and on Databricks serverless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

ACTIONS = ("warn", "drop", "fail")
FAILED_COLUMN = "_failed_expectations"


@dataclass(frozen=True)
class Expectation:
    name: str
    predicate: str  # a SQL boolean expression over the batch's columns
    action: str = "warn"  # warn | drop | fail

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"expectation {self.name!r}: action must be one of {ACTIONS}, got {self.action!r}")
        if not self.name.isidentifier():
            raise ValueError(f"expectation name {self.name!r} must be a plain identifier (letters, digits, _)")


class ExpectationFailed(RuntimeError):
    """A `fail` expectation did not hold: the batch is stopped and nothing of it is written."""

    def __init__(self, expectation: Expectation, failed: int, batch_id: int | None, example: dict):
        self.expectation, self.failed, self.batch_id, self.example = expectation, failed, batch_id, example
        where = f" in micro-batch {batch_id}" if batch_id is not None else ""
        super().__init__(
            f"expectation {expectation.name!r} ({expectation.predicate}) failed for {failed} row(s){where}; "
            f"action is 'fail', so the batch was stopped and nothing was written. A failing row: "
            f"{json.dumps(example, default=str)}"
        )


@dataclass(frozen=True)
class Evaluation:
    """A batch with `_failed_expectations` (array of names) and the per-expectation counts."""

    df: object  # the batch with the failed-expectations column
    rows: int
    failed: dict[str, int]  # expectation name -> failing rows
    extra: dict[str, int] = field(default_factory=dict)  # evaluate's `extra` aggregates

    def passed(self, name: str) -> int:
        return self.rows - self.failed[name]


def validate(expectations: list[Expectation]) -> None:
    names = [e.name for e in expectations]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"expectation names must be unique, repeated: {duplicated}")


def evaluate(df, expectations: list[Expectation], persist: bool = False, extra: dict | None = None) -> Evaluation:
    """Mark every row with the expectations it fails and count them in one pass. With `persist`
    the marked batch is cached for the writes that follow (the caller unpersists `df`). `extra`:
    more aggregates over the marked rows (name -> Column), counted in the same pass."""
    from pyspark.sql import functions as F

    validate(expectations)
    # coalesce(..., false): a NULL predicate is a failure, not a pass.
    checks = [F.when(~F.coalesce(F.expr(e.predicate), F.lit(False)), F.lit(e.name)) for e in expectations]
    marked = df.withColumn(FAILED_COLUMN, F.array_compact(F.array(*checks)))
    if persist:
        marked = marked.persist()
    aggs = [F.count(F.lit(1)).alias("_rows")] + [
        F.sum(F.array_contains(FAILED_COLUMN, e.name).cast("long")).alias(e.name) for e in expectations
    ] + [column.alias(f"_extra_{name}") for name, column in (extra or {}).items()]
    try:
        counts = marked.agg(*aggs).first()
    except BaseException:
        marked.unpersist()  # no caller holds it yet: release it here
        raise
    rows = int(counts["_rows"])
    return Evaluation(marked, rows, {e.name: int(counts[e.name] or 0) for e in expectations},
                      {name: int(counts[f"_extra_{name}"] or 0) for name in (extra or {})})


def raise_on_fail(evaluation: Evaluation, expectations: list[Expectation], batch_id: int | None = None,
                  hide: tuple[str, ...] = ()) -> None:
    """Stop with the first `fail` expectation that has failing rows, showing one of them."""
    from pyspark.sql import functions as F

    for e in expectations:
        if e.action == "fail" and evaluation.failed[e.name]:
            row = evaluation.df.where(F.array_contains(FAILED_COLUMN, e.name)).drop(FAILED_COLUMN, *hide).first()
            raise ExpectationFailed(e, evaluation.failed[e.name], batch_id, row.asDict() if row else {})


def drop_condition(expectations: list[Expectation]):
    """True for rows that failed at least one `drop` expectation."""
    from pyspark.sql import functions as F

    names = [e.name for e in expectations if e.action == "drop"]
    if not names:
        return F.lit(False)
    return F.arrays_overlap(F.col(FAILED_COLUMN), F.array(*[F.lit(n) for n in names]))


def metrics(evaluation: Evaluation, expectations: list[Expectation], batch_id: int) -> list[dict]:
    """One row per expectation: batch, expectation, action, passed, failed (the log's rows)."""
    return [
        {"batch_id": batch_id, "expectation": e.name, "predicate": e.predicate, "action": e.action,
         "passed": evaluation.passed(e.name), "failed": evaluation.failed[e.name]}
        for e in expectations
    ]


LOG_SCHEMA = (
    "batch_id long, expectation string, predicate string, action string, passed long, failed long, "
    "logged_at timestamp"
)
