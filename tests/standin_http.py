"""What the tests' HTTP stand-ins (of the Databricks workspace APIs, of a Unity Catalog server)
share: a threaded server on a free port of 127.0.0.1 that records every request it is sent."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes
    authorization: str
    query: dict = field(default_factory=dict)

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


class StandInServer:
    """`with Server(...) as s:` serves until the block ends; `s.url` is its address."""

    def __init__(self, token: str, state, handler_class):
        self.token = token
        self.state = state
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        # shutdown() waits for the loop's next poll: at the default 0.5 s, every test using a
        # stand-in paid up to half a second on leaving it.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def send_json(handler, status: int, answer: dict) -> None:
    """Answer a request as the real APIs do: a JSON body with its length."""
    data = json.dumps(answer).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
