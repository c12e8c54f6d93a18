"""Notebook 03's explorer in a real browser: JupyterLab + headless Chromium, driven by selenium.

Starts JupyterLab on 127.0.0.1 (a free port, no token) over a copy of notebook 03 (its relative paths still
resolve to this checkout's ``notebooks/``), runs all cells, right-clicks the explorer's initial click away
and left-clicks a new one on the image, and checks that the keypoint-mask panel changed each time and that
no widget error appeared. Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package
(``.ci/run`` installs them and sets ``PWSLIB_BROWSER_TEST=required``, which turns a skip into a failure).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pwslib.viz.explorer import PANEL_RECTS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "03_model_and_keypoint_masks.ipynb"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
RUN_ALL_SECONDS = 900  # running every cell may pretrain the backbone first (about 4 min on 2 cores)

pytestmark = pytest.mark.slow


def _requirements_or_skip():
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    for module in ("selenium", "ipympl", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        message = (
            f"browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver; pip install selenium)"
        )
        if os.environ.get("PWSLIB_BROWSER_TEST") == "required":
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server over a folder holding a copy of notebook 03; yields its URL, stops it after."""
    _requirements_or_skip()
    from pwslib.config import config_for
    from pwslib.experiments.notebook import PRESET_VARIABLE
    from pwslib.pretraining import PretrainingRecipe, pretrained_backbone

    pretrained_backbone(PretrainingRecipe.of_run(config_for("ours")))  # built here, not under the browser's clock
    folder = tmp_path / "lab"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, folder / NOTEBOOK)
    port = _free_port()
    settings = tmp_path / "settings"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={folder}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={settings / 'workspaces'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "jupyterlab.log", "w"),
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), PRESET_VARIABLE: "ci"},  # seconds-long runs
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text())
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",  # this machine's closed network refuses Chromium's background calls
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1200",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        from selenium.common.exceptions import WebDriverException

        with contextlib.suppress(WebDriverException):  # a crashed browser has no page left: its failure says so
            driver.save_screenshot(str(tmp_path / "last_page.png"))  # what the page showed at the end, for a failure
        driver.quit()


def _keypoint_panel(canvas) -> np.ndarray:
    """The keypoint-mask panel of the explorer's canvas, as an RGB array cut from a screenshot."""
    from PIL import Image

    picture = np.asarray(Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB")).astype(np.int16)
    height, width = picture.shape[:2]
    left, bottom, panel_width, panel_height = PANEL_RECTS["keypoint_masks"]
    top = 1 - bottom - panel_height
    return picture[
        int(height * (top + 0.05 * panel_height)) : int(height * (top + 0.95 * panel_height)),
        int(width * (left + 0.05 * panel_width)) : int(width * (left + 0.95 * panel_width)),
    ]


def _wait_for_change(canvas, before: np.ndarray, seconds: float = 60) -> np.ndarray:
    deadline = time.time() + seconds
    while time.time() < deadline:
        now = _keypoint_panel(canvas)
        if now.shape == before.shape and np.abs(now - before).max() > 30:
            return now
        time.sleep(0.5)
    raise AssertionError("the keypoint-mask panel did not change after the click")


def test_clicking_on_the_image_updates_the_keypoint_masks_in_a_real_browser(jupyterlab, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{jupyterlab}/lab/tree/{NOTEBOOK}")
    wait = WebDriverWait(browser, 300)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
    wait.until(_kernel_idle)
    run_menu = (By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']")
    for _ in range(5):  # the page may still re-render or cover the menu: retry until the cells run
        try:
            browser.find_element(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell").click()
            wait.until(ready.element_to_be_clickable(run_menu)).click()
            wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "li[data-command='runmenu:run-all']"))).click()
            WebDriverWait(browser, 30).until(_cells_started)
            break
        except WebDriverException:  # a stale or covered element, or cells that did not start: try again
            time.sleep(2)
    else:
        raise AssertionError("Run > Run All Cells did not start the notebook's cells")

    canvases = WebDriverWait(browser, RUN_ALL_SECONDS).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, ".jupyter-matplotlib-canvas-div canvas") or False
    )
    canvas = canvases[-1]  # the top canvas receives the mouse events
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
    status = WebDriverWait(browser, 120).until(lambda driver: _status(driver, "1 click(s)"))
    assert "updated in" in status

    initial = _keypoint_panel(canvas)
    size = canvas.size
    left, bottom, width, height = PANEL_RECTS["image"]

    def offset(fraction_x: float, fraction_y: float) -> tuple[int, int]:  # from the canvas centre, in CSS pixels
        x = (left + fraction_x * width) * size["width"]
        y = (1 - bottom - height + fraction_y * height) * size["height"]
        return int(x - size["width"] / 2), int(y - size["height"] / 2)

    # Right click anywhere on the image removes the nearest (the only) click: the panel goes blank.
    ActionChains(browser).move_to_element_with_offset(canvas, *offset(0.5, 0.5)).context_click().perform()
    WebDriverWait(browser, 60).until(lambda driver: _status(driver, "0 click(s)"))
    blank = _wait_for_change(canvas, initial)
    # A left click on the image adds a click of the chosen class: its keypoint mask appears.
    ActionChains(browser).move_to_element_with_offset(canvas, *offset(0.3, 0.6)).click().perform()
    WebDriverWait(browser, 60).until(lambda driver: _status(driver, "1 click(s)"))
    _wait_for_change(canvas, blank)

    page = browser.page_source
    assert "Error displaying widget" not in page and "Model not found" not in page
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def _kernel_idle(driver) -> bool:
    """True once the kernel has started and is idle (the status bar says so, not only the indicator)."""
    from selenium.webdriver.common.by import By

    indicators = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator")
    status = " ".join(element.text for element in driver.find_elements(By.CSS_SELECTOR, ".jp-StatusBar-Item"))
    return bool(indicators) and indicators[0].get_attribute("data-status") == "idle" and "| Idle" in status


def _cells_started(driver) -> bool:
    """True once some code cell shows an execution count or the running mark ``[*]``."""
    from selenium.webdriver.common.by import By

    prompts = driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")
    return any(any(ch.isdigit() or ch == "*" for ch in prompt.text) for prompt in prompts)


def _status(driver, text: str) -> str | bool:
    """The explorer's status line when it contains ``text`` (False otherwise, for WebDriverWait)."""
    from selenium.webdriver.common.by import By

    for element in driver.find_elements(By.CSS_SELECTOR, ".widget-html-content"):
        if text in element.text:
            return element.text
    return False
