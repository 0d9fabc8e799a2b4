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
from pathlib import Path
from typing import Any, TypeVar

from lakehouse_helpers.runtime.settings import Settings

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


# The old registration is created again this many times before the update gives up on it.
RESTORE_ATTEMPTS = 3


def saved_registrations(settings: Settings) -> Path:
    """Where a registration waits while it is replaced: a table whose re-create and put-back both
    failed is registered again from here by the next `restore_saved` (governance apply does it first)."""
    return settings.state_dir / "unity" / "replacing"


def reregister_table(settings: Settings, current: dict, wanted: dict) -> None:
    """Replace the registration `current` (a table's info) with `wanted`: the open-source API has
    no table update. EXTERNAL tables only. The old registration is saved in the state folder
    before the delete; if the new one is refused, the old one is put back (retried), and if even
    that fails, the saved copy names the table and the next apply registers it again."""
    from unitycatalog.client import CreateTable, TablesApi

    full_name = ".".join(current[k] for k in ("catalog_name", "schema_name", "name"))
    if current.get("table_type") != "EXTERNAL":
        raise TableNotUpdatable(full_name, str(current.get("table_type")))
    saved = saved_registrations(settings) / f"{full_name}.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(current))
    held = {"deleted": False, "registered": False}  # where `work` stopped, for the error and the saved copy

    async def work(client):
        api = TablesApi(client)
        await api.delete_table(full_name, _request_timeout=REQUEST_TIMEOUT_S)
        held["deleted"] = True
        try:
            await api.create_table(CreateTable.from_dict({k: wanted.get(k) for k in _CREATE_FIELDS}),
                                   _request_timeout=REQUEST_TIMEOUT_S)
        except Exception:
            await _put_back(api, current)  # raises when every attempt failed: the table is unregistered
            held["registered"] = True
            raise
        held["registered"] = True

    try:
        _run(settings, f"re-register table {full_name}", work)
    except UnityCatalogError as exc:
        if held["deleted"] and not held["registered"]:
            raise UnityCatalogError(exc.operation, exc.status, exc.error_code, exc.message + (
                f" The table's old registration could not be put back either: it is saved in {saved}, and the "
                "next governance apply (notebook 07) registers it again first.")) from None
        raise
    finally:
        if not held["deleted"] or held["registered"]:
            saved.unlink()


async def _put_back(api, current: dict) -> None:
    from unitycatalog.client import CreateTable

    for attempt in range(RESTORE_ATTEMPTS):
        try:
            await api.create_table(CreateTable.from_dict({k: current.get(k) for k in _CREATE_FIELDS}),
                                   _request_timeout=REQUEST_TIMEOUT_S)
            return
        except Exception:
            if attempt == RESTORE_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.5 * 2 ** attempt)  # a server that failed once may answer a moment later


def restore_saved(settings: Settings) -> list[str]:
    """Register again every table whose replacement was interrupted (see `reregister_table`);
    returns their names. A table registered meanwhile keeps its registration."""
    from unitycatalog.client import CreateTable, TablesApi

    restored = []
    for saved in sorted(saved_registrations(settings).glob("*.json")):
        current = json.loads(saved.read_text())
        full_name = saved.stem
        try:
            get_table(settings, full_name)
        except UnityCatalogError as exc:
            if exc.status != 404:
                raise

            async def work(client, body=current):
                await TablesApi(client).create_table(CreateTable.from_dict({k: body.get(k) for k in _CREATE_FIELDS}),
                                                     _request_timeout=REQUEST_TIMEOUT_S)

            _run(settings, f"register table {full_name} again", work)
            restored.append(full_name)
        saved.unlink()
    return restored


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
