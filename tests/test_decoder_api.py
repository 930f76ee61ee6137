"""swipe.load_decoder: the same candidates as predict.py, from threads, from a notebook's workers;
workers that die with their parent."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from itertools import islice
from pathlib import Path

import pytest
from test_decoding_standin import StandinCurves, StandinLoader

import swipe
from swipe.decoder import DecodeError, DecodeJob, decode_job
from swipe.decoding import BeamOptions, LexiconTrie
from swipe.formats import read_curves
from swipe.predict import main as predict_main
from swipe.predictions import read_predictions
from swipe.resources import REAL_EN_SWIPES
from swipe.shipped import DecodingSettings, ModelNotFoundError, resolve_model, shipped_names
from swipe.tokenizers import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]


def real_swipes(n: int) -> list:
    return list(islice(read_curves(REAL_EN_SWIPES), n))


@pytest.fixture(scope="module")
def en_hws():
    """The shipped English model with its decoding.json, loaded once for the module."""
    return swipe.load_decoder("en_hws")


def test_import_swipe_stays_light():
    code = "import sys, swipe; assert callable(swipe.load_decoder); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", "import sys, swipe; print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "True"


def test_decoder_gives_what_predict_gives_on_real_swipes(en_hws, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[:100]
    (tmp_path / "first.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert predict_main(["--data", "first.jsonl", "--quiet"]) == 0  # the shipped model for hws_fitted
    said = capsys.readouterr().err
    assert "en_hws/model.pt (shipped model en_hws, for the data's layouts hws_fitted)" in said
    assert "lexicon: en (the model's)" in said
    assert "en_hws/decoding.json: generator beam, beam_size 16" in said
    preds = read_predictions(tmp_path / "preds.pkl")

    curves = list(read_curves(tmp_path / "first.jsonl"))
    got = en_hws.decode(curves)
    assert got == preds.candidates  # candidate for candidate, score for score
    assert all(isinstance(c, swipe.Candidate) for row in got for c in row)
    assert sum(row[0].word == curve.word for row, curve in zip(got, curves, strict=True)) >= 75
    assert en_hws.settings.beam_size == 16 and en_hws.settings.template_candidates == 4
    assert en_hws.path == resolve_model("en_hws") and [lay.name for lay in en_hws.layouts] == ["hws_fitted"]
    assert en_hws.lexicon is not None and en_hws.lexicon[:3] == ["the", "to", "and"]


def test_a_curve_made_from_lists_decodes_as_the_same_curve_read(en_hws):
    (curve,) = real_swipes(1)
    made = swipe.make_curve(curve.x.tolist(), curve.y.tolist(), curve.t.tolist(), "hws_fitted")
    assert en_hws.decode([made]) == en_hws.decode([curve])
    assert en_hws.decode([]) == []
    unknown = r"layout 'qwerty_en' is not one of the model's layouts \(hws_fitted\)"
    with pytest.raises(DecodeError, match=unknown):
        en_hws.decode([made._replace(grid_name="qwerty_en")])
    for bad, message in [(([1, 2], [1], [0, 1]), "same, non-zero length"), (([], [], []), "non-zero"),
                         (([1, "a"], [1, 2], [0, 1]), "lists of numbers"),
                         (([1, 2], [1, 2], [5, 1]), "decrease"),
                         (([1, float("nan")], [1, 2], [0, 1]), "finite")]:
        with pytest.raises(DecodeError, match=message):
            swipe.make_curve(*bad, "hws_fitted")


def test_decode_from_many_threads_at_once_answers_each_as_alone(en_hws):
    curves = real_swipes(8)
    alone = [en_hws.decode([curve])[0] for curve in curves]
    results: dict[int, list] = {}

    def decode(i: int) -> None:
        results[i] = en_hws.decode([curves[i % len(curves)]])[0]

    threads = [threading.Thread(target=decode, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(16)] == alone + alone


def test_settings_override_the_models_and_are_checked(en_hws):
    narrow = dataclasses.replace(en_hws.settings, beam_size=4, num_candidates=2, template_candidates=0)
    decoder = swipe.load_decoder("en_hws", settings=narrow, batch_size=3)
    rows = decoder.decode(real_swipes(5))
    assert all(len(row) == 2 for row in rows)
    with pytest.raises(DecodeError, match="x_scales: a factor repeats"):
        swipe.load_decoder("en_hws", settings=dataclasses.replace(narrow, x_scales=(1.0, 1.0)))
    with pytest.raises(DecodeError, match="template_candidates proposes lexicon words"):
        swipe.load_decoder("en_hws", settings=dataclasses.replace(narrow, template_candidates=3),
                           use_lexicon=False)
    with pytest.raises(ModelNotFoundError, match="shipped models: " + ", ".join(shipped_names())):
        swipe.load_decoder("en_hwz")


def test_workers_from_a_notebook_cell_give_what_one_process_gives(tmp_path):
    # Code passed on stdin, as a notebook runs it: __main__ has no file for a worker to import.
    code = """
import json, dataclasses
from itertools import islice
import swipe
from swipe.formats import read_curves
from swipe.resources import REAL_EN_SWIPES
from swipe.shipped import DecodingSettings
curves = list(islice(read_curves(REAL_EN_SWIPES), 12))
settings = DecodingSettings("beam", beam_size=4, template_weight=0.5, x_scales=(0.94, 1.0),
                            template_candidates=2)
one = swipe.load_decoder("en_hws", settings=settings, batch_size=4).decode(curves)
two = swipe.load_decoder("en_hws", settings=settings, batch_size=4, num_workers=2).decode(curves)
print(json.dumps({"same": one == two, "rows": len(two), "first": two[0][0].word}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"same": True, "rows": 12, "first": "participate"}


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_predict_however_it_ends(tmp_path, how):
    command = [sys.executable, str(ROOT / "predict.py"), "--checkpoint", "en_hws",
               "--data", str(REAL_EN_SWIPES), "--num-workers", "2", "--batch-size", "4", "--quiet",
               "--out", str(tmp_path / "p.pkl")]
    parent = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
            workers = [pid for pid in _children(parent.pid) if _alive(pid)]
        assert len(workers) >= 2, "no workers started"
        time.sleep(1.0)  # the workers load the model and decode
        parent.send_signal(how)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        parent.kill()
        parent.wait()
        for pid in workers:  # none should be left; if one is, the test does not leave it running
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


class FailingCurves(StandinCurves):
    """Stand-in curves whose curve ``bad`` fails to load, and with it its batch."""

    def __init__(self, num: int, bad: int) -> None:
        super().__init__(num)
        self.bad = bad

    def swipe(self, index):
        if index == self.bad:
            raise RuntimeError("a failing batch")
        return super().swipe(index)


def test_a_failing_batch_ends_the_workers_too():
    import multiprocessing

    trie = LexiconTrie.from_words(["ab", "abc", "bad"], None, CharTokenizer("abcdefghijklmnopqrstuvwxyz"))
    curves = FailingCurves(40, bad=30)
    job = DecodeJob(StandinLoader(1), curves, "beam", BeamOptions(beam_size=2), trie, "cpu")
    with pytest.raises(RuntimeError, match="a failing batch"):
        decode_job(job, batch_size=2, num_workers=2)
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not multiprocessing.active_children()


def test_shipped_models_are_named_short(tmp_path, monkeypatch):
    assert resolve_model("en_hws").parts[-2:] == ("en_hws", "model.pt")
    assert {"en_hws", "en_hws_transformer", "ru_yandex"} <= set(shipped_names())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "en_hws").mkdir()  # a folder of that name here wins over the shipped model
    with pytest.raises(ModelNotFoundError, match="en_hws: no model.pt, best.pt or last.pt"):
        resolve_model("en_hws")
    assert DecodingSettings("beam").x_scales is None
