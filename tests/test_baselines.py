"""The classic baseline decoders in bench/baselines: DTW, resampling, template matching, the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.baselines import ablate_shark2, run_baselines, tune_shark2
from bench.baselines.dtw_baseline import DTWConfig, DTWDecoder
from swipe.config import load_json
from swipe.keyboard import bundled_layout
from swipe.lexicon import Lexicon
from swipe.predictions import read_predictions
from swipe.shark2 import Shark2Config, Shark2Decoder, build_templates
from swipe.templates import key_units

LAYOUT = bundled_layout("hws_fitted")
WORDS = ["hello", "help", "world", "word", "the", "they", "quick", "fox", "jumps", "over", "lazy", "dog",
         "i", "a", "an", "and", "sand", "pizza"]


def word_curve(word: str, points_per_key: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A pixel curve drawn exactly through the key centres of ``word``, densely sampled."""
    centres = np.array([LAYOUT.centers[LAYOUT.key_index_for_char(c)] for c in word], np.float64)
    if len(centres) == 1:
        return centres[:, 0].repeat(3), centres[:, 1].repeat(3)
    t = np.linspace(0, len(centres) - 1, points_per_key * (len(centres) - 1) + 1)
    knots = np.arange(len(centres))
    return np.interp(t, knots, centres[:, 0]), np.interp(t, knots, centres[:, 1])


def lexicon(words: list[str], freqs: list[float] | None = None) -> Lexicon:
    return Lexicon(words, np.ones(len(words)) if freqs is None else np.array(freqs, np.float64), "test")


def test_templates_skip_words_the_layout_cannot_type() -> None:
    t = build_templates(LAYOUT, lexicon(["cat", "naïve", "egg"]), 10)
    assert t.words == ["cat", "egg"] and t.skipped == 1
    e, g = (key_units(LAYOUT, *LAYOUT.centers[LAYOUT.key_index(c)]) for c in "eg")
    assert t.points[1, 0] == pytest.approx(e) and t.points[1, -1] == pytest.approx(g)
    assert t.log_prior == pytest.approx(np.log([0.5, 0.5]))
    with pytest.raises(ValueError, match="cannot type"):
        build_templates(LAYOUT, lexicon(["naïve"]), 10)


# ---- decoders ---------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["hello", "world", "word", "they", "quick", "lazy", "pizza", "and", "sand"])
def test_both_baselines_rank_the_drawn_word_first(word: str) -> None:
    lex = lexicon(WORDS)
    x, y = word_curve(word)
    for decoder in (DTWDecoder(LAYOUT, lex, DTWConfig()), Shark2Decoder(LAYOUT, lex, Shark2Config())):
        candidates = decoder.decode(x, y)
        assert candidates[0][1] == word, (type(decoder).__name__, candidates[:3])
        scores = [s for s, _ in candidates]
        assert scores == sorted(scores, reverse=True)


def test_dtw_candidates_start_on_the_first_key() -> None:
    x, y = word_curve("dog")
    candidates = DTWDecoder(LAYOUT, lexicon(WORDS)).decode(x, y)
    assert {w[0] for _, w in candidates} == {"d"}
    wider = DTWDecoder(LAYOUT, lexicon(WORDS), DTWConfig(first_key_radius=1.2)).decode(x, y)
    assert {w[0] for _, w in wider} > {"d"}  # neighbouring keys' words join


def test_shark2_prior_breaks_ties_and_prunes_by_ends() -> None:
    # "lose" and "loose" share their key-centre polyline: the more frequent word wins.
    x, y = word_curve("lose")
    for freqs, best in (([1.0, 5.0], "loose"), ([5.0, 1.0], "lose")):
        candidates = Shark2Decoder(LAYOUT, lexicon(["lose", "loose"], freqs)).decode(x, y)
        assert candidates[0][1] == best
    # Start/end pruning: a word whose first key is far from the swipe's start is not a candidate.
    x, y = word_curve("help")
    words = [w for _, w in Shark2Decoder(LAYOUT, lexicon(WORDS)).decode(x, y)]
    assert "help" in words and "jumps" not in words and "over" not in words


def test_shark2_taps_pick_frequent_single_key_words() -> None:
    lex = lexicon(["i", "u", "in", "it"], [100.0, 1.0, 50.0, 50.0])
    decoder = Shark2Decoder(LAYOUT, lex)
    i_x, i_y = LAYOUT.centers[LAYOUT.key_index("i")]
    u_x, _ = LAYOUT.centers[LAYOUT.key_index("u")]
    # A tap between "u" and "i", a little nearer "u": the far more frequent "i" wins.
    tap_x = np.full(3, 0.45 * i_x + 0.55 * u_x)
    assert decoder.decode(tap_x, np.full(3, i_y))[0][1] == "i"


def test_configs_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="sigma_shape"):
        Shark2Config(sigma_shape=0.0)
    with pytest.raises(ValueError, match="num_points"):
        Shark2Config(num_points=1)
    with pytest.raises(ValueError, match="num_points"):
        DTWConfig(num_points=1)


# ---- the comparison script --------------------------------------------------------------------


def write_data(tmp_path: Path, words: list[str]) -> tuple[Path, Path]:
    """A jsonl file of curves drawn through the key centres of ``words``, and a lexicon file."""
    data = tmp_path / "swipes.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for word in words:
            x, y = word_curve(word)
            t = np.arange(len(x)) * 10.0
            curve = {"x": x.round(1).tolist(), "y": y.round(1).tolist(), "t": t.tolist(),
                     "grid_name": "hws_fitted"}
            f.write(json.dumps({"word": word, "curve": curve}) + "\n")
    lex_file = tmp_path / "lexicon.tsv"
    lex_file.write_text("".join(f"{w}\t{100 - i}\n" for i, w in enumerate(WORDS)), encoding="utf-8")
    return data, lex_file


def test_run_baselines_writes_predictions_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    data, lex_file = write_data(tmp_path, ["hello", "world", "lazy", "dog"])
    out = tmp_path / "preds"
    argv = ["--data", str(data), "--lexicon", str(lex_file), "--out-dir", str(out)]
    assert run_baselines.main(argv) == 0
    table = capsys.readouterr().out
    assert "| shark2 | all (4) | 1.0000 | 1.0000 | 1.0000 | 1.0000 |" in table
    assert "| dtw | all (4) |" in table
    preds = read_predictions(out / "shark2.pkl")
    assert preds.targets == ["hello", "world", "lazy", "dog"]
    assert [c[0][1] for c in preds.candidates] == preds.targets
    assert run_baselines.main(argv) == 1  # exists: refused
    assert "already exists" in capsys.readouterr().err
    assert run_baselines.main([*argv, "--overwrite", "--baselines", "dtw"]) == 0


def test_run_baselines_names_the_bad_line(tmp_path: Path, capsys) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"word": "a", "curve": {"x": [1], "y": [2], "t": [0], "grid_name": "hws_fitted"}}\n'
                    '{"word": "b", "curve": {"x": [1, 2], "y": [2]}}\n', encoding="utf-8")
    assert run_baselines.main(["--data", str(data), "--lexicon", "en"]) == 1
    assert f"{data}:2" in capsys.readouterr().err


def test_tune_shark2_runs_on_halves_and_on_a_held_out_file(tmp_path: Path, capsys) -> None:
    data, lex_file = write_data(tmp_path, ["hello", "world", "lazy", "dog", "they", "pizza"])
    assert tune_shark2.main(["--data", str(data), "--lexicon", str(lex_file), "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "chosen on" in out and "held out:" in out and "(3): accuracy@1 1.0000" in out
    argv = ["--data", str(data), "--lexicon", str(lex_file), "--rounds", "1", "--tune-on", "all"]
    with pytest.raises(SystemExit):
        tune_shark2.main(argv)  # no held-out swipes
    saved = tmp_path / "shark2.json"
    assert tune_shark2.main([*argv, "--held-out", str(data), "--save-config", str(saved)]) == 0
    assert load_json(Shark2Config, saved).top_k == Shark2Config().top_k
    with pytest.raises(SystemExit):
        tune_shark2.main([*argv, "--held-out", str(data), "--save-config", str(saved)])  # exists


def test_run_baselines_reads_strict_config_files(tmp_path: Path, capsys) -> None:
    data, lex_file = write_data(tmp_path, ["hello", "dog"])
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"top_k": 2, "sigma_shape": 0.1}', encoding="utf-8")
    bad.write_text('{"sigma_shap": 0.1}', encoding="utf-8")
    argv = ["--data", str(data), "--lexicon", str(lex_file), "--baselines", "shark2",
            "--out-dir", str(tmp_path)]
    assert run_baselines.main([*argv, "--shark2-config", str(good)]) == 0
    assert all(len(c) <= 2 for c in read_predictions(tmp_path / "shark2.pkl").candidates)
    assert run_baselines.main([*argv, "--overwrite", "--shark2-config", str(bad)]) == 1
    assert "sigma_shap" in capsys.readouterr().err


def test_ablate_shark2_prints_one_row_per_variant(tmp_path: Path, capsys) -> None:
    data, lex_file = write_data(tmp_path, ["hello", "world", "lazy", "dog"])
    assert ablate_shark2.main(["--data", str(data), "--lexicon", str(lex_file), "--half", "all"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(ablate_shark2.VARIANTS)  # header, rule, one row each
    assert rows[2] == "| all channels (defaults) | 1.0000 | 1.0000 |"
