"""Test fixtures. Service tests run against their own embedded stack: a separate state folder
(`.lakehouse/test`) and separate ports, so a user's running stack and data are never touched.
The session starts what is missing and stops, at the end, only what it started."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from lakehouse_helpers.runtime import services
from lakehouse_helpers.runtime.settings import load_settings
from tests import lanes
from tests.faults_table import PLUGIN_NAME, FaultsTable, observed_recorder

# `pytester` (tests/unit/test_tiers.py runs the tier guard over small fake suites); a plugin
# pytest loads only when asked, and only a top-level conftest may ask.
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
# A second checkout's suite (or one run beside CI) needs its own ports and state folder:
# LAKEHOUSE_TEST_PORT_OFFSET=1000 moves every port below by 1000 and the state to .lakehouse/test-1000.
# `make test`'s second lane (tests/lanes.py) moves its own by 500 more.
OFFSET = lanes.port_offset()


def state_folder(offset: int) -> Path:
    return ROOT / ".lakehouse" / (f"test-{offset}" if offset else "test")


TEST_STATE = state_folder(OFFSET)  # this process's stack
SUITE_STATE = state_folder(lanes.base_offset())  # what the suite publishes, whichever lane wrote it

# Environment that points any process (a subprocess, a papermill kernel) at the test stack.
TEST_ENV = {
    "LAKEHOUSE_PROFILE": "local",
    "LAKEHOUSE_STATE_DIR": str(TEST_STATE),
    "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{19092 + OFFSET}",
    "KAFKA_CONTROLLER_PORT": str(19093 + OFFSET),
    "S3_ENDPOINT_URL": f"http://127.0.0.1:{19000 + OFFSET}",
    "METASTORE_PORT": str(11527 + OFFSET),
    "SPARK_CONNECT_PORT": str(19102 + OFFSET),
    "SPARK_UI_PORT": str(14041 + OFFSET),
    "LAKEHOUSE_CATALOG_IMPL": "hive",
}


def pytest_xdist_make_scheduler(config, log):
    """`make test -n 2`: one lane per worker (tests/lanes.py)."""
    return lanes.make_scheduler(config, log)


def pytest_configure(config):
    # The fault and security suite's table: <state folder>/faults/results.md and results.json.
    config.pluginmanager.register(FaultsTable(SUITE_STATE / "faults"), PLUGIN_NAME)


@pytest.fixture
def observed(request):
    """`observed("what the test saw")`: goes into the test's row of the faults table."""
    return observed_recorder(request)


JAR_CACHE = ROOT / ".lakehouse" / "jars"  # what `make setup` resolved


def _share_jar_cache(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    link = state_dir / "jars"
    if not link.is_symlink() and not link.exists():  # a dangling link (no cache yet) is kept
        link.symlink_to(JAR_CACHE)


@pytest.fixture(scope="session")
def test_env() -> dict[str, str]:
    _share_jar_cache(TEST_STATE)
    return {**os.environ, **TEST_ENV}


@pytest.fixture(scope="session")
def settings(test_env):
    return load_settings(env=test_env)


@pytest.fixture
def jar_settings(tmp_path):
    """Settings from the defaults alone (no environment, no `.env`) over a fresh state folder
    that shares the jar cache. For tests marked `jars`: fails, naming `make setup`, without it."""
    from lakehouse_helpers.runtime import jvm

    _share_jar_cache(tmp_path / "state")
    settings = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path / "state")}, dotenv=tmp_path / "no.env")
    try:
        jvm.jars(settings, "spark")
    except jvm.JarCacheError as exc:
        pytest.fail(f"jar cache missing: {exc}")
    return settings


class _Started:
    """The services this session started, stopped at its end (not those it found running)."""

    def __init__(self, settings):
        self.settings, self.started = settings, []

    def up(self, names: list[str]):
        already = {st.name for st in services.status(self.settings) if st.managed and st.healthy}
        services.up(self.settings, names)
        self.started += [name for name in names if name not in already and name not in self.started]
        return self.settings.replace()  # picks up the S3 keys generated on first start

    def down(self):
        from lakehouse_helpers.runtime.spark import stop_spark

        stop_spark()  # before its server stops: a session cannot be released after that
        if self.started and not os.environ.get("LAKEHOUSE_KEEP_TEST_SERVICES"):
            services.down(self.settings, self.started)


@pytest.fixture(scope="session")
def _services(settings):
    started = _Started(settings)
    yield started
    started.down()


@pytest.fixture(scope="session")
def spark_stack(_services):
    """The Spark Connect server and its metastore, healthy (the `spark` tier: no Kafka, no S3)."""
    return _services.up(["metastore", "spark"])


@pytest.fixture(scope="session")
def stack(_services):
    """The embedded services for this test session, healthy."""
    return _services.up(list(services.SERVICES))


@pytest.fixture
def spark(spark_stack):
    """This process's session: a Spark Connect client (default) or an in-process Spark. Asked
    for per test, so a test that restarts the services leaves the next one a working session."""
    from lakehouse_helpers.runtime.spark import get_spark

    return get_spark(spark_stack, app_name="lakehouse-tests")


@pytest.fixture
def lake(stack, tmp_path, unique_name):
    """Settings of a private data folder (tables, checkpoints) and topic for one test."""
    return stack.replace(data_dir_override=str(tmp_path / "data"), kafka_topic=f"faults.{unique_name}")


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unique_name(request) -> str:
    import uuid

    return f"{request.node.name.split('[')[0].removeprefix('test_')}_{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(trylast=True)  # after tests/tiers.py has put the tiers in order
def pytest_collection_modifyitems(items):
    """Tests that restart the services (and stop the shared Spark session) run last."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_services") is not None)
