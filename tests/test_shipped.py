"""The registry of shipped models: which model decodes which layouts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_export import write_curves, write_training_checkpoint

from swipe import model_files as shipped
from swipe.data import build_dataset
from swipe.decoding import GENERATORS, generator_options
from swipe.export import export_checkpoint
from swipe.keyboard import bundled_layout
from swipe.metrics import score_predictions
from swipe.model_files import (
    ShippedModelError,
    list_shipped_models,
    load_model,
    read_decoding_settings,
    shipped_model_for_layouts,
)
from swipe.predict import main as predict_main
from swipe.predictions import read_predictions
from swipe.templates import TemplateRescorer


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A models folder like ``swipe/resources/models``: an English and a Russian model."""
    root = tmp_path_factory.mktemp("registry")
    work = tmp_path_factory.mktemp("checkpoints")
    models = (("en_hws", ["hws_fitted"], "en"), ("ru_yandex", ["default", "extra"], "ru"))
    for folder, names, lexicon in models:
        write_training_checkpoint(work / f"{folder}.pt", [bundled_layout(n) for n in names], name=folder,
                                  lexicon=lexicon, d_model=16)
        (root / folder).mkdir()
        export_checkpoint(work / f"{folder}.pt", root / folder / "model.pt")
    (root / "en_hws" / "card.md").write_text("# en_hws\n", "utf-8")
    (root / "notes").mkdir()  # no model.pt: not a model
    return root


@pytest.fixture()
def patched(registry, monkeypatch):
    monkeypatch.setattr(shipped, "MODELS_DIR", registry)
    return registry


def test_layouts_map_to_the_model_trained_on_them(patched):
    assert shipped_model_for_layouts(["hws_fitted"]) == patched / "en_hws" / "model.pt"
    assert shipped_model_for_layouts(["default"]) == patched / "ru_yandex" / "model.pt"
    assert shipped_model_for_layouts(("extra", "default", "extra")) == patched / "ru_yandex" / "model.pt"
    # Same letters, another geometry: the English model's features would not fit.
    assert shipped_model_for_layouts(["qwerty_en"]) is None
    assert shipped_model_for_layouts(["hws_fitted", "default"]) is None
    assert shipped_model_for_layouts([]) is None


def test_list_describes_each_model(patched):
    models = list_shipped_models()
    assert [m.name for m in models] == ["en_hws", "ru_yandex"]
    en, ru = models
    assert en.layout_names == ("hws_fitted",) and en.lexicon == "en" and en.step == 500
    assert en.card == patched / "en_hws" / "card.md" and ru.card is None
    assert ru.layout_names == ("default", "extra") and ru.lexicon == "ru"
    loaded = load_model(ru.path)
    assert [layout.name for layout in loaded.layouts] == ["default", "extra"]


def test_missing_root_has_no_models_and_a_damaged_file_is_an_error(tmp_path, registry):
    assert list_shipped_models(tmp_path / "none") == []
    assert shipped_model_for_layouts(["hws_fitted"], root=tmp_path / "none") is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.pt").write_bytes(b"truncated")
    with pytest.raises(ShippedModelError, match="shipped model broken: .*model.pt"):
        list_shipped_models(tmp_path)


def test_the_bundled_registry_is_readable():
    # The models folder may be empty in a checkout; whatever it holds must load and say its layouts.
    for model in list_shipped_models():
        assert model.layout_names and model.path.name == "model.pt"
        assert shipped_model_for_layouts(model.layout_names) is not None
        # Decoding settings, where a model has them, are valid options of their generator.
        settings = read_decoding_settings(model.path)
        if settings is not None:
            takes = [f.name for f in dataclasses.fields(GENERATORS[settings.generator].options)]
            options = {name: getattr(settings, name) for name in takes if getattr(settings, name) is not None}
            generator_options(settings.generator, options)
            TemplateRescorer(settings.template_weight, settings.template_prior_weight)


# ---- bench/eval_real.py --------------------------------------------------------------------------


def table_rows(output: str) -> list[list[str]]:
    lines = [line for line in output.splitlines() if line.startswith("| ") and "swipe_mrr" not in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_eval_real_scores_every_setting_and_tunes_on_the_other_half(tmp_path, capsys):
    from bench import eval_real

    layout = bundled_layout("hws_fitted")
    write_training_checkpoint(tmp_path / "best.pt", [layout], d_model=16)
    # A one-word lexicon makes every candidate "the", whatever the random weights: rows 1 and 3
    # (odd) score 1 and 0, rows 2 and 4 (even) score 1 and 1.
    write_curves(tmp_path / "real.jsonl", ["the", "the", "help", "the"], layout)
    (tmp_path / "lex.txt").write_text("the\t100\n", "utf-8")
    common = [str(tmp_path / "best.pt"), "--lexicon", str(tmp_path / "lex.txt"), "--beam-sizes", "1,3",
              "--prior-weights", "0,0.5"]
    assert eval_real.main([*common, "--data", str(tmp_path / "real.jsonl")]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [(r[2], r[3]) for r in rows] == [
        ("greedy", "prior=0"), ("greedy", "prior=0.5"), ("beam", "beam=1 prior=0"),
        ("beam", "beam=1 prior=0.5"), ("beam", "beam=3 prior=0"), ("beam", "beam=3 prior=0.5")]
    assert all(r[1] == "500" and r[4:7] == ["0.7500", "0.7500", "0.7500"] and float(r[7]) > 0 for r in rows)

    assert eval_real.main([*common, "--data", str(tmp_path / "real.jsonl"), "--held-out", "odd",
                           "--generators", "beam"]) == 0
    out = capsys.readouterr().out
    assert "metrics on the odd rows" in out
    rows = table_rows(out)
    assert len(rows) == 4 and all(r[4:8] == ["1.0000", "0.5000", "0.5000", "0.5000"] for r in rows)
    assert sum(r[3].endswith(" *") for r in rows) == 1  # one chosen setting per model


def test_eval_real_grid_crosses_length_penalties_and_names_only_other_than_default():
    from bench import eval_real

    grid = eval_real.settings_grid(["greedy", "beam"], [4], [0.3], [0.0, 1.0], [0.5, 1.0])
    assert [(s.generator, s.options.length_penalty, s.template_weight) for s in grid] == [
        ("greedy", 0.5, 0.0), ("greedy", 0.5, 1.0), ("greedy", 1.0, 0.0), ("greedy", 1.0, 1.0),
        ("beam", 0.5, 0.0), ("beam", 0.5, 1.0), ("beam", 1.0, 0.0), ("beam", 1.0, 1.0)]
    assert [s.label for s in grid[4:]] == [
        "beam=4 prior=0.3", "beam=4 prior=0.3 templates=1", "beam=4 prior=0.3 length_penalty=1",
        "beam=4 prior=0.3 length_penalty=1 templates=1"]
    views = eval_real.settings_grid(["beam"], [4], [0.3], [0.5], [0.5], [(1.0,), (0.94, 1.0, 1.06)],
                                    [(), (0.5,)])
    assert [(s.x_scales, s.wide_x_scales, s.label) for s in views] == [
        ((1.0,), (), "beam=4 prior=0.3 templates=0.5"),
        ((1.0,), (0.5,), "beam=4 prior=0.3 templates=0.5 wide_x_scales=0.5"),
        ((0.94, 1.0, 1.06), (), "beam=4 prior=0.3 templates=0.5 x_scales=0.94,1,1.06"),
        ((0.94, 1.0, 1.06), (0.5,), "beam=4 prior=0.3 templates=0.5 x_scales=0.94,1,1.06 wide_x_scales=0.5")]
    below = eval_real.settings_grid(["beam"], [4], [0.3], [0.5], [0.5], [(0.94, 1.0, 1.06)], [()],
                                    [None, -8.0])
    assert [(s.views_below, s.label) for s in below] == [
        (None, "beam=4 prior=0.3 templates=0.5 x_scales=0.94,1,1.06"),
        (-8.0, "beam=4 prior=0.3 templates=0.5 x_scales=0.94,1,1.06 views_below=-8")]
    proposed = eval_real.settings_grid(["beam"], [4], [0.3], [0.5], [0.5], [(1.0,)], [()], [-8.0], [0, 4])
    assert [(s.template_candidates, s.label) for s in proposed] == [
        (0, "beam=4 prior=0.3 templates=0.5 views_below=-8"),
        (4, "beam=4 prior=0.3 templates=0.5 views_below=-8 template_candidates=4")]


def test_eval_real_reads_a_built_synthetic_validation_set(tmp_path, capsys):
    from bench import eval_real

    layout = bundled_layout("hws_fitted")
    write_training_checkpoint(tmp_path / "best.pt", [layout], d_model=16)
    write_curves(tmp_path / "val.jsonl", ["help", "the", "help"], layout)
    build_dataset([tmp_path / "val.jsonl"], tmp_path / "val")
    (tmp_path / "lex.txt").write_text("help\t100\n", "utf-8")
    assert eval_real.main([str(tmp_path / "best.pt"), "--synthetic-val", str(tmp_path / "val"), "--lexicon",
                           str(tmp_path / "lex.txt"), "--generators", "greedy", "--prior-weights", "0",
                           "--max-curves", "2"]) == 0
    out = capsys.readouterr().out
    assert "synthetic validation, 2 curves" in out
    assert table_rows(out)[0][4:7] == ["0.5000", "0.5000", "0.5000"]
    assert eval_real.main([str(tmp_path / "missing.pt")]) == 2


def write_real_swipes(tmp_path: Path) -> list[str]:
    """A tiny random model (``best.pt``), 8 curves of 4 words (``real.jsonl``) and a lexicon of those
    words in ``tmp_path``; returns the ``--data`` / ``--lexicon`` options naming them."""
    layout = bundled_layout("hws_fitted")
    write_training_checkpoint(tmp_path / "best.pt", [layout], d_model=16, seed=3)
    words = ["the", "help", "then", "hello", "the", "help", "then", "hello"]
    write_curves(tmp_path / "real.jsonl", words, layout)
    (tmp_path / "lex.txt").write_text("the\t100\nhelp\t50\nthen\t20\nhello\t10\n", "utf-8")
    return ["--data", str(tmp_path / "real.jsonl"), "--lexicon", str(tmp_path / "lex.txt")]


def test_eval_real_scores_what_predict_and_evaluate_score(tmp_path, capsys):
    from bench import eval_real

    common = write_real_swipes(tmp_path)
    assert predict_main(["--checkpoint", str(tmp_path / "best.pt"), "--beam-size", "3", "--prior-weight",
                         "0.5", "--out", str(tmp_path / "preds.pkl"), "--quiet", *common]) == 0
    expected = score_predictions(read_predictions(tmp_path / "preds.pkl")).overall
    capsys.readouterr()
    assert eval_real.main([str(tmp_path / "best.pt"), "--generators", "beam", "--beam-sizes", "3",
                           "--prior-weights", "0.5", *common]) == 0
    (row,) = table_rows(capsys.readouterr().out)
    assert 0 < expected.recall_at_4 < 1  # a random model: some targets found, not all
    assert row[4:7] == [f"{v:.4f}" for v in (expected.swipe_mrr, expected.accuracy, expected.recall_at_4)]
    # With template rescoring too.
    assert predict_main(["--checkpoint", str(tmp_path / "best.pt"), "--beam-size", "3", "--prior-weight",
                         "0.5", "--template-weight", "2", "--out", str(tmp_path / "t.pkl"), "--quiet",
                         *common]) == 0
    rescored = score_predictions(read_predictions(tmp_path / "t.pkl")).overall
    capsys.readouterr()
    assert eval_real.main([str(tmp_path / "best.pt"), "--generators", "beam", "--beam-sizes", "3",
                           "--prior-weights", "0.5", "--template-weights", "2", *common]) == 0
    (row,) = table_rows(capsys.readouterr().out)
    assert row[3] == "beam=3 prior=0.5 templates=2"
    assert row[4:7] == [f"{v:.4f}" for v in (rescored.swipe_mrr, rescored.accuracy, rescored.recall_at_4)]


# ---- bench/finetune_real.py ----------------------------------------------------------------------


def test_finetune_real_scores_the_held_out_half_as_eval_real_does(tmp_path, capsys):
    from bench import eval_real, finetune_real

    common = write_real_swipes(tmp_path)
    assert finetune_real.main(["--model", str(tmp_path / "best.pt"), "--steps", "2", "--batch-size", "2",
                               "--beam-size", "3", "--prior-weight", "0.5", "--work", str(tmp_path / "work"),
                               *common]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    untouched, tuned = ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])
    assert untouched[0].endswith("(untouched)") and tuned[0] == "fine-tuned, 2 steps"
    assert untouched[1] == tuned[1] == "4"
    assert (tmp_path / "work" / "tune.jsonl").read_text().splitlines()[1].startswith('{"word": "then"')
    assert load_model(tmp_path / "work" / "run" / "checkpoints" / "last.pt").step == 2

    assert eval_real.main([str(tmp_path / "best.pt"), "--generators", "beam", "--beam-sizes", "3",
                           "--prior-weights", "0.5", "--held-out", "even", *common]) == 0
    (row,) = table_rows(capsys.readouterr().out)
    assert untouched[2:4] == [row[5], row[6]]  # swipe_mrr, accuracy@1 on the even rows


def test_finetune_real_can_decode_as_predict_decodes_the_shipped_model(tmp_path, capsys):
    from bench import finetune_real
    from swipe.model_files import read_decoding_settings, resolve_model_file

    model = resolve_model_file(Path(shipped.__file__).parent / "resources" / "models" / "en_hws")
    settings = read_decoding_settings(model)
    setting = finetune_real.model_decoding(model)
    assert setting.generator == settings.generator == "beam"
    assert setting.options.beam_size == settings.beam_size
    assert setting.options.prior_weight == settings.prior_weight
    assert setting.template_weight == settings.template_weight
    assert setting.x_scales == settings.x_scales and setting.wide_x_scales == settings.wide_x_scales
    assert setting.views_below == settings.views_below
    assert setting.template_candidates == settings.template_candidates
    # A training checkpoint has no decoding.json: refused before any fine-tuning.
    common = write_real_swipes(tmp_path)
    assert finetune_real.main(["--model", str(tmp_path / "best.pt"), "--model-decoding",
                               "--work", str(tmp_path / "work"), *common]) == 2
    assert "best.pt: no decoding.json next to it" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


# ---- bench/ensemble_real.py ----------------------------------------------------------------------


def test_ensemble_real_fits_on_the_odd_rows_and_scores_the_even_rows(tmp_path, capsys):
    from bench import ensemble_real
    from swipe.aggregate import apply, load_ensemble

    common = write_real_swipes(tmp_path)
    work = tmp_path / "work"
    assert ensemble_real.main(["--model", str(tmp_path / "best.pt"), "--work", str(work), *common]) == 0
    out = capsys.readouterr().out
    header, neural, shark2, ensemble = table_rows(out)
    assert header[0] == "predictor"
    assert [r[0].split()[0] for r in (neural, shark2, ensemble)] == ["neural:", "SHARK2:", "ensemble"]
    # Each row scores the even half's predictions file of its predictor.
    files = [work / "neural_even.pkl", work / "shark2_even.pkl", work / "ensemble_even.pkl"]
    for row, path in zip((neural, shark2, ensemble), files, strict=True):
        s = score_predictions(read_predictions(path)).overall
        assert row[1:] == ["4", f"{s.swipe_mrr:.4f}", f"{s.accuracy:.4f}", f"{s.recall_at_4:.4f}"]
        assert read_predictions(path).targets == ["help", "hello", "help", "hello"]
    # The weights were fitted on the odd half and are those applied to the even half.
    fitted = load_ensemble(work / "ensemble.json")
    assert fitted.fitted_on.endswith("tune.jsonl:odd") and abs(sum(fitted.weights) - 1) < 1e-9
    members = [read_predictions(work / "neural_even.pkl"), read_predictions(work / "shark2_even.pkl")]
    assert apply(fitted, members).candidates == read_predictions(work / "ensemble_even.pkl").candidates
    assert f"method {fitted.method}, weights neural {fitted.weights[0]:.4f}" in out
    assert ensemble_real.main(["--data", str(tmp_path / "missing.jsonl")]) == 2


def test_ensemble_real_ensembles_several_neural_models_without_shark2(tmp_path, capsys):
    from bench import ensemble_real
    from swipe.aggregate import apply, load_ensemble

    common = write_real_swipes(tmp_path)
    write_training_checkpoint(tmp_path / "other.pt", [bundled_layout("hws_fitted")], d_model=16, seed=4)
    work = tmp_path / "work"
    models = ["--model", str(tmp_path / "best.pt"), "--model", str(tmp_path / "other.pt")]
    assert ensemble_real.main([*models, "--no-shark2", "--beam-size", "3", "--template-weight", "0.5",
                               "--x-scales", "1,1.1", "--template-candidates", "2", "--work", str(work),
                               *common]) == 0
    _, first, second, ensemble = table_rows(capsys.readouterr().out)
    assert first[0].startswith("neural1: ")
    assert first[0].endswith("beam 3, prior 0.6, templates 0.5, x-scales 1,1.1, template candidates 2")
    assert second[0].startswith("neural2: ") and ensemble[0].startswith("ensemble of the two")
    # The members decoded with template rescoring, as predict.py does with the same options.
    assert predict_main(["--checkpoint", str(tmp_path / "other.pt"), "--data", str(work / "held_out.jsonl"),
                         "--split", "even", "--beam-size", "3", "--prior-weight", "0.6", "--template-weight",
                         "0.5", "--x-scales", "1,1.1", "--template-candidates", "2",
                         "--lexicon", str(tmp_path / "lex.txt"), "--out", str(tmp_path / "p.pkl"),
                         "--quiet"]) == 0
    expected = read_predictions(tmp_path / "p.pkl").candidates
    assert read_predictions(work / "neural2_even.pkl").candidates == expected
    assert not (work / "shark2_even.pkl").exists()
    members = [read_predictions(work / f"neural{i}_even.pkl") for i in (1, 2)]
    assert apply(load_ensemble(work / "ensemble.json"), members).candidates == (
        read_predictions(work / "ensemble_even.pkl").candidates
    )
    # One model without SHARK2 is no ensemble.
    with pytest.raises(SystemExit):
        ensemble_real.main(["--model", str(tmp_path / "best.pt"), "--no-shark2", *common])
    assert "needs two members" in capsys.readouterr().err
