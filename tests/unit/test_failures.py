"""A service that is down is named, with the command that starts it, within seconds."""

from __future__ import annotations

import time

import pytest

from lakehouse_helpers.doctor import run_checks
from lakehouse_helpers.runtime import services
from lakehouse_helpers.runtime.services import ServiceError


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
    # The same facts as data, for code that must not parse the message.
    err = info.value
    assert err.service == name and f"127.0.0.1:{closed_port}" in err.address
    assert err.fix == "Start the embedded services with `make services-up`."
    assert message == f"{err.problem} {err.fix}" and err.problem.endswith(".")


def test_require_names_every_down_service(nowhere):
    with pytest.raises(ServiceError) as info:
        services.require(nowhere)
    text = str(info.value)
    assert "Kafka" in text and "S3" in text and "metastore" in text
    # Their shared fix is said once, after the list of what is down.
    assert text.count("make services-up") == 1 and text.endswith(info.value.fix)
    assert info.value.service.split(", ")[:3] == ["kafka", "s3", "metastore"]


def test_require_with_one_service_down_raises_that_services_error(nowhere, closed_port):
    with pytest.raises(ServiceError) as info:
        services.require(nowhere, "metastore")
    assert (info.value.service, info.value.address) == ("metastore", f"127.0.0.1:{closed_port}")


def test_doctor_reports_each_failure_with_a_fix(nowhere, monkeypatch):
    from lakehouse_helpers import doctor

    monkeypatch.setattr(doctor, "java_version", lambda: "17.0.15")  # its probe runs `java -version`: a JVM
    checks = {c.name.split(" ")[0]: c for c in run_checks(nowhere)}
    for name in ("kafka", "s3", "metastore"):
        assert not checks[name].ok
        assert "make services-up" in checks[name].fix
        # The error's own fields, not pieces of its text split at a period.
        with pytest.raises(ServiceError) as info:
            services.check(nowhere, name)
        assert (checks[name].detail, checks[name].fix) == (info.value.problem.removesuffix("."), info.value.fix)


def test_a_multi_line_problem_gets_its_fix_on_a_line_of_its_own():
    err = ServiceError("Kafka broker exited with code 1 while starting.\nLast lines of kafka.log:\nboom",
                       service="kafka", fix="Fix the cause above, then run `make services-up` again.")
    assert str(err).splitlines()[-1] == err.fix
    assert str(ServiceError("Plain.")) == "Plain."


def test_a_port_taken_by_someone_else_is_named_with_its_fix(settings, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        taken = settings.replace(state_dir=tmp_path / "state", metastore_port=port)
        with pytest.raises(ServiceError) as info:
            services.up(taken, ["metastore"])  # tier: refused: the port is taken
    err = info.value
    assert (err.service, err.address) == ("metastore", f"127.0.0.1:{port}")
    assert "LAKEHOUSE_PROFILE=external" in err.fix and "is taken" in str(err)


def test_external_profile_points_at_the_endpoint_setting(nowhere, closed_port):
    external = nowhere.replace(profile="external")
    with pytest.raises(ServiceError, match="KAFKA_BOOTSTRAP_SERVERS"):
        services.check(external, "kafka")
    with pytest.raises(ServiceError, match="nothing embedded starts") as info:
        services.up(external)  # tier: refused: external profile
    assert "doctor" in info.value.fix
