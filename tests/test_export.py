"""Exported models: compact files that load like checkpoints and decode like them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from swipe.config import from_dict, to_dict
from swipe.data import SwipeCollator, SwipeDataset, build_dataset
from swipe.export import export_checkpoint, main
from swipe.keyboard import Layout, bundled_layout
from swipe.model_files import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    MODEL_SIZE_LIMITS,
    CheckpointError,
    ExportError,
    load_model,
    read_model_info,
)
from swipe.models import build_model, preset
from swipe.predict import main as predict_main
from swipe.predictions import read_predictions
from swipe.tokenizers import CharTokenizer
from swipe.training.checkpoint import capture_rng_state, layouts_to_grids
from swipe.training.config import TrainConfig

WORDS = ["the", "they", "then", "hello", "help", "world", "word", "work", "and", "swipe", "sweet", "key"]
METRICS = {"loss": 1.25, "token_accuracy": 0.61, "word_accuracy": 0.42, "swipe_mrr": None}


def write_curves(path: Path, words: list[str], layout: Layout, seed: int = 0) -> None:
    """Curves through the key centres of each word, with a little noise, as Yandex jsonl."""
    gen = torch.Generator().manual_seed(seed)
    with open(path, "w", encoding="utf-8") as f:
        for word in words:
            centres = torch.from_numpy(layout.centers[[layout.key_index(c) for c in word]])
            noise = torch.randn(3 * len(word), 2, generator=gen) * 3
            points = torch.repeat_interleave(centres, 3, dim=0) + noise
            curve = {"x": points[:, 0].round().tolist(), "y": points[:, 1].round().tolist(),
                     "t": [15 * k for k in range(len(points))], "grid_name": layout.name}
            f.write(json.dumps({"word": word, "curve": curve}) + "\n")


def write_training_checkpoint(
    path: Path, layouts: list[Layout], name: str = "tiny", lexicon: str = "en", d_model: int = 64,
    seed: int = 0,
) -> None:
    """A checkpoint in the trainer's format, optimizer state included, of a tiny random model."""
    tokenizer = CharTokenizer.from_layouts(layouts)
    model_config = preset("small")
    arch = dataclasses.replace(model_config.transformer, d_model=d_model, num_encoder_layers=1,
                               num_decoder_layers=1, num_heads=2, dim_feedforward=d_model)
    model_config = dataclasses.replace(model_config, transformer=arch)
    config = from_dict(TrainConfig, {"name": name, "model": to_dict(model_config), "max_steps": 10,
                                     "data": {"train": "train", "val": "val"}, "lexicon": lexicon})
    torch.manual_seed(seed)
    model = build_model(model_config, layouts, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters())
    for p in model.parameters():  # one step, so the optimizer holds its moments
        p.grad = torch.randn_like(p) * 1e-3
    optimizer.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": {}, "early_stopping": None,
                "scaler": None, "step": 500, "epoch": 0, "batch_in_epoch": 500, "world_size": 1,
                "rng": [capture_rng_state()], "config": to_dict(config), "tokenizer": tokenizer.to_dict(),
                "layouts": layouts_to_grids(layouts), "metrics": METRICS, "last_validation_step": 500,
                "best": {"metric": "word_accuracy", "value": 0.42, "step": 500}}, path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A checkpoint and a batch of curves to compare logits on."""
    root = tmp_path_factory.mktemp("export")
    layout = bundled_layout("qwerty_en")
    write_training_checkpoint(root / "best.pt", [layout])
    write_curves(root / "val.jsonl", WORDS, layout)
    build_dataset([root / "val.jsonl"], root / "val")
    dataset = SwipeDataset(root / "val")
    original = load_model(root / "best.pt")
    batch = SwipeCollator(original.layouts, original.tokenizer)([dataset[i] for i in range(len(dataset))])
    return root, original, batch


def logits(model: torch.nn.Module, batch) -> torch.Tensor:
    with torch.inference_mode():
        return model(batch.decoder_input, batch.swipe, batch.swipe_pad_mask, batch.tokens_pad_mask)


def test_fp16_export_is_small_loads_in_fp32_and_gives_close_logits(setup, tmp_path):
    root, original, batch = setup
    result = export_checkpoint(root / "best.pt", tmp_path / "model.pt")
    assert result.dtype == "fp16" and result.step == 500 and result.run == "tiny"
    assert result.num_bytes < result.source_bytes / 4
    loaded = load_model(tmp_path / "model.pt")
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert not loaded.model.training
    assert loaded.step == 500 and loaded.tokenizer == original.tokenizer
    assert [layout.name for layout in loaded.layouts] == ["qwerty_en"]
    assert loaded.layouts[0] == original.layouts[0]
    reference, got = logits(original.model, batch), logits(loaded.model, batch)
    assert not torch.equal(reference, got)  # it really was rounded
    assert torch.allclose(reference, got, atol=2e-2, rtol=0)

    raw = torch.load(tmp_path / "model.pt", weights_only=True)
    assert not {"optimizer", "scheduler", "rng", "scaler"} & set(raw)
    assert all(t.dtype == torch.float16 for t in raw["model"].values() if t.is_floating_point())
    assert raw["lexicon"] == "en"
    provenance = raw["provenance"]
    assert provenance["run"] == "tiny" and provenance["step"] == 500
    assert provenance["metrics"] == METRICS
    assert provenance["best"] == {"metric": "word_accuracy", "value": 0.42, "step": 500}
    assert provenance["source_file"] == "best.pt"
    assert provenance["source_sha256"] == hashlib.sha256((root / "best.pt").read_bytes()).hexdigest()


def test_fp32_export_gives_identical_logits(setup, tmp_path):
    root, original, batch = setup
    export_checkpoint(root / "best.pt", tmp_path / "model.pt", dtype="fp32")
    loaded = load_model(tmp_path / "model.pt")
    assert torch.equal(logits(original.model, batch), logits(loaded.model, batch))


def test_int8_export_quantises_linear_weights_and_stays_close(setup, tmp_path):
    root, original, batch = setup
    fp16 = export_checkpoint(root / "best.pt", tmp_path / "fp16.pt")
    int8 = export_checkpoint(root / "best.pt", tmp_path / "int8.pt", dtype="int8")
    assert int8.num_bytes < fp16.num_bytes
    raw = torch.load(tmp_path / "int8.pt", weights_only=True)
    assert raw["int8_scales"] and all(raw["model"][n].dtype == torch.int8 for n in raw["int8_scales"])
    assert all(name.endswith(".weight") for name in raw["int8_scales"])
    reference = logits(original.model, batch)
    got = logits(load_model(tmp_path / "int8.pt").model, batch)
    assert (got - reference).abs().max() < 0.05 * reference.abs().max()


def test_exported_model_decodes_like_its_checkpoint_in_predict(setup, tmp_path):
    root, _, _ = setup
    export_checkpoint(root / "best.pt", tmp_path / "model.pt", dtype="fp32")
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("".join(f"{w}\t{10 + i}\n" for i, w in enumerate(WORDS)), "utf-8")
    common = ["--data", str(root / "val.jsonl"), "--lexicon", str(lexicon), "--quiet"]
    for model, out in ((root / "best.pt", "a.pkl"), (tmp_path / "model.pt", "b.pkl")):
        assert predict_main(["--checkpoint", str(model), "--out", str(tmp_path / out), *common]) == 0
    a, b = read_predictions(tmp_path / "a.pkl"), read_predictions(tmp_path / "b.pkl")
    assert a.candidates == b.candidates


def test_refuses_to_overwrite_unless_asked(setup, tmp_path, capsys):
    root, _, _ = setup
    out = tmp_path / "model.pt"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="model.pt: already exists"):
        export_checkpoint(root / "best.pt", out)
    assert main([str(root / "best.pt"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main([str(root / "best.pt"), "--out", str(out), "--overwrite", "--dtype", "fp32"]) == 0
    assert "fp32" in capsys.readouterr().err
    assert load_model(out).step == 500


def test_never_overwrites_its_source_and_rejects_bad_inputs(setup, tmp_path):
    root, _, _ = setup
    source = tmp_path / "best.pt"
    source.write_bytes((root / "best.pt").read_bytes())
    with pytest.raises(ExportError, match="is the checkpoint being exported"):
        export_checkpoint(source, source, overwrite=True)
    with pytest.raises(ExportError, match="dtype"):
        export_checkpoint(source, tmp_path / "x.pt", dtype="bf16")
    export_checkpoint(source, tmp_path / "model.pt")
    with pytest.raises(ExportError, match="already an exported model"):
        export_checkpoint(tmp_path / "model.pt", tmp_path / "again.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="damaged.pt"):
        export_checkpoint(damaged, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="damaged.pt"):
        load_model(damaged)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "z.pt")
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


def test_run_and_model_directories_resolve_to_their_files(setup, tmp_path):
    root, _, _ = setup
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes((root / "best.pt").read_bytes())
    folder = tmp_path / "shipped"
    folder.mkdir()
    export_checkpoint(run, folder / "model.pt")
    assert load_model(folder).step == 500
    info = read_model_info(folder / "model.pt")
    assert info.layout_names == ("qwerty_en",) and info.lexicon == "en" and info.dtype == "fp16"
    assert info.step == 500 and info.provenance["run"] == "tiny"


def test_the_old_import_paths_still_give_the_same_names():
    from swipe import export, model_files, shipped
    from swipe.training import checkpoint

    for module, names in [
        (shipped, ["DecodingSettings", "ModelNotFoundError", "MODELS_DIR", "read_decoding_settings",
                   "resolve_model", "shipped_model_for_layouts", "list_shipped_models", "shipped_names"]),
        (export, ["ExportError", "EXPORT_FORMAT", "ModelInfo", "check_exported", "read_model_info",
                  "restore_state_dict"]),
        (checkpoint, ["CheckpointError", "CHECKPOINT_FORMAT", "LoadedModel", "load_checkpoint", "load_model",
                      "model_parts", "resolve_model_file", "inference_state", "find_latest_run"]),
    ]:
        for name in names:
            assert getattr(module, name) is getattr(model_files, name), f"{module.__name__}.{name}"


def tampered(source: Path, out: Path, change) -> Path:
    """A copy of the torch file ``source`` with ``change`` applied to its contents."""
    contents = torch.load(source, weights_only=True)
    change(contents)
    torch.save(contents, out)
    return out


def test_a_config_asking_for_a_huge_model_is_refused_before_anything_is_built(setup, tmp_path):
    root, _, _ = setup
    exported = export_checkpoint(root / "best.pt", tmp_path / "model.pt").path

    def huge(contents):
        contents["config"]["model"]["transformer"]["d_model"] = 10**7

    for source in (root / "best.pt", exported):
        path = tampered(source, tmp_path / f"huge-{source.name}", huge)
        said = rf"huge-{source.name}: config: model\.transformer\.d_model: 10000000 is over the limit of 4096"
        with pytest.raises(CheckpointError, match=said):
            load_model(path)
    with pytest.raises(ExportError, match="d_model: 10000000 is over the limit"):
        export_checkpoint(tmp_path / "huge-best.pt", tmp_path / "int8.pt", dtype="int8")
    assert MODEL_SIZE_LIMITS["d_model"] == 4096


def test_weights_that_do_not_fit_their_config_are_refused_before_the_model_is_built(setup, tmp_path):
    root, _, _ = setup

    def wider(contents):
        contents["config"]["model"]["transformer"]["d_model"] = 128  # the weights are 64 wide

    path = tampered(root / "best.pt", tmp_path / "wider.pt", wider)
    with pytest.raises(CheckpointError, match=r"wider\.pt: the weights do not fit the model of its config: "
                       r".* is \(\d+, 64\), not \(\d+, 128\)"):
        load_model(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_holding_nan_or_infinity_are_refused_naming_the_tensor(setup, tmp_path, bad):
    root, _, _ = setup
    exported = export_checkpoint(root / "best.pt", tmp_path / "model.pt", dtype="int8").path
    name = "decoder.output.weight"

    def spoil(contents):
        if contents["format"] == "swipe-model":
            contents["int8_scales"][name][3] = bad  # a scale of an int8 weight: spoils its row
        else:
            contents["model"][name][3, 5] = bad

    for source in (root / "best.pt", exported):
        path = tampered(source, tmp_path / f"bad-{source.name}", spoil)
        said = rf"bad-{source.name}: weight '{name}' holds NaN or infinite values"
        with pytest.raises(CheckpointError, match=said):
            load_model(path)
    with pytest.raises(CheckpointError, match=rf"bad-best\.pt: weight '{name}' holds NaN"):
        export_checkpoint(tmp_path / "bad-best.pt", tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
