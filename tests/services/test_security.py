"""Security rows 12-16 of the fault suite: a canary secret is never written anywhere, secret-looking
parameters are refused, every embedded service and JupyterLab listen on 127.0.0.1 only, the S3
server checks signatures, and the files that hold keys are owner-only. Each test fills its row of
the published table (tests/faults_table.py)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lakehouse_helpers.runtime import services, storage
from tests.security_probes import _family, _generated_secrets, _listening


@pytest.mark.faults(
    row="14", fault="another machine on the network tries the services' ports",
    must_hold="every embedded service listens on 127.0.0.1 only (from the listening sockets)")
def test_every_embedded_service_listens_on_127_0_0_1_only(stack, observed):
    names = [n for n in services.SERVICES if services.wanted(stack, n)]
    pids = {st.name: st.pid for st in services.status(stack)}  # None for a service this project did not start
    sockets = {name: _listening(_family(pids[name])) for name in names}
    total = sum(len(s) for s in sockets.values())
    observed(f"{len(names)} services, {total} listening sockets: "
             + ", ".join(f"{n} {sorted({ip for ip, _ in s})}" for n, s in sockets.items()))
    assert all(sockets.values()), f"a service with no listening socket: {sockets}"
    elsewhere = {n: [a for a in s if a[0] != "127.0.0.1"] for n, s in sockets.items()}
    assert not any(elsewhere.values()), f"listening beyond 127.0.0.1: {elsewhere}"


def _s3_status(settings, access_key: str, secret_key: str) -> int:
    """HTTP status of a signed ListObjects on the bucket with these keys."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name=settings.s3_region,
                          aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    try:
        return client.list_objects_v2(Bucket=settings.s3_bucket, MaxKeys=1)["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"]


def _files_holding(paths, values: list[str]) -> list[Path]:
    return [p for p in paths if p.is_file() and any(v.encode() in p.read_bytes() for v in values if v)]


@pytest.mark.faults(
    row="15", fault="a request to the S3 server without a signature, or signed with a wrong key",
    must_hold="403 for unsigned and wrong keys, 200 for the right ones; secrets/ and key-holding configs owner-only")
def test_s3_refuses_unsigned_and_wrong_keys_and_key_files_are_owner_only(stack, observed):
    url = f"{stack.s3_endpoint}/{stack.s3_bucket}"
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(url, timeout=10)
    key, secret = stack.s3_access_key.reveal(), stack.s3_secret_key.reveal()
    statuses = {"unsigned GET": unsigned.value.code,
                "wrong secret": _s3_status(stack, key, "wrong" + secret[5:]),
                "unknown access key": _s3_status(stack, "LWUNKNOWN0000000000", secret),
                "right keys": _s3_status(stack, key, secret)}
    assert storage.s3_client(stack).head_bucket(Bucket=stack.s3_bucket)  # the workbook's own client too

    secrets_dir = stack.state_dir / "secrets"
    candidates = [*secrets_dir.iterdir(), *stack.services_dir.glob("*/*"), *stack.state_dir.glob("*")]
    holding = _files_holding(candidates, list(_generated_secrets(stack).values()))
    modes = {str(p.relative_to(stack.state_dir)): oct(p.stat().st_mode & 0o777) for p in [secrets_dir, *holding]}
    observed(", ".join(f"{k} {v}" for k, v in statuses.items()) + "; modes: "
             + ", ".join(f"{k} {v}" for k, v in modes.items()))
    assert statuses == {"unsigned GET": 403, "wrong secret": 403, "unknown access key": 403,
        "right keys": 200}, statuses
    assert stack.services_dir / "s3" / "s3proxy.conf" in holding  # the check found the server's config
    assert {p.name for p in holding} >= {"s3.env", "spark_connect.env"}
    open_to_others = {k: v for k, v in modes.items() if int(v, 8) & 0o077}
    assert open_to_others == {}, f"readable by others: {open_to_others}"


