"""DistributedDataParallel on CPU: two gloo processes started with torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from swipe.training import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ddp_config(tmp_path_factory) -> Path:
    from swipe.config import from_dict
    from swipe.training.config import TrainConfig
    from swipe.training.datasets import prepare_data_files

    root = tmp_path_factory.mktemp("ddp")
    cfg = {
        "name": "ddp",
        "model": {
            "embedder": {"name": "nearest"},
            "transformer": {
                "d_model": 16,
                "encoder": "transformer",
                "num_encoder_layers": 1,
                "num_decoder_layers": 1,
                "num_heads": 2,
                "dim_feedforward": 32,
                "dropout": 0.1,
            },
        },
        "data": {
            "train": str(root / "train"),
            "val": str(root / "val"),
            "synthetic": {"layouts": ["hws_fitted"], "lexicon": "en", "num_train": 100, "num_val": 20},
            "batch_size": 8,
            "num_workers": 1,
        },
        "max_steps": 4,
        "optim": {"lr": 0.003},
        "schedule": {"warmup_steps": 2},
        "validation": {"every_steps": 2},
        "logging": {"progress_bar": False},
    }
    prepare_data_files(from_dict(TrainConfig, cfg), root)
    path = root / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def _torchrun(cfg: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(ROOT / "train.py"), "--config", str(cfg), "--run-dir", str(run_dir), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_two_process_training_writes_one_rank_aware_checkpoint(tmp_path, ddp_config):
    run = tmp_path / "run"
    result = _torchrun(ddp_config, run)
    assert result.stdout.count("stopped (max_steps) at step 4") == 1  # rank 0 reports
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # own dropout per rank
    # 100 curves in batches of 8 = 13 batches, 7 per rank: step 4 is in the first epoch.
    assert (ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]) == (4, 0, 4)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best.pt", "last.pt", "step-00000002.pt", "step-00000004.pt"]


@pytest.mark.slow
def test_two_process_resume_is_bit_identical(tmp_path, ddp_config):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    _torchrun(ddp_config, full, "--max-steps", "10")
    _torchrun(ddp_config, resumed, "--max-steps", "6")
    _torchrun(ddp_config, resumed, "--max-steps", "10", "--resume")
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert (
        (a["step"], a["epoch"], a["batch_in_epoch"])
        == (b["step"], b["epoch"], b["batch_in_epoch"])
        == (10, 1, 3)
    )
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
