"""The JavaScript decoder (js/, on onnxruntime-node) gives swipe.runtime's candidates: every word of
every list equal, scores within 1e-4, on real swipes with each model's own decoding settings (fp32
graphs; the int8 ones too, under -m slow).

Needs Node and the JavaScript package (``npm ci --prefix js``); skipped without them."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from test_fuzz import tampered, with_nan_weights  # noqa: E402
from test_onnx import export, tiny_config, write_checkpoint  # noqa: E402

from swipe.decoding.pipeline import Settings  # noqa: E402
from swipe.decoding.user_words import LearnSettings, UserWordError, VerbatimSettings  # noqa: E402
from swipe.resources import REAL_EN_SWIPES  # noqa: E402
from swipe.runtime import OnnxDecoder, read_swipes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "js"
NODE = shutil.which("node")
TOLERANCE = 1e-4
BATCH = 8  # swipes per decode call, the same on both sides (graph shapes, hence rounding, alike)

pytestmark = pytest.mark.skipif(
    NODE is None or not (JS / "node_modules" / "onnxruntime-node").is_dir(),
    reason="needs node and the JavaScript package: install it with `npm ci --prefix js`")


def run_js(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """``node js/bin/decode.mjs ARGS``."""
    assert NODE is not None
    return subprocess.run([NODE, str(JS / "bin" / "decode.mjs"), *args], capture_output=True, text=True,
                          timeout=timeout)


def js_candidates(folder: Path, swipes: Path, verbatim: VerbatimSettings | None, int8: bool,
                  settings: dict[str, float], user_words: list[list] | None = None
                  ) -> list[list[tuple[float, str, bool]]]:
    """Each swipe's candidates from the JavaScript decoder in Node: (score, word, in lexicon)."""
    options = [] if verbatim is None else ["--verbatim", json.dumps(dataclasses.asdict(verbatim))]
    options += ["--user-words", json.dumps(user_words or [])]
    options += (["--int8"] if int8 else []) + ["--settings", json.dumps(settings)]
    done = run_js(str(folder), str(swipes), "--batch", str(BATCH), *options)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return [[(c["score"], c["word"], c["inLexicon"]) for c in row] for row in rows]


def check_parity(folder: Path, lines: list[str], tmp: Path, verbatim: VerbatimSettings | None = None,
                 int8: bool = False, settings: dict[str, float] | None = None,
                 user_words: list[list] | None = None) -> list[list[tuple[float, str, bool]]]:
    """Both decoders' candidates of swipes ``lines`` equal; ``settings``: OnnxDecoder overrides;
    ``user_words``: ["add", words, frequency?], ["remove", words], ["learn", word] steps first."""
    path = tmp / "swipes.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    swipes = [swipe for swipe, _ in read_swipes(path)]
    decoder = OnnxDecoder(folder, int8=int8, verbatim=verbatim, **(settings or {}))
    for step, *args in user_words or []:
        {"add": decoder.add_words, "remove": decoder.remove_words, "learn": decoder.learn}[step](*args)
    expected = [[(c.score, c.word, c.in_lexicon) for c in row] for start in range(0, len(swipes), BATCH)
                for row in decoder.decode(swipes[start:start + BATCH])]
    got = js_candidates(folder, path, verbatim, int8, settings or {}, user_words)
    assert len(got) == len(expected)
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert [c[1:] for c in have] == [c[1:] for c in want], f"swipe {i}: {have[:5]} != {want[:5]}"
        worst = max((abs(a[0] - b[0]) for a, b in zip(have, want, strict=True)), default=0.0)
        assert worst <= TOLERANCE, f"swipe {i}: scores differ by {worst:.2e}"
    return expected


def test_js_decoder_equals_the_runtime_on_real_swipes(onnx_folders, tmp_path):
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()
    check_parity(onnx_folders["en_hws"], lines[::17][:48], tmp_path)  # spread over the 800


def test_js_verbatim_candidate_equals_the_runtimes(onnx_folders, tmp_path):
    """Offered everywhere: the network's best string without the lexicon, searched without a trie."""
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()
    everywhere = VerbatimSettings(lexicon_below=1e9, verbatim_above=-1e9)
    check_parity(onnx_folders["en_hws"], lines[5::50], tmp_path, everywhere)


def test_js_decoder_equals_the_runtime_with_an_rnn(tmp_path):
    """A random LSTM's graphs (its first state from the encoder), the settings overridden."""
    checkpoint = tmp_path / "lstm.pt"
    write_checkpoint(checkpoint, tiny_config("rnn"))
    folder = export(checkpoint, tmp_path / "onnx")
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()
    settings = {"beam_size": 4, "prior_weight": 0.5, "length_penalty": 0.75}
    check_parity(folder, lines[3::100], tmp_path, settings=settings)


@pytest.mark.parametrize("score_graph", [True, False], ids=["one-call", "stepping"])
def test_js_template_candidates_equal_the_runtimes(onnx_folders, score_graph, tmp_path):
    """Template candidates of every swipe, scored in one decoder_score.onnx call, or step by step
    in a folder exported before that graph."""
    folder = tmp_path / "folder"
    shutil.copytree(onnx_folders["en_hws"], folder)
    if not score_graph:
        manifest = json.loads((folder / "model.json").read_text())
        del manifest["graphs"]["decoder_score"]
        (folder / "model.json").write_text(json.dumps(manifest))
    decoding = json.loads((folder / "decoding.json").read_text())
    (folder / "decoding.json").write_text(json.dumps({**decoding, "templates_below": 1e9}))
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()
    check_parity(folder, lines[7::100], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "int8"),
                         [("en_hws", False), ("en_hws_transformer", False), ("en_hws", True)])
def test_js_decoder_equals_the_runtime_on_all_real_swipes(onnx_folders, model, int8, tmp_path):
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()
    check_parity(onnx_folders[model], lines, tmp_path, int8=int8)


def test_js_decoder_names_a_bad_folder_in_one_line(tmp_path):
    manifest = {"format": "swipe-onnx", "version": 1, "tokenizer": {"alphabet": 3}}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    (tmp_path / "swipes.jsonl").write_text('{"curve": {"x": [1], "y": [1], "t": [0], "grid_name": "a"}}\n')
    done = run_js(str(tmp_path), str(tmp_path / "swipes.jsonl"), timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"decode.mjs: error: {tmp_path}/model.json: tokenizer.alphabet: "
                                   "must be a string, not 3")


@pytest.mark.parametrize("graph", ["tiny/decoder_step.onnx", "en_hws/encoder.onnx",
                                   "en_hws/decoder_score.onnx"])
def test_js_refuses_graphs_that_compute_nan_as_the_runtime_does(export_folder, onnx_folders, tmp_path, graph):
    from swipe.runtime.folder import OnnxFolderError, read_export_folder

    model, _, graph = graph.partition("/")
    source = export_folder if model == "tiny" else onnx_folders[model]
    folder = tampered(source, tmp_path, graph, with_nan_weights(source / graph))
    with pytest.raises(OnnxFolderError, match="computes NaN") as caught:
        read_export_folder(folder)
    grid = "tiny" if model == "tiny" else "hws_fitted"
    (tmp_path / "swipes.jsonl").write_text(json.dumps({"curve": {"x": [1, 9], "y": [1, 5], "t": [0, 9],
                                                                 "grid_name": grid}}) + "\n")
    done = run_js(str(folder), str(tmp_path / "swipes.jsonl"), timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == f"decode.mjs: error: {caught.value}"


def test_the_docs_node_example_runs(onnx_folders):
    """docs/javascript.md's example, given a real swipe, prints its word first."""
    text = (ROOT / "docs" / "javascript.md").read_text(encoding="utf-8")
    code = re.search(r"^```js\n(.*?)^```", text, re.MULTILINE | re.DOTALL).group(1)
    row = json.loads(REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[0])
    points = "".join(f"const {axis} = {json.dumps(row['curve'][axis])};\n" for axis in "xyt")
    code = points + code.replace('"en_onnx"', json.dumps(str(onnx_folders["en_hws"])))
    done = subprocess.run([NODE, "--input-type=module", "-e", code], cwd=JS, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"word: '{row['word']}'" in done.stdout.split("}")[0]


def test_js_defaults_are_the_pythons():
    """Every pipeline setting, the verbatim candidate's and learning's defaults, as Python's (a setting added
    in Python shows here until the JavaScript pipeline has it too)."""
    code = ('import { DEFAULT_SETTINGS } from "./src/pipeline.mjs";\n'
            'import { DEFAULT_LEARN, DEFAULT_VERBATIM } from "./src/user_words.mjs";\n'
            'console.log(JSON.stringify({ settings: DEFAULT_SETTINGS, verbatim: DEFAULT_VERBATIM,'
            ' learn: DEFAULT_LEARN }));\n')
    done = subprocess.run([NODE, "--input-type=module", "-e", code], cwd=JS, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    js = json.loads(done.stdout)
    python = json.loads(json.dumps(dataclasses.asdict(Settings())))
    assert js["settings"] == python
    assert js["verbatim"] == dataclasses.asdict(VerbatimSettings())
    assert js["learn"] == dataclasses.asdict(LearnSettings())


def test_js_user_words_equal_the_runtimes(onnx_folders, tmp_path):
    """After the same removed, added and learned words, both decoders give the same candidates, on
    swipes of words taken out of the lexicon and added back (they decode as user words) and others."""
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[7::80][:10]
    targets = [json.loads(line)["word"] for line in lines]
    steps = [["remove", targets[:4]], ["add", targets[:3]], ["add", ["swipeable", "zyx"], 2000.0],
             ["learn", targets[4]], ["learn", targets[5]], ["learn", targets[4]], ["learn", "quizzable"],
             ["remove", [targets[6], "notaword"]], ["add", targets[6:7], 50.0]]
    rows = check_parity(onnx_folders["en_hws"], lines, tmp_path, user_words=steps)
    assert all(word in [c[1] for c in row] for word, row in zip(targets[:3], rows, strict=False))
    assert targets[3] not in [c[1] for c in rows[3]]  # removed


def test_js_reads_the_user_data_file_the_runtime_writes(onnx_folders, tmp_path):
    """A user data file written by the Python decoder, read by the JavaScript one (decode.mjs
    --user-data): the same candidates; a file it cannot apply is refused in one line naming it."""
    folder, path, saved = onnx_folders["en_hws"], tmp_path / "swipes.jsonl", tmp_path / "words.json"
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[11::90][:8]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    targets = [json.loads(line)["word"] for line in lines]
    writer = OnnxDecoder(folder, user_data=saved)
    writer.remove_words(targets[:3])
    writer.add_words(targets[:2] + ["swipeable"], 2000.0)
    for word in [targets[3], targets[4], targets[3], "quizzable"]:
        writer.learn(word)
    swipes = [swipe for swipe, _ in read_swipes(path)]
    reader = OnnxDecoder(folder, user_data=saved)
    expected = [[(c.score, c.word) for c in row] for swipe in swipes for row in reader.decode([swipe])]
    assert targets[2] not in [word for _, word in expected[2]]  # removed
    done = run_js(str(folder), str(path), "--user-data", str(saved))
    assert done.returncode == 0, done.stderr
    got = [[(c["score"], c["word"]) for c in json.loads(line)] for line in done.stdout.splitlines()]
    assert [[w for _, w in row] for row in got] == [[w for _, w in row] for row in expected]
    pairs = [(a, b) for x, y in zip(got, expected, strict=True) for a, b in zip(x, y, strict=True)]
    assert max(abs(a[0] - b[0]) for a, b in pairs) <= TOLERANCE
    data = json.loads(saved.read_text(encoding="utf-8"))
    saved.write_text(json.dumps({**data, "added": {"caf\u20ac": None}}), encoding="utf-8")
    done = run_js(str(folder), str(path), "--user-data", str(saved), timeout=300)
    assert done.returncode == 1
    message = done.stderr.strip()
    assert message.startswith(f"decode.mjs: error: {saved}: ") and message.endswith("; fix or remove it")
    assert len(message.splitlines()) == 1


def test_js_refuses_an_untypeable_word_as_the_runtime_does(onnx_folders, tmp_path):
    folder, swipes = onnx_folders["en_hws"], tmp_path / "swipes.jsonl"
    swipes.write_text(REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    decoder = OnnxDecoder(folder)
    for word in ["caf€", ""]:
        with pytest.raises(UserWordError) as err:
            decoder.add_words([word])
        done = run_js(str(folder), str(swipes), "--user-words", json.dumps([["add", [word]]]), timeout=300)
        assert done.returncode == 1
        assert done.stderr.strip() == f"decode.mjs: error: {err.value}"
