"""What a Spark Connect client raises when a catalog call fails: with the metastore's port closed,
Hive's message becomes the workbook's ServiceError (the service, its address, `make services-up`);
with the port answering, or for an error that is not Hive's, the original error passes unchanged.
The client is a stand-in with pyspark's `_handle_error` contract (it always raises)."""

from __future__ import annotations

import socket

import pytest

from lakehouse_helpers.runtime.services import ServiceError
from lakehouse_helpers.runtime.settings import load_settings
from lakehouse_helpers.runtime.spark import name_the_metastore

HIVE_DOWN = ("org.apache.hadoop.hive.ql.metadata.HiveException: MetaException(message:Got exception: "
             "org.apache.hadoop.hive.metastore.api.MetaException HikariPool-2 - Connection is not available)")


class _Client:
    """pyspark's client as far as the hook sees it: `_handle_error` raises what the server said."""

    def _handle_error(self, error: Exception):
        raise error


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def _settings(tmp_path, port: int):
    env = {"LAKEHOUSE_STATE_DIR": str(tmp_path), "METASTORE_PORT": str(port),
           "LAKEHOUSE_CATALOG_IMPL": "hive", "LAKEHOUSE_CONNECT_TIMEOUT": "2"}
    return load_settings(env=env, dotenv=tmp_path / "none")


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


def test_a_hive_error_with_the_metastore_down_names_it_and_the_fix(tmp_path):
    port = _closed_port()
    client = _Client()
    name_the_metastore(client, _settings(tmp_path, port))
    original = RuntimeError(HIVE_DOWN)
    with pytest.raises(ServiceError) as info:
        client._handle_error(original)
    first_line = str(info.value).splitlines()[0]
    assert "metastore" in first_line and f"127.0.0.1:{port}" in first_line
    assert "make services-up" in first_line
    assert info.value.service == "metastore" and info.value.__cause__ is original


def test_a_hive_error_with_the_metastore_up_passes_unchanged(tmp_path, listener):
    client = _Client()
    name_the_metastore(client, _settings(tmp_path, listener.getsockname()[1]))
    original = RuntimeError(HIVE_DOWN)
    with pytest.raises(RuntimeError) as info:
        client._handle_error(original)
    assert info.value is original


def test_an_error_that_is_not_hives_passes_unchanged_and_the_hook_is_set_once(tmp_path):
    client = _Client()
    settings = _settings(tmp_path, _closed_port())
    name_the_metastore(client, settings)
    hooked = client._handle_error
    name_the_metastore(client, settings)  # get_spark() again: the same client, not wrapped twice
    assert client._handle_error is hooked
    original = ValueError("[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'")
    with pytest.raises(ValueError) as info:
        client._handle_error(original)
    assert info.value is original


def test_pyspark_s_client_still_routes_errors_through_the_hooked_method():
    """The hook replaces a private method: this fails when a pyspark upgrade renames or drops it."""
    import inspect

    from pyspark.sql.connect.client.core import SparkConnectClient

    assert callable(getattr(SparkConnectClient, "_handle_error", None))
    assert "self._handle_error(" in inspect.getsource(SparkConnectClient)
