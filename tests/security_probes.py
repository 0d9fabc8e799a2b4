"""What the security rows look at: the stack's generated secrets, a process's family and the
addresses it listens on (shared by the services and notebooks tiers' security tests)."""

from __future__ import annotations

import ipaddress

import psutil


def _generated_secrets(settings) -> dict[str, str]:
    """The embedded stack's own keys and token (state folder's secrets/): as secret as a canary."""
    return {"generated S3 access key": settings.s3_access_key.reveal(),
            "generated S3 secret key": settings.s3_secret_key.reveal(),
            "generated Spark Connect token": settings.spark_connect_token.reveal()}


def _family(pid: int | None) -> set[int]:
    """A process and all its descendants (the Spark server's `sh` wrapper, its JVM)."""
    if pid is None:
        return set()
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.Error:
        return set()


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    """The listening TCP sockets of `pids`, IPv4-mapped IPv6 addresses written as IPv4."""
    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            ip = ipaddress.ip_address(conn.laddr.ip.split("%")[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            found.append((str(mapped or ip), conn.laddr.port))
    return sorted(set(found))

