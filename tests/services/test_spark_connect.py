"""The Spark Connect server as an embedded service: isolated sessions, the token, a server killed
and started again, and a server of the user's own reached through `spark_remote`."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from lakehouse_helpers.runtime import services
from lakehouse_helpers.runtime.jvm import spark_log_file
from lakehouse_helpers.runtime.services import ServiceError, spark_connect
from lakehouse_helpers.runtime.settings import local_connect_token
from lakehouse_helpers.runtime.spark import get_spark


@pytest.fixture
def connect_stack(stack):
    if not stack.uses_connect:
        pytest.skip("the suite runs in classic mode (LAKEHOUSE_SPARK_MODE=classic)")
    return stack


@pytest.fixture(scope="module")
def second_server(stack, tmp_path_factory):
    """Another server on other ports and its own state folder (and token)."""
    if not stack.uses_connect:
        pytest.skip("the suite runs in classic mode (LAKEHOUSE_SPARK_MODE=classic)")
    state = tmp_path_factory.mktemp("second-server")
    (state / "jars").symlink_to(stack.jars_dir.resolve())
    local_connect_token(state, create=True)
    other = stack.replace(state_dir=state, spark_connect_port=stack.spark_connect_port + 100,
                          spark_ui_port=stack.spark_ui_port + 1)
    services.up(other, ["spark"])
    yield other
    services.down(other, ["spark"])


def _env(settings, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_CONNECT")}
    env.update({"LAKEHOUSE_STATE_DIR": str(settings.state_dir), "SPARK_CONNECT_PORT": str(settings.spark_connect_port),
                "METASTORE_PORT": str(settings.metastore_port), "LAKEHOUSE_SPARK_MODE": "connect", **extra})
    return env


def _python(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_two_sessions_do_not_see_each_others_temp_views(connect_stack, spark):
    from pyspark.sql.connect.session import SparkSession

    from lakehouse_helpers.runtime.spark import channel

    spark.range(3).createOrReplaceTempView("only_in_this_session")
    other = SparkSession.builder.channelBuilder(channel(connect_stack, spark_connect.endpoint(connect_stack))).create()
    try:
        assert spark.table("only_in_this_session").count() == 3
        assert not other.catalog.tableExists("only_in_this_session")
        assert other.range(2).count() == 2  # the same warm server answers both
    finally:
        other.stop()


def test_a_client_without_the_token_is_refused(connect_stack, spark, monkeypatch):
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException
    from pyspark.sql import SparkSession

    monkeypatch.delenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", raising=False)
    endpoint = spark_connect.endpoint(connect_stack)
    for url in (endpoint, f"{endpoint}/;token=not-the-token"):
        session = SparkSession.builder.remote(url).create()
        with pytest.raises(SparkConnectGrpcException, match="(?i)authentication token"):
            session.range(1).count()
        with contextlib.suppress(Exception):
            session.stop()
    assert "SPARK_CONNECT_AUTHENTICATE_TOKEN" not in os.environ  # the workbook's client keeps it in memory


def test_a_wrong_token_is_named_with_its_fix_not_hidden_by_a_new_session(connect_stack, spark):
    from lakehouse_helpers.runtime import spark as spark_module
    from lakehouse_helpers.runtime.services import ServiceError
    from lakehouse_helpers.runtime.settings import Secret

    spark_module.stop_spark()
    # A client holding another token (Settings.replace refuses secrets: a dataclass copy does not).
    wrong = dataclasses.replace(connect_stack, spark_connect_token=Secret("not-the-token"))
    with pytest.raises(ServiceError, match="refused this client's token") as error:
        spark_module.connect(wrong)
    assert "SPARK_CONNECT_AUTHENTICATE_TOKEN" in error.value.fix
    assert spark_module.connect(connect_stack).range(2).count() == 2  # the right token: a working session


def test_the_token_never_reaches_a_log(connect_stack, spark, tmp_path):
    """pyspark's foreachBatch worker prints its connection URL; the service log shows it redacted."""
    table = connect_stack.table("tests", f"fb_{uuid.uuid4().hex[:8]}")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {connect_stack.schema('tests')}")
    spark.range(5).write.format("delta").saveAsTable(table)
    query = (spark.readStream.table(table).writeStream.foreachBatch(lambda df, batch_id: df.count())
             .option("checkpointLocation", str(tmp_path / "checkpoint")).trigger(availableNow=True).start())
    query.awaitTermination()
    token = connect_stack.spark_connect_token.reveal()
    service_log = (connect_stack.services_dir / "spark" / "service.log").read_text()
    assert token and "token=***" in service_log
    assert token not in service_log and token not in spark_log_file(connect_stack).read_text()


def test_spark_remote_reaches_a_server_of_your_own(second_server, stack):
    """SPARK_REMOTE names the server; its token comes from the environment; no local server starts."""
    env = _env(stack, SPARK_REMOTE=f"sc://localhost:{second_server.spark_connect_port}",
               SPARK_CONNECT_AUTHENTICATE_TOKEN=second_server.spark_connect_token.reveal())
    code = (
        "from lakehouse_helpers import get_spark, load_settings\nfrom lakehouse_helpers.runtime import services\n"
        "s = load_settings(); spark = get_spark(s)\n"
        "print('PORT', spark.conf.get('spark.connect.grpc.binding.port'), 'LOCAL', services.wanted(s, 'spark'))\n"
    )
    assert f"PORT {second_server.spark_connect_port} LOCAL False" in _python(code, env)


def test_a_killed_server_is_named_with_its_fix_and_starts_again(second_server):
    (pid,) = [st.pid for st in services.status(second_server) if st.name == "spark"]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the killed server's port is closed
        try:
            services.check(second_server, "spark")
        except ServiceError:
            break
        time.sleep(0.05)
    start = time.monotonic()
    with pytest.raises(ServiceError) as info:
        get_spark(second_server)
    assert time.monotonic() - start < 10
    assert "Spark Connect server" in str(info.value) and "make services-up" in str(info.value)
    (status,) = services.up(second_server, ["spark"])
    assert status.healthy and status.pid != pid
    code = "from lakehouse_helpers import get_spark\nprint('ROWS', get_spark().range(4).count())\n"
    assert "ROWS 4" in _python(code, _env(second_server))
