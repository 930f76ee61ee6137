"""Training: the loop, its configuration, checkpoints and the learning-rate schedule.

From Python (a notebook, a script)::

    from swipe.training import load_train_config, train
    result = train(load_train_config("configs/quickstart_en.json"), max_minutes=10)

    from swipe.training import load_model, find_latest_run
    loaded = load_model(find_latest_run() / "checkpoints" / "best.pt")

Names are imported on first use, so importing one module of the package (``swipe.training.config``)
does not load the trainer.
"""

from __future__ import annotations

from swipe.lazy import lazy_names

_WHERE = {
    "CheckpointError": "checkpoint",
    "DataConfig": "config",
    "DataError": "datasets",
    "EarlyStopping": "schedule",
    "LoadedModel": "checkpoint",
    "LoggingConfig": "config",
    "LossConfig": "config",
    "NonFiniteLossError": "trainer",
    "OptimConfig": "config",
    "PreparedData": "datasets",
    "QUICKSTART_CONFIG": "trainer",
    "ScheduleConfig": "config",
    "SyntheticConfig": "config",
    "TrainConfig": "config",
    "TrainResult": "trainer",
    "Trainer": "trainer",
    "TrainingError": "trainer",
    "ValidationConfig": "config",
    "ValidationMetrics": "trainer",
    "WarmupPlateauScheduler": "schedule",
    "find_latest_run": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_config_for_run": "trainer",
    "load_model": "checkpoint",
    "load_train_config": "config",
    "train": "trainer",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_names(__name__, _WHERE)
