"""Tests of the demo's server (``python -m swipe.demo``): decoding over HTTP, bad requests, concurrency,
the recorder and its file."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pytest

import evaluate
from swipe.data import SwipeDataset, build_dataset
from swipe.decoding.user_words import VerbatimSettings
from swipe.demo import MAX_POINTS, DemoServer, Engine, PromptList, Recorder, Swipe
from swipe.demo.__main__ import main as demo_main
from swipe.demo.recorder import recorded_words
from swipe.demo.server import ServerLimits
from swipe.formats import read_curves
from swipe.keyboard import bundled_layout
from swipe.predict import main as predict_main
from swipe.shipped import DecodingSettings
from swipe.synth import synthesize_curve
from swipe.templates import word_polyline

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["hello", "world", "the", "keyboard", "swipe", "quick"]


@pytest.fixture(scope="module")
def engine():
    # A narrow beam: the server and the concurrency are under test, not the search.
    settings = DecodingSettings("beam", beam_size=4, prior_weight=0.3, length_penalty=0.75)
    return Engine("en_hws", settings=settings)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    record_to = tmp_path_factory.mktemp("demo") / "swipes.jsonl"
    recorder = Recorder(record_to)
    server = DemoServer(("127.0.0.1", 0), engine, recorder, PromptList(["zebra", *WORDS]), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    recorder.close()


def request(server, method, path, body=None, raw=None, headers=None):
    """``(status, answer)`` of one request on a new connection."""
    conn = HTTPConnection(*server.server_address[:2], timeout=60)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if method == "POST":
        headers = {"Content-Type": "application/json", **(headers or {})}
    conn.request(method, path, body=data, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    kind = response.getheader("Content-Type", "")
    return response.status, json.loads(payload) if kind.startswith("application/json") else payload


def swipe_of(word, seed=0):
    curve = synthesize_curve(word, bundled_layout("hws_fitted"), np.random.default_rng(seed))
    return {"layout": 0, "x": curve.x.tolist(), "y": curve.y.tolist(), "t": curve.t.tolist()}


def test_page_and_static_files_are_served_and_nothing_else(server):
    status, page = request(server, "GET", "/")
    assert status == 200 and b"/static/demo.js" in page
    assert request(server, "GET", "/static/demo.js")[0] == 200
    status, info = request(server, "GET", "/api/info")
    assert status == 200 and info["layouts"][0]["grid_name"] == "hws_fitted" and info["recording"]
    for path in ("/nope", "/static/", "/static/../engine.py", "/static/%2e%2e/engine.py",
                 "/static/..%2f..%2fkeyboard.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
                 "/api/../server.py"):
        status, answer = request(server, "GET", path)
        assert status == 404, path
        assert "\n" not in answer["error"]
    assert request(server, "POST", "/api/nope", {"x": 1})[0] == 404


def test_files_are_revalidated_by_their_etag_and_answers_never_kept(server):
    conn = HTTPConnection(*server.server_address[:2], timeout=60)
    conn.request("GET", "/static/demo.js")
    first = conn.getresponse()
    body, etag = first.read(), first.getheader("ETag")
    assert first.status == 200 and body and etag and first.getheader("Cache-Control") == "no-cache"
    conn.request("GET", "/static/demo.js", headers={"If-None-Match": f'"other", {etag}'})
    again = conn.getresponse()
    assert again.status == 304 and again.read() == b"" and again.getheader("ETag") == etag
    conn.request("GET", "/static/demo.js", headers={"If-None-Match": '"other"'})
    changed = conn.getresponse()
    assert changed.status == 200 and changed.read() == body  # the same connection still serves
    conn.request("GET", "/api/info")
    info = conn.getresponse()
    assert info.getheader("Cache-Control") == "no-store" and info.getheader("ETag") is None
    conn.close()


def test_decode_attention_and_template_of_a_swipe(server, engine):
    status, answer = request(server, "POST", "/api/decode", swipe_of("question"))
    assert status == 200, answer
    assert answer["candidates"][0]["word"] == "question" and answer["decode_ms"] > 0
    status, view = request(server, "POST", "/api/attention", {**swipe_of("question"), "word": "question"})
    assert status == 200, view
    assert view["word"] == "question" and len(view["layers"]) == 4  # the model's decoder layers
    for layer in view["layers"]:
        assert len(layer) == len("question") + 1  # each character and the end of the word
        assert all(len(row) == len(view["points"]) and abs(sum(row) - 1) < 1e-3 for row in layer)
    status, template = request(server, "POST", "/api/template", {"layout": "hws_fitted", "word": "question"})
    layout = bundled_layout("hws_fitted")
    expected = [layout.keys[layout.key_index(c)].center for c in "question"]
    np.testing.assert_allclose(template["points"], expected, atol=0.06)


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "bad JSON"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b"\xff\xfe", "bad JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"x": "1,2", "y": [1, 2], "t": [0, 1]}).encode(), "'x' must be a list"),
    (json.dumps({"x": [1, "a"], "y": [1, 2], "t": [0, 1]}).encode(), "lists of numbers: 'x'"),
    (json.dumps({"x": [1, True], "y": [1, 2], "t": [0, 1]}).encode(), "lists of numbers"),
    (json.dumps({"x": [1, 2], "y": [1, 2]}).encode(), "missing field 't'"),
    (json.dumps({"x": [1, 2], "y": [1], "t": [0, 1]}).encode(), "same, non-zero length"),
    (json.dumps({"x": [1, 2], "y": [1, 2], "t": [5, 1]}).encode(), "time decreases"),
    (json.dumps({"x": [1], "y": [1], "t": [0]}).encode(), "at least 2 points"),
    (json.dumps({"layout": 7, "x": [1, 2], "y": [1, 2], "t": [0, 1]}).encode(), "unknown layout 7"),
    (json.dumps({"layout": [0], "x": [1, 2], "y": [1, 2], "t": [0, 1]}).encode(), "'layout' must be"),
    (json.dumps({"x": [1e9, 2], "y": [1, 2], "t": [0, 1]}).encode(), "coordinate out of range"),
    (json.dumps({"x": [0.0] * (MAX_POINTS + 1), "y": [0.0] * (MAX_POINTS + 1),
                 "t": list(range(MAX_POINTS + 1))}).encode(), f"at most {MAX_POINTS}"),
])
def test_bad_requests_get_a_one_line_reason_and_the_server_goes_on(server, body, reason):
    status, answer = request(server, "POST", "/api/decode", raw=body)
    assert status == 400 and reason in answer["error"] and "\n" not in answer["error"]
    assert request(server, "POST", "/api/decode", swipe_of("the"))[0] == 200


def test_bodies_over_a_megabyte_and_bad_words_are_refused(server):
    # Refused from its headers: the answer comes before the body is sent.
    conn = HTTPConnection(*server.server_address[:2], timeout=60)
    conn.putrequest("POST", "/api/decode")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(2 << 20))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and "at most 1048576" in json.loads(response.read())["error"]
    conn.close()
    # A body cut short (the client stops sending): a 400, not a hung thread.
    with socket.create_connection(server.server_address[:2], timeout=60) as sock:
        host = "{}:{}".format(*server.server_address[:2]).encode()
        sock.sendall(b"POST /api/decode HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"x\": [1,")
        sock.shutdown(socket.SHUT_WR)
        head = sock.makefile("rb").readline()
    assert head.startswith(b"HTTP/1.1 400")
    status, answer = request(server, "POST", "/api/attention", {**swipe_of("the"), "word": "th3"})
    assert status == 400 and "cannot write" in answer["error"]
    status, answer = request(server, "POST", "/api/template", {"word": ""})
    assert status == 400
    assert request(server, "POST", "/api/decode", swipe_of("the"))[0] == 200


def test_32_concurrent_decodes_answer_as_serial_ones(server):
    bodies = [swipe_of(WORDS[i % len(WORDS)], seed=i) for i in range(32)]
    serial = [request(server, "POST", "/api/decode", body)[1]["candidates"] for body in bodies]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda body: request(server, "POST", "/api/decode", body), bodies))
    assert [status for status, _ in answers] == [200] * 32
    assert [answer["candidates"] for _, answer in answers] == serial


def test_recorded_swipes_feed_build_predict_and_evaluate(server, tmp_path):
    path = server.recorder.path
    before = len(recorded_words(path))
    device = {"screen_width": 390, "screen_height": 844, "pixel_ratio": 3, "pointer_type": "touch",
              "scale": 0.99}
    words = []
    for i in range(4):
        status, prompt = request(server, "GET", "/api/prompt?layout=0")
        words.append(prompt["word"])
        body = {**swipe_of(prompt["word"], seed=i), "word": prompt["word"], "device": device}
        status, answer = request(server, "POST", "/api/record", body)
        assert status == 200 and answer["recorded"] == before + i + 1
    assert words == ["zebra", *WORDS[:3]]
    status, answer = request(server, "POST", "/api/record", {**swipe_of("the"), "word": "the", "device": {}})
    assert status == 400 and "device." in answer["error"]

    lines = path.read_text(encoding="utf-8").splitlines()[before:]
    rows = [json.loads(line) for line in lines]
    assert rows[0]["device"] == device and rows[0]["curve"]["grid"]["grid_name"] == "hws_fitted"
    curves = list(read_curves(path))[before:]
    assert [curve.word for curve in curves] == words
    sent = swipe_of("zebra", seed=0)
    np.testing.assert_allclose(curves[0].x, sent["x"], atol=0.006)
    np.testing.assert_allclose(curves[0].t, np.array(sent["t"]) - sent["t"][0], atol=0.06)

    build_dataset([path], tmp_path / "data")
    assert len(SwipeDataset(tmp_path / "data")) == len(recorded_words(path))
    preds = tmp_path / "preds.pkl"
    assert predict_main(["--checkpoint", "en_hws", "--data", str(path), "--out", str(preds), "--quiet",
                         "--beam-size", "4", "--x-scales", "1", "--wide-x-scales", "none",
                         "--template-candidates", "0"]) == 0
    assert evaluate.main([str(preds), "--no-results"]) == 0


def test_recorder_leaves_whole_lines_when_killed(tmp_path):
    path = tmp_path / "killed.jsonl"
    script = f"""
import numpy as np
from swipe.demo import Recorder, Swipe
from swipe.keyboard import bundled_layout
recorder = Recorder({str(path)!r})
x = np.linspace(0, 300, 400, dtype=np.float32)
swipe = Swipe(bundled_layout("hws_fitted"), x, x / 2, np.arange(400.0))
print("ready", flush=True)
while True:
    recorder.append(swipe, "word", {{"pointer_type": "pen"}})
"""
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    child.send_signal(signal.SIGKILL)
    child.wait()
    data = path.read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") > 0
    curves = list(read_curves(path))
    assert len(curves) == data.count(b"\n") and all(len(c.x) == 400 for c in curves)


def test_prompts_skip_recorded_words_and_keys_the_keyboard_lacks():
    english = bundled_layout("hws_fitted")
    prompts = PromptList(["the", "привет", "of", "and"], done=["of"])
    assert [prompts.next(english) for _ in range(3)] == ["the", "and", None]
    assert prompts.left(english) == 0
    assert PromptList(["привет"]).next(english) is None


def test_command_line_errors_are_one_line(capsys, tmp_path):
    assert demo_main(["--words", "w.txt"]) == 2
    assert "--words needs --record-to" in capsys.readouterr().err
    assert demo_main(["--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m swipe.demo: error:") and "Traceback" not in "".join(err)
    (tmp_path / "words.json").write_text("[]")
    assert demo_main(["--user-data", str(tmp_path / "words.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m swipe.demo: error:") and "words.json" in err[-1]


def key_centre_swipe(engine, word):
    """A swipe straight through ``word``'s key centres on the model's first layout (a request body)."""
    layout = engine.layouts[0]
    keys = word_polyline(layout, word) * np.array([layout.key_width, layout.key_height])
    steps = np.linspace(0, 1, 10, endpoint=False)[:, None]
    segments = [a + (b - a) * steps for a, b in zip(keys[:-1], keys[1:], strict=True)]
    points = np.concatenate([*segments, keys[-1:]])
    return {"layout": 0, "x": points[:, 0].tolist(), "y": points[:, 1].tolist(),
            "t": (np.arange(len(points)) * 15.0).tolist()}


def test_added_word_decodes_first_picked_word_is_learned_verbatim_string_is_flagged(server, engine):
    # This engine's narrow beam scores differently from the model's settings: offer it at any score.
    engine.decoder.verbatim_settings = VerbatimSettings(lexicon_below=math.inf)
    status, answer = request(server, "POST", "/api/decode", key_centre_swipe(engine, "kubernetes"))
    engine.decoder.verbatim_settings = VerbatimSettings()
    assert status == 200 and [c["in_lexicon"] for c in answer["candidates"][:3]] == [True, False, True]
    _, answer = request(server, "POST", "/api/decode", swipe_of("hello"))
    assert all(c["in_lexicon"] for c in answer["candidates"])  # a word scores well: no verbatim
    _, answer = request(server, "POST", "/api/decode", swipe_of("swipeable"))
    assert "swipeable" not in [c["word"] for c in answer["candidates"]]
    assert request(server, "POST", "/api/words", {"word": "swipeable"}) == (200, {"added": "swipeable"})
    _, answer = request(server, "POST", "/api/decode", swipe_of("swipeable"))
    assert answer["candidates"][0]["word"] == "swipeable" and answer["candidates"][0]["in_lexicon"]
    status, answer = request(server, "POST", "/api/words", {"word": "zorb1ax"})
    assert status == 400 and "'1'" in answer["error"] and "\n" not in answer["error"]
    assert request(server, "POST", "/api/words", {"word": 3})[0] == 400
    assert request(server, "POST", "/api/learn", {"word": "swipeable"}) == (200, {"learned": "swipeable"})
    assert engine.decoder.user_words.count("swipeable") == 1.0
    assert request(server, "POST", "/api/learn", {})[1] == {"error": "missing field 'word'"}
    # The same site checks as every POST: another site's page can neither add nor learn.
    evil = {"Origin": "http://evil.example"}
    assert request(server, "POST", "/api/words", {"word": "qqzzqq"}, headers=evil)[0] == 403
    plain = {"Content-Type": "text/plain"}
    assert request(server, "POST", "/api/learn", {"word": "qqzzqq"}, headers=plain)[0] == 415
    assert "qqzzqq" not in engine.decoder.lexicon
    engine.decoder.remove_words(["swipeable"])


def test_user_data_is_kept_in_the_file_given(tmp_path):
    path = tmp_path / "words.json"
    engine = Engine("en_hws", settings=DecodingSettings("beam", beam_size=4), user_data=path)
    engine.add_word({"word": "zorblax"})
    assert json.loads(path.read_text())["added"] == {"zorblax": None}
    path.write_text("{broken")
    with pytest.raises(ValueError, match="words.json"):
        Engine("en_hws", user_data=path)


# ---- the HTTP surface under hostile use: each refusal leaves everything else working ---------------


def zigzag(points=5000):
    """The longest swipe accepted, zigzagging across the whole coordinate range (a path of 10^8 px)."""
    x = np.where(np.arange(points) % 2 == 0, -8000.0, 8000.0)
    return {"layout": 0, "x": x.tolist(), "y": (x / 2).tolist(), "t": np.arange(points, dtype=float).tolist()}


@pytest.mark.parametrize(("headers", "status"), [
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Host": "evil.example:{port}"}, 403),  # DNS rebinding: a foreign name resolving here
    ({"Host": "127.0.0.1:1"}, 403),
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
])
def test_cross_site_posts_are_refused_and_the_recording_file_is_untouched(server, headers, status):
    port = server.server_address[1]
    headers = {k: v.format(port=port) for k, v in headers.items()}
    before = server.recorder.path.read_bytes()
    device = {"screen_width": 390, "screen_height": 844, "pixel_ratio": 3, "pointer_type": "touch",
              "scale": 1}
    body = {**swipe_of("the"), "word": "the", "device": device}
    answer = request(server, "POST", "/api/record", body, headers=headers)
    assert answer[0] == status and "\n" not in answer[1]["error"]
    assert server.recorder.path.read_bytes() == before
    assert request(server, "GET", "/api/info", headers={k: v for k, v in headers.items()
                                                       if k != "Content-Type"})[0] in (200, 403)
    own = {"Origin": f"http://127.0.0.1:{port}"}
    assert request(server, "POST", "/api/decode", swipe_of("the"), headers=own)[0] == 200


@pytest.mark.parametrize("path", ["/static/demo.js%00.png", "/static/%00", "/static/demo.js/", "/static/.",
                                  "/static/%ff%fe", "/static/demo.js%2500", "/static/" + "a" * 5000])
def test_odd_static_paths_are_404(server, path):
    status, answer = request(server, "GET", path)
    assert status == 404 and "\n" not in answer["error"]


def test_a_giant_swipe_is_answered_quickly_and_does_not_delay_others(server):
    with ThreadPoolExecutor(2) as pool:
        start = time.monotonic()
        giant = pool.submit(request, server, "POST", "/api/decode", zigzag())
        time.sleep(0.05)
        status, answer = request(server, "POST", "/api/decode", swipe_of("question"))
        other = time.monotonic() - start
        assert status == 200 and answer["candidates"][0]["word"] == "question"
        assert giant.result()[0] == 200
        assert time.monotonic() - start < 5 and other < 5  # resampling 10^8 px alone took 10 s
    too_many = {**zigzag(), "x": zigzag(MAX_POINTS + 1)["x"]}
    assert request(server, "POST", "/api/decode", too_many)[0] == 400


@pytest.fixture()
def strict_server(engine):
    limits = ServerLimits(max_connections=4, request_seconds=1.0, model_slots=1, model_wait_seconds=2.0)
    server = DemoServer(("127.0.0.1", 0), engine, quiet=True, limits=limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_slow_clients_are_cut_off_at_the_deadline_and_others_are_answered(strict_server):
    address = strict_server.server_address[:2]
    host = "{}:{}".format(*address).encode()
    trickle = socket.create_connection(address, timeout=10)
    trickle.sendall(b"POST /api/decode HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n")
    start = time.monotonic()
    closed = None
    while time.monotonic() - start < 5:
        try:
            trickle.sendall(b" ")
            if trickle.recv(1 << 16, socket.MSG_DONTWAIT) == b"":
                closed = time.monotonic() - start
                break
        except BlockingIOError:
            pass
        except OSError:
            closed = time.monotonic() - start
            break
        time.sleep(0.1)
    trickle.close()
    assert closed is not None and closed < 3, closed
    assert request(strict_server, "POST", "/api/decode", swipe_of("the"))[0] == 200


def test_connections_over_the_cap_get_a_503_and_idle_ones_are_closed(strict_server):
    address = strict_server.server_address[:2]
    idle = [socket.create_connection(address, timeout=10) for _ in range(4)]
    time.sleep(0.2)
    with socket.create_connection(address, timeout=10) as extra:
        assert extra.makefile("rb").readline().startswith(b"HTTP/1.1 503")
    for sock in idle:  # each closed at its deadline, though its client never sent a byte
        assert sock.recv(10) == b""
        sock.close()
    time.sleep(0.2)
    assert request(strict_server, "POST", "/api/decode", swipe_of("the"))[0] == 200


def test_recorder_starts_each_row_on_a_fresh_line(tmp_path):
    path = tmp_path / "swipes.jsonl"
    curve = {"x": [1, 2], "y": [1, 2], "t": [0, 1], "grid_name": "hws_fitted"}
    good = json.dumps({"word": "the", "curve": curve})
    path.write_text(good + "\n" + good[:40], encoding="utf-8")  # the last row cut off, no newline
    recorder = Recorder(path)
    x = np.linspace(0, 300, 20, dtype=np.float32)
    swipe = Swipe(bundled_layout("hws_fitted"), x, x / 2, np.arange(20.0))
    recorder.append(swipe, "word", {"pointer_type": "pen"})
    recorder.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == good and lines[1] == good[:40] and json.loads(lines[2])["word"] == "word"


@pytest.mark.parametrize("headers", [b"".join(b"X-%d: 1\r\n" % i for i in range(200)),
                                     b"X-Big: " + b"a" * 100_000 + b"\r\n"])
def test_giant_headers_are_refused_and_others_answered(server, headers):
    host = "{}:{}".format(*server.server_address[:2]).encode()
    with socket.create_connection(server.server_address[:2], timeout=30) as sock:
        sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: " + host + b"\r\n" + headers + b"\r\n")
        status = sock.makefile("rb").readline()
    assert status.split()[1] in (b"400", b"431"), status
    assert request(server, "POST", "/api/decode", swipe_of("the"))[0] == 200


def test_fuzz_request_bodies_get_an_answer_never_a_500(server):
    import random

    rng = random.Random(32)
    valid = json.dumps({**swipe_of("the"), "word": "the"}).encode()
    odd = [b"\xff", b"\x00", b"{", b"]", b"[", b'"', b",", b"\\", b"-", b"e", b"1e999", b"true", b"null",
           b" "]
    before = server.recorder.path.read_bytes()
    for _ in range(40):
        body = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body))
            body[at:at + rng.randint(0, 8)] = rng.choice(odd)
        path = rng.choice(["/api/decode", "/api/attention", "/api/template", "/api/record", "/api/learn",
                           "/api/words"])
        status, answer = request(server, "POST", path, raw=bytes(body))
        assert status in (200, 400), (status, answer, bytes(body)[:80])
        assert status == 200 or "\n" not in answer["error"]
    assert server.recorder.path.read_bytes() == before  # no device: nothing recorded
    assert request(server, "POST", "/api/decode", swipe_of("the"))[0] == 200
