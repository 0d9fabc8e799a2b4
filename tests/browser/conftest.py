"""The browser tier's fixtures: JupyterLab started by `make lab`'s own recipe on the test stack,
and Debian's Chromium driven by Playwright. The lab's token stays in memory: it is read from the
server's output (never written to a log) and sent as a request header (never in a URL)."""

from __future__ import annotations

import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, SUITE_STATE
from tests.unit.test_make import SKIP_SETUP, recipe, stop_recipe

# The one way this project gets a browser (`make chromium`, which `make test` runs).
CHROMIUM_INSTALL = "apt-get install -y chromium"
SCREENSHOTS = SUITE_STATE / "browser"
TOKEN = re.compile(r"[?&]token=([0-9a-f]+)")
LAB_START_S = 90  # a cold start on 2 busy cores takes 5-15 s


@dataclass
class Lab:
    url: str
    work: Path  # this session's folder under <state>/runs: the lab shows it as runs/<name>
    env: dict[str, str] = field(repr=False)  # what the lab's kernels see (the test stack, a topic)
    token: str = field(repr=False)

    def tree(self, path: Path) -> str:
        """The lab's address of a file in the work folder."""
        return f"{self.url}/lab/tree/runs/{self.work.name}/{path.relative_to(self.work)}"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(f"the browser tier needs Chromium, not found on PATH: install it with `{CHROMIUM_INSTALL}` "
                    "(as root; `make test` does it where apt-get is available)", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_output(proc: subprocess.Popen, lines: list[str], tokens: queue.Queue) -> None:
    """Keeps the server's output in memory; hands over the token once, then None at its exit."""
    for line in proc.stdout:
        lines.append(TOKEN.sub("token=<hidden>", line))
        if match := TOKEN.search(line):
            tokens.put(match[1])
    tokens.put(None)


@pytest.fixture(scope="module")
def lab(stack, test_env, tmp_path_factory) -> Iterator[Lab]:
    """`make lab` as a learner starts it (its recipe, run as is, plus a free port and no browser),
    on the test stack, with a Kafka topic of its own and a work folder under runs/."""
    # The Makefile's own recipe with this venv's tools (as tests/notebooks/test_security.py row 16).
    command = recipe(*SKIP_SETUP, "lab").replace(".venv/bin/", f"{Path(sys.executable).parent}/").strip()
    port, home, name = _free_port(), tmp_path_factory.mktemp("lab-home"), f"browser-{uuid.uuid4().hex[:8]}"
    runs = stack.state_dir / "runs"
    for earlier in runs.glob("browser-*"):  # an earlier session's copies: one set in the lab's runs/ at a time
        shutil.rmtree(earlier, ignore_errors=True)
    work = runs / name
    work.mkdir(parents=True)
    env = {**test_env, "KAFKA_TOPIC": f"browser.{name}.orders",
           # The server's files and the learner's layout (workspaces, settings) stay out of ~/.jupyter.
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings")}
    proc = subprocess.Popen(["bash", "-c", f"{command} --port={port} --no-browser"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    tokens: queue.Queue = queue.Queue()
    threading.Thread(target=_read_output, args=(proc, lines, tokens), daemon=True).start()
    try:
        try:
            token = tokens.get(timeout=LAB_START_S)
        except queue.Empty:
            token = None
        assert token, f"JupyterLab printed no address with a token within {LAB_START_S} s:\n{''.join(lines[-40:])}"
        yield Lab(f"http://127.0.0.1:{port}", work, env, token)
    finally:
        stop_recipe(proc)


class Chromium:
    """One Chromium for the module's tests, launched by the first test that asks for a page, so a
    missing browser fails that test (naming the command that installs it), not a fixture."""

    def __init__(self, playwright, lab: Lab):
        self.playwright, self.lab, self.browser, self._page = playwright, lab, None, None

    def page(self):
        if self._page is None:
            self.browser = self.playwright.chromium.launch(executable_path=chromium())
            context = self.browser.new_context(viewport={"width": 1400, "height": 1000},
                                               extra_http_headers={"Authorization": f"token {self.lab.token}"})
            self._page = context.new_page()
        return self._page


@pytest.fixture(scope="module")
def browser(lab) -> Iterator[Chromium]:
    """Chromium, logged in to the lab by its token in an `Authorization` header."""
    from playwright.sync_api import sync_playwright

    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # an earlier session's failure shots would mislead
    SCREENSHOTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        held = Chromium(playwright, lab)
        try:
            yield held
        finally:
            if held.browser is not None:
                held.browser.close()
