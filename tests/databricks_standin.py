"""A STAND-IN for the Databricks REST APIs the deploy uses: it is not Databricks.

A real HTTP server on 127.0.0.1 (an ephemeral port) that the real databricks-sdk talks to. It
serves the host-metadata probe, Workspace (mkdirs, import), Files (PUT), Jobs 2.2 (list, create,
reset, get, run-now, runs/get) and records every request, so tests assert on what went over the
wire. It checks what a workspace would refuse (a wrong token, an import into a missing folder, an
existing path without overwrite, a notebook that is not Jupyter JSON, a reset of an unknown job,
a task depending on an unknown task) and answers in the workspace's error format. A started run
moves one task forward per `runs/get`, along the tasks' `depends_on`.

minilake (PyPI), an emulator of these APIs, was the first choice; its workspace import takes only
SOURCE notebooks, not the Jupyter format the deploy sends, so the tests use this instead.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from tests.standin_http import Recorded, StandInServer, send_json


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _norm(path: str) -> str:
    """`/Workspace/Shared/x` and `/Shared/x` name the same object, as in a workspace."""
    path = "/" + path.strip("/")
    return path.removeprefix("/Workspace") or "/"


@dataclass
class Workspace:
    """What the stand-in holds: workspace objects, volume files, jobs and runs."""

    objects: dict[str, dict] = field(default_factory=dict)  # path -> type, format, language, content
    dirs: set[str] = field(default_factory=lambda: {"/", "/Shared", "/Users"})
    files: dict[str, bytes] = field(default_factory=dict)  # /Volumes/... -> bytes
    jobs: dict[int, dict] = field(default_factory=dict)  # job id -> settings
    runs: dict[int, dict] = field(default_factory=dict)  # run id -> {"job_id", "polls", "order"}
    next_id: int = 100
    fail_task: str = ""  # a task whose run ends FAILED, to test how a failure is reported

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class DatabricksStandIn(StandInServer):
    """Start with `with DatabricksStandIn(token) as ws:`; `ws.url` is the host to give the SDK."""

    def __init__(self, token: str):
        super().__init__(token, Workspace(), _handler(self))

    def api_calls(self) -> list[tuple[str, str]]:
        """(method, path) of every API request, the SDK's host-metadata probe left out."""
        return [(r.method, r.path) for r in self.requests if r.path.startswith("/api/")]

    # --- routes -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body: bytes) -> dict:
        if path == "/.well-known/databricks-config":
            return {"workspace_id": "1234567890", "cloud": "AWS"}
        if method == "PUT" and path.startswith("/api/2.0/fs/files/"):
            return self._put_file(unquote(path.removeprefix("/api/2.0/fs/files")), query, body)
        route = _ROUTES.get((method, path))
        if route is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}' in this stand-in")
        payload = json.loads(body or b"{}") if method == "POST" else {k: v[0] for k, v in query.items()}
        return route(self, payload)

    def _mkdirs(self, req: dict) -> dict:
        parts = _norm(req["path"]).strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.state.dirs.add("/" + "/".join(parts[:i]))
        return {}

    def _import(self, req: dict) -> dict:
        path, fmt = _norm(req["path"]), req.get("format", "SOURCE")
        if (path.rsplit("/", 1)[0] or "/") not in self.state.dirs:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"The parent folder of {path} does not exist.")
        if path in self.state.objects and not req.get("overwrite"):
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"{path} already exists.")
        content = base64.b64decode(req.get("content", ""))
        if fmt == "JUPYTER":
            try:
                if "nbformat" not in json.loads(content):
                    raise ValueError
            except ValueError:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path}: content is not a Jupyter notebook") from None
            kind = "NOTEBOOK"
        elif fmt == "AUTO" and not path.endswith((".py", ".ipynb", ".sql", ".scala", ".r")):
            kind = "FILE"
        else:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"format {fmt} for {path} is not served by this stand-in")
        self.state.objects[path] = {"object_type": kind, "format": fmt, "language": req.get("language"),
                                    "content": content}
        return {}

    def _put_file(self, path: str, query: dict, body: bytes) -> dict:
        if not path.startswith("/Volumes/") or path.count("/") < 5:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path} is not a file in a volume")
        if path in self.state.files and query.get("overwrite", ["false"])[0] != "true":
            raise ApiError(409, "ALREADY_EXISTS", f"{path} already exists")
        self.state.files[path] = body
        return {}

    def _jobs_list(self, req: dict) -> dict:
        name = req.get("name", "").lower()
        found = [{"job_id": i, "settings": {"name": s["name"]}} for i, s in sorted(self.state.jobs.items())
                 if not name or s["name"].lower() == name]
        return {"jobs": found, "has_more": False} if found else {"has_more": False}

    def _check_tasks(self, settings: dict) -> None:
        keys = [t["task_key"] for t in settings.get("tasks", [])]
        if len(set(keys)) != len(keys):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "task keys must be unique")
        for t in settings.get("tasks", []):
            for dep in t.get("depends_on", []):
                if dep["task_key"] not in keys:
                    raise ApiError(400, "INVALID_PARAMETER_VALUE",
                        f"{t['task_key']} depends on unknown {dep['task_key']}")

    def _jobs_create(self, req: dict) -> dict:
        self._check_tasks(req)
        job_id = self.state.new_id()
        self.state.jobs[job_id] = req
        return {"job_id": job_id}

    def _job(self, job_id) -> dict:
        if int(job_id) not in self.state.jobs:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
        return self.state.jobs[int(job_id)]

    def _jobs_reset(self, req: dict) -> dict:
        self._job(req["job_id"])
        self._check_tasks(req["new_settings"])
        self.state.jobs[int(req["job_id"])] = req["new_settings"]
        return {}

    def _jobs_get(self, req: dict) -> dict:
        return {"job_id": int(req["job_id"]), "settings": self._job(req["job_id"])}

    def _run_now(self, req: dict) -> dict:
        tasks, order, done = self._job(req["job_id"])["tasks"], [], set()
        while len(order) < len(tasks):  # the order depends_on allows, as a workspace schedules it
            ready = [t["task_key"] for t in tasks if t["task_key"] not in done
                     and all(d["task_key"] in done for d in t.get("depends_on", []))]
            order.append(ready[0])
            done.add(ready[0])
        run_id = self.state.new_id()
        self.state.runs[run_id] = {"job_id": int(req["job_id"]), "polls": 0, "order": order}
        return {"run_id": run_id, "number_in_job": run_id}

    def _runs_get(self, req: dict) -> dict:
        run = self.state.runs[int(req["run_id"])]
        step, order = run["polls"], run["order"]
        run["polls"] += 1
        failed_at = order.index(self.state.fail_task) if self.state.fail_task in order else len(order)
        tasks = []
        for i, key in enumerate(order):
            if i < min(step, failed_at):
                tasks.append(_task(key, "TERMINATED", "SUCCESS"))
            elif i == failed_at and step > failed_at:
                tasks.append(_task(key, "TERMINATED", "RUN_EXECUTION_ERROR", f"{key} raised an exception"))
            elif i == step and i <= failed_at:
                tasks.append(_task(key, "RUNNING"))
            else:
                tasks.append(_task(key, "BLOCKED" if i > failed_at and step > failed_at else "PENDING"))
        over = step > failed_at or step >= len(order)
        code = "SUCCESS" if failed_at == len(order) else "RUN_EXECUTION_ERROR"
        status = {"state": "TERMINATED", "termination_details": {"code": code}} if over else {"state": "RUNNING"}
        return {"run_id": int(req["run_id"]), "job_id": run["job_id"], "status": status, "tasks": tasks,
                "run_page_url": f"{self.url}/#job/{run['job_id']}/run/{req['run_id']}"}


def _task(key: str, state: str, code: str = "", message: str = "") -> dict:
    status: dict = {"state": state}
    if code:
        status["termination_details"] = {"code": code, "message": message}
    return {"task_key": key, "status": status}


_ROUTES = {
    ("POST", "/api/2.0/workspace/mkdirs"): DatabricksStandIn._mkdirs,
    ("POST", "/api/2.0/workspace/import"): DatabricksStandIn._import,
    ("GET", "/api/2.2/jobs/list"): DatabricksStandIn._jobs_list,
    ("POST", "/api/2.2/jobs/create"): DatabricksStandIn._jobs_create,
    ("POST", "/api/2.2/jobs/reset"): DatabricksStandIn._jobs_reset,
    ("GET", "/api/2.2/jobs/get"): DatabricksStandIn._jobs_get,
    ("POST", "/api/2.2/jobs/run-now"): DatabricksStandIn._run_now,
    ("GET", "/api/2.2/jobs/runs/get"): DatabricksStandIn._runs_get,
}


def _handler(standin: DatabricksStandIn):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization", "")
            with standin._lock:
                standin.requests.append(Recorded(self.command, url.path, body, auth, parse_qs(url.query)))
                try:
                    if url.path.startswith("/api/") and auth != f"Bearer {standin.token}":
                        raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
                    status, answer = 200, standin.handle(self.command, url.path, parse_qs(url.query), body)
                except ApiError as exc:
                    status, answer = exc.status, {"error_code": exc.code, "message": exc.message}
            send_json(self, status, answer)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server's names

        def log_message(self, *args) -> None:  # quiet: the tests read `requests`
            pass

    return Handler
