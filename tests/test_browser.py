"""The student's JupyterLab, in a real browser: Run All reaches the end, every widget shows and responds.

JupyterLab is started on loopback over a copy of notebooks/ (JupyterLab saves as it goes: the repository's
notebooks are never touched), and each released notebook is opened in headless Chromium (Debian's
`chromium`, driven by Playwright's Python package pointed at it: nothing is downloaded), run with Run All,
and then checked:

- the kernel reached the last cell (every code cell has an execution count; an error would have stopped
  Run All and left the rest unnumbered);
- every interactive explorer shows content and changes when one of its controls is moved;
- the self-grading button is there (in chapter 0 it is pressed, and the feedback appears).

A screenshot of each notebook goes to test-artifacts/browser/. Skips with the reason where Chromium or
Playwright is missing; `.ci/run` installs Chromium. COURSE_BROWSER_NOTEBOOKS chooses the notebooks (below).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course_lib.utils import NOTEBOOKS_DIR, REPO_DIR

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO_DIR / "test-artifacts" / "browser"
# Flags for a closed network: no background requests, no first-run pages (see the machine's notes).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
RUN_ALL_TIMEOUT_S = int(os.environ.get("COURSE_BROWSER_TIMEOUT_S", "600"))  # one notebook, on a slow shared laptop
LAB_SETTINGS = {  # every cell in the page (no virtual scrolling), and no news or update checks
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


# Run All costs what the notebook costs (chapter 2 alone adds over two minutes), so within the suite's
# 15-minute budget the default opens chapter 0: a dropdown and a slider explorer, Run All past three stubs,
# and the self-grading button pressed for real. COURSE_BROWSER_NOTEBOOKS=all opens every released notebook
# (the token playground, chapter 2's progress bar and sampling sliders, chapter 8's bit explorer among them):
# run it before a release.
DEFAULT_NOTEBOOKS = "00"


def released_notebooks() -> list[str]:
    names = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))
    chosen = os.environ.get("COURSE_BROWSER_NOTEBOOKS", DEFAULT_NOTEBOOKS)
    return names if chosen == "all" else [n for n in names if n[:2] in chosen.split(",")]


def missing_tool() -> str | None:
    if CHROMIUM is None:
        return "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed (pip install -r requirements.txt)"
    return None


pytestmark = pytest.mark.skipif(missing_tool() is not None, reason=missing_tool() or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on loopback over a copy of notebooks/; yields (base URL, token, its folder)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(NOTEBOOKS_DIR, root / "notebooks")
    settings = root / "settings"
    for name, value in LAB_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value), encoding="utf-8")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "COURSE_GRADING_DIR": str(root / "grading")}
    log = open(root / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI containers run as root
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()[-3000:]}") from None
            time.sleep(0.5)
    yield base, token, root
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# What the page says, read with small scripts rather than selectors the next JupyterLab may rename.
PROMPTS_JS = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'))
                     .map(p => p.textContent.trim())"""
ERRORS_JS = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'))
                     .filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.error'
                                  || o.querySelector('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"] .ansi-red-fg'))
                     .map(o => o.textContent.slice(0, 400))"""


def open_notebook(page, lab, name: str) -> None:
    """Open `name` alone, in a fresh workspace of its own (no tabs or kernels left from another test)."""
    base, token, _ = lab
    page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/notebooks/{name}?reset&token={token}", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # the kernel is ready when the status bar says so
    page.wait_for_function("() => document.body.innerText.includes('Idle')", timeout=120_000)


def run_all(page) -> list[str]:
    """Run → Run All Cells, then wait until no cell is queued or running; returns the prompts."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_function("() => Array.from(document.querySelectorAll('.jp-InputPrompt')).some(p => p.textContent.includes('*'))",
                           timeout=30_000)
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS_JS)
        if not any("*" in p for p in prompts):
            return prompts
        time.sleep(1)
    running = page.locator(".jp-CodeCell:has(.jp-InputPrompt:text-is('[*]:'))").first
    running.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "run_all_timeout.png"))
    first_line = running.locator(".jp-InputArea-editor").inner_text().strip().splitlines()[:1]
    raise AssertionError(f"Run All did not finish within {RUN_ALL_TIMEOUT_S} s; still running: {first_line} "
                         "(screenshot: test-artifacts/browser/run_all_timeout.png)")


def move_a_control(panel) -> None:
    """Change the first control of an explorer: type into a text box, pick another option, nudge a slider."""
    for selector, typed in (("textarea", "Once upon a time, a zebra sang."), ("input[type=text]", "0.3")):
        box = panel.locator(selector)  # a text area takes prose (the token playground), a text field a number
        if box.count():
            box.first.fill(typed)
            box.first.press("Enter")
            return
    select = panel.locator("select")
    if select.count():
        options = select.first.locator("option").all_inner_texts()
        select.first.select_option(label=options[-1])
        return
    handle = panel.locator(".noUi-handle, [role=slider]")
    assert handle.count(), "an explorer with no control the test knows how to move"
    handle.first.focus()
    for _ in range(3):
        handle.first.press("ArrowRight")


def check_explorers(page, stem: str) -> int:
    """Every interactive explorer shows output, and that output changes when a control moves."""
    panels = page.locator(".widget-interact")
    for i in range(panels.count()):
        panel = panels.nth(i)
        panel.scroll_into_view_if_needed()
        output = panel.locator(".widget-output")
        page.wait_for_function("el => el.innerText.trim().length > 0 || el.querySelector('img, svg, table')",
                               arg=output.element_handle(), timeout=30_000)
        before = output.inner_html()
        move_a_control(panel)
        page.wait_for_function("([el, before]) => el.innerHTML !== before && el.innerText.trim().length > 0",
                               arg=[output.element_handle(), before], timeout=60_000)
        panel.screenshot(path=str(ARTIFACTS / f"{stem}_explorer_{i + 1}.png"))
    return panels.count()


def shut_down_kernels(lab) -> None:
    """End every kernel the server runs (through its REST API), so the next notebook runs alone."""
    base, token, _ = lab
    auth = {"Authorization": f"token {token}"}
    sessions = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions", headers=auth), timeout=30))
    for session in sessions:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions/{session['id']}", headers=auth, method="DELETE"),
                               timeout=60)


@pytest.mark.parametrize("name", released_notebooks())
def test_run_all_reaches_the_end_and_widgets_work(lab, browser, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_notebook(page, lab, name)
        prompts = run_all(page)
        page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"))
        unrun = [i for i, p in enumerate(prompts) if not p.strip("[]: ").isdigit()]
        errors = page.evaluate(ERRORS_JS)
        assert not unrun and not errors, f"{name}: Run All stopped; code cells without a count: {unrun[:5]}; errors: {errors[:2]}"
        check_explorers(page, Path(name).stem)
        grade_button = page.get_by_role("button", name="Grade my saved notebook")
        assert grade_button.count() == 1, f"{name}: no self-grading button in the last cell"
        if name.startswith("00_"):
            page.keyboard.press("Control+s")
            grade_button.click()
            page.wait_for_function("() => /\\d+\\/\\d+ points \\[00_welcome\\]/.test(document.body.innerText)", timeout=300_000)
            page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}_self_grade.png"))
            assert (lab[2] / "grading" / "00_welcome.feedback.md").is_file()
    finally:
        page.close()
        shut_down_kernels(lab)
