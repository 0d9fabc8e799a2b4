"""How the workbook tells errors apart: Spark's error condition where Spark gives one, a gRPC
status where the Spark Connect channel gives one, and, only where neither exists, the error's text.

Every decision that reads an error's text lives here, next to the reason it has to, so a library
that rewords a message breaks one tested module (tests/unit/test_errors.py), not a pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Auto Loader's schema change. The open-source source raises it inside a Python worker, and Spark
# hands it back as a StreamingQueryException whose condition is the worker's failure, not this
# one: the condition exists only in the text. On Databricks it is the exception's own condition.
UNKNOWN_FIELD = "UNKNOWN_FIELD_EXCEPTION"
_NEW_FIELDS = re.compile(r"unknown fields during parsing: \[([^\]]*)\], in file (\S+?)\.?\s+([^\n]*)")
# A Spark Connect session the server no longer holds (it restarted, or the session was closed),
# and the client's own NO_ACTIVE_SESSION once it has closed such a session.
_LOST_SESSION = ("INVALID_HANDLE.SESSION_NOT_FOUND", "INVALID_HANDLE.SESSION_CLOSED",
                 "INVALID_HANDLE.SESSION_CHANGED", "NO_ACTIVE_SESSION")
# pyspark's client raises a condition-less assertion when the server's session id changed.
_LOST_SESSION_TEXT = ("Please create a new Spark Session to reconnect", *_LOST_SESSION)
# What Hive's client says, through Spark, when a catalog call could not reach its database: Spark
# wraps it in a generic condition, so only the text names Hive.
_HIVE_CATALOG = ("MetaException", "HiveException", "SessionHiveMetaStoreClient")
# Databricks' dbutils.widgets.get on an undefined widget: py4j wraps the Java error, so its name
# is only in the text.
_UNDEFINED_WIDGET = ("InputWidgetNotDefined", "No input widget named")


def condition(exc: BaseException) -> str:
    """Spark's error condition (`getCondition`, `getErrorClass` before Spark 4) of `exc` or of
    the first error in its chain that has one; '' when none does."""
    seen = 0
    while exc is not None and seen < 10:
        # getErrorClass only where getCondition is missing: Spark 4 deprecates it with a warning.
        method = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
        value = method() if callable(method) else None
        if value:
            return str(value)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return ""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of the message, printable (a decoder may quote the bad byte itself)."""
    lines = str(exc).strip().splitlines()
    line = lines[0][:limit] if lines else ""
    return "".join(c if c.isprintable() else "?" for c in line) or type(exc).__name__


def is_unknown_field(exc: BaseException) -> bool:
    """An Auto Loader schema change (new columns in a file): by condition, else by the text."""
    return condition(exc).startswith(UNKNOWN_FIELD) or UNKNOWN_FIELD in str(exc)


@dataclass(frozen=True)
class NewFields:
    fields: list[str]
    file: str
    detail: str


def new_fields(exc: BaseException) -> NewFields | None:
    """The new columns and the file named by an unknown-field error; None for any other error."""
    m = _NEW_FIELDS.search(str(exc))
    if not is_unknown_field(exc) or m is None:
        return None
    fields = [f.strip().strip("'\"") for f in m.group(1).split(",") if f.strip()]
    return NewFields(fields, m.group(2), m.group(3).split(" (run_with_restarts")[0].strip())


def unknown_field_line(exc: BaseException, limit: int = 300) -> str:
    """The error's line from the unknown-field condition on, for a log line."""
    rest = str(exc).split(UNKNOWN_FIELD, 1)
    return (UNKNOWN_FIELD + rest[1].split("\n", 1)[0])[:limit] if len(rest) == 2 else first_line(exc, limit)


def _grpc_code(exc: BaseException):
    getter = getattr(exc, "getGrpcStatusCode", None) or getattr(exc, "code", None)
    try:
        return getter() if callable(getter) else None
    except Exception:  # noqa: BLE001 - a grpc error without a status: no code to read
        return None


def refused_token(exc: BaseException) -> bool:
    """The Spark Connect server refused this client's token: gRPC's UNAUTHENTICATED status; the
    text for clients that fold the status into a generic error."""
    code = _grpc_code(exc)
    if code is not None and getattr(code, "name", str(code)) == "UNAUTHENTICATED":
        return True
    text = str(exc).lower()
    return "authentication token" in text or "unauthenticated" in text


def lost_session(exc: BaseException) -> bool:
    """The server does not know this Spark Connect session any more (it restarted, or the
    session was closed): a new session is the fix. Any other failure is not."""
    found = condition(exc)
    return any(found.startswith(c) for c in _LOST_SESSION) or any(c in str(exc) for c in _LOST_SESSION_TEXT)


def undefined_widget(exc: BaseException) -> bool:
    """dbutils.widgets.get on a widget the job does not define."""
    return any(mark in f"{type(exc).__name__}: {exc}" for mark in _UNDEFINED_WIDGET)


def hive_catalog_failure(exc: BaseException) -> bool:
    """A catalog call that failed inside Hive's metastore client (the cause is then checked
    by probing the metastore: this only says where the call failed)."""
    return any(word in str(exc) for word in _HIVE_CATALOG)
