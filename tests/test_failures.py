"""A service that is down is named, with the command that starts it, within seconds."""

from __future__ import annotations

import time

import pytest

from lakehouse_helpers import services
from lakehouse_helpers.doctor import run_checks
from lakehouse_helpers.services import ServiceError

pytestmark = pytest.mark.unit


@pytest.fixture
def nowhere(settings, closed_port):
    return settings.replace(
        kafka_bootstrap=f"127.0.0.1:{closed_port}",
        s3_endpoint=f"http://127.0.0.1:{closed_port}",
        metastore_port=closed_port,
    )


@pytest.mark.parametrize("name", ["kafka", "s3", "metastore"])
def test_closed_port_gives_clear_error_fast(nowhere, closed_port, name):
    start = time.monotonic()
    with pytest.raises(ServiceError) as info:
        services.check(nowhere, name)
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert f"127.0.0.1:{closed_port}" in message
    assert "make services-up" in message
    assert elapsed < 10, f"took {elapsed:.1f}s"


def test_require_names_every_down_service(nowhere):
    with pytest.raises(ServiceError) as info:
        services.require(nowhere)
    text = str(info.value)
    assert "Kafka" in text and "S3" in text and "metastore" in text


def test_doctor_reports_each_failure_with_a_fix(nowhere):
    checks = {c.name.split(" ")[0]: c for c in run_checks(nowhere)}
    for name in ("kafka", "s3", "metastore"):
        assert not checks[name].ok
        assert "make services-up" in checks[name].fix


def test_external_profile_points_at_the_endpoint_setting(nowhere, closed_port):
    external = nowhere.replace(profile="external")
    with pytest.raises(ServiceError, match="KAFKA_BOOTSTRAP_SERVERS"):
        services.check(external, "kafka")
    with pytest.raises(ServiceError, match="nothing embedded starts"):
        services.up(external)
