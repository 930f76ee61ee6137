"""End-to-end tests of the training loop on a tiny model and tiny synthetic data."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from swipe.config import to_dict
from swipe.training import (
    NonFiniteLossError,
    TrainingError,
    find_latest_run,
    load_checkpoint,
    load_model,
    load_train_config,
    train,
)
from swipe.training import trainer as trainer_module

ROOT = Path(__file__).resolve().parents[1]

TINY_MODEL = {
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
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dict:
    """A tiny synthetic train / val pair, generated and built once for the module."""
    from swipe.config import from_dict
    from swipe.training.config import TrainConfig
    from swipe.training.datasets import prepare_data_files

    root = tmp_path_factory.mktemp("data")
    cfg = from_dict(
        TrainConfig,
        {
            "name": "data",
            "model": TINY_MODEL,
            "data": {
                "train": str(root / "train"),
                "val": str(root / "val"),
                "synthetic": {"layouts": ["hws_fitted"], "lexicon": "en", "num_train": 150, "num_val": 40},
            },
            "max_steps": 1,
        },
    )
    prepare_data_files(cfg, root)
    return {"train": str(root / "train"), "val": str(root / "val"), "batch_size": 16}


def _config(tmp_path: Path, data: dict, **overrides) -> Path:
    cfg = {
        "name": "tiny",
        "model": TINY_MODEL,
        "data": data,
        "lexicon": "en",
        "max_steps": 12,
        "seed": 3,
        "optim": {"lr": 0.003, "grad_accum_steps": 2},
        "loss": {"label_smoothing": 0.1},
        "schedule": {"warmup_steps": 3, "plateau_patience": 0, "plateau_threshold": 0.0},
        "validation": {"every_steps": 3, "metric": "loss"},
        "logging": {"progress_bar": False, "every_steps": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def _train_cmd(cfg: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "--config", str(cfg), "--run-dir", str(run_dir), *extra]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _tb_steps(run_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [event.step for event in acc.Scalars(tag)]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread; in-process and subprocess runs then also use the
    same kernels, so their weights can be compared bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_resume_after_sigkill_is_bit_identical(tmp_path, tiny_data):
    """A run killed with SIGKILL at a random step and resumed ends with the weights of a run that
    was never interrupted; TensorBoard shows each step once."""
    cfg = _config(tmp_path, tiny_data, max_steps=24)
    full, killed = tmp_path / "full", tmp_path / "killed"
    train(load_train_config(cfg), run_dir=full)

    # Kill shortly after a random validation: the run is then always well short of its end.
    kill_after = random.choice((3, 6, 9, 12))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_train_cmd(cfg, killed), env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(f"step {kill_after}:"):
            break
    time.sleep(random.uniform(0.0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stopped_at = load_checkpoint(killed / "checkpoints" / "last.pt")["step"]
    assert kill_after <= stopped_at < 24

    # TensorBoard reads event files in name order: creation second, host, pid. This in-process
    # resume has a lower pid than the killed subprocess, so a file created in the same second
    # would be read first and the purge would miss the killed run's later events.
    time.sleep(1.05)
    train(load_train_config(cfg), run_dir=killed, resume=True)
    ca, cb = (
        load_checkpoint(full / "checkpoints" / "last.pt"),
        load_checkpoint(killed / "checkpoints" / "last.pt"),
    )
    assert ca["model"].keys() == cb["model"].keys()
    for name in ca["model"]:
        assert torch.equal(ca["model"][name], cb["model"][name]), name
    assert (ca["step"], ca["epoch"], ca["batch_in_epoch"]) == (cb["step"], cb["epoch"], cb["batch_in_epoch"])
    assert ca["scheduler"] == cb["scheduler"]
    assert _tb_steps(killed, "train/loss") == list(range(1, 25)) == _tb_steps(full, "train/loss")
    assert _tb_steps(killed, "val/loss") == list(range(3, 25, 3))


def test_sigterm_saves_and_stops(tmp_path, monkeypatch, tiny_data):
    real = trainer_module.sequence_loss
    calls = {"n": 0}

    def terminated(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 7:  # during optimizer step 4
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kw)

    monkeypatch.setattr(trainer_module, "sequence_loss", terminated)
    previous = signal.getsignal(signal.SIGTERM)
    cfg = _config(tmp_path, tiny_data, max_steps=100000, validation={"every_steps": 3})
    result = train(load_train_config(cfg), run_dir=tmp_path / "run")
    assert result.stop_reason == "signal" and result.step == 4
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 4
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored


def test_tiny_end_to_end_run(tmp_path, monkeypatch, tiny_data):
    """Trains a few steps on generated data, validates, checkpoints and reloads the model."""
    monkeypatch.chdir(tmp_path)
    data = {
        "synthetic": {"layouts": ["qwerty_en"], "lexicon": "en", "num_train": 64, "num_val": 16, "seed": 5},
        "batch_size": 16,
    }
    cfg_path = _config(
        tmp_path,
        data,
        max_steps=4,
        validation={"every_steps": 2, "metric": "word_accuracy", "mrr_curves": 4, "beam_size": 2},
        loss={"mask_impossible": True},
        keep_last_checkpoints=1,
    )
    result = train(load_train_config(cfg_path))
    run_dir = Path("runs") / "tiny"
    assert result.run_dir == run_dir and result.step == 4 and result.stop_reason == "max_steps"
    assert result.metrics is not None and result.metrics.num_curves == 16
    assert 0.0 <= result.metrics.word_accuracy <= 1.0 and result.metrics.swipe_mrr is not None
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["best.pt", "last.pt", "step-00000004.pt"]
    # The synthetic data went to the run directory, and the saved config names the splits.
    saved = load_train_config(run_dir / "config.json")
    assert saved.data.val == str(run_dir / "data" / "val") and Path(saved.data.val).is_dir()
    assert find_latest_run("runs") == run_dir
    loaded = load_model(run_dir / "checkpoints" / "best.pt")
    assert loaded.step in (2, 4) and [lay.name for lay in loaded.layouts] == ["qwerty_en"]
    assert not loaded.model.training

    # Starting again without --resume is refused and nothing is touched.
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.pt")}
    with pytest.raises(TrainingError, match="--resume"):
        train(load_train_config(cfg_path))
    assert before == {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.pt")}

    # Resuming a finished run does nothing; resuming with more steps continues.
    assert train(load_train_config(cfg_path), resume=True).stop_reason == "already_done"
    more = train(load_train_config(cfg_path), resume=True, max_minutes=None)
    assert more.step == 4
    import dataclasses

    longer = dataclasses.replace(load_train_config(cfg_path), max_steps=6)
    assert train(longer, resume=True).step == 6


def test_resume_with_another_model_is_refused(tmp_path, tiny_data):
    cfg_path = _config(tmp_path, tiny_data, max_steps=2, validation={"every_steps": 2})
    train(load_train_config(cfg_path), run_dir=tmp_path / "run")
    other = json.loads(cfg_path.read_text())
    other["model"]["transformer"]["d_model"] = 32
    cfg_path.write_text(json.dumps(other))
    with pytest.raises(TrainingError, match="'model' section differs"):
        train(load_train_config(cfg_path), run_dir=tmp_path / "run", resume=True)
    with pytest.raises(TrainingError, match="does not exist"):
        train(load_train_config(cfg_path), run_dir=tmp_path / "fresh", resume=True)


def test_non_finite_loss_stops_after_saving_the_last_good_state(tmp_path, monkeypatch, tiny_data):
    real = trainer_module.sequence_loss
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        loss = real(*args, **kw)
        return loss * float("nan") if calls["n"] == 9 else loss  # micro-batch 9 = optimizer step 5

    monkeypatch.setattr(trainer_module, "sequence_loss", flaky)
    cfg_path = _config(tmp_path, tiny_data, max_steps=10, validation={"every_steps": 2})
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* step 5"):
        train(load_train_config(cfg_path), run_dir=tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())


def test_time_limit_ends_with_a_checkpoint_and_says_so(tmp_path, tiny_data, capsys):
    cfg_path = _config(tmp_path, tiny_data, max_steps=100000, validation={"every_steps": 1000})
    result = train(load_train_config(cfg_path), run_dir=tmp_path / "run", max_minutes=0.05)
    assert result.stop_reason == "time_limit"
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == result.step > 0
    out = capsys.readouterr().out
    assert f"the time budget cut the run short at step {result.step} of 100000" in out


def test_a_logged_run_writes_lines_not_a_progress_bar(tmp_path, tiny_data):
    # Output to a file (not a terminal): one line per validation, no bar, even with progress_bar on.
    cfg_path = _config(tmp_path, tiny_data, max_steps=4, validation={"every_steps": 2})
    log = tmp_path / "train.log"
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "--config", str(cfg_path),
             "--run-dir", str(tmp_path / "run")],
            stdout=out, stderr=subprocess.STDOUT, check=True, cwd=ROOT,
        )
    text = log.read_text()
    assert "\r" not in text and "it/s" not in text and "step/s" not in text
    validations = [line.split(":")[0] for line in text.splitlines() if line.startswith("step ")]
    assert validations == ["step 2", "step 4"]


def test_max_epochs_ends_with_a_final_validation(tmp_path, tiny_data):
    # 150 curves in batches of 16 = 10 micro-batches = 5 optimizer steps of 2 per epoch.
    cfg = json.loads(_config(tmp_path, tiny_data).read_text())
    cfg.pop("max_steps")
    cfg["max_epochs"] = 1
    (tmp_path / "epochs.json").write_text(json.dumps(cfg))
    result = train(load_train_config(tmp_path / "epochs.json"), run_dir=tmp_path / "run")
    assert (result.stop_reason, result.step, result.epoch) == ("max_epochs", 5, 1)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["last_validation_step"] == 5


def test_early_stopping_counts_validations(tmp_path, tiny_data):
    # A tiny model's word accuracy stays 0: no improvement after the first validation.
    cfg_path = _config(
        tmp_path,
        tiny_data,
        max_steps=100,
        validation={"every_steps": 2, "metric": "word_accuracy"},
        schedule={"early_stopping_patience": 1},
    )
    result = train(load_train_config(cfg_path), run_dir=tmp_path / "run")
    assert result.stop_reason == "early_stopping" and result.step == 6


def test_dataloader_workers_give_the_same_weights(tmp_path, tiny_data):
    weights = []
    for workers in (0, 2):
        cfg_path = _config(
            tmp_path, {**tiny_data, "num_workers": workers}, max_steps=4, validation={"every_steps": 4}
        )
        train(load_train_config(cfg_path), run_dir=tmp_path / f"run{workers}")
        weights.append(load_checkpoint(tmp_path / f"run{workers}" / "checkpoints" / "last.pt")["model"])
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_load_model_survives_changed_synthetic_settings(tmp_path, monkeypatch):
    """A checkpoint whose synthetic-generator settings an older version wrote still loads."""
    monkeypatch.chdir(tmp_path)
    data = {
        "synthetic": {"layouts": ["qwerty_en"], "lexicon": "en", "num_train": 32, "num_val": 8},
        "batch_size": 16,
    }
    cfg_path = _config(tmp_path, data, max_steps=1, validation={"every_steps": 1})
    result = train(load_train_config(cfg_path))
    path = result.run_dir / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(path)
    ckpt["config"]["data"]["synthetic"]["generator"]["retired_option"] = 1.0
    torch.save(ckpt, path)
    with pytest.warns(UserWarning, match="retired_option"):
        loaded = load_model(path)
    assert loaded.config.data.val == str(result.run_dir / "data" / "val")
    ckpt["config"]["model"]["embedder"]["retired_option"] = 1.0
    torch.save(ckpt, path)
    with pytest.raises(Exception, match="model.embedder.retired_option: unknown key"):
        load_model(path)


def test_a_moved_run_directory_resumes(tmp_path):
    """Data generated inside the run directory moves with it: the resumed run finds it there."""
    synthetic = {"synthetic": {"layouts": ["hws_fitted"], "lexicon": "en", "num_train": 64, "num_val": 16},
                 "batch_size": 16}
    cfg = load_train_config(_config(tmp_path, synthetic, max_steps=3))
    assert train(cfg, run_dir=tmp_path / "old").step == 3
    (tmp_path / "old").rename(tmp_path / "new")
    result = train(load_train_config(_config(tmp_path, synthetic, max_steps=6)), resume=True,
                   run_dir=tmp_path / "new")
    assert result.step == 6
    saved = json.loads((tmp_path / "new" / "config.json").read_text())
    assert saved["data"]["train"] == str(tmp_path / "new" / "data" / "train")


def test_synthetic_data_recorded_before_a_new_generator_parameter_is_reused(tmp_path):
    """A dataset whose recorded settings lack a generator parameter added since (at its default)
    is the same data; a changed parameter is refused."""
    from swipe.training.datasets import DataError, prepare_data_files

    synthetic = {"synthetic": {"layouts": ["qwerty_en"], "lexicon": "en", "num_train": 16, "num_val": 4}}
    cfg = load_train_config(_config(tmp_path, synthetic))
    prepare_data_files(cfg, tmp_path / "run")
    sidecar = tmp_path / "run" / "data" / "train.synth.json"
    recorded = json.loads(sidecar.read_text())
    del recorded["synthetic"]["generator"]["device_scale_x_std"]
    sidecar.write_text(json.dumps(recorded))
    prepare_data_files(cfg, tmp_path / "run")  # reused, not refused
    changed = dict(synthetic["synthetic"], generator={"device_scale_x_std": 0.1})
    cfg = load_train_config(_config(tmp_path, {"synthetic": changed}))
    with pytest.raises(DataError, match="other synthetic settings"):
        prepare_data_files(cfg, tmp_path / "run")


# ---- fine-tuning (init_from) --------------------------------------------------------------------

SHIPPED_EN = ROOT / "swipe" / "resources" / "models" / "en_hws"


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, tiny_data) -> Path:
    """A tiny trained run whose model has two layouts, of which ``tiny_data`` uses one."""
    root = tmp_path_factory.mktemp("source")
    data = {**tiny_data, "layouts": ["qwerty_en", "hws_fitted"]}
    cfg = _config(root, data, max_steps=3, validation={"every_steps": 3})
    torch.set_num_threads(1)
    train(load_train_config(cfg), run_dir=root / "run")
    return root / "run"


def _start_weights(monkeypatch) -> dict:
    """Make ``Trainer.fit`` record the state it starts from instead of training."""
    seen: dict = {}

    def record(self, *args):
        seen["weights"] = {k: v.clone() for k, v in self.model.state_dict().items()}
        seen["step"], seen["optimizer_state"] = self.step, dict(self.optimizer.state)
        seen["lr"] = self.scheduler.get_last_lr()[0]
        seen["layouts"] = [layout.name for layout in self.data.layouts]
        return trainer_module.TrainResult(self.run_dir, self.step, self.epoch, "max_steps", None, None)

    monkeypatch.setattr(trainer_module.Trainer, "fit", record)
    return seen


@pytest.mark.parametrize("source", ["run", "shipped"])
def test_init_from_starts_from_the_source_weights(tmp_path, monkeypatch, tiny_data, source_run, source):
    """Step 0 of a fine-tuning run has the source model's weights, layouts and a fresh optimizer;
    a run directory and an exported (fp16) shipped model folder both work."""
    path = source_run if source == "run" else SHIPPED_EN
    loaded = load_model(path)
    cfg = _config(tmp_path, tiny_data, model=to_dict(loaded.config.model), init_from=str(path))
    seen = _start_weights(monkeypatch)
    train(load_train_config(cfg), run_dir=tmp_path / "run")
    expected = loaded.model.state_dict()
    assert seen["weights"].keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(seen["weights"][name], value), name
    assert seen["step"] == 0 and seen["optimizer_state"] == {} and seen["lr"] < 0.003
    assert seen["layouts"] == [layout.name for layout in loaded.layouts]


def test_fine_tuned_run_keeps_the_source_layouts(tmp_path, tiny_data, source_run):
    cfg = _config(tmp_path, tiny_data, max_steps=3, validation={"every_steps": 3}, init_from=str(source_run))
    result = train(load_train_config(cfg), run_dir=tmp_path / "run")
    assert result.step == 3
    tuned, source = load_model(tmp_path / "run"), load_model(source_run)
    assert tuned.layouts == source.layouts and tuned.tokenizer == source.tokenizer
    assert tuned.config.init_from == str(source_run)
    tuned_weights = tuned.model.state_dict()
    assert any(not torch.equal(v, tuned_weights[k]) for k, v in source.model.state_dict().items())


def test_init_from_another_architecture_is_refused(tmp_path, tiny_data, source_run):
    other = {**TINY_MODEL, "transformer": {**TINY_MODEL["transformer"], "d_model": 32, "dropout": 0.0}}
    cfg = _config(tmp_path, tiny_data, model=other, init_from=str(source_run))
    with pytest.raises(TrainingError) as err:
        train(load_train_config(cfg), run_dir=tmp_path / "run")
    message = str(err.value)
    assert str(source_run / "checkpoints" / "best.pt") in message
    assert "model.transformer.d_model: 16 in the model file, 32 in the config" in message
    assert "model.transformer.dropout" in message and "num_heads" not in message
    assert not (tmp_path / "run").exists()
    missing = _config(tmp_path, tiny_data, init_from=str(tmp_path / "nothing.pt"))
    with pytest.raises(TrainingError, match=r"init_from: .*nothing\.pt: no such checkpoint"):
        train(load_train_config(missing), run_dir=tmp_path / "run")


def test_init_from_a_model_of_other_layouts_is_refused(tmp_path, tiny_data):
    """The Russian model has no layout of the English data: the error names the file and layout."""
    ru = ROOT / "swipe" / "resources" / "models" / "ru_yandex"
    cfg = _config(tmp_path, tiny_data, model=to_dict(load_model(ru).config.model), init_from=str(ru))
    with pytest.raises(TrainingError, match=r"ru_yandex/model\.pt: layout 'hws_fitted' of data\.train"):
        train(load_train_config(cfg), run_dir=tmp_path / "run")


def test_data_characters_outside_the_model_alphabet_are_refused(tiny_data):
    from swipe.keyboard import bundled_layout
    from swipe.tokenizers import CharTokenizer
    from swipe.training.config import DataConfig

    data = DataConfig(train=tiny_data["train"], val=tiny_data["val"])
    hws, qwerty = [bundled_layout("hws_fitted")], [bundled_layout("qwerty_en")]
    letters = "abcdefghijklmnopqrstuvwxyz"
    check = trainer_module.check_data_fits_model
    check("init_from: m.pt", hws, CharTokenizer(letters), data)
    with pytest.raises(TrainingError, match=r"init_from: m\.pt: characters '.*z.*' of data\.train"):
        check("init_from: m.pt", hws, CharTokenizer(letters[:-1]), data)
    with pytest.raises(TrainingError, match="layout 'hws_fitted' of data.train .* not one of"):
        check("init_from: m.pt", qwerty, CharTokenizer(letters), data)


def test_resume_ignores_init_from(tmp_path, tiny_data, source_run):
    """A resumed fine-tuning run continues from its own checkpoint (the source may be gone) and
    ends with the weights of an uninterrupted one."""
    cfg = load_train_config(_config(tmp_path, tiny_data, max_steps=6, init_from=str(source_run)))
    train(cfg, run_dir=tmp_path / "full")
    train(dataclasses.replace(cfg, max_steps=3), run_dir=tmp_path / "part")
    gone = dataclasses.replace(cfg, init_from=str(tmp_path / "deleted"))
    result = train(gone, run_dir=tmp_path / "part", resume=True)
    assert result.step == 6
    full = _weights(tmp_path / "full" / "checkpoints" / "last.pt")
    part = _weights(tmp_path / "part" / "checkpoints" / "last.pt")
    for name in full:
        assert torch.equal(full[name], part[name]), name
    assert [lay.name for lay in load_model(tmp_path / "part").layouts] == ["qwerty_en", "hws_fitted"]


def test_weight_average_resumes_exactly_and_is_what_decoders_load(tmp_path, tiny_data):
    """With optim.ema_decay the checkpoints carry the average; an interrupted run ends with the
    average (and weights) of an uninterrupted one; load_model and export use the average."""
    from swipe.export import export_checkpoint, read_model_info

    cfg = load_train_config(_config(tmp_path, tiny_data, max_steps=6, optim={"ema_decay": 0.9}))
    train(cfg, run_dir=tmp_path / "full")
    train(dataclasses.replace(cfg, max_steps=3), run_dir=tmp_path / "split")
    train(cfg, run_dir=tmp_path / "split", resume=True)
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert full["weight_average"]["num_updates"] == split["weight_average"]["num_updates"] == 6
    averaged = full["weight_average"]["model"]
    for name in full["model"]:
        assert torch.equal(full["model"][name], split["model"][name]), name
        assert torch.equal(averaged[name], split["weight_average"]["model"][name]), name

    name = next(
        n for n, t in averaged.items() if t.is_floating_point() and not torch.equal(t, full["model"][n])
    )
    loaded = load_model(tmp_path / "full" / "checkpoints" / "last.pt")
    assert torch.equal(loaded.model.state_dict()[name], averaged[name])
    export_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt", tmp_path / "m.pt", dtype="fp32")
    assert read_model_info(tmp_path / "m.pt").provenance["weight_average"] == {"decay": 0.9, "num_updates": 6}
    assert torch.equal(load_model(tmp_path / "m.pt").model.state_dict()[name], averaged[name])


def test_weight_average_switched_on_at_resume_starts_there(tmp_path, tiny_data, capsys):
    cfg = load_train_config(_config(tmp_path, tiny_data, max_steps=3))
    train(cfg, run_dir=tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["weight_average"] is None
    on = dataclasses.replace(
        cfg,
        max_steps=5,
        optim=dataclasses.replace(cfg.optim, ema_decay=0.5),
        validation=dataclasses.replace(cfg.validation, every_steps=1),
    )
    train(on, run_dir=tmp_path / "run", resume=True)
    assert "starts from the resumed ones" in capsys.readouterr().err
    step4, step5 = (load_checkpoint(tmp_path / "run" / "checkpoints" / f"step-0000000{i}.pt") for i in (4, 5))
    assert (step4["weight_average"]["num_updates"], step5["weight_average"]["num_updates"]) == (1, 2)
    # Steps 4 and 5's weights weighed 0.5 and 1: the resumed weights of step 3 do not count.
    for name, w5 in step5["model"].items():
        w4 = step4["model"][name]
        assert torch.equal(step4["weight_average"]["model"][name], w4), name
        if w5.is_floating_point():
            expected = (0.5 * w4 + w5) / 1.5
            assert torch.allclose(step5["weight_average"]["model"][name], expected, atol=1e-6), name


def test_resume_accepts_a_checkpoint_written_before_a_config_key_was_added(tmp_path):
    """A key added to the config since the checkpoint was written compares at its default; a
    stored value that differs from the config's is still refused."""
    synthetic = {"synthetic": {"layouts": ["hws_fitted"], "lexicon": "en", "num_train": 64, "num_val": 16},
                 "batch_size": 16}
    cfg_path = _config(tmp_path, synthetic, max_steps=2, validation={"every_steps": 2})
    run_dir = tmp_path / "run"
    train(load_train_config(cfg_path), run_dir=run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(last)
    generator = ckpt["config"]["data"]["synthetic"]["generator"]
    del generator["device_scale_x"], generator["device_scale_x_std"]  # as an older version wrote it
    torch.save(ckpt, last)
    longer = dataclasses.replace(load_train_config(cfg_path), max_steps=3)
    assert train(longer, run_dir=run_dir, resume=True).step == 3

    ckpt = load_checkpoint(last)
    ckpt["config"]["data"]["synthetic"]["generator"]["device_scale_x"] = 0.9
    torch.save(ckpt, last)
    with pytest.raises(TrainingError, match=r"'data' section differs from the checkpoint's \(synthetic\)"):
        train(dataclasses.replace(longer, max_steps=4), run_dir=run_dir, resume=True)
