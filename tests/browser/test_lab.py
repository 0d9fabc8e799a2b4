"""The lab as a learner sees it: JupyterLab, started by `make lab`'s recipe on the test stack, in
Debian's Chromium. Notebook 00 runs through the Run menu and ends with its checks passed and no
error; 01 shows tqdm's widget progress bar while it sends to Kafka; an executed run in runs/
shows its chart. Screenshots go to <test state>/browser/.

The lab runs copies of the notebooks in a work folder under runs/, never notebooks/ itself: Run
All leaves a notebook with unsaved outputs, and the lab's autosave (or a test stopped half-way)
would write them into the repository. A copy keeps notebooks/ clean whatever happens; the last
test checks that it did."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from lakehouse_helpers.notebook.runner import run_notebooks
from tests.browser.conftest import SCREENSHOTS, Chromium, Lab
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
RUN_S = 90_000  # ms: a notebook's Run All on 2 busy cores (00 takes about 5 s, 01 about 10 s)
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front
STDERR = '[data-mime-type="application/vnd.jupyter.stderr"]'
# True once every code cell ran in a fresh kernel ([1], [2], ... in order), or as soon as a
# traceback shows (Run All stops there: waiting longer would only time out).
RAN_OR_FAILED = """([panel, stderr]) => {
  const root = document.querySelector(panel);
  if (!root) return false;
  if ([...root.querySelectorAll(stderr)].some(e => e.textContent.includes('Traceback'))) return true;
  const prompts = [...root.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
  return prompts.length > 0 && prompts.every((p, i) => p === `[${i + 1}]:`);
}"""


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def untouched_notebooks():
    """notebooks/ as it was before the lab opened (a developer's own edits included)."""
    return _digest(NOTEBOOKS)


def _copy(lab: Lab, notebook: str) -> Path:
    target = lab.work / "lab" / notebook
    target.parent.mkdir(exist_ok=True)
    shutil.copy(NOTEBOOKS / notebook, target)
    return target


def _open(page, lab: Lab, notebook: Path) -> None:
    """Opens a notebook and waits until it is the one in front with its kernel idle: the status bar's
    "Python 3 (ipykernel) | Idle", titled with its name (the lab also reopens earlier tabs)."""
    page.goto(lab.tree(notebook))
    kernel = page.locator(f'#jp-main-statusbar [title="Change kernel for {notebook.name}"]',
                          has_text=re.compile(r"\| Idle$"))
    kernel.wait_for(timeout=60_000)
    page.locator(f"{PANEL} .jp-Spinner").wait_for(state="detached", timeout=30_000)


def _run_all(page) -> None:
    """Run > Run All Cells, through the menu bar as a learner clicks it."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    try:
        page.wait_for_function(RAN_OR_FAILED, arg=[PANEL, STDERR], timeout=RUN_S)
    except PlaywrightTimeout:
        page.screenshot(path=SCREENSHOTS / "run_all_timed_out.png")
        prompts = page.locator(f"{PANEL} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        pytest.fail(f"Run All did not finish in {RUN_S // 1000} s; prompts {prompts} (screenshot "
                    f"{SCREENSHOTS / 'run_all_timed_out.png'})")


def _tracebacks(page) -> list[str]:
    texts = page.locator(f"{PANEL} .jp-OutputArea-output{STDERR}, {PANEL} .jp-OutputArea-output {STDERR}")
    return [t[-1500:] for t in texts.all_inner_texts() if "Traceback" in t or "Error" in t]


def _last_output(page):
    output = page.locator(f"{PANEL} .jp-CodeCell").last.locator(".jp-OutputArea-output")
    output.scroll_into_view_if_needed()
    return output


def test_infra_check_runs_all_cells_in_the_lab(untouched_notebooks, lab, browser: Chromium):
    page = browser.page()
    _open(page, lab, _copy(lab, "00_infra_check.ipynb"))
    _run_all(page)
    page.screenshot(path=SCREENSHOTS / "00_infra_check.png")
    assert _tracebacks(page) == []
    summary = page.locator(f"{PANEL} .jp-OutputArea-output", has_text=re.compile(r"\d+ of \d+ checks passed"))
    passed, total = re.search(r"(\d+) of (\d+) checks passed", summary.inner_text()).groups()
    assert passed == total, summary.inner_text()
    # record(...)'s table: every check counted, none failed, on the local profile of the test stack.
    figures = _last_output(page).inner_text()
    assert re.search(rf"checks\s+{total}\b", figures) and re.search(r"failed\s+0\b", figures), figures
    assert re.search(r"profile\s+local\b", figures), figures
    page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=30_000)


def test_producer_shows_a_progress_bar_in_the_lab(lab, browser: Chromium):
    page = browser.page()
    _open(page, lab, _copy(lab, "01_produce_events.ipynb"))
    _run_all(page)
    assert _tracebacks(page) == []
    # tqdm.auto picks the notebook bar in a lab kernel: a FloatProgress widget with its count beside it.
    bar = page.locator(f"{PANEL} .jp-OutputArea-output .widget-hprogress").first
    bar.scroll_into_view_if_needed()
    bar.wait_for(state="visible", timeout=10_000)
    row = page.locator(f"{PANEL} .jp-OutputArea-output .widget-hbox", has=page.locator(".widget-hprogress")).first
    page.screenshot(path=SCREENSHOTS / "01_progress_bar.png")
    # Done: all messages counted, "producing to <topic>: 100% [bar] 2040/2040" (tqdm spaces with U+2007).
    text = row.inner_text().replace("\u2007", " ")
    assert re.search(rf"producing to {re.escape(lab.env['KAFKA_TOPIC'])}:\s+100%\s+(\d+)/\1\b", text), text


def test_an_executed_run_shows_its_chart(lab, browser: Chromium, monkeypatch):
    # A run as `make run --only 01` writes it, into runs/ where the lab shows it; its own topic.
    for name, value in {**lab.env, "KAFKA_TOPIC": lab.env["KAFKA_TOPIC"] + ".run"}.items():
        monkeypatch.setenv(name, value)
    from lakehouse_helpers.runtime.settings import load_settings

    out_dir, results = run_notebooks(load_settings(), {}, only=["01"], out_dir=lab.work / "run")
    assert [r.status for r in results] == ["ok"], results
    page = browser.page()
    _open(page, lab, out_dir / "01_produce_events.ipynb")
    chart = page.locator(f"{PANEL} .jp-OutputArea-output img").first
    chart.scroll_into_view_if_needed()
    chart.wait_for(state="visible", timeout=30_000)
    # decode() resolves once the image is loaded and decoded: no waiting on a guess.
    width = chart.evaluate("img => img.decode().then(() => img.naturalWidth)")
    page.screenshot(path=SCREENSHOTS / "run_01_chart.png")
    assert width > 0


def test_the_lab_left_notebooks_untouched(lab, untouched_notebooks):
    assert _digest(NOTEBOOKS) == untouched_notebooks, "the lab wrote into notebooks/"
