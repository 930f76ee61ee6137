"""The demo's page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by selenium. Skipped, with the reason, only where they are missing.

``python tests/test_demo_browser.py docs/demo.png`` takes the screenshot in docs/demo.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from swipe.demo import DemoServer, Engine, PromptList, Recorder
from swipe.formats import read_curves
from swipe.keyboard import bundled_layout
from swipe.shipped import DecodingSettings
from swipe.synth import synthesize_curve

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver (.ci/run does) and pip install selenium"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"browser tests skipped: selenium is not installed ({INSTALL})"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"browser tests skipped: {path} is missing ({INSTALL})"
    return None


def start_chromium(profile: Path, width: int = 1000, height: int = 760):
    """Headless Chromium from the system packages, its profile in folder ``profile``; nothing is
    downloaded (Selenium Manager, which would fetch a browser or driver, is never asked)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common import selenium_manager

    def refuse(*args: object) -> None:
        raise AssertionError("Selenium Manager was asked for a browser or driver")

    selenium_manager.SeleniumManager.binary_paths = refuse  # type: ignore[method-assign]
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def start_server(engine: Engine, recorder: Recorder | None = None, prompts: PromptList | None = None):
    server = DemoServer(("127.0.0.1", 0), engine, recorder, prompts, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_for(condition, timeout: float = 60.0):
    """The first truthy value of ``condition()`` within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def open_page(driver, server) -> None:
    driver.get(server.url)
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === '1'"))


def swipe_word(driver, word: str, seed: int = 0, points: int = 40) -> None:
    """Swipe ``word`` on the displayed keyboard: a synthetic swipe (swipe.synth) on the page's layout,
    its points converted to page pixels, sent as pointer events at the swipe's own pace."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    name = driver.execute_script("return grid().grid_name")
    curve = synthesize_curve(word, bundled_layout(name), np.random.default_rng(seed))
    left, top, scale = driver.execute_script(
        "const r = document.getElementById('keyboard').getBoundingClientRect();"
        "return [r.left, r.top, state.scale];")
    keep = np.unique(np.linspace(0, len(curve.t) - 1, points).round().astype(int))
    builder = ActionBuilder(driver, duration=0)
    pointer = builder.pointer_action
    at = [(round(left + curve.x[i] * scale), round(top + curve.y[i] * scale)) for i in keep]
    pointer.move_to_location(*at[0])
    pointer.pointer_down()
    for (x, y), before, i in zip(at[1:], keep, keep[1:], strict=False):
        pointer._duration = max(1, int(curve.t[i] - curve.t[before]))  # the move takes this many ms
        pointer.move_to_location(x, y)
    pointer.pointer_up()
    builder.perform()


def shown_candidates(driver) -> list[str]:
    # Read in one script: the page replaces the buttons when a candidate is selected.
    return driver.execute_script(
        "return [...document.querySelectorAll('#candidates button')].map((b) => b.dataset.word)")


@pytest.fixture(scope="module")
def engine():
    settings = DecodingSettings("beam", beam_size=4, prior_weight=0.3, length_penalty=0.75)
    return Engine("en_hws", settings=settings)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def test_a_swiped_word_comes_first_among_the_shown_candidates(driver, engine):
    server = start_server(engine)
    try:
        open_page(driver, server)
        swipe_word(driver, "question")
        words = wait_for(lambda: shown_candidates(driver))
        assert words[0] == "question"
        timing = driver.execute_script("return document.getElementById('timing').textContent")
        assert "ms on the server" in timing
        # The top candidate is selected: its template and its attention map are drawn.
        wait_for(lambda: driver.execute_script("return state.attention !== null && state.template !== null"))
        assert driver.execute_script("return state.attention.word") == "question"
        assert driver.execute_script("return state.template.length") == len("question")
    finally:
        server.shutdown()
        server.server_close()


def test_two_recorded_swipes_read_back_through_formats(driver, engine, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "mine.jsonl"
    recorder = Recorder(path)
    server = start_server(engine, recorder, PromptList(["world", "people"]))
    try:
        open_page(driver, server)
        for n, word in enumerate(["world", "people"], 1):
            wait_for(lambda word=word: driver.find_element(By.ID, "prompt").text == word)
            swipe_word(driver, word, seed=n)
            wait_for(lambda n=n: driver.find_element(By.ID, "recorded").text == f"{n} recorded")
            wait_for(lambda: shown_candidates(driver))
    finally:
        server.shutdown()
        server.server_close()
        recorder.close()
    curves = list(read_curves(path))
    assert [curve.word for curve in curves] == ["world", "people"]
    assert all(len(curve.x) > 20 and curve.grid_name == "hws_fitted" for curve in curves)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["curve"]["grid"] == bundled_layout("hws_fitted").to_grid()
    assert rows[0]["device"]["pointer_type"] == "mouse" and rows[0]["device"]["scale"] > 0


def screenshot(out: str) -> None:
    """Swipe a word on the page of the shipped English model (its own settings) and save the page."""
    reason = missing_browser()
    if reason is not None:
        sys.exit(reason)
    server = start_server(Engine("en_hws"))
    profile = tempfile.TemporaryDirectory(prefix="swipe-chromium-")
    driver = start_chromium(Path(profile.name), 900, 640)
    try:
        open_page(driver, server)
        swipe_word(driver, "keyboard", seed=1)
        wait_for(lambda: shown_candidates(driver))
        wait_for(lambda: driver.execute_script("return state.attention !== null"))
        driver.execute_script("state.char = 2; showAttention(); draw();")  # the 'y'
        driver.save_screenshot(out)
    finally:
        driver.quit()
        server.shutdown()
        profile.cleanup()
    print(f"wrote {out}")


if __name__ == "__main__":
    screenshot(sys.argv[1] if len(sys.argv) > 1 else "demo.png")
