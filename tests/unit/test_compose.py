"""docker/docker-compose.yml: valid, and its settings equal to the workbook's embedded defaults.

Valid: `docker compose config` when a Compose v2 client is installed; this machine's `docker` is a
client without the compose plugin, and Debian packages only docker-compose 1.29 (v1, which predates
the Compose Specification and refuses its top-level `name`). So the file is always validated, after
Compose-style interpolation, against the Compose Specification's JSON schema, vendored as
tests/unit/compose-spec.schema.json from github.com/compose-spec/compose-spec, schema/compose-spec.json
at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6 (Apache License 2.0).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lakehouse_helpers.runtime.settings import ENV_VARS, SECRET_ENV_VARS, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose-spec.schema.json")
# Placeholder keys: the file refuses to start without them (`${VAR:?...}`).
ENV = {"AWS_ACCESS_KEY_ID": "placeholder-id", "AWS_SECRET_ACCESS_KEY": "placeholder-secret"}
_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


class MissingVariable(KeyError):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name, op, arg = m.group(2), m.group(3), m.group(4)
        unset = name not in env or (op is not None and op.startswith(":") and env[name] == "")
        if unset and op in (":-", "-"):
            return arg
        if unset and op in (":?", "?"):
            raise MissingVariable(name)
        return env.get(name, "")

    return _VAR.sub(sub, value)


def compose(env: dict[str, str] | None = None) -> dict:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), ENV if env is None else env)


def test_compose_file_matches_the_compose_specification():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    # The schema does reject what Compose rejects: a misspelt key.
    broken = compose()
    broken["services"]["kafka"]["port"] = ["9092:9092"]
    assert any("port" in e.message for e in validator.iter_errors(broken))


def test_compose_refuses_to_start_without_the_s3_keys():
    with pytest.raises(MissingVariable) as err:
        compose({"AWS_SECRET_ACCESS_KEY": "x"})
    assert err.value.args == ("AWS_ACCESS_KEY_ID",)


def _compose_v2() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return None


@pytest.mark.skipif(_compose_v2() is None, reason="no Compose v2 client (docker compose plugin) on this machine; "
                    "the file is checked against the Compose Specification's schema instead")
def test_docker_compose_config_accepts_it():
    out = subprocess.run([*_compose_v2(), "-f", str(COMPOSE), "config", "--format", "json"], env=ENV,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)["services"]) >= {"kafka", "minio", "minio-init", "unitycatalog", "uc-init"}


def _published(service: dict) -> dict[int, tuple[str, int]]:
    """container port -> (host ip, host port) of "ip:host:container" entries."""
    out = {}
    for entry in service["ports"]:
        ip, host, container = entry.split(":")
        out[int(container)] = (ip, int(host))
    return out


def test_compose_settings_equal_the_embedded_defaults():
    d, services = Settings(), compose()["services"]
    kafka = services["kafka"]
    assert _published(kafka) == {9092: (d.kafka_host, d.kafka_port)}
    assert f"HOST://{d.kafka_bootstrap}" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert f"CONTROLLER://:{d.kafka_controller_port}" in kafka["environment"]["KAFKA_LISTENERS"].split(",")
    minio = services["minio"]
    assert _published(minio)[9000] == (d.s3_endpoint.split("//")[1].split(":")[0], d.s3_port)
    assert minio["environment"]["MINIO_SITE_REGION"] == d.s3_region
    assert services["minio-init"]["environment"]["S3_BUCKET"] == d.s3_bucket
    assert services["uc-init"]["environment"]["UC_CATALOG"] == d.catalog
    jupyter = services["jupyter"]["environment"]
    assert (jupyter["S3_BUCKET"], jupyter["AWS_REGION"], jupyter["LAKEHOUSE_CATALOG"]) == (
        d.s3_bucket, d.s3_region, d.catalog)
    # Unset, the topic is the workbook's default; every variable is one the settings read.
    assert set(jupyter) <= set(ENV_VARS.values()) | set(SECRET_ENV_VARS.values())


def test_compose_in_stack_addresses_point_at_its_services():
    services = compose()["services"]
    jupyter = services["jupyter"]["environment"]
    assert f"INTERNAL://{jupyter['KAFKA_BOOTSTRAP_SERVERS']}" in services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert jupyter["S3_ENDPOINT_URL"] == "http://minio:9000" and 9000 in _published(services["minio"])
    uc_port = next(iter(_published(services["unitycatalog"])))
    assert jupyter["UC_URL"] == f"http://unitycatalog:{uc_port}"
    # The host-side UC_URL the docs give is the published port.
    ip, host_port = _published(services["unitycatalog"])[uc_port]
    assert f"UC_URL=http://{ip}:{host_port}" in (ROOT / "docker" / "README.md").read_text()


def test_unity_catalog_server_and_client_are_the_same_release_line():
    tag = compose()["services"]["unitycatalog"]["image"].rsplit(":v", 1)[1]
    assert tag.split(".")[:2] == md.version("unitycatalog-client").split(".")[:2]
