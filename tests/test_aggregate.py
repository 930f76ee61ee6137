import json
import math
import random

import numpy as np
import pytest

from swipe.aggregate import (
    Ensemble,
    EnsembleError,
    _ScoreTable,
    apply,
    fit,
    load_ensemble,
    main,
    merge,
    normalise,
    save_ensemble,
)
from swipe.config import ConfigError
from swipe.metrics import score_predictions
from swipe.predictions import Predictions, read_predictions, write_predictions


def metadata(name: str, **changes) -> dict:
    md = {
        "model": {"name": name},
        "weights": f"{name}.pt",
        "weights_sha256": name * 8,
        "generator": "beam",
        "generator_options": {"beam_size": 4},
        "layout_names": ["qwerty_en"],
        "data_file": "val.jsonl",
        "split": "val",
    }
    return {**md, **changes}


def preds(name: str, rows: list, targets: list[str | None], **changes) -> Predictions:
    return Predictions(rows, targets, ["qwerty_en"] * len(rows), metadata(name, **changes))


def probs(pairs: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """Candidates scored with log-probabilities."""
    return [(math.log(p), w) for p, w in pairs]


def complementary(split: str = "val") -> tuple[Predictions, Predictions]:
    """Each member is confidently right on half the curves and hesitantly wrong on the other half."""
    a_rows, b_rows, targets = [], [], []
    for i in range(10):
        t, u = f"t{i}", f"u{i}"
        sure, unsure = probs([(0.9, t), (0.1, u)]), probs([(0.55, u), (0.45, t)])
        a_rows.append(sure if i % 2 else unsure)
        b_rows.append(unsure if i % 2 else sure)
        targets.append(t)
    return preds("a", a_rows, targets, split=split), preds("b", b_rows, targets, split=split)


def test_normalise_softmax_and_reciprocal_rank():
    cands = [(math.log(0.5), "x"), (math.log(0.25), "y"), (-9.0, "x"), (math.log(0.25), "z")]
    norm = normalise(cands, "softmax")
    assert norm.words == ["x", "y", "z"]  # the duplicate "x" dropped, its first score kept
    np.testing.assert_allclose(norm.scores, [0.5, 0.25, 0.25])
    norm = normalise(cands, "reciprocal_rank")
    np.testing.assert_allclose(norm.scores, [1, 1 / 2, 1 / 3])
    assert normalise([], "softmax").words == []
    np.testing.assert_allclose(normalise([(-math.inf, "a"), (-math.inf, "b")], "softmax").scores, [0.5, 0.5])


def test_merge_hand_worked_softmax():
    a = preds("a", [probs([(0.6, "x"), (0.4, "y")])], ["y"])
    b = preds("b", [probs([(0.7, "y"), (0.3, "z")])], ["y"])
    merged = merge([a, b], [1.0, 1.0], "softmax")
    # x: 0.6, y: 0.4 + 0.7 = 1.1, z: 0.3
    assert [w for _, w in merged.candidates[0]] == ["y", "x", "z"]
    np.testing.assert_allclose([s for s, _ in merged.candidates[0]], [1.1, 0.6, 0.3])
    merged = merge([a, b], [3.0, 1.0], "softmax")  # x: 1.8, y: 1.2 + 0.7, z: 0.3
    assert [w for _, w in merged.candidates[0]] == ["y", "x", "z"]
    np.testing.assert_allclose([s for s, _ in merged.candidates[0]], [1.9, 1.8, 0.3])


def test_merge_hand_worked_reciprocal_rank_and_ties():
    a = preds("a", [[(0.0, "x"), (-1.0, "y")], [(0.0, "p")]], ["y", None])
    b = preds("b", [[(-50.0, "y"), (-60.0, "z")], [(0.0, "q")]], ["y", None])
    merged = merge([a, b], [1.0, 1.0], "reciprocal_rank")
    # x: 1, y: 1/2 + 1, z: 1/2 -- scores are ignored
    assert merged.candidates[0] == [(1.5, "y"), (1.0, "x"), (0.5, "z")]
    # a tie keeps listing order: member order first
    assert [w for _, w in merged.candidates[1]] == ["p", "q"]


def test_zero_weight_member_contributes_no_words():
    a = preds("a", [[(0.0, "x")]], ["x"])
    b = preds("b", [[(0.0, "y"), (-1.0, "z")]], ["x"])
    assert merge([a, b], [1.0, 0.0], "softmax").candidates == [[(1.0, "x")]]


def test_merged_metadata_and_targets():
    a = preds("a", [[(0.0, "x")], [(0.0, "y")]], ["x", None])
    b = preds("b", [[(0.0, "x")], [(0.0, "y")]], [None, None], generator="greedy", generator_options={})
    merged = merge([a, b], [0.25, 0.75], "softmax")
    assert merged.targets == ["x", None]  # known wherever one member knows it
    md = merged.metadata
    assert md["generator"] == "ensemble"
    assert md["generator_options"]["weights"] == [0.25, 0.75]
    assert [m["generator"] for m in md["generator_options"]["members"]] == ["beam", "greedy"]
    assert md["model"] == {"ensemble": [{"name": "a"}, {"name": "b"}]}
    assert (md["data_file"], md["split"]) == ("val.jsonl", "val")
    assert merge([a, b], [0.5, 0.5], "softmax").metadata != md  # other weights, another predictor


@pytest.mark.parametrize(
    "other, message",
    [
        (preds("b", [[(0.0, "x")]], ["x"]), "different numbers of curves \\(1 and 2\\)"),
        (preds("b", [[(0.0, "x")], [(0.0, "y")]], ["x", "z"]), "row 1: different targets \\('z' and 'y'\\)"),
        (preds("b", [[(0.0, "x")], [(0.0, "y")]], ["x", "y"], split="test"), "different split"),
        (preds("b", [[(0.0, "x")], [(0.0, "y")]], ["x", "y"], data_file="o.jsonl"), "different data_file"),
        (
            Predictions([[(0.0, "x")], [(0.0, "y")]], ["x", "y"], ["qwerty_en", "default"], metadata("b")),
            "row 1: different layouts",
        ),
    ],
)
def test_refuses_to_merge_different_curves(other, message):
    a = preds("a", [[(0.0, "x")], [(0.0, "y")]], ["x", "y"])
    with pytest.raises(EnsembleError, match=f"b.pkl and a.pkl: {message}"):
        merge([a, other], [1.0, 1.0], "softmax", names=["a.pkl", "b.pkl"])
    with pytest.raises(EnsembleError, match=message):
        fit([a, other], names=["a.pkl", "b.pkl"])


def test_bad_weights_refused():
    a, b = complementary()
    for weights in ([0.0, 0.0], [1.0, -1.0], [1.0], [1.0, math.nan]):
        with pytest.raises(EnsembleError, match="weights"):
            merge([a, b], weights, "softmax")


def test_fit_beats_each_member_on_complementary_predictors():
    a, b = complementary()
    assert score_predictions(a).overall.swipe_mrr == pytest.approx(0.55)
    ensemble = fit([a, b], method="softmax")
    assert ensemble.member_swipe_mrr == [pytest.approx(0.55), pytest.approx(0.55)]
    assert ensemble.validation_swipe_mrr == pytest.approx(1.0)
    assert sum(ensemble.weights) == pytest.approx(1.0)
    merged = merge([a, b], ensemble.weights, ensemble.method)
    assert score_predictions(merged).overall.swipe_mrr == pytest.approx(1.0)


def test_fit_never_worse_than_best_member():
    a, _ = complementary()
    useless = preds("c", [[(0.0, "nothing")]] * len(a), a.targets)
    ensemble = fit([useless, a])
    assert ensemble.validation_swipe_mrr == pytest.approx(score_predictions(a).overall.swipe_mrr)


def test_fit_needs_targets_and_two_members():
    a, b = complementary()
    with pytest.raises(EnsembleError, match="two or more"):
        fit([a])
    no_targets = [preds(n, p.candidates, [None] * len(p)) for n, p in (("a", a), ("b", b))]
    with pytest.raises(EnsembleError, match="no targets"):
        fit(no_targets)


@pytest.mark.parametrize("method", ["softmax", "reciprocal_rank"])
def test_fast_fit_scoring_matches_merge(method):
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(12)]
    targets = [rng.choice(vocab) for _ in range(60)] + [None] * 5
    members = []
    for name in "abc":
        rows = []
        for _ in targets:
            words = rng.sample(vocab, rng.randrange(0, 7))
            rows.append([(-rng.random() * i * 3, w) for i, w in enumerate(words + words[:1])])
        members.append(preds(name, rows, targets))
    table = _ScoreTable(members, method)
    for weights in ([1, 1, 1], [1, 0, 0], [0.2, 0.5, 0.3], [0, 3, 1], [1, 1, 0]):
        merged = merge(members, weights, method)
        expected = score_predictions(merged).overall.swipe_mrr
        assert table.swipe_mrr(np.array(weights, dtype=float)) == pytest.approx(expected, abs=1e-12)


def test_apply_checks_members(tmp_path):
    a, b = complementary()
    ensemble = fit([a, b])
    test_a, test_b = complementary(split="test")
    merged = apply(ensemble, [test_a, test_b])
    assert score_predictions(merged).overall.swipe_mrr == pytest.approx(1.0)
    with pytest.raises(EnsembleError, match="b.pkl: not the predictor the ensemble's member 1"):
        apply(ensemble, [test_b, test_a], names=["b.pkl", "a.pkl"])
    with pytest.raises(EnsembleError, match="2 members, got 1"):
        apply(ensemble, [test_a])
    other_options = preds("b", test_b.candidates, test_b.targets, split="test", generator_options={})
    with pytest.raises(EnsembleError, match="not the predictor"):
        apply(ensemble, [test_a, other_options])


def test_save_and_load(tmp_path):
    ensemble = Ensemble("softmax", [0.25, 0.75], fit(list(complementary())).members)
    path = tmp_path / "ensemble.json"
    save_ensemble(path, ensemble)
    assert load_ensemble(path) == ensemble
    with pytest.raises(FileExistsError):
        save_ensemble(path, ensemble)
    data = json.loads(path.read_text())
    data["wieghts"] = data.pop("weights")
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="wieghts: unknown key \\(did you mean 'weights'\\?\\)"):
        load_ensemble(path)
    data["weights"] = [0.0, 0.0]
    del data["wieghts"]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="ensemble.json.*not all zero"):
        load_ensemble(path)


def test_command_line_fit_then_apply(tmp_path, capsys):
    val, test = complementary(), complementary(split="test")
    for name, p in zip(["val_a", "val_b", "test_a", "test_b"], [*val, *test], strict=True):
        write_predictions(tmp_path / f"{name}.pkl", p)
    weights, out = tmp_path / "ensemble.json", tmp_path / "test_ensemble.pkl"
    assert main(["fit", str(tmp_path / "val_a.pkl"), str(tmp_path / "val_b.pkl"), "--out", str(weights)]) == 0
    printed = capsys.readouterr().out
    assert "ensemble  swipe_mrr 1.0000" in printed and "member    swipe_mrr 0.5500" in printed
    members = [str(tmp_path / "test_a.pkl"), str(tmp_path / "test_b.pkl")]
    args = ["apply", str(weights), *members, "--out", str(out)]
    assert main(args) == 0
    assert score_predictions(read_predictions(out)).overall.swipe_mrr == pytest.approx(1.0)

    # nothing is overwritten without --overwrite; errors name the file
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    swapped = ["apply", str(weights), str(tmp_path / "test_b.pkl"), str(tmp_path / "test_a.pkl")]
    assert main([*swapped, "--out", str(tmp_path / "x.pkl")]) == 1
    assert "test_b.pkl: not the predictor" in capsys.readouterr().err
    mixed = ["fit", str(tmp_path / "val_a.pkl"), str(tmp_path / "test_b.pkl")]
    assert main([*mixed, "--out", str(tmp_path / "e.json")]) == 1
    assert "different split" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()


def test_same_data_file_spelled_differently_merges():
    a = preds("a", [[(0.0, "x")]], ["x"], data_file="data/val.jsonl")
    b = preds("b", [[(0.0, "x")]], ["x"], data_file="./data//val.jsonl")
    assert merge([a, b], [1.0, 1.0], "softmax").candidates == [[(2.0, "x")]]
