"""Unity Catalog REST client for a server the user runs (docker compose, or their own).

Only the calls the workbook needs: health, and create-if-missing for the catalog and schemas.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .settings import Settings

API = "/api/2.1/unity-catalog"


class UnityCatalogError(RuntimeError):
    pass


def _request(settings: Settings, method: str, path: str, body: dict | None = None) -> dict:
    url = settings.uc_url.rstrip("/") + API + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if settings.uc_token:
        req.add_header("Authorization", f"Bearer {settings.uc_token.reveal()}")
    try:
        with urllib.request.urlopen(req, timeout=settings.connect_timeout_s) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise UnityCatalogError(f"{method} {url} answered {exc.code}: {exc.read()[:300].decode(errors='replace')}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise UnityCatalogError(
            f"Unity Catalog is not reachable at {settings.uc_url} ({exc}). Start it (docker compose) or fix UC_URL."
        ) from None


def describe_catalog(settings: Settings) -> str:
    info = _request(settings, "GET", f"/catalogs/{settings.catalog}")
    return f"catalog '{info.get('name')}' on {settings.uc_url}"


def ensure_catalog(settings: Settings) -> None:
    try:
        _request(settings, "GET", f"/catalogs/{settings.catalog}")
    except UnityCatalogError as exc:
        if " 404" not in str(exc) and "answered 404" not in str(exc):
            raise
        _request(settings, "POST", "/catalogs", {"name": settings.catalog, "comment": "Lakehouse Workbook"})
