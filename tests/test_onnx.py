"""ONNX export and the torch-free reference decoder: graphs equal to the PyTorch model, candidates
equal to predict.py's, and a decoder process that never imports torch."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from swipe.config import from_dict, to_dict  # noqa: E402
from swipe.data import build_dataset  # noqa: E402
from swipe.data.resample import ResampleConfig, resample_curve  # noqa: E402
from swipe.decoding.pipeline import Pipeline, Resample, Settings, resample  # noqa: E402
from swipe.decoding.torch_backend import TorchBackend  # noqa: E402
from swipe.decoding.trie import LexiconTrie  # noqa: E402
from swipe.export import main as export_main  # noqa: E402
from swipe.keyboard import bundled_layout, load_layouts_file  # noqa: E402
from swipe.lexicon import load_lexicon  # noqa: E402
from swipe.models import ModelConfig, build_model, preset  # noqa: E402
from swipe.onnx_export import OnnxExportError, export_onnx  # noqa: E402
from swipe.predict import DatasetCurves  # noqa: E402
from swipe.predict import main as predict_main  # noqa: E402
from swipe.predictions import read_predictions  # noqa: E402
from swipe.resources import REAL_EN_SWIPES  # noqa: E402
from swipe.runtime import OnnxDecoder, Swipe, read_swipes  # noqa: E402
from swipe.tokenizers import CharTokenizer  # noqa: E402
from swipe.training.checkpoint import (  # noqa: E402
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    capture_rng_state,
    layouts_to_grids,
    load_model,
)
from swipe.training.config import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "swipe" / "resources" / "models"
LAYOUT = bundled_layout("hws_fitted")
TOLERANCE = 1e-4


def tiny_config(family: str, embedder: str = "weighted", cell: str = "lstm", encoder: str = "transformer",
                norm_first: bool = False) -> ModelConfig:
    """A tiny random model of ``family`` (``transformer`` or ``rnn``)."""
    config = preset("rnn" if family == "rnn" else "small", embedder)
    if family == "rnn":
        arch = dataclasses.replace(config.rnn, d_model=24, cell=cell, encoder_hidden_size=16,
                                   num_encoder_layers=2, decoder_hidden_size=24, attention_size=16)
        return dataclasses.replace(config, rnn=arch)
    arch = dataclasses.replace(config.transformer, d_model=32, encoder=encoder, num_encoder_layers=1,
                               num_decoder_layers=2, num_heads=2, dim_feedforward=32, norm_first=norm_first)
    return dataclasses.replace(config, transformer=arch)


def write_checkpoint(path: Path, model_config: ModelConfig, seed: int = 0) -> None:
    """A training checkpoint of a random model on the real swipes' layout."""
    tokenizer = CharTokenizer.from_layouts([LAYOUT])
    config = from_dict(TrainConfig, {"name": "tiny", "model": to_dict(model_config), "max_steps": 1,
                                     "data": {"train": "train", "val": "val"}, "lexicon": "en"})
    torch.manual_seed(seed)
    model = build_model(model_config, [LAYOUT], tokenizer)
    if model_config.embedder.name == "trainable_gaussian":  # move the Gaussians off their start
        with torch.no_grad():
            model.embedder.gaussian_offset.normal_(0, 0.2)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": model.state_dict(),
                "optimizer": {}, "scheduler": {}, "early_stopping": None, "scaler": None, "step": 1,
                "epoch": 0, "batch_in_epoch": 1, "world_size": 1, "rng": [capture_rng_state()],
                "config": to_dict(config), "tokenizer": tokenizer.to_dict(),
                "layouts": layouts_to_grids([LAYOUT]), "metrics": None, "last_validation_step": 1,
                "best": None}, path)


def export(source: Path, out: Path) -> Path:
    assert export_main([str(source), "--format", "onnx", "--out", str(out)]) == 0
    return out


def real_swipes(n: int, tmp: Path) -> tuple[Path, list[Swipe]]:
    """The first ``n`` real English swipes, as a jsonl file and as runtime swipes."""
    lines = REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[:n]
    path = tmp / f"real_{n}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [swipe for swipe, _ in read_swipes(path)]


@pytest.fixture(scope="module")
def shipped_transformer(tmp_path_factory) -> Path:
    """The ONNX folder of the shipped transformer (the ``base`` preset's shapes)."""
    return export(SHIPPED / "en_hws_transformer", tmp_path_factory.mktemp("onnx") / "en_hws_transformer")


@pytest.fixture(scope="module")
def tiny_lstm(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny random LSTM model's checkpoint and ONNX folder."""
    root = tmp_path_factory.mktemp("lstm")
    write_checkpoint(root / "best.pt", tiny_config("rnn"))
    return root / "best.pt", export(root / "best.pt", root / "onnx")


# ---- the graphs equal the PyTorch model ----------------------------------------------------------


def check_parity(checkpoint: Path, folder: Path, num_swipes: int, tmp: Path, int8: bool = False) -> float:
    """Largest difference between the ONNX graphs' outputs and the PyTorch model's on the first
    ``num_swipes`` real swipes: the memory (at real points) and the logits of every step along
    each swipe's word (teacher-forced, from the same state). Returns the int8/fp32 agreement of
    the first step's best token when ``int8``."""
    loaded = load_model(checkpoint)
    model, tokenizer = loaded.model, loaded.tokenizer
    path, swipes = real_swipes(num_swipes, tmp)
    build_dataset([path], tmp / f"data_{num_swipes}", layouts={LAYOUT.name: LAYOUT})
    curves = DatasetCurves.for_model(tmp / f"data_{num_swipes}", loaded)
    words = [word for _, word in read_swipes(path)]
    decoder = OnnxDecoder(folder, int8=int8)
    worst = 0.0
    for start in range(0, num_swipes, 16):
        indices = list(range(start, min(start + 16, num_swipes)))
        swipe, pad = curves.batch(indices)
        encoded = decoder.pipeline.encode([(swipes[i], 1.0) for i in indices])
        valid = encoded["memory_valid"]
        assert np.array_equal(valid, ~pad.numpy())  # the same points, resampled and thinned alike
        with torch.no_grad():
            memory = model.encode(swipe, pad)
            if "memory_kv" in encoded:
                kv = model.decoder.empty_state(memory, pad).memory_caches  # per layer (C, 2, H, T, Dh)
                expected = torch.stack(kv, 1).permute(0, 4, 1, 2, 3, 5).numpy()  # (C, T, L, 2, H, Dh)
                got = np.moveaxis(encoded["memory_kv"], 4, 1)
            else:
                expected, got = memory.numpy(), encoded["memory"]
            worst = max(worst, float(np.abs(got[valid] - expected[valid]).max()))
            spelled = [tokenizer.encode(words[i]) for i in indices]
            length = max(len(ids) for ids in spelled) + 1
            tokens = np.full((len(indices), length), tokenizer.eos_id, np.int64)
            tokens[:, 0] = tokenizer.sos_id
            for row, ids in enumerate(spelled):
                tokens[row, 1 : len(ids) + 1] = ids
            state, onnx_state = None, None
            for position in range(length):
                step = model.decode_step(torch.from_numpy(tokens[:, position]), memory, pad, state)
                state = step.state
                expected = torch.log_softmax(step.logits, -1).numpy()
                last = tokens[:, position : position + 1]
                got, onnx_state = decoder.backend.step(last, encoded, onnx_state)
                if int8:
                    return float(np.mean(got[:, 0].argmax(1) == expected.argmax(1)))
                worst = max(worst, float(np.abs(got[:, 0] - expected).max()))
    return worst


def test_shipped_transformer_graphs_match_pytorch(shipped_transformer, tmp_path):
    checkpoint = SHIPPED / "en_hws_transformer" / "model.pt"
    assert check_parity(checkpoint, shipped_transformer, 32, tmp_path) < TOLERANCE


def test_rnn_graphs_match_pytorch(tiny_lstm, tmp_path):
    checkpoint, folder = tiny_lstm
    assert check_parity(checkpoint, folder, 24, tmp_path) < TOLERANCE


def test_int8_graphs_are_small_and_agree(shipped_transformer, tmp_path):
    graphs = ("encoder.int8.onnx", "decoder_step.int8.onnx")
    # the goal for the base preset's shapes (d_model 128, 4 + 4 layers)
    assert sum((shipped_transformer / name).stat().st_size for name in graphs) <= 1.5e6
    checkpoint = SHIPPED / "en_hws_transformer" / "model.pt"
    agree = check_parity(checkpoint, shipped_transformer, 16, tmp_path, int8=True)
    assert agree >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("name", ["en_hws", "en_hws_transformer"])
def test_shipped_graphs_match_pytorch_on_all_real_swipes(name, tmp_path):
    folder = export(SHIPPED / name, tmp_path / name)
    assert check_parity(SHIPPED / name / "model.pt", folder, 800, tmp_path) < TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("config", [
    *(tiny_config("transformer", embedder) for embedder in
      ("phrase_swipe", "google_2015", "indiswipe", "nearest", "weighted", "trainable_gaussian")),
    tiny_config("transformer", encoder="conformer", norm_first=True),
    tiny_config("rnn", "nearest", cell="gru"),
], ids=lambda c: f"{c.family}-{c.transformer.encoder if c.transformer else c.rnn.cell}-{c.embedder.name}")
def test_every_family_and_embedder_matches_pytorch(config, tmp_path):
    write_checkpoint(tmp_path / "best.pt", config)
    folder = export(tmp_path / "best.pt", tmp_path / "onnx")
    assert check_parity(tmp_path / "best.pt", folder, 24, tmp_path) < TOLERANCE


# ---- given words scored in one call ------------------------------------------------------------


def stepping(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` on its backend with a ``score`` that cannot: it scores words one decoder step a
    token."""
    b = pipeline.backend
    plain = copy.copy(pipeline)
    plain.backend = SimpleNamespace(encode=b.encode, take=b.take, step=b.step, reorder=b.reorder,
                                    score=lambda tokens, memory: None)
    return plain


def scored_words(pipeline: Pipeline, swipes: list[Swipe]) -> list[list[tuple[float, str]]]:
    """The scores of each swipe's template proposals, a common word and one the lexicon lacks."""
    asked = [[w for _, w in pipeline.matcher(pipeline.layout(s)).decode(s.x, s.y)] + ["the", "zzqx"]
             for s in swipes]
    asked[1] = ["zzqx"]  # a swipe with no word to score
    return pipeline.score_words(pipeline.encode([(swipe, 1.0) for swipe in swipes]), asked)


def test_words_scored_in_one_call_equal_stepping(shipped_transformer, tmp_path):
    _, swipes = real_swipes(24, tmp_path)
    onnx = OnnxDecoder(shipped_transformer).pipeline
    assert onnx.backend.decoder_score is not None
    loaded = load_model(SHIPPED / "en_hws_transformer" / "model.pt")
    torch_pipeline = copy.copy(onnx)
    torch_pipeline.backend = TorchBackend(loaded.model, onnx.layouts)
    got = scored_words(onnx, swipes)
    assert got[1] == [] and all(len(row) >= 4 for i, row in enumerate(got) if i != 1)
    assert_same_candidates(got, scored_words(stepping(onnx), swipes), atol=1e-5)
    in_torch = scored_words(torch_pipeline, swipes)
    assert_same_candidates(in_torch, scored_words(stepping(torch_pipeline), swipes), atol=1e-5)
    assert_same_candidates(in_torch, got)


def test_an_rnn_scores_words_by_stepping_in_onnx(tiny_lstm, tmp_path):
    checkpoint, folder = tiny_lstm
    _, swipes = real_swipes(8, tmp_path)
    assert "decoder_score" not in json.loads((folder / "model.json").read_text())["graphs"]
    onnx = OnnxDecoder(folder, settings=Settings(prior_weight=0.5, template_candidates=4)).pipeline
    assert onnx.backend.score(np.zeros((1, 1, 1), np.int64), {}) is None
    torch_pipeline = copy.copy(onnx)
    torch_pipeline.backend = TorchBackend(load_model(checkpoint).model, onnx.layouts)
    expected = scored_words(stepping(torch_pipeline), swipes)
    assert_same_candidates(scored_words(torch_pipeline, swipes), expected, atol=1e-5)
    assert_same_candidates(scored_words(onnx, swipes), expected)


def test_a_folder_without_the_score_graph_still_decodes(shipped_transformer, tmp_path):
    folder = tmp_path / "older"
    shutil.copytree(shipped_transformer, folder)
    manifest = json.loads((folder / "model.json").read_text())
    del manifest["graphs"]["decoder_score"]
    (folder / "model.json").write_text(json.dumps(manifest))
    for graph in folder.glob("decoder_score*.onnx"):
        graph.unlink()
    _, swipes = real_swipes(16, tmp_path)
    settings = dataclasses.replace(OnnxDecoder(shipped_transformer).settings, templates_below=1e9)
    older = OnnxDecoder(folder, settings=settings)  # template candidates for every swipe
    assert older.backend.decoder_score is None
    expected = OnnxDecoder(shipped_transformer, settings=settings).decode(swipes)
    assert_same_candidates(older.decode(swipes), expected)


# ---- the reference decoder gives predict.py's candidates ---------------------------------------


def predict_candidates(model: Path, data: Path, out: Path, flags: list[str]) -> list[list[tuple[float, str]]]:
    argv = ["--checkpoint", str(model), "--data", str(data), "--out", str(out), "--quiet", *flags]
    assert predict_main(argv) == 0
    return read_predictions(out).candidates


def assert_same_candidates(got: list, expected: list, atol: float = TOLERANCE) -> None:
    """Every word of every list the same, scores within ``atol``."""
    assert [[w for _, w in row] for row in got] == [[w for _, w in row] for row in expected]
    for row, expected_row in zip(got, expected, strict=True):
        np.testing.assert_allclose([s for s, _ in row], [s for s, _ in expected_row], atol=atol)


def test_reference_decoder_equals_predict(shipped_transformer, tmp_path):
    # The model's decoding.json in both: views, wide views, template candidates and rescoring.
    path, swipes = real_swipes(48, tmp_path)
    expected = predict_candidates(SHIPPED / "en_hws_transformer", path, tmp_path / "p.pkl", [])
    assert_same_candidates(OnnxDecoder(shipped_transformer).decode(swipes), expected)


def test_reference_decoder_rnn_without_rescoring(tiny_lstm, tmp_path):
    checkpoint, folder = tiny_lstm
    path, swipes = real_swipes(16, tmp_path)
    flags = ["--beam-size", "4", "--prior-weight", "0.5", "--length-penalty", "0.75"]
    expected = predict_candidates(checkpoint, path, tmp_path / "p.pkl", flags)
    got = OnnxDecoder(folder, beam_size=4, prior_weight=0.5, length_penalty=0.75).decode(swipes)
    same = np.mean([[w for _, w in a] == [w for _, w in b] for a, b in zip(got, expected, strict=True)])
    assert same >= 0.9  # a random model's near ties may swap under float rounding
    assert all(len(row) == 4 for row in got)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["en_hws", "en_hws_transformer"])
def test_reference_decoder_equals_predict_on_all_real_swipes(name, tmp_path):
    folder = export(SHIPPED / name, tmp_path / name)
    expected = predict_candidates(SHIPPED / name, REAL_EN_SWIPES, tmp_path / "p.pkl", [])
    swipes = [swipe for swipe, _ in read_swipes(REAL_EN_SWIPES)]
    decoder = OnnxDecoder(folder)
    got = [row for start in range(0, len(swipes), 32) for row in decoder.decode(swipes[start : start + 32])]
    assert_same_candidates(got, expected)


def test_decoder_runs_where_torch_cannot_be_imported(shipped_transformer, tmp_path):
    path, _ = real_swipes(5, tmp_path)
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` now raises ImportError
            "from swipe.runtime.__main__ import main\n"
            "assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\n"
            f"sys.exit(main([{str(shipped_transformer)!r}, {str(path)!r}, '--int8']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 5 and all(len(row["candidates"]) == 16 for row in rows)
    assert "accuracy@1" in done.stderr


def test_runtime_command_offers_the_verbatim_candidate_as_the_library_does(shipped_transformer, tmp_path,
                                                                           capsys):
    from swipe.decoding.user_words import VerbatimSettings
    from swipe.runtime.__main__ import main as runtime_main

    path, swipes = real_swipes(24, tmp_path)
    assert runtime_main([str(shipped_transformer), str(path), "--verbatim", "--batch-size", "8"]) == 0
    rows = [json.loads(line)["candidates"] for line in capsys.readouterr().out.splitlines()]
    decoder = OnnxDecoder(shipped_transformer, verbatim=VerbatimSettings())
    expected = [row for start in range(0, 24, 8) for row in decoder.decode(swipes[start : start + 8])]
    assert rows == [[[round(c.score, 6), c.word, c.in_lexicon] for c in row] for row in expected]
    assert any(not in_lexicon for row in rows for _, _, in_lexicon in row)  # offered somewhere
    assert runtime_main([str(shipped_transformer), str(path)]) == 0  # without the flag: [score, word]
    plain = [json.loads(line)["candidates"] for line in capsys.readouterr().out.splitlines()]
    assert all(len(c) == 2 for row in plain for c in row)


def test_runtime_command_decodes_with_a_user_data_file(shipped_transformer, tmp_path, capsys):
    from swipe.decoding.user_words import UserData, write_user_data
    from swipe.runtime.__main__ import main as runtime_main

    path, swipes = real_swipes(6, tmp_path)
    targets = [json.loads(line)["word"] for line in path.read_text(encoding="utf-8").splitlines()]
    saved = tmp_path / "words.json"
    write_user_data(saved, UserData({"zorblaxing": 500.0}, [targets[0]], [(targets[1], 3.0)]))
    before = saved.read_bytes()
    assert runtime_main([str(shipped_transformer), str(path), "--user-data", str(saved)]) == 0
    rows = [json.loads(line)["candidates"] for line in capsys.readouterr().out.splitlines()]
    decoder = OnnxDecoder(shipped_transformer, user_data=saved)
    assert rows == [[[round(c.score, 6), c.word] for c in row] for row in decoder.decode(swipes)]
    assert targets[0] not in [word for _, word in rows[0]]  # removed by the file
    assert saved.read_bytes() == before  # only read
    for bad, message in [(tmp_path / "none.json", "no such user data file"),
                         (path, "not a user data file")]:
        assert runtime_main([str(shipped_transformer), str(path), "--user-data", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"swipe.runtime: error: {bad}: ") and message in err and "\n" not in err


# ---- the folder ---------------------------------------------------------------------------------


def test_folder_holds_what_an_app_needs(shipped_transformer):
    manifest = json.loads((shipped_transformer / "model.json").read_text())
    step_inputs = manifest["graphs"]["decoder_step"]["inputs"]
    assert step_inputs == ["tokens", "memory_kv", "memory_valid", *(f"self_cache_{i}" for i in range(4))]
    assert manifest["decoding"]["x_scales"] == [0.94, 1.0, 1.06] and "not_applied" not in manifest["decoding"]
    assert manifest["decoding"]["template_candidates"] == 4 and manifest["decoding"]["views_below"] == -8.0
    assert list(load_layouts_file(shipped_transformer / "layouts.json")) == ["hws_fitted"]
    trie = LexiconTrie.from_lexicon(load_lexicon("en"), CharTokenizer(manifest["tokenizer"]["alphabet"]))
    with np.load(shipped_transformer / "lexicon.npz") as arrays:
        assert np.array_equal(arrays["children"], trie.children.numpy())
        assert np.array_equal(arrays["lookahead"], trie.lookahead)
    assert manifest["max_length"] == trie.max_word_length + 1
    assert "SHA-256" in (shipped_transformer / "card.md").read_text()


def test_export_refuses_a_folder_with_files_and_a_dtype(shipped_transformer, capsys):
    assert export_main([str(SHIPPED / "en_hws_transformer"), "--format", "onnx",
                        "--out", str(shipped_transformer)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert export_main([str(SHIPPED / "en_hws_transformer"), "--format", "onnx", "--dtype", "int8",
                        "--out", str(shipped_transformer / "x")]) == 2
    assert "--dtype is for .pt files" in capsys.readouterr().err



def test_export_takes_a_shipped_models_name(shipped_transformer, capsys):
    # The name resolves as predict.py --checkpoint resolves it: here onto a folder that holds files.
    assert export_main(["en_hws_transformer", "--format", "onnx", "--out", str(shipped_transformer)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert export_main(["en_hwz", "--format", "onnx", "--out", str(shipped_transformer / "x")]) == 2
    assert "en_hwz: no such checkpoint, model folder or shipped model (shipped models: en_hws" in \
        capsys.readouterr().err

def test_overwrite_replaces_an_export_as_a_whole_and_nothing_else(tiny_lstm, tmp_path):
    checkpoint, _ = tiny_lstm
    out = export(checkpoint, tmp_path / "onnx")
    assert (out / "encoder.int8.onnx").is_file()
    export_onnx(checkpoint, out, overwrite=True, int8=False)  # no int8 graphs left from before
    assert not any(out.glob("*.int8.onnx")) and (out / "encoder.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # no temporary folder left beside it
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    with pytest.raises(OnnxExportError, match="not an ONNX export"):
        export_onnx(checkpoint, other, overwrite=True)
    assert (other / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize("config", [ResampleConfig("time", 16.0), ResampleConfig("path", 0.25, True),
                                    ResampleConfig("path", 0.25, False)], ids=str)
def test_runtime_resampling_equals_the_trainers(config):
    gen = np.random.default_rng(0)
    for n in (1, 2, 7, 60):
        x, y = gen.uniform(0, 500, n), gen.uniform(0, 300, n)
        t = np.cumsum(gen.integers(0, 20, n)).astype(np.float64)
        for max_points in (None, 5):  # bounded: only the points thinning keeps
            expected = resample_curve(x, y, t, 40.0, config, max_points)
            got = resample(x, y, t, 40.0, Resample(**dataclasses.asdict(config)), max_points)
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_allclose(a, b, atol=1e-9)
