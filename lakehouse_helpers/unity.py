"""Unity Catalog through its REST API with the `unitycatalog-client` package: the server the user
runs at UC_URL (docker compose, or their own).

The calls the workbook needs: its catalog (get, create if missing), a table's registration and
its grants. The client is asynchronous (aiohttp): each function runs its calls to completion in a
worker thread with its own event loop, so it works the same in a script and in a notebook cell,
where an event loop is already running.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .settings import Settings

API = "/api/2.1/unity-catalog"
# A whole request, not only the connection: the server may be slow, never silent for this long.
REQUEST_TIMEOUT_S = 30.0
T = TypeVar("T")


class UnityCatalogError(RuntimeError):
    """A Unity Catalog call failed. `status` is the HTTP status, None when no answer came (server
    not reachable); `error_code` is the server's own code (NOT_FOUND, ALREADY_EXISTS, ...)."""

    def __init__(self, operation: str, status: int | None, error_code: str = "", message: str = ""):
        super().__init__(f"{operation}: " + (f"HTTP {status} {error_code} {message}".strip() if status else message))
        self.operation, self.status, self.error_code, self.message = operation, status, error_code, message


class TableNotUpdatable(RuntimeError):
    """The open-source REST API cannot change a registered table, only delete and create it; that
    is safe for an EXTERNAL table (its files stay) and would drop a MANAGED table's data."""

    def __init__(self, table: str, table_type: str):
        super().__init__(f"{table} is {table_type}: only EXTERNAL tables can be re-registered with new "
                         "comments and properties through the Unity Catalog REST API")
        self.table, self.table_type = table, table_type


def _error(operation: str, exc: Exception, url: str) -> UnityCatalogError:
    from unitycatalog.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        try:
            body = json.loads(exc.body or "{}")
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return UnityCatalogError(operation, exc.status, str(body.get("error_code", "")),
                                 str(body.get("message", exc.reason or "")))
    # Only the exception's type: its text can hold request details.
    return UnityCatalogError(operation, None, "", f"Unity Catalog is not reachable at {url} ({type(exc).__name__}). "
                             "Start it (docker compose) or fix UC_URL.")


def _run(settings: Settings, operation: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(api_client)` on a fresh client (the token as a bearer header), in its own loop."""
    import aiohttp
    from unitycatalog.client import ApiClient, Configuration

    async def main() -> T:
        async with ApiClient(Configuration(host=settings.uc_url.rstrip("/") + API)) as client:
            if settings.uc_token:
                client.set_default_header("Authorization", f"Bearer {settings.uc_token.reveal()}")
            return await work(client)

    from unitycatalog.client.exceptions import ApiException

    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(asyncio.run, main()).result()
        except (ApiException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _error(operation, exc, settings.uc_url) from None


def _plain(model) -> dict:
    """A client model as JSON data: enums as their strings, no None fields."""
    return json.loads(model.to_json())


def get_catalog(settings: Settings) -> dict:
    from unitycatalog.client import CatalogsApi

    async def work(client):
        return _plain(await CatalogsApi(client).get_catalog(settings.catalog, _request_timeout=REQUEST_TIMEOUT_S))

    return _run(settings, f"get catalog {settings.catalog}", work)


def ensure_catalog(settings: Settings) -> bool:
    """Create the catalog unless it exists; True when it was created."""
    from unitycatalog.client import CatalogsApi, CreateCatalog

    try:
        get_catalog(settings)
        return False
    except UnityCatalogError as exc:
        if exc.status != 404:
            raise

    async def work(client):
        body = CreateCatalog(name=settings.catalog, comment="Lakehouse Workbook")
        await CatalogsApi(client).create_catalog(body, _request_timeout=REQUEST_TIMEOUT_S)

    _run(settings, f"create catalog {settings.catalog}", work)
    return True


def get_table(settings: Settings, full_name: str) -> dict:
    from unitycatalog.client import TablesApi

    async def work(client):
        return _plain(await TablesApi(client).get_table(full_name, _request_timeout=REQUEST_TIMEOUT_S))

    return _run(settings, f"get table {full_name}", work)


_CREATE_FIELDS = ("name", "catalog_name", "schema_name", "table_type", "data_source_format", "columns",
                  "storage_location", "comment", "properties")


def reregister_table(settings: Settings, current: dict, wanted: dict) -> None:
    """Replace the registration `current` (a table's info) with `wanted`: the open-source API has
    no table update. EXTERNAL tables only; if the new registration fails, the old one is put back."""
    from unitycatalog.client import CreateTable, TablesApi

    full_name = ".".join(current[k] for k in ("catalog_name", "schema_name", "name"))
    if current.get("table_type") != "EXTERNAL":
        raise TableNotUpdatable(full_name, str(current.get("table_type")))

    async def work(client):
        api = TablesApi(client)
        await api.delete_table(full_name, _request_timeout=REQUEST_TIMEOUT_S)
        try:
            await api.create_table(CreateTable.from_dict({k: wanted.get(k) for k in _CREATE_FIELDS}),
                                   _request_timeout=REQUEST_TIMEOUT_S)
        except Exception:
            await api.create_table(CreateTable.from_dict({k: current.get(k) for k in _CREATE_FIELDS}),
                                   _request_timeout=REQUEST_TIMEOUT_S)
            raise

    _run(settings, f"re-register table {full_name}", work)


def get_grants(settings: Settings, full_name: str) -> dict[str, set[str]]:
    """principal -> privileges on the table."""
    from unitycatalog.client import GrantsApi, SecurableType

    async def work(client):
        answer = await GrantsApi(client).get(SecurableType.TABLE, full_name, _request_timeout=REQUEST_TIMEOUT_S)
        return {a.principal: {p.value for p in a.privileges} for a in answer.privilege_assignments or []}

    return _run(settings, f"get grants on {full_name}", work)


def add_grants(settings: Settings, full_name: str, grants: dict[str, tuple[str, ...]]) -> dict:
    """Grant `grants` (principal -> privileges) on the table; returns the request body sent."""
    from unitycatalog.client import GrantsApi, SecurableType, UpdatePermissions

    body = {"changes": [{"principal": p, "add": list(privs), "remove": []} for p, privs in grants.items()]}

    async def work(client):
        await GrantsApi(client).update(SecurableType.TABLE, full_name, UpdatePermissions.from_dict(body),
                                       _request_timeout=REQUEST_TIMEOUT_S)

    _run(settings, f"grant on {full_name}", work)
    return body
