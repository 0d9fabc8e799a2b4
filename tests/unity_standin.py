"""A STAND-IN for the open-source Unity Catalog REST API: it is not Unity Catalog.

A real HTTP server on 127.0.0.1 (an ephemeral port) that the real `unitycatalog-client` talks to,
under /api/2.1/unity-catalog: catalogs (list, get, create), tables (get, create, delete) and
permissions (get, update). It refuses what the server refuses (a wrong bearer token, an unknown
catalog, schema, table or securable, a table that already exists, an unknown privilege, a
create body without a required field) and answers in the server's error format
({"error_code", "message"}). It records every request, so tests assert on what went over the wire.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from tests.standin_http import Recorded, StandInServer, send_json

API = "/api/2.1/unity-catalog"
# The server's Privilege enum (unitycatalog api/all.yaml).
PRIVILEGES = {"CREATE CATALOG", "USE CATALOG", "CREATE SCHEMA", "USE SCHEMA", "CREATE TABLE", "SELECT",
              "MODIFY", "CREATE FUNCTION", "EXECUTE", "CREATE VOLUME", "READ VOLUME", "CREATE MODEL"}
CREATE_TABLE_REQUIRED = ("name", "catalog_name", "schema_name", "table_type", "data_source_format", "columns",
                         "storage_location")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Catalog:
    catalogs: dict[str, dict] = field(default_factory=dict)
    schemas: set[str] = field(default_factory=set)  # catalog.schema
    tables: dict[str, dict] = field(default_factory=dict)  # catalog.schema.table -> table info
    grants: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # table -> principal -> privileges
    next_id: int = 0
    fail_creates: int = 0  # the next n table creations fail with HTTP 500, to test a failed update

    def add_table(self, full_name: str, **info) -> dict:
        catalog, schema, name = full_name.split(".")
        self.next_id += 1
        self.tables[full_name] = {"name": name, "catalog_name": catalog, "schema_name": schema,
                                  "table_id": f"t{self.next_id}", **info}
        return self.tables[full_name]


class UnityCatalogStandIn(StandInServer):
    """`with UnityCatalogStandIn(token) as uc:`; `uc.url` is the UC_URL to give the workbook.
    An empty token: the server accepts every request, as the dev server in docker compose."""

    def __init__(self, token: str = ""):
        super().__init__(token, Catalog(), _handler(self))

    def changes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    # Routes: (method, pattern) -> handler(match, body) -> (status, answer)
    def route(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        for (m, pattern), fn in _ROUTES.items():
            match = re.fullmatch(pattern, path)
            if m == method and match:
                with self._lock:
                    return fn(self.state, *match.groups(), body)
        raise ApiError(404, "NOT_FOUND", f"no route {method} {path}")


def _catalog_exists(state: Catalog, name: str) -> None:
    if name not in state.catalogs:
        raise ApiError(404, "NOT_FOUND", f"Catalog not found: {name}")


def _list_catalogs(state, body):
    return 200, {"catalogs": list(state.catalogs.values())}


def _get_catalog(state, name, body):
    _catalog_exists(state, name)
    return 200, state.catalogs[name]


def _create_catalog(state, body):
    if body.get("name") in state.catalogs:
        raise ApiError(409, "ALREADY_EXISTS", f"Catalog already exists: {body.get('name')}")
    state.catalogs[body["name"]] = {"name": body["name"], "comment": body.get("comment"), "id": "c1"}
    return 200, state.catalogs[body["name"]]


def _get_table(state, full_name, body):
    if full_name not in state.tables:
        raise ApiError(404, "NOT_FOUND", f"Table not found: {full_name}")
    return 200, state.tables[full_name]


def _delete_table(state, full_name, body):
    _get_table(state, full_name, body)
    del state.tables[full_name]
    return 200, {}


def _create_table(state, body):
    if state.fail_creates:
        state.fail_creates -= 1
        raise ApiError(500, "INTERNAL", "injected failure")
    missing = [k for k in CREATE_TABLE_REQUIRED if body.get(k) in (None, "")]
    if missing:
        raise ApiError(400, "INVALID_ARGUMENT", f"missing {', '.join(missing)}")
    _catalog_exists(state, body["catalog_name"])
    if f"{body['catalog_name']}.{body['schema_name']}" not in state.schemas:
        raise ApiError(404, "NOT_FOUND", f"Schema not found: {body['catalog_name']}.{body['schema_name']}")
    full_name = f"{body['catalog_name']}.{body['schema_name']}.{body['name']}"
    if full_name in state.tables:
        raise ApiError(409, "ALREADY_EXISTS", f"Table already exists: {full_name}")
    info = {k: body[k] for k in (*CREATE_TABLE_REQUIRED, "comment", "properties") if body.get(k) is not None}
    return 200, state.add_table(full_name, **info)


def _securable(state, kind, full_name):
    if kind != "table" or full_name not in state.tables:
        raise ApiError(404, "NOT_FOUND", f"{kind} not found: {full_name}")
    return state.grants.setdefault(full_name, {})


def _assignments(grants: dict[str, list[str]]) -> dict:
    return {"privilege_assignments": [{"principal": p, "privileges": sorted(v)} for p, v in grants.items() if v]}


def _get_permissions(state, kind, full_name, body):
    return 200, _assignments(_securable(state, kind, full_name))


def _update_permissions(state, kind, full_name, body):
    grants = _securable(state, kind, full_name)
    for change in body.get("changes", []):
        unknown = set(change.get("add", [])) - PRIVILEGES
        if unknown:
            raise ApiError(400, "INVALID_ARGUMENT", f"unknown privilege(s) {sorted(unknown)}")
        have = set(grants.get(change["principal"], [])) | set(change.get("add", []))
        grants[change["principal"]] = sorted(have - set(change.get("remove", [])))
    return 200, _assignments(grants)


_ROUTES = {
    ("GET", r"/catalogs"): _list_catalogs,
    ("GET", r"/catalogs/([^/]+)"): _get_catalog,
    ("POST", r"/catalogs"): _create_catalog,
    ("GET", r"/tables/([^/]+)"): _get_table,
    ("DELETE", r"/tables/([^/]+)"): _delete_table,
    ("POST", r"/tables"): _create_table,
    ("GET", r"/permissions/([^/]+)/([^/]+)"): _get_permissions,
    ("PATCH", r"/permissions/([^/]+)/([^/]+)"): _update_permissions,
}


def _handler(standin: UnityCatalogStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: tests read `standin.requests`
            pass

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = unquote(urlsplit(self.path).path)
            auth = self.headers.get("Authorization", "")
            standin.requests.append(Recorded(self.command, path.removeprefix(API), body, auth))
            try:
                if standin.token and auth != f"Bearer {standin.token}":
                    raise ApiError(401, "UNAUTHENTICATED", "invalid or missing bearer token")
                if not path.startswith(API + "/"):
                    raise ApiError(404, "NOT_FOUND", path)
                status, answer = standin.route(self.command, path.removeprefix(API), json.loads(body or b"{}"))
            except ApiError as exc:
                status, answer = exc.status, {"error_code": exc.code, "message": exc.message}
            send_json(self, status, answer)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler
