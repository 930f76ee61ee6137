"""Unit tests of the trainer's parts: schedule, loss, checkpoint files and RNG state, config."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swipe.config import ConfigError
from swipe.training.checkpoint import (
    CheckpointError,
    CheckpointFiles,
    atomic_save,
    capture_rng_state,
    find_latest_run,
    load_checkpoint,
    restore_rng_state,
)
from swipe.training.config import load_train_config
from swipe.training.loss import sequence_loss, token_stats
from swipe.training.schedule import EarlyStopping, PlateauTracker, WarmupPlateauScheduler


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


# ---- schedule ---------------------------------------------------------------------------------


def test_warmup_is_linear_then_flat():
    opt = _optimizer(1.0)
    sched = WarmupPlateauScheduler(opt, warmup_steps=4, mode="min", patience=2, factor=0.5)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_plateau_patience_is_counted_in_validations():
    opt = _optimizer(1.0)
    sched = WarmupPlateauScheduler(opt, warmup_steps=0, mode="min", patience=2, factor=0.5, min_lr=0.2)
    # Many optimizer steps between validations change nothing: only validations count.
    for _ in range(1000):
        sched.step()
    assert not sched.validation_step(1.0)  # first value is the best so far
    assert not sched.validation_step(1.0)  # 1 bad validation
    assert not sched.validation_step(1.5)  # 2 bad validations (= patience)
    assert opt.param_groups[0]["lr"] == 1.0
    assert sched.validation_step(1.2)  # 3rd bad validation -> reduce
    assert opt.param_groups[0]["lr"] == 0.5
    assert not sched.validation_step(0.9)  # improvement resets the count
    for _ in range(2):
        assert not sched.validation_step(0.95)
    assert sched.validation_step(0.95)
    assert opt.param_groups[0]["lr"] == 0.25
    for _ in range(3):
        sched.validation_step(2.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)  # floored at min_lr
    for _ in range(6):
        assert not sched.validation_step(2.0)  # nothing left to reduce
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)


def test_plateau_max_mode_and_threshold():
    tracker = PlateauTracker("max", patience=0, threshold=0.1)
    assert not tracker.update(0.5)
    assert tracker.update(0.54)  # less than 10 % better is not an improvement
    assert not tracker.update(0.6)


def test_scheduler_state_round_trip_keeps_lr():
    opt = _optimizer(1.0)
    sched = WarmupPlateauScheduler(opt, warmup_steps=10, mode="min", patience=0, factor=0.5)
    for _ in range(3):
        sched.step()
    sched.validation_step(1.0)
    sched.validation_step(2.0)
    state = sched.state_dict()
    opt2 = _optimizer(1.0)
    sched2 = WarmupPlateauScheduler(opt2, warmup_steps=10, mode="min", patience=0, factor=0.5)
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx(0.4 * 0.5)
    assert sched2.validation_step(3.0) == sched.validation_step(3.0)


def test_early_stopping_counts_validations():
    stop = EarlyStopping("max", patience=1)
    assert [stop.update(v) for v in (0.1, 0.2, 0.2, 0.19)] == [False, False, False, True]


# ---- loss -------------------------------------------------------------------------------------


def test_loss_matches_cross_entropy_and_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)
    target = torch.tensor([[1, 2, 0], [3, 0, 7]])  # 7 = <pad>
    pad = target == 7
    for eps in (0.0, 0.1):
        expected = F.cross_entropy(
            logits.reshape(-1, 5),
            target.masked_fill(pad, -100).reshape(-1),
            ignore_index=-100,
            label_smoothing=eps,
        )
        assert sequence_loss(logits, target, pad, eps) == pytest.approx(float(expected), rel=1e-6)
    # Changing a padded logit changes nothing.
    logits2 = logits.clone()
    logits2[1, 2] = 100.0
    assert sequence_loss(logits2, target, pad, 0.1) == sequence_loss(logits, target, pad, 0.1)


def test_loss_mask_removes_impossible_tokens_but_keeps_the_target():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 4, requires_grad=True)
    target = torch.tensor([[2, 0]])
    pad = torch.zeros(1, 2, dtype=torch.bool)
    allowed = torch.tensor([[[False, True, False, False], [True, False, False, True]]])  # target 2 not listed
    loss = sequence_loss(logits, target, pad, 0.1, allowed)
    loss.backward()
    assert torch.isfinite(loss)
    assert logits.grad[0, 0, 0] == 0 and logits.grad[0, 0, 3] == 0  # masked: no gradient
    assert logits.grad[0, 0, 2] != 0
    # With only {target, one other} allowed, the loss equals a 2-way cross-entropy.
    two_way = F.cross_entropy(
        logits.detach()[0, 0, [1, 2]].unsqueeze(0), torch.tensor([1]), label_smoothing=0.1
    )
    one = sequence_loss(logits.detach()[:, :1], target[:, :1], pad[:, :1], 0.1, allowed[:, :1])
    assert one == pytest.approx(float(two_way), rel=1e-6)


def test_token_stats_word_accuracy():
    target = torch.tensor([[1, 0, 9], [2, 2, 0]])  # 9 = <pad>
    pad = target == 9
    logits = torch.full((2, 3, 4), -5.0)
    logits[0, 0, 1] = logits[0, 1, 0] = 5.0  # word 0 right
    logits[1, 0, 2] = logits[1, 1, 1] = logits[1, 2, 0] = 5.0  # word 1: second token wrong
    stats = token_stats(logits, target, pad)
    assert (stats.num_tokens, stats.correct_tokens, stats.num_words, stats.correct_words) == (5, 4, 2, 1)


# ---- checkpoints ------------------------------------------------------------------------------


def test_rng_state_round_trip_through_a_safe_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    atomic_save({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    restore_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_checkpoint_files_keep_last_k_and_best(tmp_path):
    files = CheckpointFiles(tmp_path, keep_last=2)
    for step in (10, 20, 30):
        files.save(
            {"format": "swipe-checkpoint", "version": 1, "step": step},
            step,
            is_best=step == 20,
            keep_step=True,
        )
    assert [p.name for p in files.step_checkpoints()] == ["step-00000020.pt", "step-00000030.pt"]
    assert load_checkpoint(files.last)["step"] == 30
    assert load_checkpoint(files.best)["step"] == 20
    assert not list(files.dir.glob(".*tmp*"))


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a swipe checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_unsafe_checkpoint_is_refused(tmp_path):
    import argparse

    torch.save(
        {"format": "swipe-checkpoint", "version": 1, "x": argparse.Namespace(a=1)}, tmp_path / "evil.pt"
    )
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_atomic_checkpoint_survives_a_kill(tmp_path):
    """A process killed while writing checkpoints in a loop always leaves a loadable last.pt."""
    script = textwrap.dedent(
        f"""
        import torch
        from swipe.training.checkpoint import CheckpointFiles
        files = CheckpointFiles({str(tmp_path)!r}, keep_last=2)
        big = torch.randn(2_000_000)
        step = 0
        while True:
            step += 1
            files.save({{"format": "swipe-checkpoint", "version": 1, "step": step, "w": big + step}},
                       step, is_best=step % 3 == 0, keep_step=True)
            print(step, flush=True)
        """
    )
    for delay in (0.9, 1.3, 1.7):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one checkpoint written
        time.sleep(delay % 0.5)
        proc.kill()
        proc.wait()
        files = CheckpointFiles(tmp_path, keep_last=2)
        ckpt = load_checkpoint(files.last)
        assert torch.equal(ckpt["w"][:3], torch.zeros(3) + ckpt["w"][:3])  # readable tensor
        for path in files.step_checkpoints() + [files.best]:
            load_checkpoint(path)


def test_find_latest_run(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_latest_run(tmp_path)
    for i, name in enumerate(("a", "b")):
        files = CheckpointFiles(tmp_path / name, 1)
        files.save({"format": "swipe-checkpoint", "version": 1}, 1, False, False)
        t = time.time() + i
        import os

        os.utime(files.last, (t, t))
    assert find_latest_run(tmp_path).name == "b"


# ---- config -----------------------------------------------------------------------------------


def _minimal_config() -> dict:
    return {
        "name": "t",
        "model": {
            "embedder": {"name": "nearest"},
            "transformer": {
                "d_model": 16,
                "encoder": "transformer",
                "num_encoder_layers": 1,
                "num_decoder_layers": 1,
                "num_heads": 2,
                "dim_feedforward": 16,
                "dropout": 0.1,
            },
        },
        "data": {"train": "a", "val": "b"},
        "max_steps": 10,
    }


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["optim"].update(lrr=1.0), r"cfg\.json: optim\.lrr: unknown key \(did you mean 'lr'\?\)"),
        (lambda c: c.pop("name"), r"cfg\.json: name: missing required key"),
        (lambda c: c["optim"].update(lr="fast"), r"cfg\.json: optim\.lr: expected float"),
        (
            lambda c: c["model"]["transformer"].pop("encoder"),
            r"cfg\.json: model\.transformer\.encoder: missing",
        ),
        (lambda c: c["validation"].update(metric="bleu"), r"cfg\.json: validation\.metric: expected one of"),
        (lambda c: c.pop("max_steps"), r"cfg\.json: give max_steps or max_epochs"),
        (lambda c: c["data"].update(pool_batches=0), r"cfg\.json: .*pool_batches must be >= 1"),
    ],
)
def test_strict_config_errors_name_file_and_key(tmp_path, edit, message):
    cfg = _minimal_config()
    cfg["optim"] = {}
    cfg["validation"] = {}
    load_train_config_path = tmp_path / "cfg.json"
    load_train_config_path.write_text(json.dumps(cfg))
    load_train_config(load_train_config_path)  # valid as written
    edit(cfg)
    load_train_config_path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=message):
        load_train_config(load_train_config_path)


def test_training_sampler_pools_as_the_config_says():
    """``data.pool_batches`` reaches the training sampler: with pools of one batch the batches are
    random draws of the epoch's permutation, not runs of similar lengths."""
    from types import SimpleNamespace

    from swipe.training.config import DataConfig
    from swipe.training.datasets import PreparedData
    from swipe.training.distributed import DistInfo

    lengths = np.arange(1, 513)  # curve i has i + 1 points
    train = SimpleNamespace(resampled_num_points=lambda resample: lengths)
    spreads = {}
    for pool in (64, 1):
        data = PreparedData(DataConfig(train="a", val="b", pool_batches=pool), train, None, [], None, None)
        sampler = data.make_sampler(8, seed=0, dist=DistInfo(0, 1, 0))
        assert sampler.pool_batches == pool
        spreads[pool] = np.mean([np.ptp(lengths[batch]) for batch in sampler])
    assert spreads[64] < 20 < 100 < spreads[1]


def test_bundled_configs_load():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))
    assert configs, "configs/ is empty"
    for path in configs:
        load_train_config(path)


# ---- command line -----------------------------------------------------------------------------


def _train_script():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "train_script", Path(__file__).resolve().parents[1] / "train.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reports_config_errors_with_the_file_name(tmp_path, capsys):
    cfg = _minimal_config()
    cfg["optim"] = {"lrr": 1.0}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    assert _train_script().main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.json: optim.lrr: unknown key (did you mean 'lr'?)" in err
    path.write_text("{not json")
    assert _train_script().main(["--config", str(path)]) == 2
    assert "bad.json: line 1: invalid JSON" in capsys.readouterr().err


def test_cli_refuses_to_resume_without_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(_minimal_config()))
    assert _train_script().main(["--config", str(path), "--resume", "--run-dir", str(tmp_path / "run")]) == 2
    assert "does not exist; start the run without --resume" in capsys.readouterr().err
