"""The demo's page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by selenium. Skipped, with the reason, only where they are missing.

``PYTHONPATH=. python tests/test_demo_browser.py docs/demo.png`` takes the screenshot in docs/demo.md.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from swipe.decoding.user_words import VerbatimSettings
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


def start_chromium(profile: Path, width: int = 1000, height: int = 760, network_log: bool = False):
    """Headless Chromium from the system packages, its profile in folder ``profile``; nothing is
    downloaded (Selenium Manager, which would fetch a browser or driver, is never asked). With
    ``network_log``, ``driver.get_log("performance")`` holds the page's network events."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common import selenium_manager

    def refuse(*args: object) -> None:
        raise AssertionError("Selenium Manager was asked for a browser or driver")

    selenium_manager.SeleniumManager.binary_paths = refuse  # type: ignore[method-assign]
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    logs = {"browser": "ALL", "performance": "ALL"} if network_log else {"browser": "ALL"}
    options.set_capability("goog:loggingPrefs", logs)  # for page_errors
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


def page_errors(driver) -> list[str]:
    """The page's errors since the last call: uncaught exceptions and failed requests (a 404 for
    an icon, a 400 from the API)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def page_point(driver, x: float, y: float) -> tuple[int, int]:
    """Page pixels of the layout point (``x``, ``y``) on the drawn keyboard."""
    left, top, scale, view_x, view_y = driver.execute_script(
        "const r = document.getElementById('keyboard').getBoundingClientRect();"
        "return [r.left, r.top, state.scale, state.view.x, state.view.y];")
    return round(left + (x - view_x) * scale), round(top + (y - view_y) * scale)


def tap_key(driver, char: str) -> None:
    """Tap the centre of the key of ``char`` on the displayed keyboard."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    layout = bundled_layout(driver.execute_script("return grid().grid_name"))
    builder = ActionBuilder(driver, duration=0)
    centre = layout.centers[layout.key_index_for_char(char)]
    builder.pointer_action.move_to_location(*page_point(driver, *centre))
    builder.pointer_action.pointer_down()
    builder.pointer_action.pause(0.08)
    builder.pointer_action.pointer_up()
    builder.perform()


def swipe_word(driver, word: str, seed: int = 0, points: int = 40) -> None:
    """Swipe ``word`` on the displayed keyboard: a synthetic swipe (swipe.synth) on the page's layout,
    its points converted to page pixels, sent as pointer events at the swipe's own pace."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    name = driver.execute_script("return grid().grid_name")
    curve = synthesize_curve(word, bundled_layout(name), np.random.default_rng(seed))
    keep = np.unique(np.linspace(0, len(curve.t) - 1, points).round().astype(int))
    builder = ActionBuilder(driver, duration=0)
    pointer = builder.pointer_action
    at = [page_point(driver, curve.x[i], curve.y[i]) for i in keep]
    pointer.move_to_location(*at[0])
    pointer.pointer_down()
    for (x, y), before, i in zip(at[1:], keep, keep[1:], strict=False):
        pointer._duration = max(1, int(curve.t[i] - curve.t[before]))  # the move takes this many ms
        pointer.move_to_location(x, y)
    pointer.pointer_up()
    builder.perform()


def page_text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


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
        # The keyboard is drawn to the bottom of its keys: no empty band below them.
        keys = bundled_layout("hws_fitted").to_grid()["keys"]
        bottom = max(key["hitbox"]["y"] + key["hitbox"]["h"] for key in keys)
        assert driver.execute_script("return state.view.y + state.view.h") == pytest.approx(bottom)
        height = driver.execute_script("return document.getElementById('keyboard').clientHeight")
        assert height == pytest.approx(driver.execute_script("return state.view.h * state.scale"), abs=1)
        swipe_word(driver, "question")
        words = wait_for(lambda: shown_candidates(driver))
        assert words[0] == "question"
        assert "ms on the server" in page_text(driver, "timing")
        # The top candidate is selected: its template and its attention map are drawn.
        wait_for(lambda: driver.execute_script("return state.attention !== null && state.template !== null"))
        assert driver.execute_script("return state.attention.word") == "question"
        assert driver.execute_script("return state.template.length") == len("question")
        # No uncaught error and no failed request; the icon is inline, so no /favicon.ico is asked.
        assert page_errors(driver) == []
        icon = driver.execute_script("return document.querySelector('link[rel=icon]').href")
        assert icon.startswith("data:image/svg+xml,")
    finally:
        server.shutdown()
        server.server_close()


def test_a_tap_replaces_the_candidates_and_a_keyboard_switch_clears_them(driver, engine):
    two_keyboards = copy.copy(engine)
    two_keyboards.layouts = [*engine.layouts, bundled_layout("qwerty_en")]  # the second is only shown
    server = start_server(two_keyboards)
    try:
        open_page(driver, server)
        page_errors(driver)
        swipe_word(driver, "question")
        wait_for(lambda: shown_candidates(driver)[:1] == ["question"])
        tap_key(driver, "a")
        words = wait_for(lambda: (w := shown_candidates(driver)) and w[0] != "question" and w)
        assert words[0] == "a" and "question" not in words
        assert "a tap" in page_text(driver, "timing")
        # Another candidate of the tap: its template and attention come from the tap's points.
        driver.execute_script("document.querySelectorAll('#candidates button')[1].click()")
        wait_for(lambda: driver.execute_script("return state.attention && state.attention.word") == words[1])
        assert page_text(driver, "attention-word") == words[1]
        driver.execute_script("const s = document.getElementById('layout'); s.value = '1';"
                              "s.dispatchEvent(new Event('change'));")
        assert shown_candidates(driver) == [] and page_text(driver, "timing") == ""
        assert driver.execute_script("return document.getElementById('attention-box').hidden")
        assert page_errors(driver) == []
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
        # A bad swipe of "world", taken back: the word is prompted again.
        wait_for(lambda: driver.find_element(By.ID, "prompt").text == "world")
        swipe_word(driver, "people", seed=5)
        wait_for(lambda: driver.find_element(By.ID, "recorded").text == "1 recorded, 0 more to go")
        driver.find_element(By.ID, "undo").click()
        wait_for(lambda: driver.find_element(By.ID, "prompt").text == "world")
        assert path.read_text(encoding="utf-8") == ""
        for n, word in enumerate(["world", "people"], 1):
            wait_for(lambda word=word: driver.find_element(By.ID, "prompt").text == word)
            swipe_word(driver, word, seed=n)
            wait_for(lambda n=n: driver.find_element(By.ID, "recorded").text.startswith(f"{n} recorded"))
            wait_for(lambda: shown_candidates(driver))
        # Every word recorded: done, and further swipes are only decoded.
        assert driver.find_element(By.ID, "prompt-done").is_displayed()
        assert not driver.find_element(By.ID, "skip").is_displayed()
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


@pytest.fixture()
def own_engine():
    """The demo's engine (the model's own settings), of its own: the words these tests add and learn
    stay out of the others'."""
    return Engine("en_hws")


def test_a_word_added_in_the_page_is_swiped_first_and_a_bad_one_is_a_one_line_error(driver, own_engine):
    from selenium.webdriver.common.by import By

    server = start_server(own_engine)
    try:
        open_page(driver, server)
        swipe_word(driver, "swipeable")
        assert "swipeable" not in wait_for(lambda: shown_candidates(driver))
        box = driver.find_element(By.ID, "new-word")
        box.send_keys("zorb1ax\n")
        error = wait_for(lambda: page_text(driver, "status"))
        assert "'1'" in error and "\n" not in error
        page_errors(driver)  # the refused word's 400
        assert box.get_attribute("value") == "zorb1ax"  # left to be corrected
        box.clear()
        box.send_keys("Swipeable\n")  # trimmed and lower-cased in the page
        wait_for(lambda: page_text(driver, "added") == "added swipeable: swipe it")
        assert page_text(driver, "status") == "" and "swipeable" in own_engine.decoder.lexicon
        swipe_word(driver, "swipeable")
        words = wait_for(lambda: shown_candidates(driver))
        assert words[0] == "swipeable", words
        assert page_errors(driver) == []
    finally:
        server.shutdown()
        server.server_close()


def test_picking_a_candidate_learns_it_and_the_verbatim_candidate_is_shown_apart(driver, own_engine):
    from selenium.webdriver.common.by import By

    # Offered on every swipe whose verbatim string is not a lexicon word, however it scores.
    own_engine.decoder.verbatim_settings = VerbatimSettings(lexicon_below=math.inf, verbatim_above=-math.inf)
    server = start_server(own_engine)
    try:
        open_page(driver, server)
        swipe_word(driver, "kubernetes")
        words = wait_for(lambda: shown_candidates(driver))
        wait_for(lambda: driver.execute_script("return state.attention !== null"))  # shown, not redrawn again
        buttons = driver.find_elements(By.CSS_SELECTOR, "#candidates button")
        verbatim = driver.find_elements(By.CSS_SELECTOR, "#candidates button.verbatim")
        assert len(verbatim) == 1 and buttons[1] == verbatim[0]  # second
        typed = words[1]
        assert typed not in own_engine.decoder.lexicon
        assert verbatim[0].text.startswith(f"“{typed}”")
        assert "not a word" in verbatim[0].get_attribute("title")
        assert verbatim[0].value_of_css_property("font-style") == "italic"
        verbatim[0].click()  # picked: learned, so now a word of the user's
        wait_for(lambda: page_text(driver, "typed") == typed)
        assert own_engine.decoder.user_words.count(typed) == 1.0 and typed in own_engine.decoder.lexicon
        driver.find_elements(By.CSS_SELECTOR, "#candidates button")[0].click()
        wait_for(lambda: page_text(driver, "typed") == f"{typed} {words[0]}")
        assert own_engine.decoder.user_words.count(words[0]) == 1.0
        assert page_errors(driver) == []
    finally:
        server.shutdown()
        server.server_close()


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
        swipe_word(driver, "keyboard", seed=1)  # the first decode builds the template matcher
        wait_for(lambda: shown_candidates(driver))
        driver.execute_script("document.getElementById('candidates').replaceChildren()")
        swipe_word(driver, "keyboard", seed=1)  # shown: the time of a decode like any other
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
