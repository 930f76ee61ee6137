"""The CUDA path: training steps in each precision, exact resume, decoding as on the CPU.

Marked ``cuda`` and skipped without a GPU; ``bash bench/gpu_check.sh`` runs them with the
benchmarks' CUDA rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from swipe.config import from_dict
from swipe.training import load_checkpoint, train
from swipe.training.config import TrainConfig

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

TINY_MODEL = {
    "embedder": {"name": "nearest"},
    "transformer": {"d_model": 32, "encoder": "transformer", "num_encoder_layers": 1, "num_decoder_layers": 1,
                    "num_heads": 2, "dim_feedforward": 64, "dropout": 0.1},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    from swipe.training.datasets import prepare_data_files

    root = tmp_path_factory.mktemp("data")
    synthetic = {"layouts": ["hws_fitted"], "lexicon": "en", "num_train": 256, "num_val": 64}
    cfg = config({"train": str(root / "train"), "val": str(root / "val"), "synthetic": synthetic})
    prepare_data_files(cfg, root)
    return {"train": str(root / "train"), "val": str(root / "val"), "batch_size": 32}


def config(data: dict, **overrides) -> TrainConfig:
    raw = {
        "name": "cuda",
        "model": TINY_MODEL,
        "data": data,
        "max_steps": 8,
        "seed": 5,
        "device": "cuda",
        "optim": {"lr": 0.003},
        "schedule": {"warmup_steps": 2},
        "validation": {"every_steps": 4, "metric": "loss"},
        "logging": {"progress_bar": False, "tensorboard": False},
        **overrides,
    }
    return from_dict(TrainConfig, raw)


BF16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
PRECISIONS = ["fp32", "fp16", *(["bf16"] if BF16 else [])]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_training_steps_on_cuda(tmp_path, data, precision):
    result = train(config(data, precision=precision, max_steps=4), run_dir=tmp_path / precision)
    assert result.step == 4 and result.metrics is not None
    assert torch.isfinite(torch.tensor(result.metrics.get("loss")))
    ckpt = load_checkpoint(tmp_path / precision / "checkpoints" / "last.pt")
    assert all(t.device.type == "cpu" for t in ckpt["model"].values())  # checkpoints load anywhere
    if precision == "fp16":  # the gradient scaler is used and checkpointed
        assert ckpt["scaler"] is not None and ckpt["scaler"]["scale"] > 0
    else:
        assert ckpt["scaler"] is None


def test_resume_on_cuda_continues_exactly(tmp_path, data):
    cfg = config(data, precision="fp16")
    train(cfg, run_dir=tmp_path / "full")
    train(dataclasses.replace(cfg, max_steps=4), run_dir=tmp_path / "split")
    train(cfg, run_dir=tmp_path / "split", resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 8
    assert (a["epoch"], a["batch_in_epoch"]) == (b["epoch"], b["batch_in_epoch"])
    assert a["scaler"] == b["scaler"]
    for name in a["model"]:
        # Some CUDA backward kernels add in a varying order: equal up to float rounding.
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=1e-4, atol=1e-5, msg=name)


def test_decoding_on_cuda_gives_the_cpu_candidates(tmp_path):
    from swipe.data import build_dataset
    from swipe.decoding import BeamOptions, LexiconTrie
    from swipe.lexicon import load_lexicon
    from swipe.predict import CheckpointLoader, DatasetCurves, DecodeJob, FirstCurves, decode
    from swipe.resources import REAL_EN_SWIPES

    root = Path(__file__).resolve().parents[1]
    loader = CheckpointLoader(root / "swipe" / "resources" / "models" / "en_hws")
    loaded = loader.load("cpu")
    trie = LexiconTrie.from_lexicon(load_lexicon("en"), loaded.tokenizer)
    build_dataset([REAL_EN_SWIPES], tmp_path / "real")
    curves = FirstCurves(DatasetCurves.for_model(tmp_path / "real", loaded), 96)
    options = BeamOptions(beam_size=8)
    cpu = decode(DecodeJob(loader, curves, "beam", options, trie, "cpu"), 32, num_workers=0)
    cuda = decode(DecodeJob(loader, curves, "beam", options, trie, "cuda"), 32, num_workers=0)
    assert len(cpu) == len(cuda) == 96
    for i, (a, b) in enumerate(zip(cpu, cuda, strict=True)):
        scores_a = {w: s for s, w in a}
        for (sa, wa), (sb, wb) in zip(a, b, strict=False):
            if wa != wb:  # only a near-tie may swap places
                assert abs(sa - sb) < 1e-3 and abs(scores_a.get(wb, -1e9) - sb) < 1e-3, (i, a, b)
            else:
                assert abs(sa - sb) < 1e-3, (i, wa, sa, sb)

