"""predict.py: defaults, options, outputs, workers."""

from __future__ import annotations

import csv
import dataclasses
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_decoding_standin import StandinCurves, StandinLoader

import evaluate
from swipe.config import ConfigError, from_dict, to_dict
from swipe.data.resample import ResampleConfig
from swipe.decoder import load_decoder
from swipe.decoding import BeamOptions, LexiconTrie
from swipe.keyboard import Layout, bundled_layout
from swipe.models import build_model, preset
from swipe.predict import DecodeJob, decode, main, make_batches, merge_views, write_submission_csv
from swipe.predictions import read_predictions
from swipe.tokenizers import CharTokenizer
from swipe.training.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, layouts_to_grids
from swipe.training.config import TrainConfig

LAYOUT = bundled_layout("qwerty_en")
TOKENIZER = CharTokenizer.from_layouts([LAYOUT])
WORDS = ["the", "they", "then", "hello", "help", "world", "word", "work", "and", "swipe", "sweet", "key"]


def write_curves(path: Path, words: list[str | None], seed: int = 0, layout: Layout = LAYOUT) -> None:
    """Curves through the key centres of each word, with a little noise."""
    gen = torch.Generator().manual_seed(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i, word in enumerate(words):
            letters = word if word else WORDS[i % len(WORDS)]
            centres = torch.from_numpy(layout.centers[[layout.key_index(c) for c in letters]])
            noise = torch.randn(3 * len(letters), 2, generator=gen) * 5
            points = torch.repeat_interleave(centres, 3, dim=0) + noise
            curve = {"x": points[:, 0].round().tolist(), "y": points[:, 1].round().tolist(),
                     "t": [15 * k for k in range(len(points))], "grid_name": layout.name}
            row = {"curve": curve} if word is None else {"word": word, "curve": curve}
            f.write(json.dumps(row) + "\n")


def write_checkpoint(
    path: Path, val: str, seed: int = 0, layout: Layout = LAYOUT, resample: dict | None = None
) -> None:
    """A checkpoint of a tiny randomly initialised model, in the trainer's format."""
    model_config = preset("small")
    arch = dataclasses.replace(model_config.transformer, d_model=32, num_encoder_layers=1,
                               num_decoder_layers=1, num_heads=2, dim_feedforward=32)
    model_config = dataclasses.replace(model_config, transformer=arch)
    config = from_dict(TrainConfig, {"name": "tiny", "model": to_dict(model_config), "max_steps": 1,
                                     "data": {"train": val, "val": val, "resample": resample},
                                     "lexicon": "en"})
    torch.manual_seed(seed)
    model = build_model(model_config, [layout], TOKENIZER)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": model.state_dict(),
                "step": 7, "config": to_dict(config), "tokenizer": TOKENIZER.to_dict(),
                "layouts": layouts_to_grids([layout])}, path)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A working directory with data, a lexicon and a run whose best checkpoint decodes ``val.jsonl``."""
    monkeypatch.chdir(tmp_path)
    words = WORDS * 2
    write_curves(tmp_path / "val.jsonl", words)
    (tmp_path / "lex.txt").write_text("".join(f"{w}\t{10 + i}\n" for i, w in enumerate(WORDS)), "utf-8")
    write_checkpoint(tmp_path / "runs" / "tiny" / "checkpoints" / "best.pt", "val.jsonl")
    return SimpleProject(tmp_path, words)


@dataclasses.dataclass
class SimpleProject:
    root: Path
    words: list[str]


def test_defaults_write_preds_for_the_runs_validation_split(project, capsys):
    assert main(["--generator", "beam", "--num-workers", "0", "--lexicon", "lex.txt", "--quiet"]) == 0
    preds = read_predictions(project.root / "preds.pkl")
    assert len(preds) == len(project.words)
    assert preds.targets == project.words
    assert preds.layouts == ["qwerty_en"] * len(project.words)
    for row in preds.candidates:
        assert 1 <= len(row) <= 8 and {w for _, w in row} <= set(WORDS)
        assert [s for s, _ in row] == sorted((s for s, _ in row), reverse=True)
    md = preds.metadata
    assert md["generator"] == "beam" and md["generator_options"]["beam_size"] == 8
    assert md["split"] == "val" and md["data_file"] == "val.jsonl"
    assert md["weights"].endswith("best.pt") and len(md["weights_sha256"]) == 64
    assert md["model"]["config"]["transformer"]["d_model"] == 32 and md["layout_names"] == ["qwerty_en"]
    # An existing output is never overwritten unless asked.
    before = (project.root / "preds.pkl").read_bytes()
    assert main(["--lexicon", "lex.txt", "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (project.root / "preds.pkl").read_bytes() == before
    assert main(["--lexicon", "lex.txt", "--quiet", "--overwrite", "--generator", "greedy"]) == 0
    assert read_predictions(project.root / "preds.pkl").metadata["generator"] == "greedy"


def test_options_csv_and_test_data_without_targets(project):
    write_curves(project.root / "test.jsonl", [None] * 5, seed=3)
    args = ["--data", "test.jsonl", "--checkpoint", "runs/tiny", "--lexicon", "lex.txt", "--beam-size", "3",
            "--num-candidates", "2", "--prior-weight", "0.5", "--length-penalty", "1.0", "--batch-size", "2",
            "--out", "test.pkl", "--csv", "sub.csv", "--quiet"]
    assert main(args) == 0
    preds = read_predictions(project.root / "test.pkl")
    assert preds.targets == [None] * 5 and preds.metadata["split"] == "test"
    assert preds.metadata["generator_options"] == {"beam_size": 3, "num_candidates": 2, "prior_weight": 0.5,
                                                   "length_penalty": 1.0, "max_length": None}
    assert all(len(row) == 2 for row in preds.candidates)
    rows = list(csv.reader(open(project.root / "sub.csv", encoding="utf-8")))
    assert len(rows) == 5 and all(len(r) == 4 for r in rows)
    for row, cands in zip(rows, preds.candidates, strict=True):
        assert row == [cands[0][1], cands[1][1], cands[1][1], cands[1][1]]


def test_workers_give_the_same_output(project):
    common = ["--lexicon", "lex.txt", "--batch-size", "3", "--quiet"]
    assert main(common + ["--out", "a.pkl", "--num-workers", "0"]) == 0
    assert main(common + ["--out", "b.pkl", "--num-workers", "2"]) == 0
    a, b = read_predictions(project.root / "a.pkl"), read_predictions(project.root / "b.pkl")
    assert a.candidates == b.candidates and a.targets == b.targets


def test_curves_are_resampled_as_the_model_was_trained(project):
    resampled = project.root / "resampled.pt"
    write_checkpoint(resampled, "val.jsonl", resample={"mode": "path", "step": 0.3, "keep_time": False})
    common = ["--lexicon", "lex.txt", "--batch-size", "3", "--quiet"]
    assert main(common + ["--out", "plain.pkl"]) == 0
    assert main(common + ["--out", "a.pkl", "--checkpoint", str(resampled)]) == 0
    assert main(common + ["--out", "b.pkl", "--checkpoint", str(resampled), "--num-workers", "2"]) == 0
    plain, a, b = (read_predictions(project.root / name) for name in ("plain.pkl", "a.pkl", "b.pkl"))
    # The same weights see other points; worker processes resample too.
    assert a.candidates != plain.candidates
    assert a.candidates == b.candidates


def test_dataset_curves_give_each_curve_as_drawn(project):
    from swipe.data import build_dataset
    from swipe.predict import DatasetCurves, FirstCurves

    build_dataset([project.root / "val.jsonl"], project.root / "built")
    rows = [json.loads(line) for line in (project.root / "val.jsonl").read_text().splitlines()]
    resample = ResampleConfig(mode="path", step=0.3, keep_time=False)  # for the model, not here
    curves = FirstCurves(DatasetCurves(project.root / "built", [LAYOUT], 4, resample), 3)
    assert len(curves) == 3
    for i in (0, 2):
        got = curves.points(i)
        assert got.layout is LAYOUT
        assert got.x.tolist() == rows[i]["curve"]["x"] and got.y.tolist() == rows[i]["curve"]["y"]


def test_merge_views_keeps_each_words_best_score():
    rows = [[(-1.0, "a"), (-2.0, "b")], [(-0.5, "b"), (-3.0, "c"), (-4.0, "d")], []]
    assert merge_views(rows) == [(-0.5, "b"), (-1.0, "a"), (-3.0, "c")]  # as many as the longest
    assert merge_views([[(-1.0, "x")], [(-1.0, "y")]]) == [(-1.0, "x")]  # ties: first listed
    assert merge_views([[], []]) == []


def test_x_scaled_curves_are_the_curves_on_a_wider_keyboard(project):
    from swipe.data import SwipeDataset, build_dataset, with_x_scaled
    from swipe.predict import DatasetCurves

    build_dataset([project.root / "val.jsonl"], project.root / "built")
    item = SwipeDataset(project.root / "built")[0]
    assert with_x_scaled(item, 1.0, LAYOUT) is item
    wide = with_x_scaled(item, 1.25, LAYOUT)
    px = 1.0 / item.coord_scale
    assert np.allclose(wide.x, item.x * 1.25) and np.array_equal(wide.y, item.y)
    assert np.array_equal(wide.nearest_keys, LAYOUT.nearest_keys(item.x * 1.25 * px, item.y * px))
    assert not np.array_equal(wide.nearest_keys, item.nearest_keys)

    curves = DatasetCurves(project.root / "built", [LAYOUT])
    plain, _ = curves.batch([0, 3])
    views, pad = curves.batch([0, 3], (1.0, 1.25))
    assert len(views.coords) == 4 and pad.shape[0] == 4
    assert torch.equal(views.coords[:2], plain.coords)
    assert torch.allclose(views.coords[2:, :, 0], plain.coords[:, :, 0] * 1.25)
    assert torch.equal(views.coords[2:, :, 1], plain.coords[:, :, 1])
    assert np.allclose(curves.points(3, 1.25).x, curves.points(3).x * 1.25)


def test_keyboard_width_views_keep_each_words_best_score_in_every_process(project):
    common = ["--lexicon", "lex.txt", "--batch-size", "1", "--beam-size", "4", "--quiet"]
    assert main(common + ["--out", "one.pkl"]) == 0
    assert main(common + ["--out", "wide.pkl", "--x-scales", "1.2"]) == 0
    common[common.index("--batch-size") + 1] = "2"  # two views of one curve per batch
    assert main(common + ["--out", "both.pkl", "--x-scales", "1,1.2"]) == 0
    assert main(common + ["--out", "workers.pkl", "--x-scales", "1,1.2", "--num-workers", "2"]) == 0
    one, wide, both, workers = (read_predictions(project.root / f"{name}.pkl")
                                for name in ("one", "wide", "both", "workers"))
    assert wide.candidates != one.candidates  # the model sees other points
    for a, b, merged in zip(one.candidates, wide.candidates, both.candidates, strict=True):
        expected = merge_views([a, b])
        assert [w for _, w in merged] == [w for _, w in expected]
        assert [s for s, _ in merged] == pytest.approx([s for s, _ in expected], abs=1e-5)
    assert workers.candidates == both.candidates
    assert both.metadata["x_scales"] == [1.0, 1.2] and one.metadata["x_scales"] == [1.0]
    assert "x-scales 1,1.2" in evaluate.describe(both) and "x-scales" not in evaluate.describe(one)


def test_views_below_a_score_go_only_to_the_swipes_that_fit_worse(project):
    common = ["--lexicon", "lex.txt", "--batch-size", "2", "--beam-size", "4", "--quiet"]
    assert main(common + ["--out", "plain.pkl"]) == 0
    assert main(common + ["--out", "all.pkl", "--x-scales", "1,1.2", "--batch-size", "4"]) == 0
    assert main(common + ["--out", "none.pkl", "--x-scales", "1,1.2", "--views-below", "-1000000000"]) == 0
    assert main(common + ["--out", "every.pkl", "--x-scales", "1,1.2", "--views-below", "1000000000"]) == 0
    plain, every_view, none, every = (read_predictions(project.root / f"{name}.pkl")
                                      for name in ("plain", "all", "none", "every"))
    assert none.candidates == plain.candidates  # no swipe scores below -1e9
    for got, expected in zip(every.candidates, every_view.candidates, strict=True):
        assert [w for _, w in got] == [w for _, w in expected]
        assert [s for s, _ in got] == pytest.approx([s for s, _ in expected], abs=1e-5)
    # A threshold between the swipes' best scores as drawn: views for those below it only.
    tops = sorted(row[0][0] for row in plain.candidates)
    middle = round((tops[len(tops) // 2 - 1] + tops[len(tops) // 2]) / 2, 6)
    assert main(common + ["--out", "some.pkl", "--x-scales", "1,1.2", "--views-below", f"{middle:.6f}"]) == 0
    some = read_predictions(project.root / "some.pkl")
    for a, b, got in zip(plain.candidates, every.candidates, some.candidates, strict=True):
        expected = b if a[0][0] < middle else a
        assert [w for _, w in got] == [w for _, w in expected]
        assert [s for s, _ in got] == pytest.approx([s for s, _ in expected], abs=1e-5)
    assert some.metadata["views_below"] == middle and plain.metadata["views_below"] is None
    assert f"below {middle:g}" in evaluate.describe(some)
    # The views after the first search with a beam of their own: recorded with the predictions.
    assert main(common + ["--out", "narrow.pkl", "--x-scales", "1,1.2", "--views-below", "1000000000",
                          "--views-beam-size", "2"]) == 0
    narrow = read_predictions(project.root / "narrow.pkl")
    assert narrow.metadata["views_beam_size"] == 2 and every.metadata["views_beam_size"] is None
    assert narrow.candidates != every.candidates and "views beam 2" in evaluate.describe(narrow)


def test_swipes_past_the_keyboard_get_the_wide_views_too(project):
    from swipe.predict import CurvePoints, reaches_past_keyboard

    right = LAYOUT.width + LAYOUT.key_width
    assert reaches_past_keyboard(CurvePoints(LAYOUT, np.array([10.0, right + 1]), np.zeros(2)))
    assert not reaches_past_keyboard(CurvePoints(LAYOUT, np.array([10.0, right - 1]), np.zeros(2)))
    # Rows 2 and 5 drawn on a keyboard twice as wide: they reach past the layout's right edge.
    write_curves(project.root / "mixed.jsonl", project.words)
    rows = [json.loads(line) for line in (project.root / "mixed.jsonl").read_text().splitlines()]
    wide_rows = [i for i in (2, 5) if max(rows[i]["curve"]["x"]) > LAYOUT.width / 2 + LAYOUT.key_width]
    assert wide_rows
    for i in wide_rows:
        rows[i]["curve"]["x"] = [2 * x for x in rows[i]["curve"]["x"]]
    (project.root / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    common = ["--data", "mixed.jsonl", "--lexicon", "lex.txt", "--batch-size", "1", "--beam-size", "4",
              "--quiet"]
    assert main(common + ["--out", "plain.pkl"]) == 0
    assert main(common + ["--out", "half.pkl", "--x-scales", "0.5"]) == 0
    assert main(common + ["--out", "wide.pkl", "--wide-x-scales", "0.5"]) == 0
    plain, half, wide = (read_predictions(project.root / f"{name}.pkl") for name in ("plain", "half", "wide"))
    for i, (a, b, got) in enumerate(zip(plain.candidates, half.candidates, wide.candidates, strict=True)):
        assert got == (merge_views([a, b]) if i in wide_rows else a)
    assert wide.metadata["wide_x_scales"] == [0.5] and plain.metadata["wide_x_scales"] == []
    assert "wide x-scales 0.5" in evaluate.describe(wide)


def test_template_rescoring_reranks_the_candidates_in_every_process(project):
    common = ["--lexicon", "lex.txt", "--batch-size", "3", "--beam-size", "4", "--quiet"]
    assert main(common + ["--out", "plain.pkl"]) == 0
    assert main(common + ["--out", "a.pkl", "--template-weight", "5"]) == 0
    assert main(common + ["--out", "b.pkl", "--template-weight", "5", "--num-workers", "2"]) == 0
    plain, a, b = (read_predictions(project.root / name) for name in ("plain.pkl", "a.pkl", "b.pkl"))
    assert a.candidates == b.candidates
    # The same words per curve, re-ranked; the curves follow their words' key centres, which the
    # untrained model does not know but the templates do.
    for before, after in zip(plain.candidates, a.candidates, strict=True):
        assert sorted(w for _, w in before) == sorted(w for _, w in after)
        assert [s for s, _ in after] == sorted((s for s, _ in after), reverse=True)
    def top1(preds):
        return sum(row[0][1] == t for row, t in zip(preds.candidates, preds.targets, strict=True))
    assert top1(a) > top1(plain)
    assert a.metadata["template_rescoring"]["weight"] == 5.0
    assert plain.metadata["template_rescoring"] is None
    assert "templates weight 5 prior 1" in evaluate.describe(a)
    assert "templates" not in evaluate.describe(plain)


def test_template_candidates_add_the_matchers_words_as_the_search_scores_them(project):
    common = ["--lexicon", "lex.txt", "--batch-size", "3", "--beam-size", "3", "--template-weight", "1",
              "--quiet"]
    assert main(common + ["--out", "plain.pkl"]) == 0
    assert main(common + ["--out", "every.pkl", "--beam-size", str(len(WORDS))]) == 0  # finds every word
    assert main(common + ["--out", "proposed.pkl", "--template-candidates", "5"]) == 0
    assert main(common + ["--out", "workers.pkl", "--template-candidates", "5", "--num-workers", "2"]) == 0
    assert main(common + ["--out", "none.pkl", "--template-candidates", "5", "--views-below=-1e9"]) == 0
    plain, every, proposed, workers, none = (read_predictions(project.root / f"{name}.pkl")
                                             for name in ("plain", "every", "proposed", "workers", "none"))
    # No swipe scores below -1e9: only those drawn through key centres get the proposals then.
    for alone, with_proposals, got in zip(plain.candidates, proposed.candidates, none.candidates,
                                          strict=True):
        expected = with_proposals if [w for _, w in got] == [w for _, w in with_proposals] else alone
        assert [w for _, w in got] == [w for _, w in expected]
        assert [s for s, _ in got] == pytest.approx([s for s, _ in expected], abs=1e-5)
    assert workers.candidates == proposed.candidates
    gained = 0
    for a, full, got in zip(plain.candidates, every.candidates, proposed.candidates, strict=True):
        # Each word keeps the score the search (rescored by templates) gives it, found or proposed.
        exact = {w: score for score, w in full}
        assert len(got) == len(a) == 3 and [s for s, _ in got] == sorted((s for s, _ in got), reverse=True)
        for score, word in got:
            assert score == pytest.approx(exact[word], abs=1e-4)
        gained += bool({w for _, w in got} - {w for _, w in a})
    assert gained  # the matcher found words the narrow search did not
    # Greedy search keeps its one candidate: the best of its word and the proposals.
    greedy = ["--lexicon", "lex.txt", "--generator", "greedy", "--template-weight", "1", "--quiet"]
    assert main(greedy + ["--out", "greedy.pkl"]) == 0
    assert main(greedy + ["--out", "greedy_proposed.pkl", "--template-candidates", "5"]) == 0
    greedy_alone, greedy_proposed = (read_predictions(project.root / f"{name}.pkl").candidates
                                     for name in ("greedy", "greedy_proposed"))
    for full, (before,), (after,) in zip(every.candidates, greedy_alone, greedy_proposed, strict=True):
        assert after[0] == pytest.approx({w: score for score, w in full}[after[1]], abs=1e-4)
        assert after[0] >= before[0] - 1e-9
    assert proposed.metadata["template_candidates"] == 5 and plain.metadata["template_candidates"] == 0
    assert "template candidates 5" in evaluate.describe(proposed)
    assert "template candidates" not in evaluate.describe(plain)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--template-weight", "-1"], "--template-weight must be a finite number >= 0"),
        (["--template-weight", "1", "--template-prior-weight", "inf"], "--template-prior-weight must be"),
        (["--generator", "greedy", "--beam-size", "4"], "--beam-size is not one of its options"),
        (["--beam-size", "0"], "--beam-size must be >= 1"),
        (["--beam-size", "4", "--num-candidates", "5"], "--num-candidates must be between 1 and --beam-size"),
        (["--length-penalty", "nan"], "--length-penalty: must be a finite number"),
        (["--no-lexicon", "--prior-weight", "1"], "needs a lexicon"),
        (["--data", "missing.jsonl"], "missing.jsonl: no such data file"),
        (["--checkpoint", "nowhere.pt"], "nowhere.pt: no such checkpoint"),
        (["--num-workers", "1", "--device", "cuda"], "--num-workers needs --device cpu"),
        (["--x-scales", "1,0"], "--x-scales: each factor must be a finite number > 0, got 0.0"),
        (["--x-scales", "0.9,1,0.9"], "--x-scales: a factor repeats in [0.9, 1.0, 0.9]"),
        (["--wide-x-scales", "0.5,-1"], "--wide-x-scales: each factor must be a finite number > 0"),
        (["--x-scales", "0.9,1.1", "--views-below", "-5"], "--views-below decodes each swipe as drawn first"),
        (["--template-candidates", "-1"], "--template-candidates: expected a whole number >= 0, got -1"),
        (["--views-beam-size", "0"], "--views-beam-size must be a whole number >= 1, got 0"),
        (["--no-lexicon", "--template-candidates", "3"], "--template-candidates proposes lexicon words"),
    ],
)
def test_bad_options_fail_clearly(project, capsys, args, message):
    assert main(args + ["--quiet", "--lexicon", "lex.txt"] if "--no-lexicon" not in args else args) == 2
    assert message in capsys.readouterr().err
    assert not (project.root / "preds.pkl").exists()


def test_bad_data_row_names_file_and_line(project, capsys):
    lines = (project.root / "val.jsonl").read_text().splitlines()
    lines[2] = '{"word": "the", "curve": {"x": [1, 2], "y": [1], "t": [0, 1], "grid_name": "qwerty_en"}}'
    (project.root / "bad.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--data", "bad.jsonl", "--lexicon", "lex.txt", "--quiet"]) == 2
    assert "bad.jsonl:3" in capsys.readouterr().err
    assert main(["--data", "bad.jsonl", "--lexicon", "lex.txt", "--quiet", "--skip-bad-rows"]) == 0
    assert "skipped 1 bad rows" in capsys.readouterr().err
    assert len(read_predictions(project.root / "preds.pkl")) == len(lines) - 1


def test_decode_workers_equal_in_process_and_keep_input_order():
    trie = LexiconTrie.from_words(["ab", "abc", "bad", "cab", "dab", "a", "b", "ca"], None,
                                  CharTokenizer("abcdefghijklmnopqrstuvwxyz"))
    curves = StandinCurves(37, seed=4)
    job = DecodeJob(StandinLoader(2), curves, "beam", BeamOptions(beam_size=4), trie, "cpu")
    in_process = decode(job, batch_size=5, num_workers=0)
    with_workers = decode(job, batch_size=5, num_workers=2)
    assert with_workers == in_process and len(in_process) == 37
    # Row i is curve i: decoding curve i alone gives the same words.
    loader = StandinLoader(2)("cpu")
    from swipe.decoding import build_generator

    generator = build_generator("beam", BeamOptions(beam_size=4), loader.model, loader.tokenizer, trie)
    for i in (0, 17, 36):
        (alone,) = generator.generate(*job.curves.batch([i]))
        assert [w for _, w in alone] == [w for _, w in in_process[i]]
    # The job pickles small: the trie travels as arrays, the model as a recipe.
    assert len(pickle.dumps(job)) < 20_000


def test_make_batches_groups_by_length_within_a_points_budget():
    points = torch.tensor([3, 9, 1, 7, 5, 40]).numpy()
    assert make_batches(points, 2) == [[5, 1], [3, 4], [0, 2]]
    # At most 20 padded points a batch: the 40-point curve alone, then 2 x 9, then 3 x 5 ...
    assert make_batches(points, 3, max_points=20) == [[5], [1, 3], [4, 0, 2]]


def test_submission_csv_pads_rows(tmp_path):
    path = tmp_path / "sub.csv"
    write_submission_csv(path, [[(0.0, "a"), (-1.0, "b")], [], [(0.0, w) for w in "cdefg"]], overwrite=False)
    assert path.read_text() == "a,b,b,b\n,,,\nc,d,e,f\n"
    with pytest.raises(FileExistsError):
        write_submission_csv(path, [], overwrite=False)


@pytest.mark.slow
def test_spawned_workers_give_the_same_output():
    tokenizer = CharTokenizer("abcdefghijklmnopqrstuvwxyz")
    trie = LexiconTrie.from_words(["ab", "abc", "bad", "cab"], None, tokenizer)
    curves = StandinCurves(12, seed=2)
    job = DecodeJob(StandinLoader(1), curves, "beam", BeamOptions(beam_size=3), trie, "cpu")
    assert decode(job, 4, num_workers=2, start_method="spawn") == decode(job, 4, num_workers=0)


def test_raw_data_finds_the_models_own_layout(project):
    custom = Layout.from_rows("my_phone", "qwertyuiop,asdfghjkl,zxcvbnm", 720, 480)
    write_checkpoint(project.root / "custom.pt", "val.jsonl", layout=custom)
    write_curves(project.root / "mine.jsonl", ["hello", "world", None], layout=custom)
    assert main(["--checkpoint", "custom.pt", "--data", "mine.jsonl", "--lexicon", "lex.txt", "--quiet"]) == 0
    preds = read_predictions(project.root / "preds.pkl")
    assert preds.layouts == ["my_phone"] * 3 and preds.targets == ["hello", "world", None]


def test_without_a_run_the_shipped_model_for_the_datas_layout_decodes(tmp_path, monkeypatch, capsys):
    from swipe import model_files as shipped
    from swipe.export import export_checkpoint

    monkeypatch.chdir(tmp_path)
    write_curves(tmp_path / "val.jsonl", WORDS)
    (tmp_path / "lex.txt").write_text("".join(f"{w}\t{10 + i}\n" for i, w in enumerate(WORDS)), "utf-8")
    write_checkpoint(tmp_path / "source.pt", "val.jsonl")
    (tmp_path / "models" / "en_tiny").mkdir(parents=True)
    export_checkpoint(tmp_path / "source.pt", tmp_path / "models" / "en_tiny" / "model.pt")
    monkeypatch.setattr(shipped, "MODELS_DIR", tmp_path / "models")

    assert main(["--data", "val.jsonl", "--lexicon", "lex.txt", "--quiet"]) == 0
    said = capsys.readouterr().err
    assert "en_tiny/model.pt (shipped model en_tiny, for the data's layouts qwerty_en)" in said
    preds = read_predictions(tmp_path / "preds.pkl")
    assert len(preds.candidates) == len(WORDS) and preds.metadata["weights"].endswith("model.pt")
    # An exported model's folder names its model.pt.
    args = ["--checkpoint", "models/en_tiny", "--data", "val.jsonl", "--lexicon", "lex.txt", "--quiet"]
    assert main([*args, "--out", "folder.pkl"]) == 0
    assert read_predictions(tmp_path / "folder.pkl").candidates == preds.candidates

    # No data to pick a layout from, or data of a layout no shipped model decodes: a clear error.
    assert main(["--lexicon", "lex.txt", "--quiet", "--out", "b.pkl"]) == 2
    assert "pass --data" in capsys.readouterr().err
    write_curves(tmp_path / "ru.jsonl", [None], layout=bundled_layout("hws_fitted"))
    monkeypatch.setattr(shipped, "MODELS_DIR", tmp_path / "none")
    assert main(["--data", "ru.jsonl", "--lexicon", "lex.txt", "--quiet", "--out", "c.pkl"]) == 2
    assert "no shipped model decodes the layouts ['hws_fitted']" in capsys.readouterr().err


def exported_model_folder(project: SimpleProject, settings: dict | None) -> Path:
    """``models/tiny/model.pt`` exported from a tiny checkpoint, with ``decoding.json`` if given."""
    from swipe.export import export_checkpoint

    write_checkpoint(project.root / "source.pt", "val.jsonl")
    folder = project.root / "models" / "tiny"
    folder.mkdir(parents=True)
    export_checkpoint(project.root / "source.pt", folder / "model.pt")
    if settings is not None:
        (folder / "decoding.json").write_text(json.dumps(settings), "utf-8")
    return folder


def test_an_exported_models_decoding_settings_apply_where_no_flag_is_given(project, capsys):
    folder = exported_model_folder(project, {"generator": "beam", "beam_size": 3, "prior_weight": 0.5,
                                             "template_weight": 2.0, "x_scales": [0.9, 1],
                                             "wide_x_scales": [0.5], "views_below": -3,
                                             "template_candidates": 2, "chosen_on": "a test"})
    common = ["--checkpoint", str(folder), "--lexicon", "lex.txt", "--quiet", "--overwrite"]
    assert main(common) == 0
    said = capsys.readouterr().err.splitlines()
    assert said[0] == f"model: {folder / 'model.pt'} (given)" and said[1] == "lexicon: lex.txt (--lexicon)"
    assert said[2] == (f"decoding: {folder / 'decoding.json'}: generator beam, beam_size 3, "
                       "prior_weight 0.5, template_weight 2, template_prior_weight 1, x_scales 0.9,1, "
                       "views_below -3, wide_x_scales 0.5, template_candidates 2; "
                       "defaults: length_penalty 0.5")
    md = read_predictions(project.root / "preds.pkl").metadata
    assert md["generator_options"]["beam_size"] == 3 and md["generator_options"]["prior_weight"] == 0.5
    assert md["template_rescoring"]["weight"] == 2.0 and md["template_rescoring"]["prior_weight"] == 1.0
    assert md["x_scales"] == [0.9, 1.0] and md["wide_x_scales"] == [0.5] and md["views_below"] == -3
    assert md["template_candidates"] == 2
    assert main(common + ["--x-scales", "1", "--wide-x-scales", "none", "--views-below", "inf",
                          "--template-candidates", "0"]) == 0
    md = read_predictions(project.root / "preds.pkl").metadata
    assert md["x_scales"] == [1.0] and md["wide_x_scales"] == [] and md["views_below"] is None
    assert md["template_candidates"] == 0
    # Flags win; another generator takes none of the beam's options, but the template rescoring.
    capsys.readouterr()
    assert main(common + ["--beam-size", "2", "--template-weight", "0"]) == 0
    assert "decoding: flags: beam_size 2, template_weight 0; " in capsys.readouterr().err
    md = read_predictions(project.root / "preds.pkl").metadata
    assert md["generator_options"]["beam_size"] == 2 and md["generator_options"]["prior_weight"] == 0.5
    assert md["template_rescoring"] is None
    assert main(common + ["--generator", "greedy"]) == 0
    md = read_predictions(project.root / "preds.pkl").metadata
    assert md["generator"] == "greedy" and md["generator_options"]["prior_weight"] == 0.0
    assert md["template_rescoring"]["weight"] == 2.0
    # Chosen with a lexicon: without one they do not apply.
    assert main(["--checkpoint", str(folder), "--no-lexicon", "--quiet", "--overwrite"]) == 0
    md = read_predictions(project.root / "preds.pkl").metadata
    assert md["generator_options"]["beam_size"] == 8 and md["template_rescoring"] is None
    # A run's checkpoint has no such settings: the plain defaults.
    assert main(["--lexicon", "lex.txt", "--quiet", "--overwrite"]) == 0
    md = read_predictions(project.root / "preds.pkl").metadata
    assert md["generator_options"]["beam_size"] == 8 and md["template_rescoring"] is None


@pytest.mark.parametrize("settings, message", [
    ({"generator": "beam", "beam_sise": 3}, "decoding.json: beam_sise: unknown key (did you mean"),
    ({"beam_size": 3}, "decoding.json: generator: missing required key"),
    ({"generator": "sampling"}, "decoding.json: unknown generator 'sampling'"),
])
def test_bad_decoding_settings_name_the_file_and_key(project, capsys, settings, message):
    folder = exported_model_folder(project, settings)
    assert main(["--checkpoint", str(folder), "--lexicon", "lex.txt", "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (project.root / "preds.pkl").exists()
    with pytest.raises(ConfigError, match=re.escape(message)):  # the same from Python
        load_decoder(folder, lexicon="lex.txt")


def test_with_data_the_shipped_model_for_its_layout_wins_over_the_latest_run(project, monkeypatch, capsys):
    from swipe import model_files as shipped
    from swipe.export import export_checkpoint

    write_checkpoint(project.root / "source.pt", "val.jsonl", seed=5)
    (project.root / "models" / "en_tiny").mkdir(parents=True)
    export_checkpoint(project.root / "source.pt", project.root / "models" / "en_tiny" / "model.pt")
    monkeypatch.setattr(shipped, "MODELS_DIR", project.root / "models")
    common = ["--lexicon", "lex.txt", "--quiet"]
    assert main([*common, "--data", "val.jsonl", "--out", "data.pkl"]) == 0
    assert "(shipped model en_tiny, for the data's layouts qwerty_en)" in capsys.readouterr().err
    assert read_predictions(project.root / "data.pkl").metadata["weights"].endswith("en_tiny/model.pt")
    # Without --data: the latest run, on its validation split.
    assert main([*common, "--out", "run.pkl"]) == 0
    assert "best.pt (the latest run under runs/)" in capsys.readouterr().err
    # A shipped model by name; a name that is neither a file nor a shipped model lists them.
    assert main([*common, "--checkpoint", "en_tiny", "--data", "val.jsonl", "--out", "named.pkl"]) == 0
    assert "(shipped model en_tiny, given)" in capsys.readouterr().err
    assert read_predictions(project.root / "named.pkl").candidates == read_predictions(
        project.root / "data.pkl").candidates
    assert main([*common, "--checkpoint", "en_tinny", "--out", "none.pkl"]) == 2
    assert "en_tinny: no such checkpoint, model folder or shipped model (shipped models: en_tiny)" in (
        capsys.readouterr().err)


def test_skipped_rows_keep_their_place_in_the_submission_csv(project, capsys):
    write_curves(project.root / "test.jsonl", [None] * 6, seed=3)
    lines = (project.root / "test.jsonl").read_text().splitlines()
    lines[1] = '{"curve": {"x": [1, 2], "y": [1], "t": [0, 1], "grid_name": "qwerty_en"}}'
    lines[4] = "{broken"
    lines.insert(3, "")  # a blank line is no row
    (project.root / "test.jsonl").write_text("\n".join(lines) + "\n")
    args = ["--data", "test.jsonl", "--lexicon", "lex.txt", "--checkpoint", "runs/tiny", "--csv", "sub.csv"]
    assert main(args) == 2  # strict: the first bad row, by file and line
    assert "test.jsonl:2" in capsys.readouterr().err
    assert main([*args, "--skip-bad-rows"]) == 0
    assert "skipped 2 bad rows" in capsys.readouterr().err
    preds = read_predictions(project.root / "preds.pkl")
    rows = (project.root / "sub.csv").read_text().splitlines()
    assert len(preds) == 4 and len(rows) == 6
    assert rows[1] == rows[4] == ",,,"  # the rows on lines 2 and 6
    decoded = [row.split(",")[0] for i, row in enumerate(rows) if i not in (1, 4)]
    assert decoded == [c[0][1] for c in preds.candidates]


def test_no_progress_bar_when_stderr_is_not_a_terminal(project, capsys):
    assert main(["--lexicon", "lex.txt"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "curve/s" not in err and "it/s" not in err
    assert err.splitlines()[-1].startswith("wrote preds.pkl: 24 curves")
