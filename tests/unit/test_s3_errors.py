"""What the S3 check says for each answer a real S3 API gives, from a tiny local HTTP server that
answers every request with one fixed status and S3 error body: 403 is the keys (and names where
they come from), 404 a missing bucket (and how to create it), a closed port a service that is down."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lakehouse_helpers import doctor
from lakehouse_helpers.runtime import storage
from lakehouse_helpers.runtime.services import ServiceError, s3
from lakehouse_helpers.runtime.settings import load_settings, local_s3_keys

ANSWERS = {
    "keys": (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
    "signature": (403, "SignatureDoesNotMatch", "The request signature we calculated does not match."),
    "no_bucket": (404, "NoSuchBucket", "The specified bucket does not exist"),
    "server": (500, "InternalError", "We encountered an internal error."),
}


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        status, code, message = self.server.answer
        self.server.requests.append(f"{self.command} {self.path}")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = _answer

    def log_message(self, *args) -> None:  # quiet test output
        pass


@pytest.fixture
def s3_answering(tmp_path):
    """Start a server that answers `answer`; yields a function giving settings for a profile."""
    servers = []

    def start(answer: str, profile: str = "local"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.answer, server.requests = ANSWERS[answer], []
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        state = tmp_path / f"state-{len(servers)}"
        local_s3_keys(state, create=True)
        env = {"LAKEHOUSE_PROFILE": profile, "LAKEHOUSE_STATE_DIR": str(state), "LAKEHOUSE_CONNECT_TIMEOUT": "2",
               "S3_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}", "S3_BUCKET": "lake",
               "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-real-secret"}
        return load_settings(env=env, dotenv=tmp_path / "none"), server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("answer", ["keys", "signature"])
@pytest.mark.parametrize("profile", ["local", "external"])
def test_403_is_the_keys_not_a_missing_bucket(s3_answering, answer, profile):
    settings, _ = s3_answering(answer, profile)
    with pytest.raises(ServiceError) as info:
        s3.check(settings)
    err = info.value
    assert (err.service, err.address) == ("s3", settings.s3_endpoint)
    assert f"HTTP 403 {ANSWERS[answer][1]}" in err.problem and "missing" not in str(err)
    if profile == "local":  # the embedded server reads the generated keys file, never AWS_* variables
        assert str(settings.state_dir / "secrets" / "s3.env") in err.fix and "make services-down services-up" in err.fix
    else:
        assert "AWS_ACCESS_KEY_ID" in err.fix and "AWS_SECRET_ACCESS_KEY" in err.fix and "S3_BUCKET" in err.fix


def test_404_in_the_local_profile_is_healthy_and_created_by_services_up(s3_answering):
    settings, server = s3_answering("no_bucket")
    assert s3.check(settings) == "reachable; bucket 'lake' missing (created by `make services-up`)"
    assert server.requests == ["GET /lake?list-type=2&max-keys=1&encoding-type=url"]


def test_404_elsewhere_fails_and_says_how_to_create_the_bucket(s3_answering):
    settings, _ = s3_answering("no_bucket", "external")
    with pytest.raises(ServiceError) as info:
        s3.check(settings)
    err = info.value
    assert err.problem == f"S3 at {settings.s3_endpoint} has no bucket 'lake' (HTTP 404 NoSuchBucket)."
    assert "minio-init" in err.fix and "aws s3 mb s3://lake" in err.fix and "S3_BUCKET" in err.fix


def test_another_error_is_neither_keys_nor_bucket(s3_answering):
    settings, _ = s3_answering("server", "external")
    with pytest.raises(ServiceError) as info:
        s3.check(settings)
    assert "HTTP 500 InternalError" in info.value.problem
    assert "keys" not in str(info.value) and "no bucket" not in str(info.value)


def test_a_closed_port_is_a_service_that_is_down(s3_answering, closed_port):
    settings, _ = s3_answering("keys")
    down = settings.replace(s3_endpoint=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(ServiceError) as info:
        s3.check(down)
    assert info.value.address == f"http://127.0.0.1:{closed_port}"
    assert info.value.fix == "Start the embedded services with `make services-up`."


def test_the_doctor_shows_the_403_fix_not_a_bucket_hint(s3_answering, closed_port):
    settings, _ = s3_answering("keys", "external")
    settings = settings.replace(kafka_bootstrap=f"127.0.0.1:{closed_port}")  # probe no one's Kafka
    check = next(c for c in doctor.check_services(settings) if c.name.startswith("s3 "))
    assert not check.ok and check.detail.endswith("(HTTP 403 InvalidAccessKeyId)")
    assert check.fix.startswith("Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


def test_ensure_bucket_creates_nothing_when_the_keys_are_refused(s3_answering):
    from botocore.exceptions import ClientError

    settings, server = s3_answering("keys", "external")
    with pytest.raises(ClientError) as info:
        storage.ensure_bucket(settings)
    assert storage.error_kind(info.value) == "access_denied"
    assert not [r for r in server.requests if r.startswith("PUT")], server.requests
