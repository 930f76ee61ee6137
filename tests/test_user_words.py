"""User words, removed words, learning and the user data file (swipe.decoding.user_words)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from swipe.decoding.pipeline import Pipeline, Preprocessing, Settings, Swipe, Trie, Vocabulary
from swipe.decoding.trie import LexiconTrie
from swipe.decoding.user_words import (
    MAX_FILE_BYTES,
    LearnSettings,
    UserDataError,
    UserWordError,
    UserWords,
    VerbatimCandidate,
    VerbatimSettings,
    load_user_data,
    offer_verbatim,
    read_user_data,
    write_user_data,
)
from swipe.keyboard import Layout, bundled_layout
from swipe.tokenizers import CharTokenizer

ALPHABET = "qwertyuiopasdfghjklzxcvbnm"
WORDS = {"the": 5e7, "they": 1e6, "then": 2e6, "cat": 3e4, "catch": 2e4, "cattle": 3e3, "dog": 1e4}


def make_trie(words: dict[str, float]) -> Trie:
    """The flat trie of ``words`` with frequencies per billion, as a decoder loads it."""
    lexicon = LexiconTrie.from_words(list(words), list(words.values()), CharTokenizer(ALPHABET))
    return lexicon.flat()


def user_words(words: dict[str, float] = WORDS, learn: LearnSettings | None = None) -> UserWords:
    return UserWords(make_trie(words), ALPHABET, [bundled_layout("hws_fitted")], learn or LearnSettings())


def reachable(trie: Trie) -> dict[str, tuple[float, float]]:
    """Every word the search can output: its end log-probability and the look-ahead of its first
    node (what the prior adds at the first step), by walking the children table from the root."""
    out: dict[str, tuple[float, float]] = {}
    stack = [(0, "", math.nan)]
    while stack:
        node, prefix, first = stack.pop()
        if trie.children[node, 0] == node:
            out[prefix] = (float(trie.end_log_prob[node]), first)
        for token in np.flatnonzero(trie.children[node, 1:] >= 0) + 1:
            child = int(trie.children[node, token])
            stack.append((child, prefix + ALPHABET[token - 1],
                          float(trie.lookahead[child]) if node == 0 else first))
    return out


def assert_same_search_space(edited: Trie, rebuilt: Trie) -> None:
    a, b = reachable(edited), reachable(rebuilt)
    assert sorted(a) == sorted(b)
    for word in a:
        np.testing.assert_allclose(a[word], b[word], rtol=1e-5)
        assert word in edited
    # Every node the search can reach has the look-ahead of the best word below it.
    assert set(edited.word_index()) == set(b)


def log_probs(user: UserWords) -> dict[str, float]:
    return {word: float(user.trie.word_log_probs[i]) for word, i in user.trie.word_index().items()}


def test_added_and_removed_words_give_the_trie_a_rebuild_would():
    user = user_words()
    user.add(["catnip", "zebra"])
    user.add("dogma", frequency=5e5)
    user.remove(["catch", "the", "unknown"])
    for word in ["cattle", "zebra", "dog", "cattle"]:
        user.learn(word)
    user.sync()
    # The rebuilt trie of the same words and log-probabilities.
    expected = log_probs(user)
    assert set(expected) == {"they", "then", "cat", "cattle", "dog", "catnip", "zebra", "dogma"}
    assert math.isclose(expected["dogma"], math.log(5e5 / 1e9), rel_tol=1e-6)
    rebuilt = LexiconTrie.from_words(list(expected), list(np.exp(list(expected.values()))),
                                     CharTokenizer(ALPHABET)).flat()
    # from_words normalises; shift to the same scale before comparing.
    shift = math.log(sum(np.exp(list(expected.values()))))
    rebuilt.lookahead += shift
    rebuilt.end_log_prob += shift
    assert_same_search_space(user.trie, rebuilt)
    # A removed word that prefixes others keeps them; the prior no longer leads to it.
    assert "catch" not in user.trie and "cat" in user.trie and "cattle" in user.trie


def test_a_word_added_back_after_removal_and_words_added_past_the_spare_rows():
    user = user_words()
    user.remove(["dog"])
    assert "dog" not in reachable(user.trie)
    user.add(["dog"])
    assert math.isclose(reachable(user.trie)["dog"][0], user.lexicon_log_probs["dog"], rel_tol=1e-6)
    many = ["".join(np.random.default_rng(i).choice(list(ALPHABET), 12)) for i in range(500)]
    rows = len(user.trie.children)
    user.add(many)  # 6000 new nodes: more than the spare rows
    assert len(user.trie.children) > rows
    assert set(many) <= set(reachable(user.trie))
    assert user.trie.max_word_length == 12


def test_the_default_frequency_is_a_fairly_common_words_and_lexicon_words_keep_theirs():
    words = {f"w{chr(97 + i // 26)}{chr(97 + i % 26)}": 1000.0 - i for i in range(100)}
    user = user_words(words)
    user.add(["zebra"])
    assert math.isclose(log_probs(user)["zebra"], user.lexicon_log_probs["waj"], rel_tol=1e-6)  # 10th of 100
    user = user_words()
    user.add(["zebra", "cat"])
    assert math.isclose(log_probs(user)["cat"], user.lexicon_log_probs["cat"], rel_tol=1e-6)
    assert "cat" not in user.added  # a lexicon word added without a frequency changes nothing


@pytest.mark.parametrize("word, named", [("Zoe", "'Z'"), ("naïve", "'ï'"), ("two words", "' '"),
                                         ("", "non-empty")])
def test_a_word_the_model_cannot_type_is_refused_naming_it_and_the_character(word, named):
    user = user_words()
    with pytest.raises(UserWordError, match=named):
        user.add(["fine", word])
    assert "fine" not in user.trie  # nothing added when one word is refused


def test_learning_ranks_a_chosen_word_higher_fades_and_is_bounded():
    user = user_words(learn=LearnSettings(weight=0.05, decay=0.9, max_learned=3))
    before = log_probs(user)
    user.learn("cattle")
    user.sync()
    after = log_probs(user)
    assert after["cattle"] > before["cattle"] + 1
    assert after["the"] == before["the"]
    for word in ["dog", "cat", "they", "then"]:
        user.learn(word)
    user.sync()
    faded = log_probs(user)
    assert "cattle" not in user.counts and len(user.counts) == 3  # the least recent is forgotten
    assert math.isclose(faded["cattle"], before["cattle"], rel_tol=1e-6)
    assert user.count("cat") < user.count("then")  # older choices fade
    assert faded["then"] > before["then"]


def test_learning_a_word_the_decoder_does_not_know_adds_it_and_a_removed_word_comes_back():
    user = user_words()
    user.remove("dog")
    user.learn("dog")
    user.learn("zorblax")
    assert "dog" in reachable(user.trie) and "zorblax" in reachable(user.trie)
    assert "zorblax" in user.added and "dog" not in user.removed


def test_user_data_round_trips_and_is_written_atomically(tmp_path):
    path = tmp_path / "user.json"
    user = user_words()
    user.add(["zebra"])
    user.add(["dogma"], frequency=123.0)
    user.remove(["catch"])
    user.learn("cattle")
    write_user_data(path, user.data())
    assert [p.name for p in tmp_path.iterdir()] == ["user.json"]
    saved = json.loads(path.read_text())
    assert saved["format"] == "swipe-user-data" and saved["added"] == {"zebra": None, "dogma": 123.0}
    again = user_words()
    load_user_data(again, path)
    user.sync()
    assert log_probs(again) == pytest.approx(log_probs(user))
    assert again.data() == user.data()


@pytest.mark.parametrize("content, says", [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (b'{"format": "other"}', "not a user data file"),
    (b'{"format": "swipe-user-data", "version": 9}', "version 9"),
    (b'{"format": "swipe-user-data", "version": 1, "added": {"a": -1}}', "frequency -1"),
    (b'{"format": "swipe-user-data", "version": 1, "added": {"a": NaN}}', "frequency nan"),
    (b'{"format": "swipe-user-data", "version": 1, "removed": "abc"}', '"removed"'),
    (b'{"format": "swipe-user-data", "version": 1, "learned": [["a", 1e300]]}', '"learned"'),
    (b'{"format": "swipe-user-data", "version": 1, "added": {"Zoe": null}}', "'Z'"),
])
def test_a_bad_user_data_file_is_one_line_naming_it_and_is_left_as_it_was(tmp_path, content, says):
    path = tmp_path / "user.json"
    path.write_bytes(content)
    user = user_words()
    with pytest.raises(UserDataError, match=says) as err:
        load_user_data(user, path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == content


def test_a_huge_user_data_file_is_refused_unread(tmp_path):
    path = tmp_path / "user.json"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 10)
    with pytest.raises(UserDataError, match="over 4 MiB"):
        read_user_data(path)


class SpellingBackend:
    """A network that reads swipe ``j`` (its first x is ``j``) as ``strings[j]``: each character
    (then <eos>) at log-probability ``log(sure)``, the rest spread over the other tokens."""

    def __init__(self, strings: list[str], sure: float) -> None:
        self.targets = [[ALPHABET.index(c) + 1 for c in s] + [0] for s in strings]
        self.sure = sure

    def encode(self, points, lengths, layout_ids):
        return points[:, 0, 0].astype(np.int64)

    def take(self, memory, curves):
        return memory[curves]

    def step(self, tokens, memory, state):
        position = np.zeros(tokens.shape, np.int64) if state is None else state
        v = len(ALPHABET) + 1
        out = np.full((*tokens.shape, v), math.log((1 - self.sure) / (v - 1)), np.float32)
        for c, k in np.ndindex(*tokens.shape):
            target = self.targets[int(memory[c])]
            out[c, k, target[min(int(position[c, k]), len(target) - 1)]] = math.log(self.sure)
        return out, position + 1

    def reorder(self, state, curves, parents):
        rows = np.arange(len(parents)) if curves is None else curves
        return state[rows[:, None], np.maximum(parents, 0)]

    def score(self, tokens, memory):
        return None  # the pipeline steps along the words


def spelling_pipeline(strings: list[str], sure: float = 0.95) -> tuple[Pipeline, list[Swipe]]:
    """A pipeline over WORDS whose network spells ``strings`` (one swipe each)."""
    layout = bundled_layout("hws_fitted")
    pipeline = Pipeline(SpellingBackend(strings, sure), Vocabulary(ALPHABET, 0, len(ALPHABET) + 1), [layout],
                        Preprocessing(None, None), Settings(length_penalty=0.75), make_trie(WORDS))
    swipes = [Swipe(np.array([j, 50.0]), np.array([10.0, 20.0]), np.array([0.0, 100.0]), layout.name)
              for j in range(len(strings))]
    return pipeline, swipes


def test_the_verbatim_candidate_comes_second_only_where_no_lexicon_word_scores_well():
    pipeline, swipes = spelling_pipeline(["zorblax", "zorblax", "cattle", "zorblax"])
    rows = [[(-12.0, "cat"), (-13.0, "catch")], [(-3.0, "cat")], [(-12.0, "cat")], []]
    got = offer_verbatim(pipeline, swipes, rows, VerbatimSettings())
    # Second, flagged, nothing dropped; the lexicon's best stays first.
    assert [c.word for c in got[0]] == ["cat", "zorblax", "catch"]
    assert [c.in_lexicon for c in got[0]] == [True, False, True]
    assert isinstance(got[0][1], VerbatimCandidate) and got[0][1].score > -0.3
    score, word = got[0][1]  # still a (score, word) pair
    assert word == "zorblax" and got[0][0] == (-12.0, "cat")
    assert got[1] == [(-3.0, "cat")]  # a lexicon word scores well: none
    assert [c.word for c in got[2]] == ["cat"]  # the string is a lexicon word: none
    assert [(c.word, c.in_lexicon) for c in got[3]] == [("zorblax", False)]  # no candidate: it alone
    first = offer_verbatim(pipeline, swipes, rows, VerbatimSettings(position=0))
    assert first[0][0].word == "zorblax" and not first[0][0].in_lexicon
    assert offer_verbatim(pipeline, swipes, rows, None) == rows  # off: the rows as they were
    assert all(c.in_lexicon for row in offer_verbatim(pipeline, swipes, rows, None) for c in row)


def test_an_unsure_verbatim_string_and_a_user_word_are_not_offered():
    pipeline, swipes = spelling_pipeline(["zorblax"], sure=0.5)
    rows = [[(-12.0, "cat")]]
    assert offer_verbatim(pipeline, swipes, rows, VerbatimSettings()) == rows
    anyway = VerbatimSettings(verbatim_above=-math.inf)
    assert offer_verbatim(pipeline, swipes, rows, anyway)[0][1].word == "zorblax"
    pipeline, swipes = spelling_pipeline(["zorblax"])
    UserWords(pipeline.trie, ALPHABET, [bundled_layout("hws_fitted")]).add(["zorblax"])
    assert offer_verbatim(pipeline, swipes, rows, VerbatimSettings()) == rows  # the decoder outputs it
    with pytest.raises(ValueError, match="position"):
        VerbatimSettings(position=-1)


def test_the_module_does_not_import_torch():
    code = "import sys, swipe.decoding.user_words; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


def key_centre_curve(layout: Layout, word: str):
    """A swipe straight through ``word``'s key centres, 10 points a key, 15 ms apart."""
    from swipe.decoder import make_curve
    from swipe.templates import word_polyline

    keys = word_polyline(layout, word) * np.array([layout.key_width, layout.key_height])
    steps = np.linspace(0, 1, 10, endpoint=False)[:, None]
    segments = [a + (b - a) * steps for a, b in zip(keys[:-1], keys[1:], strict=True)]
    points = np.concatenate([*segments, keys[-1:]])
    return make_curve(points[:, 0], points[:, 1], np.arange(len(points)) * 15.0, layout.name)


def test_a_real_decoder_outputs_an_added_word_at_once_and_keeps_it_in_its_user_data(tmp_path):
    import swipe

    path = tmp_path / "user.json"
    decoder = swipe.load_decoder("en_hws", user_data=path)
    curve = key_centre_curve(decoder.layouts[0], "zorblax")
    assert "zorblax" not in [c.word for c in decoder.decode([curve])[0]]
    decoder.add_words(["zorblax"])
    assert decoder.decode([curve])[0][0].word == "zorblax"
    assert "zorblax" in decoder.lexicon
    decoder.remove_words("zorblax")
    assert "zorblax" not in [c.word for c in decoder.decode([curve])[0]]
    decoder.learn("zorblax")
    assert json.loads(path.read_text())["added"] == {"zorblax": None}
    reloaded = swipe.load_decoder("en_hws", user_data=path)
    assert reloaded.decode([curve])[0][0].word == "zorblax"
    with pytest.raises(UserWordError, match="'Z'"):
        reloaded.add_words(["Zorblax"])
    (typed,) = reloaded.verbatim([curve])  # the network alone: any string of its alphabet
    assert typed and set(typed) <= set(reloaded.tokenizer.alphabet)


def test_a_real_decoder_offers_the_verbatim_string_second_and_learns_it_when_picked():
    import swipe

    decoder = swipe.load_decoder("en_hws", verbatim=VerbatimSettings())
    curve = key_centre_curve(decoder.layouts[0], "kubernetes")
    (row,) = decoder.decode([curve])
    (typed,) = decoder.verbatim([curve])
    assert [c.in_lexicon for c in row[:3]] == [True, False, True] and row[1].word == typed
    assert typed not in decoder.lexicon and row[0].score < VerbatimSettings().lexicon_below
    decoder.verbatim_settings = None  # off (load_decoder's default): the lexicon's candidates only
    assert decoder.decode([curve])[0] == [c for c in row if c.in_lexicon]
    (hello,) = decoder.decode([key_centre_curve(decoder.layouts[0], "hello")])
    decoder.verbatim_settings = VerbatimSettings()
    assert decoder.decode([key_centre_curve(decoder.layouts[0], "hello")]) == [hello]  # scores well
    decoder.learn(typed)  # the user picked it: now a word of theirs, first
    assert [(c.word, c.in_lexicon) for c in decoder.decode([curve])[0][:1]] == [(typed, True)]


@pytest.mark.slow
def test_the_onnx_runtime_takes_the_same_user_words_and_file(tmp_path):
    pytest.importorskip("onnxruntime")
    import swipe
    from swipe.export import main as export_main
    from swipe.model_files import MODELS_DIR
    from swipe.runtime import OnnxDecoder

    folder = tmp_path / "onnx"
    assert export_main([str(MODELS_DIR / "en_hws"), "--format", "onnx", "--out", str(folder)]) == 0
    path = tmp_path / "user.json"
    decoder = swipe.load_decoder("en_hws", user_data=path)
    decoder.add_words(["zorblax"])
    runtime = OnnxDecoder(folder, user_data=path)
    curve = key_centre_curve(runtime.layouts[0], "zorblax")
    assert runtime.verbatim([Swipe(curve.x, curve.y, curve.t, curve.grid_name)]) == decoder.verbatim([curve])
    found = runtime.decode_one(curve.x, curve.y, curve.t, curve.grid_name)
    assert found[0][1] == "zorblax"
    runtime.remove_words(["zorblax"])
    found = runtime.decode_one(curve.x, curve.y, curve.t, curve.grid_name)
    assert "zorblax" not in [word for _, word in found]
    assert json.loads(path.read_text())["added"] == {}
    # The verbatim candidate: the same string, place and flag as the PyTorch decoder's.
    runtime.verbatim_settings = decoder.verbatim_settings = VerbatimSettings()
    curve = key_centre_curve(runtime.layouts[0], "kubernetes")
    want = [(c.word, c.in_lexicon) for c in decoder.decode([curve])[0]]
    got = [(c.word, c.in_lexicon) for c in runtime.decode_one(curve.x, curve.y, curve.t, curve.grid_name)]
    assert got[:3] == want[:3] and want[1][1] is False  # (later ranks may swap between backends)
