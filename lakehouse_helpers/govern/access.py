"""Governance observed: what a reader sees and who may do what, read back from the catalog the
settings choose (the same calls on every backend; see `governance` for how the spec is applied).

- `reader_source`: where readers meet a table's masks and row filter: its governed view on the
  local backend, the table itself where Unity Catalog binds them to the table.
- `seen_by`: one query as the person running the notebook and as another principal. Locally the
  other principal is a second Spark Connect session that names that user (a second Spark
  process run as that user where the server cannot take the client's user); Unity Catalog decides on the
  signed-in user, so there the other row is computed from the spec's own mask and filter, and
  says so in its `how` column.
- `grants`: the grants on the spec's tables: `SHOW GRANTS` on Databricks, the Unity Catalog API,
  or the local declared-grants table (recorded, not enforced).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lakehouse_helpers.govern.governance import (
    TableGovernance,
    backend_of,
    filter_body,
    governed_view,
    mask_body,
    quote,
)
from lakehouse_helpers.runtime import layout
from lakehouse_helpers.runtime.settings import ENV_VARS, Settings

GRANT_COLUMNS = ["table_name", "principal", "privilege", "enforced_by"]


def reader_source(settings: Settings, t: TableGovernance, backend: str | None = None) -> str:
    """The relation a reader queries to meet `t`'s masks and row filter."""
    return governed_view(settings, t) if backend_of(settings, backend) == "local" else t.table(settings)


def outsider_select(spark, settings: Settings, t: TableGovernance) -> str:
    """`t`'s rows as a user outside every group of its masks and row filter sees them, in plain
    SQL: the spec's own mask and filter bodies with membership false."""
    table = t.table(settings)
    select = [f"{mask_body(c, 'false')} AS {c}" if c in t.masks else c for c in spark.table(table).columns]
    where = f" WHERE {filter_body(t.row_filter, 'false')}" if t.row_filter else ""
    return f"SELECT {', '.join(select)} FROM {table}{where}"


def _groups(t: TableGovernance) -> list[str]:
    return sorted({*t.masks.values(), *([t.row_filter.privileged] if t.row_filter else [])})


def seen_by(spark, settings: Settings, t: TableGovernance, principal: str, query: str, backend: str | None = None):
    """`query` (a SELECT whose `{source}` is `t` as readers meet it) run as this session and as
    `principal`: a pandas table, one row per result row, with `how` each was obtained."""
    import pandas as pd

    backend = backend_of(settings, backend)
    sql = query.format(source=reader_source(settings, t, backend))
    rows = [{**r.asDict(), "how": "this session"} for r in spark.sql(sql).collect()]
    if backend == "local":
        (theirs,), how = run_as(settings, principal, [sql])
    else:
        outsider = query.format(source=f"({outsider_select(spark, settings, t)})")
        theirs = [r.asDict() for r in spark.sql(outsider.replace("current_user()", quote(principal))).collect()]
        where = ("Unity Catalog applies these functions on the table" if backend == "databricks"
                 else "this catalog does not apply masks or row filters")
        how = f"computed from the spec for a user outside {', '.join(_groups(t))} ({where})"
    return pd.DataFrame(rows + [{**r, "how": how} for r in theirs])


def grants(spark, settings: Settings, spec: list[TableGovernance], backend: str | None = None):
    """The grants on `spec`'s tables as the catalog holds them: a pandas table of GRANT_COLUMNS."""
    import pandas as pd

    backend = backend_of(settings, backend)
    if backend == "local":
        return spark.table(layout.declared_grants(settings)).toPandas()[GRANT_COLUMNS]
    rows = []
    for t in spec:
        table = t.table(settings)
        if backend == "databricks":
            # principal, actionType, objectType, objectKey; inherited grants name their own object.
            rows += [(table, r[0], r[1], "Unity Catalog") for r in spark.sql(f"SHOW GRANTS ON TABLE {table}").collect()
                     if str(r[2]).upper() == "TABLE"]
        else:
            from lakehouse_helpers.govern import unity

            held = unity.get_grants(settings, table)
            rows += [(table, p, priv, "stored by the Unity Catalog server") for p in sorted(held)
                for priv in sorted(held[p])]
    return pd.DataFrame(rows, columns=GRANT_COLUMNS)


class QueryAsError(RuntimeError):
    """The query run as another principal failed; the message carries the child's last lines."""


_QUERY_AS = """
import json, sys
from lakehouse_helpers import get_spark, load_settings
spark = get_spark(load_settings())
out = [[r.asDict() for r in spark.sql(q).collect()] for q in json.loads(sys.argv[1])]
print(json.dumps(out, default=str))
"""


def connect_as(settings: Settings, user: str):
    """A second Spark Connect session on the workbook's server whose `current_user()` is `user`,
    or None where the server answers with its own user (a server of your own, without the
    workbook's client-user interceptor, `services/spark_connect.py`). The caller stops it."""
    if not settings.uses_connect:
        return None
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    from lakehouse_helpers.runtime import spark as spark_module

    spark_module.connect(settings)  # the server is up and takes this client's token
    from lakehouse_helpers.runtime.services import spark_connect

    url = settings.spark_remote or spark_connect.endpoint(settings)
    session = ConnectSession(connection=spark_module.channel(settings, url, user), userId=user)
    if session.sql("SELECT current_user() AS u").first()["u"] == user:
        return session
    session.stop()
    return None


def _query_on(session, queries: list[str]) -> list[list[dict]]:
    try:
        return [[r.asDict() for r in session.sql(q).collect()] for q in queries]
    finally:
        session.stop()


def query_as(settings: Settings, user: str, queries: list[str], timeout_s: float = 300) -> list[list[dict]]:
    """Run `queries` as `user`: how a second, non-privileged person sees the governed views."""
    return run_as(settings, user, queries, timeout_s)[0]


def run_as(settings: Settings, user: str, queries: list[str], timeout_s: float = 300) -> tuple[list[list[dict]], str]:
    """`queries`' rows as `user` sees them, and how they were read: on the workbook's Spark
    Connect server (or one with its interceptor), a second session that names `user` (no second
    JVM); elsewhere a separate Spark process started as `user`, its settings through the
    environment."""
    if settings.profile == "databricks":
        raise QueryAsError("Unity Catalog decides on the signed-in user: run the query in a session "
                           f"of {user!r} (or a job run as that user) to see what {user!r} sees.")
    session = connect_as(settings, user)
    if session is not None:
        return _query_on(session, queries), f"a second Spark Connect session as {user!r}"
    # A Spark Connect client marks its environment; the child is an in-process Spark.
    drop = {"SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_CONNECT_AUTHENTICATE_TOKEN"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for name, var in ENV_VARS.items():
        if name == "spark_remote":
            continue
        value = getattr(settings, name)
        if value is not None and value != "":
            env[var] = str(value).lower() if isinstance(value, bool) else str(value)
    # Spark takes the user from SPARK_USER, fixed per Spark process: a Spark Connect server
    # without the interceptor answers current_user() with its own user whatever the client's
    # user_id, so this is an in-process Spark. Its queries are not the pipeline's lineage.
    env.update({"SPARK_USER": user, "HADOOP_USER_NAME": user, ENV_VARS["lineage"]: "false",
                ENV_VARS["spark_mode"]: "classic"})
    out = subprocess.run([sys.executable, "-c", _QUERY_AS, json.dumps(queries)], env=env,
                         capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise QueryAsError(f"query as {user!r} failed: " + "\n".join(out.stderr.strip().splitlines()[-5:]))
    return json.loads(out.stdout.strip().splitlines()[-1]), f"a second Spark process as {user!r}"

