"""The one module that reads errors: Spark's condition first, gRPC's status next, the text last.
Each test feeds it the shape the library really produces, so a reworded message fails here."""

from __future__ import annotations

import grpc
import pytest
from pyspark.errors import PySparkAssertionError
from pyspark.errors.exceptions.connect import SparkConnectException, SparkConnectGrpcException

from lakehouse_helpers.runtime import errors

# What notebook 05 receives from the open-source Auto Loader: the worker's error inside Spark's text.
UNKNOWN = ("[STREAM_FAILED] Query terminated with exception: [PYTHON_DATA_SOURCE_ERROR] "
           "[UNKNOWN_FIELD_EXCEPTION.NEW_FIELDS_IN_FILE] Encountered unknown fields during parsing: "
           "['promo_code'], in file s3a://lake/landing/orders/drift/part-0.parquet. "
           "Restart the stream: the schema now has them (run_with_restarts does it).\n  at org.apache...")


class WithCondition(Exception):
    def __init__(self, message: str, condition: str):
        super().__init__(message)
        self._condition = condition

    def getCondition(self):  # noqa: N802 - Spark's name
        return self._condition


def test_the_condition_is_read_from_the_error_or_its_cause():
    assert errors.condition(WithCondition("x", "TABLE_OR_VIEW_NOT_FOUND")) == "TABLE_OR_VIEW_NOT_FOUND"
    try:
        try:
            raise WithCondition("inner", "DELTA_VIOLATE_CONSTRAINT_WITH_VALUES")
        except WithCondition as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as outer:
        assert errors.condition(outer) == "DELTA_VIOLATE_CONSTRAINT_WITH_VALUES"
    assert errors.condition(ValueError("plain")) == ""


def test_an_unknown_field_error_gives_its_fields_file_and_detail():
    found = errors.new_fields(RuntimeError(UNKNOWN))
    assert found == errors.NewFields(["promo_code"], "s3a://lake/landing/orders/drift/part-0.parquet",
                                     "Restart the stream: the schema now has them")
    assert errors.is_unknown_field(WithCondition("Encountered unknown fields", "UNKNOWN_FIELD_EXCEPTION.NEW_FIELDS"))
    assert errors.unknown_field_line(RuntimeError(UNKNOWN)).startswith("UNKNOWN_FIELD_EXCEPTION.NEW_FIELDS_IN_FILE]")
    assert errors.new_fields(RuntimeError("[DELTA_FAILED] something else")) is None


def test_a_refused_token_is_told_by_grpc_status_not_only_by_text():
    refused = SparkConnectGrpcException("Invalid token", grpc_status_code=grpc.StatusCode.UNAUTHENTICATED)
    assert errors.refused_token(refused)
    assert not errors.refused_token(SparkConnectGrpcException("busy", grpc_status_code=grpc.StatusCode.UNAVAILABLE))


@pytest.mark.parametrize("error", [
    SparkConnectGrpcException("[INVALID_HANDLE.SESSION_NOT_FOUND] The handle 1 is invalid.",
                              errorClass="INVALID_HANDLE.SESSION_NOT_FOUND"),
    SparkConnectException(errorClass="NO_ACTIVE_SESSION", messageParameters={}),
    PySparkAssertionError("Received incorrect server side session identifier for request. "
                          "Please create a new Spark Session to reconnect. (a != b)"),
])
def test_a_lost_session_is_recognised(error):
    assert errors.lost_session(error)


def test_other_failures_are_not_a_lost_session():
    assert not errors.lost_session(SparkConnectGrpcException("[TABLE_OR_VIEW_NOT_FOUND] x",
                                                             errorClass="TABLE_OR_VIEW_NOT_FOUND"))
    assert not errors.lost_session(SparkConnectGrpcException("Invalid token",
                                                             grpc_status_code=grpc.StatusCode.UNAUTHENTICATED))


def test_an_undefined_widget_and_first_lines():
    assert errors.undefined_widget(RuntimeError("dbutils_v1.InputWidgetNotDefined: No input widget named x"))
    assert not errors.undefined_widget(RuntimeError("permission denied"))
    assert errors.first_line(RuntimeError("bad byte \x00 here\nat java...")) == "bad byte ? here"
    assert errors.first_line(RuntimeError("")) == "RuntimeError"


def test_a_failed_hive_catalog_call_is_told_from_other_failures():
    hive = "[INTERNAL_ERROR] HiveException: MetaException(message:Connection refused)"
    assert errors.hive_catalog_failure(RuntimeError(hive))
    assert not errors.hive_catalog_failure(RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] silver.orders"))
