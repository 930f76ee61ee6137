"""Decoding in the browser: the demo serves the ONNX folder, onnxruntime-web and the JavaScript
decoder by exact name, and its page decodes swipes itself, the server seeing no point.

The page tests drive headless Chromium (see test_demo_browser.py) and need onnxruntime-web in
js/node_modules (``npm ci --prefix js``) and onnx (requirements-export.txt) to export the model;
they are skipped, with the reason, where one is missing.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_demo_browser import (
    missing_browser,
    open_page,
    page_errors,
    page_text,
    shown_candidates,
    start_chromium,
    swipe_word,
    tap_key,
    wait_for,
)

from swipe.demo import DemoServer, Engine
from swipe.demo.__main__ import main as demo_main
from swipe.demo.ondevice import ORT_FILES, BrowserFiles
from swipe.resources import REAL_EN_SWIPES
from swipe.shipped import DecodingSettings

PARITY_SWIPES = 24


def start_server(engine: Engine, browser: BrowserFiles) -> DemoServer:
    server = DemoServer(("127.0.0.1", 0), engine, quiet=True, browser=browser)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(server: DemoServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET."""
    request = urllib.request.Request(server.url.rstrip("/") + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("en_hws", settings=DecodingSettings("beam", beam_size=4))


# ---- the server: files by exact name, nothing else ----------------------------------------------


def fake_js_dir(root: Path) -> Path:
    dist = root / "node_modules" / "onnxruntime-web" / "dist"
    dist.mkdir(parents=True)
    for name in (*ORT_FILES, "ort.min.js"):
        (dist / name).write_bytes(b"\0asm" if name.endswith(".wasm") else b"export {};\n")
    (root / "src").mkdir()
    (root / "src" / "index.mjs").write_text("export {};\n", encoding="utf-8")
    (root / "src" / "notes.txt").write_text("not a module\n", encoding="utf-8")
    return root


def test_the_server_serves_the_browser_files_by_exact_name_only(engine, tmp_path):
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "model.json").write_text("{}", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("no", encoding="utf-8")
    server = start_server(engine, BrowserFiles(onnx, fake_js_dir(tmp_path / "js")))
    try:
        status, kind, body = get(server, "/ort/ort-wasm-simd-threaded.wasm")
        assert (status, kind, body) == (200, "application/wasm", b"\0asm")
        assert get(server, "/ort/ort.wasm.min.mjs")[1].startswith("text/javascript")
        assert get(server, "/js/index.mjs")[:2] == (200, "text/javascript; charset=utf-8")
        assert get(server, "/onnx/model.json")[:2] == (200, "application/json; charset=utf-8")
        for path in ("/ort/ort.min.js", "/js/notes.txt", "/onnx/../secret.txt", "/onnx/%2e%2e/secret.txt",
                     "/onnx/", "/onnx", "/js/../src/index.mjs", "/ort/./ort.wasm.min.mjs", "/other/x"):
            assert get(server, path)[0] == 404, path
        # The Host and Origin checks hold for these files as for the API.
        assert get(server, "/onnx/model.json", {"Host": "evil.example:80"})[0] == 403
        assert get(server, "/onnx/model.json", {"Origin": "http://evil.example"})[0] == 403
        info = json.loads(get(server, "/api/info")[2])["ondevice"]
        assert info["missing"] is None and info["model"] == "/onnx/"
        assert info["ort"] == "/ort/ort.wasm.min.mjs"
    finally:
        server.shutdown()
        server.server_close()


def test_without_node_modules_the_page_says_the_command_that_installs_them(engine, tmp_path):
    js = fake_js_dir(tmp_path / "js")
    for name in ORT_FILES:
        (js / "node_modules" / "onnxruntime-web" / "dist" / name).unlink()
    assert "npm ci --prefix js" in BrowserFiles(tmp_path, js).missing()
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)
    server = start_server(engine, BrowserFiles(tmp_path, js))
    driver = start_chromium(tmp_path / "chromium")
    try:
        open_page(driver, server)
        assert driver.execute_script("return document.querySelector('#decode-where option[value=browser]')"
                                     ".disabled")
        assert "run npm ci --prefix js" in page_text(driver, "decode-note")
        assert page_errors(driver) == []
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()


def test_the_demo_refuses_an_onnx_folder_that_is_something_else(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    assert demo_main(["--onnx", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("python -m swipe.demo: error: ") and "not an ONNX folder" in error


# ---- the page, in headless Chromium --------------------------------------------------------------


def missing_ondevice() -> str | None:
    """Why the page cannot decode in the browser here, or None."""
    reason = missing_browser()
    if reason is not None:
        return reason
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        return f"on-device tests skipped: {err.name} is missing (pip install -r requirements-export.txt)"
    missing = BrowserFiles(Path(".")).missing()
    return None if missing is None else f"on-device tests skipped: {missing}"


@pytest.fixture(scope="module")
def onnx_folder(onnx_folders) -> Path:
    reason = missing_ondevice()
    if reason is not None:
        pytest.skip(reason)
    return onnx_folders["en_hws"]


@pytest.fixture(scope="module")
def page(onnx_folder, engine, tmp_path_factory):
    """Headless Chromium (its network log kept) on a demo page that offers decoding in the browser."""
    server = start_server(engine, BrowserFiles(onnx_folder))
    driver = start_chromium(tmp_path_factory.mktemp("chromium"), network_log=True)
    driver.set_script_timeout(300)
    try:
        open_page(driver, server)
        yield driver, server
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()


def switch_to_browser(driver) -> None:
    driver.execute_script("const s = document.getElementById('decode-where'); s.value = 'browser';"
                          "s.dispatchEvent(new Event('change'));")
    wait_for(lambda: driver.execute_script("return state.decoder") == "browser", timeout=180)


def requests_sent(driver) -> list[dict]:
    """The page's requests since the last call (Chrome's Network.requestWillBeSent events)."""
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return [e["params"]["request"] for e in events if e["method"] == "Network.requestWillBeSent"]


def test_a_word_swiped_in_this_browser_comes_first_and_no_point_leaves_the_page(page):
    driver, server = page
    requests_sent(driver)
    switch_to_browser(driver)
    assert page_text(driver, "timing").startswith("model loaded into this browser: ")
    swipe_word(driver, "question")
    words = wait_for(lambda: shown_candidates(driver))
    assert words[0] == "question"
    assert " ms in this browser, " in page_text(driver, "timing")
    wait_for(lambda: driver.execute_script("return state.template !== null"))
    assert driver.execute_script("return state.template.length") == len("question")
    assert driver.execute_script("return state.attention") is None  # the server's view is not asked for
    tap_key(driver, "a")  # a tap is decoded in the page too
    words = wait_for(lambda: (w := shown_candidates(driver)) and w[0] != "question" and w)
    assert words[0] == "a" and "a tap" in page_text(driver, "timing")
    # A word added and a candidate picked stay in the page's decoder.
    driver.execute_script("document.getElementById('new-word').value = 'swipeable';"
                          "document.getElementById('add-word').requestSubmit();")
    wait_for(lambda: page_text(driver, "added") == "added swipeable: swipe it")
    swipe_word(driver, "swipeable")
    assert wait_for(lambda: (w := shown_candidates(driver)) and w[0] != "a" and w)[0] == "swipeable"
    driver.execute_script("document.querySelectorAll('#candidates button')[0].click()")
    wait_for(lambda: page_text(driver, "typed").endswith("swipeable"))
    assert page_errors(driver) == []
    # Every request since the switch: a GET of the model, onnxruntime-web or the decoder module,
    # from the demo server, with no body: no swipe, no word went anywhere.
    sent = requests_sent(driver)
    assert sent, "no network event logged"
    paths = {request["url"].removeprefix(server.url.rstrip("/")) for request in sent}
    assert all(request["method"] == "GET" and "postData" not in request for request in sent), sent
    assert all(path.split("/")[1] in ("onnx", "ort", "js") for path in paths), paths
    assert {"/onnx/encoder.onnx", "/onnx/decoder_step.onnx", "/onnx/decoder_score.onnx",
            "/ort/ort-wasm-simd-threaded.wasm"} <= paths


def test_the_browser_decodes_real_swipes_as_the_python_runtime_does(page, onnx_folder):
    """The JavaScript decoder on onnxruntime-web (WebAssembly) in Chromium gives the candidates of
    swipe.runtime (native onnxruntime) on real swipes: the same words, scores within 1e-4."""
    from swipe.runtime import OnnxDecoder, read_swipes

    driver, _ = page
    swipes = [swipe for swipe, _ in read_swipes(REAL_EN_SWIPES)[:PARITY_SWIPES]]
    python = OnnxDecoder(onnx_folder)
    expected = [python.decode_one(s.x, s.y, s.t, s.layout) for s in swipes]
    got = driver.execute_async_script(
        "const [swipes, done] = arguments;"
        "import('/static/ondevice.mjs').then(async (m) => {"
        "  const decoder = await m.loadBrowserDecoder();"
        "  const rows = [];"
        "  for (const s of swipes) rows.push(await decoder.decode(s));"
        "  done(rows);"
        "}).catch((err) => done(String(err.stack || err)));",
        [{"x": list(map(float, s.x)), "y": list(map(float, s.y)), "t": list(map(float, s.t)),
          "layout": s.layout} for s in swipes])
    assert isinstance(got, list), got
    for n, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        assert [c["word"] for c in mine] == [word for _, word in theirs], n
        for c, (score, _) in zip(mine, theirs, strict=True):
            assert c["score"] == pytest.approx(score, abs=1e-4), (n, c["word"])


def test_the_page_example_of_the_docs_decodes_in_the_page(page):
    """docs/javascript.md's page example (its second js block, imports made dynamic), run in the
    demo's page on a real swipe, puts that swipe's word first."""
    from swipe.runtime import read_swipes

    driver, _ = page
    text = (Path(__file__).resolve().parents[1] / "docs" / "javascript.md").read_text(encoding="utf-8")
    code = re.findall(r"^```js\n(.*?)^```", text, re.MULTILINE | re.DOTALL)[1]
    code = re.sub(r"^import (?:\* as )?(.+?) from (\".*?\");", r"const \1 = await import(\2);", code,
                  flags=re.MULTILINE)
    swipe, word = read_swipes(REAL_EN_SWIPES)[0]
    first = driver.execute_async_script(
        "const [swipe, done] = arguments;"
        f"(async () => {{ {code}\n return (await decoder.decode(swipe))[0].word; }})()"
        ".then(done).catch((err) => done(String(err.stack || err)));",
        {"x": list(map(float, swipe.x)), "y": list(map(float, swipe.y)), "t": list(map(float, swipe.t)),
         "layout": swipe.layout})
    assert first == word


def test_the_words_added_in_this_browser_are_kept_in_its_storage(page):
    """A word added in the page is saved in the browser's storage (the user data format) and is
    known again after a reload; saved words the model cannot apply are named, and left as they are."""
    driver, server = page
    driver.execute_script("localStorage.clear()")
    open_page(driver, server)
    switch_to_browser(driver)
    driver.execute_script("document.getElementById('new-word').value = 'zorblaxing';"
                          "document.getElementById('add-word').requestSubmit();")
    wait_for(lambda: page_text(driver, "added") == "added zorblaxing: swipe it")
    saved = json.loads(driver.execute_script("return localStorage.getItem('swipe-user-data')"))
    assert saved["format"] == "swipe-user-data" and "zorblaxing" in saved["added"]
    open_page(driver, server)
    switch_to_browser(driver)
    assert page_text(driver, "status") == ""
    swipe_word(driver, "zorblaxing")
    assert wait_for(lambda: shown_candidates(driver))[0] == "zorblaxing"
    # Saved words this model cannot apply: said once the model is loaded, and never overwritten.
    bad = json.dumps({"format": "swipe-user-data", "version": 1, "added": {"caf\u20ac": None}})
    driver.execute_script("localStorage.setItem('swipe-user-data', arguments[0])", bad)
    open_page(driver, server)
    switch_to_browser(driver)
    assert page_text(driver, "status") == (
        "the words saved in this browser: word 'caf\u20ac': the model cannot write '\u20ac' (its characters: "
        "qwertyuiopasdfghjklzxcvbnm): not applied, and new words are kept in this page only")
    driver.execute_script("document.getElementById('new-word').value = 'quizzable';"
                          "document.getElementById('add-word').requestSubmit();")
    wait_for(lambda: page_text(driver, "added") == "added quizzable: swipe it")
    assert driver.execute_script("return localStorage.getItem('swipe-user-data')") == bad
    assert page_errors(driver) == []
    driver.execute_script("localStorage.clear()")
