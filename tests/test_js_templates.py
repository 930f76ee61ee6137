"""The JavaScript template matcher and rescorer (js/src/templates.mjs) give the words and scores of
swipe.shark2.Shark2Decoder and swipe.templates.TemplateRescorer on the real English dev swipes,
reading the lexicon.npz and layouts.json of an ONNX folder as the JavaScript decoder does."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from swipe.decoding.pipeline import Trie
from swipe.keyboard import Layout, load_layouts_file
from swipe.lexicon import Lexicon
from swipe.resources import REAL_EN_SWIPES
from swipe.shark2 import Shark2Config, Shark2Decoder
from swipe.templates import TemplateRescorer

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (the JavaScript decoder needs Node 18+)"),
    pytest.mark.skipif(not (JS / "node_modules").is_dir(),
                       reason="js/node_modules is missing: install it with `npm ci --prefix js`"),
]

TOP_K = 10  # more proposals than the pipeline asks for (template_candidates), to compare more words
X_SCALES = (1.0, 0.94)  # the rescorer sees each swipe as drawn and as a narrower view
UNTYPEABLE = "naïve"  # no key for "ï" on the English layout: scores -inf, comes last
OTHER_PRIOR = -30.0  # log prior given to candidate words outside the lexicon

# Reads the inputs (argv[2]), computes what the Python side computed and prints it as JSON.
NODE_SCRIPT = """
import { readFile } from "node:fs/promises";
import { readNpz } from "%(src)s/npz.mjs";
import { readLayouts } from "%(src)s/keyboard.mjs";
import { Trie } from "%(src)s/trie.mjs";
import { Shark2Config, Shark2Decoder, TemplateRescorer } from "%(src)s/templates.mjs";

const input = JSON.parse(await readFile(process.argv[2], "utf8"));
const trie = Trie.fromArrays(await readNpz(await readFile(input.folder + "/lexicon.npz")));
const layouts = readLayouts(JSON.parse(await readFile(input.folder + "/layouts.json", "utf8")));
const layout = layouts.get(input.layout);
const lexicon = { words: trie.words, frequencies: Float64Array.from(trie.wordLogProbs, Math.exp) };
const matcher = new Shark2Decoder(layout, lexicon, new Shark2Config({ topK: input.top_k }));
const rescorer = new TemplateRescorer(input.weight, input.prior_weight);
const number = (s) => (Number.isFinite(s) ? s : String(s));
const out = { proposals: [], rescored: [], precise: [] };
input.swipes.forEach(({ x, y }, i) => {
  out.proposals.push(matcher.decode(x, y).map(([s, w]) => [number(s), w]));
  out.rescored.push(input.x_scales.map((scale, v) => {
    const xs = Float64Array.from(x, (value) => value * scale);
    const priors = v === 0 ? input.priors[i] : null;
    const row = rescorer.rescore(input.candidates[i], layout, xs, Float64Array.from(y), priors);
    return row.map(([s, w]) => [number(s), w]);
  }));
  out.precise.push(rescorer.mayBePrecise(layout, x, y));
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The lexicon.npz and layouts.json of the en_hws ONNX folder, written as the export writes them."""
    from swipe.decoding.trie import LexiconTrie
    from swipe.lexicon import load_lexicon
    from swipe.model_files import load_model, resolve_model
    from swipe.onnx_export import trie_arrays

    out = tmp_path_factory.mktemp("onnx_en_hws")
    loaded = load_model(resolve_model("en_hws"))
    trie = LexiconTrie.from_lexicon(load_lexicon(loaded.config.lexicon), loaded.tokenizer)
    np.savez_compressed(out / "lexicon.npz", **trie_arrays(trie))
    (out / "layouts.json").write_text(
        json.dumps([layout.to_grid() for layout in loaded.layouts], indent=1) + "\n", encoding="utf-8")
    return out


def precise_swipe(layout: Layout, word: str) -> tuple[list[float], list[float]]:
    """A swipe drawn through the key centres of ``word``, a few points per key."""
    centres = layout.centers[[layout.key_index_for_char(c) for c in word]].astype(np.float64)
    points = [centres[0]]
    for a, b in zip(centres[:-1], centres[1:], strict=True):
        points += [a + (b - a) * f for f in (0.25, 0.5, 0.75, 1.0)]
    return [float(p[0]) for p in points], [float(p[1]) for p in points]


def swipes_to_compare(layout: Layout, count: int) -> list[tuple[list[float], list[float], str]]:
    """The first ``count`` real dev swipes, then swipes through key centres and taps."""
    swipes = []
    for line in REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[:count]:
        row = json.loads(line)
        swipes.append((row["curve"]["x"], row["curve"]["y"], row["word"]))
    for word in ("hello", "the", "pay", "party", "minimum"):
        swipes.append((*precise_swipe(layout, word), word))
    x, y = precise_swipe(layout, "hello")
    # Drawn two rows above the keyboard (the matcher widens its search), and far beside it (none found).
    swipes.append((x, [v - 2 * layout.key_height for v in y], "hello"))
    swipes.append(([v + 30 * layout.key_width for v in x], y, "hello"))
    centre = layout.centers[layout.key_index_for_char("a")].astype(np.float64)
    swipes.append(([float(centre[0])], [float(centre[1])], "a"))  # a one-point tap
    swipes.append(([float(centre[0]) + 3, float(centre[0]) + 4], [float(centre[1]) - 2] * 2, "a"))
    return swipes


def candidate_list(proposals: list[tuple[float, str]], target: str) -> list[tuple[float, str]]:
    """A decoder's candidates made up from the matcher's proposals: the swipe's word, the
    proposals (two with equal scores), a word the layout cannot type and an empty word."""
    words = [target] + [word for _, word in proposals if word != target] + [UNTYPEABLE, ""]
    scores = [-0.75 * i - 0.125 * (i % 3) for i in range(len(words))]
    scores[2] = scores[1]  # a tie: the order of equal scores is kept
    return list(zip(scores, words, strict=True))


def compare(folder: Path, count: int, tmp_path: Path) -> None:
    trie = Trie.read(folder / "lexicon.npz")
    layout = load_layouts_file(folder / "layouts.json")["hws_fitted"]
    lexicon = Lexicon(trie.words, np.exp(trie.word_log_probs.astype(np.float64)))
    matcher = Shark2Decoder(layout, lexicon, Shark2Config(top_k=TOP_K))
    rescorer = TemplateRescorer(0.5, 1.0)
    swipes = swipes_to_compare(layout, count)
    expected = {"proposals": [], "rescored": [], "precise": []}
    candidates, priors = [], []
    for x, y, word in swipes:
        x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
        proposals = matcher.decode(x64, y64)
        row = candidate_list(proposals, word)
        prior = [trie.log_probs_of([w])[0] if w in trie else OTHER_PRIOR for _, w in row]
        candidates.append(row)
        priors.append(prior)
        expected["proposals"].append(proposals)
        views = [rescorer.rescore(row, layout, x64 * scale, y64, prior if v == 0 else None)
                 for v, scale in enumerate(X_SCALES)]
        expected["rescored"].append(views)
        expected["precise"].append(rescorer.may_be_precise(layout, x64, y64))
    assert any(expected["precise"]) and not all(expected["precise"])

    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({
        "folder": str(folder), "layout": layout.name, "top_k": TOP_K, "weight": rescorer.weight,
        "prior_weight": rescorer.prior_weight, "x_scales": X_SCALES,
        "swipes": [{"x": x, "y": y} for x, y, _ in swipes], "candidates": candidates, "priors": priors,
    }), encoding="utf-8")
    script = tmp_path / "templates_parity.mjs"
    script.write_text(NODE_SCRIPT % {"src": (JS / "src").as_uri()}, encoding="utf-8")
    done = subprocess.run([NODE, str(script), str(inputs)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)

    assert got["precise"] == expected["precise"]
    assert len(got["proposals"]) == len(got["rescored"]) == len(swipes)
    for i in range(len(swipes)):
        assert_same_row(got["proposals"][i], expected["proposals"][i], f"swipe {i}: proposals")
        for scale, have, want in zip(X_SCALES, got["rescored"][i], expected["rescored"][i], strict=True):
            assert_same_row(have, want, f"swipe {i}: rescored at x scale {scale}")


def assert_same_row(have: list, want: list, what: str) -> None:
    """The same words in the same order, scores within 1e-6 (-inf where Python's is -inf)."""
    assert [word for _, word in have] == [word for _, word in want], what
    for (have_score, _), (want_score, _) in zip(have, want, strict=True):
        have_score = float(have_score)  # the script writes "-Infinity", which JSON cannot hold as a number
        if math.isinf(want_score):
            assert have_score == want_score, what
        else:
            assert abs(have_score - want_score) <= 1e-6, what


def test_js_templates_equal_python_on_real_swipes(folder, tmp_path):
    compare(folder, 40, tmp_path)


@pytest.mark.slow
def test_js_templates_equal_python_on_all_real_swipes(folder, tmp_path):
    compare(folder, 800, tmp_path)
