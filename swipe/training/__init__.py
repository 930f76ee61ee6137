"""Training: the loop, its configuration, checkpoints and the learning-rate schedule.

From Python (a notebook, a script)::

    from swipe.training import load_train_config, train
    result = train(load_train_config("configs/quickstart_en.json"), max_minutes=10)

    from swipe.training import load_model, find_latest_run
    loaded = load_model(find_latest_run() / "checkpoints" / "best.pt")
"""

from swipe.training.checkpoint import (
    CheckpointError,
    LoadedModel,
    find_latest_run,
    load_checkpoint,
    load_model,
)
from swipe.training.config import (
    DataConfig,
    LoggingConfig,
    LossConfig,
    OptimConfig,
    ScheduleConfig,
    SyntheticConfig,
    TrainConfig,
    ValidationConfig,
    load_train_config,
)
from swipe.training.datasets import DataError, PreparedData
from swipe.training.schedule import EarlyStopping, WarmupPlateauScheduler
from swipe.training.trainer import (
    QUICKSTART_CONFIG,
    NonFiniteLossError,
    Trainer,
    TrainingError,
    TrainResult,
    ValidationMetrics,
    load_config_for_run,
    train,
)

__all__ = [
    "QUICKSTART_CONFIG",
    "CheckpointError",
    "DataConfig",
    "DataError",
    "EarlyStopping",
    "LoadedModel",
    "LoggingConfig",
    "LossConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "PreparedData",
    "ScheduleConfig",
    "SyntheticConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "ValidationConfig",
    "ValidationMetrics",
    "WarmupPlateauScheduler",
    "find_latest_run",
    "load_checkpoint",
    "load_config_for_run",
    "load_model",
    "load_train_config",
    "train",
]
