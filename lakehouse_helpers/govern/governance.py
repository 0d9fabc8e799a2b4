"""Governance declared once, as data, and applied per backend.

A `TableGovernance` entry says, for one table: its description and column descriptions, tags
(table and column), owner, grants (principal -> privileges), column masks, a row filter and
CHECK constraints. `apply(spark, settings, spec)` turns the spec into SQL:

- `databricks` (Unity Catalog): the native statements: COMMENT ON, SET TAGS, SET OWNER, GRANT,
  masking and row filter functions bound with SET MASK / SET ROW FILTER. Unity Catalog
  enforces all of them.
- `unity` (an open-source Unity Catalog server at UC_URL): through its REST API, the table's
  comment, column comments and properties (tags and owner, named as in `local`), and the grants,
  which that server stores and returns. Its API has no masks, row filters or constraints: they
  are reported as not applied.
- `local` (Spark's metastore, open-source Spark and Delta): what they can enforce, for real:
  comments, tags as table properties, CHECK constraints, and a governed view per table whose
  masks and row filter are persistent SQL functions deciding on `current_user()`. Grants
  cannot be enforced by open-source Spark: they are recorded in a grants table, shown as
  declared, and marked as enforced only on Unity Catalog.

`statements(...)` returns the SQL without running it, which is how the Databricks backend is
checked here (there is no workspace on this machine).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.layout import GOVERNANCE_SCHEMA
from lakehouse_helpers.runtime.settings import Settings

BACKENDS = ("local", "databricks", "unity")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowFilter:
    column: str  # the column the filter function receives
    allowed: tuple[str, ...]  # values a non-privileged principal may see
    privileged: str = "data_stewards"  # group (Databricks) or principal (local) that sees every row


@dataclass(frozen=True)
class TableGovernance:
    schema: str  # bronze | silver | gold (the workbook's logical schema)
    name: str
    description: str
    owner: str = "data_engineers"
    columns: dict[str, str] = field(default_factory=dict)  # column -> description
    tags: dict[str, str] = field(default_factory=dict)
    column_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)  # principal -> privileges
    masks: dict[str, str] = field(default_factory=dict)  # column -> group that sees the clear value
    row_filter: RowFilter | None = None
    constraints: dict[str, str] = field(default_factory=dict)  # name -> SQL predicate

    def table(self, settings: Settings) -> str:
        return settings.table(self.schema, self.name)


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{quote(k)} = {quote(v)}" for k, v in sorted(tags.items()))


def function_name(settings: Settings, kind: str, t: TableGovernance, column: str) -> str:
    return f"{settings.schema(GOVERNANCE_SCHEMA)}.{kind}_{t.schema}_{t.name}_{column}"


def mask_body(column: str, visible: str) -> str:
    # Keeps the domain of an email, hides the rest: enough to debug, not to contact anyone.
    return (f"CASE WHEN {visible} THEN {column} "
            f"ELSE concat('***', substring({column}, instr({column}, '@'))) END")


def filter_body(f: RowFilter, privileged: str) -> str:
    allowed = ", ".join(quote(v) for v in f.allowed)
    return f"{privileged} OR {f.column} IN ({allowed})"


def databricks_statements(settings: Settings, spec: list[TableGovernance]) -> list[str]:
    """Unity Catalog's native statements for `spec`, in the order they must run."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {settings.schema(GOVERNANCE_SCHEMA)}"]
    for t in spec:
        table = t.table(settings)
        out.append(f"COMMENT ON TABLE {table} IS {quote(t.description)}")
        out += [f"ALTER TABLE {table} ALTER COLUMN {c} COMMENT {quote(d)}" for c, d in t.columns.items()]
        if t.tags:
            out.append(f"ALTER TABLE {table} SET TAGS ({_tags(t.tags)})")
        out += [f"ALTER TABLE {table} ALTER COLUMN {c} SET TAGS ({_tags(tags)})" for c, tags in t.column_tags.items()]
        out += [f"ALTER TABLE {table} ADD CONSTRAINT {n} CHECK ({p})" for n, p in t.constraints.items()]
        for column, group in t.masks.items():
            fn = function_name(settings, "mask", t, column)
            out.append(f"CREATE OR REPLACE FUNCTION {fn}({column} STRING) RETURNS STRING "
                       f"RETURN {mask_body(column, f'is_account_group_member({quote(group)})')}")
            out.append(f"ALTER TABLE {table} ALTER COLUMN {column} SET MASK {fn}")
        if t.row_filter:
            f = t.row_filter
            fn = function_name(settings, "filter", t, f.column)
            out.append(f"CREATE OR REPLACE FUNCTION {fn}({f.column} STRING) RETURNS BOOLEAN "
                       f"RETURN {filter_body(f, f'is_account_group_member({quote(f.privileged)})')}")
            out.append(f"ALTER TABLE {table} SET ROW FILTER {fn} ON ({f.column})")
        out.append(f"ALTER TABLE {table} SET OWNER TO `{t.owner}`")
        for principal, privileges in t.grants.items():
            out.append(f"GRANT {', '.join(privileges)} ON TABLE {table} TO `{principal}`")
    return out


def _properties(t: TableGovernance) -> dict[str, str]:
    """Tags and owner as table properties, where a catalog has no tags or cannot set an owner."""
    props = {f"tag.{k}": v for k, v in t.tags.items()}
    props.update({f"tag.{c}.{k}": v for c, tags in t.column_tags.items() for k, v in tags.items()})
    props["governance.owner"] = t.owner
    return props


def governed_view(settings: Settings, t: TableGovernance) -> str:
    return layout.governed_view(settings, t.schema, t.name)


def _is(principals: list[str]) -> str:
    return f"current_user() IN ({', '.join(quote(p) for p in principals)})"


@dataclass(frozen=True)
class Held:
    """What the catalog holds for one table now: read before applying, so that only what differs
    is sent (a second apply changes nothing, and adds no version to the table's history)."""
    columns: dict[str, str] = field(default_factory=dict)  # column -> comment, in table order
    comment: str = ""
    properties: dict[str, str] = field(default_factory=dict)  # tags, owner, delta.constraints.*


def held(spark, table: str) -> Held:
    detail = spark.sql(f"DESCRIBE DETAIL {table}").first()
    columns = {f.name: f.metadata.get("comment", "") for f in spark.table(table).schema.fields}
    return Held(columns, detail["description"] or "", dict(detail["properties"] or {}))


def local_statements(settings: Settings, spec: list[TableGovernance], now: dict[str, Held],
                     privileged: list[str]) -> list[str]:
    """What open-source Spark and Delta enforce for `spec`, minus what `now` (each table's `Held`)
    already holds; a table missing from `now` gets every statement. `privileged` names the
    principals that see clear values and every row (the owner running the workbook, and the
    spec's privileged groups). Functions and governed views are re-created: they are catalog
    entries without a history."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {settings.schema(GOVERNANCE_SCHEMA)}"]
    for t in spec:
        table = t.table(settings)
        have = now.get(table, Held())
        if have.comment != t.description:
            out.append(f"COMMENT ON TABLE {table} IS {quote(t.description)}")
        out += [f"ALTER TABLE {table} ALTER COLUMN {c} COMMENT {quote(d)}" for c, d in t.columns.items()
                if have.columns.get(c) != d]
        changed = {k: v for k, v in _properties(t).items() if have.properties.get(k) != v}
        if changed:
            out.append(f"ALTER TABLE {table} SET TBLPROPERTIES ({_tags(changed)})")
        # ADD CONSTRAINT is not idempotent: only the missing ones (a changed predicate is an error to fix by hand).
        out += [f"ALTER TABLE {table} ADD CONSTRAINT {n} CHECK ({p})" for n, p in t.constraints.items()
                if f"delta.constraints.{n.lower()}" not in have.properties]
        if t.masks or t.row_filter:
            out += _governed_view_statements(settings, t, list(have.columns) or ["..."], privileged)
    return out


def _governed_view_statements(settings: Settings, t: TableGovernance, columns: list[str],
                              privileged: list[str]) -> list[str]:
    out, select = [], []
    for c in columns:
        if c in t.masks:
            fn = function_name(settings, "mask", t, c)
            out.append(f"CREATE OR REPLACE FUNCTION {fn}({c} STRING) RETURNS STRING "
                       f"RETURN {mask_body(c, _is([*privileged, t.masks[c]]))}")
            select.append(f"{fn}({c}) AS {c}")
        else:
            select.append(c)
    where = ""
    if t.row_filter:
        f = t.row_filter
        fn = function_name(settings, "filter", t, f.column)
        out.append(f"CREATE OR REPLACE FUNCTION {fn}({f.column} STRING) RETURNS BOOLEAN "
                   f"RETURN {filter_body(f, _is([*privileged, f.privileged]))}")
        where = f" WHERE {fn}({f.column})"
    out.append(f"CREATE OR REPLACE VIEW {governed_view(settings, t)} AS SELECT {', '.join(select)} "
               f"FROM {t.table(settings)}{where}")
    return out


GRANTS_DDL = "table_name STRING, principal STRING, privilege STRING, enforced_by STRING"


def _record_grants(spark, settings: Settings, spec: list[TableGovernance]) -> None:
    rows = [(t.table(settings), p, priv, "Unity Catalog only") for t in spec for p, privs in t.grants.items()
        for priv in privs]
    target = layout.declared_grants(settings)
    spark.sql(f"CREATE TABLE IF NOT EXISTS {target} ({GRANTS_DDL}) USING DELTA")
    if sorted(tuple(r) for r in spark.table(target).collect()) == sorted(rows):
        return  # already exactly the spec's grants: no new version
    df = spark.createDataFrame(rows, GRANTS_DDL)
    # The table holds exactly the spec's grants: replaced in one commit, never appended twice.
    df.write.format("delta").mode("overwrite").saveAsTable(target)


def backend_of(settings: Settings, backend: str | None = None) -> str:
    """The governance backend: `backend` if given (checked), else the one the catalog decides."""
    backend = backend or {"databricks": "databricks", "unity": "unity"}.get(settings.catalog_impl, "local")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def apply(spark, settings: Settings, spec: list[TableGovernance], backend: str | None = None) -> list[str]:
    """Apply `spec` on `backend` (default: from the settings) and return the statements run:
    locally and on the Unity Catalog server only what differs from the catalog."""
    backend = backend_of(settings, backend)
    if backend == "unity":
        return apply_unity(settings, spec)
    if backend == "databricks":
        statements = databricks_statements(settings, spec)
    else:
        now = {t.table(settings): held(spark, t.table(settings)) for t in spec}
        owner = spark.sql("SELECT current_user() AS u").first()["u"]
        statements = local_statements(settings, spec, now, [owner])
    for sql in statements:
        spark.sql(sql)
    if backend == "local":
        _record_grants(spark, settings, spec)
    return statements


class UnknownColumns(ValueError):
    """The spec describes columns the table does not have."""

    def __init__(self, table: str, columns: list[str]):
        super().__init__(f"{table} has no column(s) {', '.join(columns)}")
        self.table, self.columns = table, columns


def unity_registration(settings: Settings, t: TableGovernance, current: dict) -> dict:
    """The table's registration (`current`, as the Unity Catalog API returns it) with the spec's
    comment, column comments and properties; everything else kept as registered."""
    names = [c["name"] for c in current.get("columns") or []]
    missing = sorted(set(t.columns) - set(names))
    if missing:
        raise UnknownColumns(t.table(settings), missing)
    columns = [{**c, "comment": t.columns[c["name"]]} if c["name"] in t.columns else c for c in current["columns"]]
    return {**current, "comment": t.description, "columns": columns,
            "properties": {**(current.get("properties") or {}), **_properties(t)}}


def unity_not_applied(t: TableGovernance) -> list[str]:
    """What the open-source Unity Catalog API has no endpoint for (Databricks enforces them)."""
    return ([f"mask {c}" for c in t.masks] + ([f"row filter {t.row_filter.column}"] if t.row_filter else [])
            + [f"constraint {n}" for n in t.constraints])


def apply_unity(settings: Settings, spec: list[TableGovernance]) -> list[str]:
    """Apply `spec` through the Unity Catalog REST API; returns the changing requests sent. Only
    what differs is sent: a second apply sends nothing."""
    from lakehouse_helpers.govern import unity

    # A replacement an earlier apply could not finish: its table is registered again first.
    sent = [f"POST {unity.API}/tables {name} (registered again)" for name in unity.restore_saved(settings)]
    for t in spec:
        table = t.table(settings)
        current = unity.get_table(settings, table)
        wanted = unity_registration(settings, t, current)
        if wanted != current:
            unity.reregister_table(settings, current, wanted)
            summary = {"comment": wanted["comment"], "properties": wanted["properties"],
                       "column_comments": {c: d for c, d in t.columns.items()}}
            sent += [f"DELETE {unity.API}/tables/{table}", f"POST {unity.API}/tables {json.dumps(summary)}"]
        have = unity.get_grants(settings, table)
        missing = {p: tuple(x for x in privs if x not in have.get(p, set())) for p, privs in t.grants.items()}
        missing = {p: privs for p, privs in missing.items() if privs}
        if missing:
            body = unity.add_grants(settings, table, missing)
            sent.append(f"PATCH {unity.API}/permissions/table/{table} {json.dumps(body)}")
        skipped = unity_not_applied(t)
        if skipped:
            log.warning("%s: not applied on Unity Catalog (no REST API for them): %s", table, ", ".join(skipped))
    return sent
