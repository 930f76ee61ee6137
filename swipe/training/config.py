"""The training configuration: one strict, typed dataclass per section.

A config file is JSON read with :func:`load_train_config`; an unknown, missing or mistyped key is a
:class:`swipe.config.ConfigError` naming the file and the key path. Every key is documented in
``docs/training.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from swipe.config import ConfigError, FieldError, load_json
from swipe.data.resample import ResampleConfig
from swipe.models.config import ModelConfig
from swipe.synth import SynthConfig

Metric = Literal["loss", "token_accuracy", "word_accuracy", "swipe_mrr"]

# Metrics for which a higher value is better.
HIGHER_IS_BETTER = {"token_accuracy", "word_accuracy", "swipe_mrr"}


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic swipes made with :mod:`swipe.synth` and built into ``data.train`` / ``data.val``.

    Attributes
    ----------
    layouts : list of str
        Bundled layout names (e.g. ``hws_fitted``, ``qwerty_en``, ``default``) or names from
        ``data.layouts_file``; with several, each curve picks one at random.
    lexicon : str
        ``"en"``, ``"ru"`` or the path of a word list.
    num_train, num_val : int
        Curves in each split.
    seed : int
        Seed of the training split; the validation split uses ``seed + 1``.
    by_frequency : bool
        Draw words by lexicon frequency (else uniformly).
    generator : SynthConfig
        Generator parameters (defaults fitted to real English swipes; see ``docs/synth.md``).
    """

    layouts: list[str]
    lexicon: str
    num_train: int
    num_val: int
    seed: int = 0
    by_frequency: bool = True
    generator: SynthConfig = field(default_factory=SynthConfig)

    def __post_init__(self) -> None:
        if not self.layouts:
            raise ValueError("layouts must name at least one layout")
        if self.num_train < 1 or self.num_val < 1:
            raise ValueError("num_train and num_val must be positive")


@dataclass(frozen=True)
class DataConfig:
    """Where the training and validation curves come from.

    Attributes
    ----------
    train, val : str or None
        A built dataset directory (``python -m swipe.data build``) or a raw file in any format
        :mod:`swipe.formats` reads (built once into ``cache_dir``). With ``synthetic``, the dataset
        directories the generated curves are built into (default ``<run_dir>/data/train`` and
        ``.../val``). ``val`` is also the split ``predict.py`` decodes by default.
    synthetic : SyntheticConfig or None
        Generate the data instead of reading it (skipped when already built).
    layouts_file : str or None
        A grids file for raw data that names its grids instead of holding them inline.
    layouts : list of str or None
        The model's layouts, in order; default: those of the training dataset.
    alphabet : str or None
        The tokenizer's characters; default: the training dataset's tokenizer.
    cache_dir : str or None
        Where raw files are built into datasets; default ``<run_dir>/data``.
    skip_bad_rows : bool
        Skip (and count) malformed rows of raw files instead of stopping at the first.
    max_points : int or None
        Curves with more points are thinned to this many evenly spaced points when batched
        (bounds the memory of very long curves); ``predict.py`` thins the same way. ``None``
        keeps every point.
    resample : ResampleConfig or None
        Resample every curve onto a regular grid of time or path length before its features are
        computed (:mod:`swipe.data.resample`), in training and in ``predict.py`` alike; ``None``
        keeps the logged points.
    batch_size : int
        Curves per micro-batch (per process under DDP).
    val_batch_size : int or None
        Curves per validation batch; default ``batch_size``.
    num_workers : int
        DataLoader worker processes (the dataset is memory-mapped, so workers share its pages).
    pool_batches : int
        Training batches per length-sorting pool of the sampler
        (:class:`~swipe.data.LengthBucketBatchSampler`): larger pools pad less, so steps are
        faster; smaller ones mix curves of other lengths into a batch (1: random batches).
    """

    train: str | None = None
    val: str | None = None
    synthetic: SyntheticConfig | None = None
    layouts_file: str | None = None
    layouts: list[str] | None = None
    alphabet: str | None = None
    cache_dir: str | None = None
    skip_bad_rows: bool = False
    max_points: int | None = None
    resample: ResampleConfig | None = None
    batch_size: int = 256
    val_batch_size: int | None = None
    num_workers: int = 0
    pool_batches: int = 64

    def __post_init__(self) -> None:
        if self.synthetic is None and (self.train is None or self.val is None):
            raise ValueError("give 'train' and 'val', or a 'synthetic' section")
        if self.batch_size < 1 or (self.val_batch_size is not None and self.val_batch_size < 1):
            raise ValueError("batch sizes must be positive")
        if self.num_workers < 0:
            raise ValueError("num_workers must be >= 0")
        if self.pool_batches < 1:
            raise ValueError(f"pool_batches must be >= 1, got {self.pool_batches}")
        if self.max_points is not None and self.max_points < 2:
            raise ValueError("max_points must be at least 2")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and the gradient.

    Attributes
    ----------
    lr : float
        Peak learning rate (after warm-up).
    weight_decay : float
        Decoupled weight decay, applied to matrices and embeddings only (not to biases and norms).
    betas : tuple of float
    eps : float
    grad_clip : float or None
        Clip the global gradient norm to this; ``None`` disables clipping.
    grad_accum_steps : int
        Micro-batches per optimizer step.
    ema_decay : float or None
        Keep an exponential moving average of the weights with this decay per optimizer step
        (about ``1 / (1 - ema_decay)`` steps averaged; :mod:`swipe.training.averaging`):
        validation, ``best.pt`` and the decoders loading a checkpoint use the average. ``None``
        disables it. May be switched on when a run resumes (the average then starts there).
    """

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    grad_accum_steps: int = 1
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise FieldError("lr", f"must be positive, got {self.lr}")
        if self.grad_accum_steps < 1:
            raise FieldError("grad_accum_steps", f"must be >= 1, got {self.grad_accum_steps}")
        if self.eps <= 0:
            raise FieldError("eps", f"must be positive, got {self.eps}")
        if self.weight_decay < 0:
            raise FieldError("weight_decay", f"must be >= 0, got {self.weight_decay}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise FieldError("grad_clip", f"must be positive or null, got {self.grad_clip}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or null, got {self.ema_decay}")


@dataclass(frozen=True)
class LossConfig:
    """Cross-entropy over target tokens (padding ignored).

    Attributes
    ----------
    label_smoothing : float
        Share of the target probability spread over the other allowed tokens.
    mask_impossible : bool
        Mask next characters that lead to no word of ``lexicon`` (the decoding trie applied to the
        logits under teacher forcing); the target token is always allowed.
    """

    label_smoothing: float = 0.0
    mask_impossible: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True)
class ScheduleConfig:
    """Linear warm-up, then reduce on plateau; patience counted in validations.

    Attributes
    ----------
    warmup_steps : int
        Optimizer steps of linear warm-up.
    plateau_patience : int
        Validations without improvement of ``validation.metric`` before the rate is reduced.
    plateau_factor : float
        Multiplier of each reduction.
    plateau_threshold : float
        Relative improvement that counts as one.
    min_lr : float
        No reduction goes below this.
    early_stopping_patience : int or None
        Stop after this many validations without improvement; ``None`` disables.
    """

    warmup_steps: int = 500
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    plateau_threshold: float = 0.001
    min_lr: float = 1e-5
    early_stopping_patience: int | None = None

    def __post_init__(self) -> None:
        for key in ("warmup_steps", "plateau_patience", "plateau_threshold", "min_lr"):
            if getattr(self, key) < 0:
                raise FieldError(key, f"must be >= 0, got {getattr(self, key)}")
        if not 0 < self.plateau_factor <= 1:
            raise FieldError("plateau_factor", f"must be in (0, 1], got {self.plateau_factor}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            patience = self.early_stopping_patience
            raise FieldError("early_stopping_patience", f"must be >= 1 or null, got {patience}")


@dataclass(frozen=True)
class ValidationConfig:
    """When and how to validate.

    Attributes
    ----------
    every_steps : int
        Validate (and checkpoint) every this many optimizer steps, and at the end.
    metric : {"loss", "token_accuracy", "word_accuracy", "swipe_mrr"}
        Drives the plateau scheduler, early stopping and ``best.pt``.
    max_curves : int or None
        Validate on the first this many curves of the split; ``None`` uses all.
    mrr_curves : int
        Also decode the first this many validation curves with lexicon-constrained beam search and
        report Swipe MRR; 0 disables.
    beam_size : int
        Beam size of that search.
    """

    every_steps: int = 1000
    metric: Metric = "loss"
    max_curves: int | None = None
    mrr_curves: int = 0
    beam_size: int = 4

    def __post_init__(self) -> None:
        if self.every_steps < 1:
            raise ValueError("every_steps must be >= 1")
        if self.metric == "swipe_mrr" and self.mrr_curves < 1:
            raise ValueError("metric 'swipe_mrr' needs mrr_curves > 0")


@dataclass(frozen=True)
class LoggingConfig:
    """Progress bar and TensorBoard.

    Attributes
    ----------
    loss_window : int
        The progress bar shows the mean training loss of the last this many optimizer steps.
    every_steps : int
        Write training scalars to TensorBoard every this many optimizer steps.
    tensorboard : bool
        Write ``<run_dir>/tb``.
    progress_bar : bool
        Show the tqdm progress bar.
    """

    loss_window: int = 50
    every_steps: int = 10
    tensorboard: bool = True
    progress_bar: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run.

    Attributes
    ----------
    name : str
        The run's name; the default run directory is ``runs/<name>``.
    model : ModelConfig
        Architecture (see ``docs/models.md``).
    data : DataConfig
    lexicon : str
        ``"en"``, ``"ru"`` or a word-list path: the vocabulary for loss masking, validation MRR and
        ``predict.py``'s default.
    max_steps, max_epochs : int or None
        Stop after this many optimizer steps / epochs (at least one must be given).
    max_minutes : float or None
        Wall-clock budget of the whole run (data preparation included): training stops in time to
        write its checkpoint. ``train.py --max-minutes`` overrides it.
    seed : int
        Seeds model initialisation, dropout and the batch order.
    device : {"auto", "cpu", "cuda"}
        ``auto`` picks CUDA when available.
    num_threads : int or None
        CPU threads of torch's intra-op pool (``torch.set_num_threads``); ``None`` keeps torch's
        default (one per core). One thread is much faster on a machine shared with other jobs.
    precision : {"auto", "fp32", "bf16", "fp16"}
        Autocast dtype on CUDA (``auto``: bf16 where supported, else fp16 with a gradient
        scaler); CPU always trains in fp32.
    keep_last_checkpoints : int
        How many ``step-*.pt`` checkpoints to keep.
    run_dir : str or None
        Default ``runs/<name>``.
    init_from : str or None
        Fine-tune: a checkpoint, a run directory or an exported / shipped model folder whose
        weights the model starts from (its architecture must be ``model``; its layouts and
        tokenizer become the run's). Optimizer, schedule and step count start fresh; ignored on
        resume.
    """

    name: str
    model: ModelConfig
    data: DataConfig
    lexicon: str = "en"
    max_steps: int | None = None
    max_epochs: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = None
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    keep_last_checkpoints: int = 3
    run_dir: str | None = None
    init_from: str | None = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name:
            raise ValueError(f"name must be a plain non-empty name, got {self.name!r}")
        if self.max_steps is None and self.max_epochs is None:
            raise ValueError("give max_steps or max_epochs (or both)")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError("num_threads must be >= 1")
        if (self.max_steps is not None and self.max_steps < 1) or (
            self.max_epochs is not None and self.max_epochs < 1
        ):
            raise ValueError("max_steps and max_epochs must be positive")
        if self.init_from is not None and not self.init_from:
            raise ValueError("init_from must name a model file or directory")
        if self.keep_last_checkpoints < 0:
            raise FieldError("keep_last_checkpoints", f"must be >= 0, got {self.keep_last_checkpoints}")
        check_max_minutes(self.max_minutes)

    @property
    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir) if self.run_dir is not None else Path("runs") / self.name


def check_max_minutes(value: float | None, key: str = "max_minutes") -> None:
    """Refuse a wall-clock budget that is not a positive, finite number of minutes (NaN would
    silently turn the time guard off)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise FieldError(key, f"must be a positive number of minutes or null, got {value}")


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a training config JSON file strictly; errors name the file and the key.

    The files it names are checked too (:func:`check_config_files`), so that a wrong path stops
    the run before any training.
    """
    config = load_json(TrainConfig, path)
    check_config_files(config, f"{path}:")
    return config


def check_config_files(config: TrainConfig, where: str = "") -> None:
    """Refuse a config whose lexicons or synthetic layouts name nothing that exists.

    Parameters
    ----------
    config : TrainConfig
    where : str
        Prefix for messages (the config file followed by ``:``).

    Raises
    ------
    ConfigError
        ``"<file>: <key path>: <problem>"``.
    """
    from swipe.keyboard import LayoutError, bundled_layout, load_layouts_file
    from swipe.lexicon import BUNDLED_LEXICONS, LexiconError, load_lexicon

    prefix = f"{where} " if where else ""
    lexicons = [("lexicon", config.lexicon)]
    synthetic = config.data.synthetic
    if synthetic is not None:
        lexicons.append(("data.synthetic.lexicon", synthetic.lexicon))
    for key, name in lexicons:
        if name not in BUNDLED_LEXICONS and not Path(name).is_file():
            bundled = ", ".join(BUNDLED_LEXICONS)
            raise ConfigError(f"{prefix}{key}: no lexicon file {name!r} (nor a bundled lexicon: {bundled})")
        if name not in BUNDLED_LEXICONS:
            try:  # read now: a file that is not a lexicon would otherwise be found after training
                load_lexicon(name)
            except LexiconError as err:
                raise ConfigError(f"{prefix}{key}: {err}") from None
    extra: dict[str, object] = {}
    if config.data.layouts_file is not None:
        try:
            extra = dict(load_layouts_file(config.data.layouts_file))
        except (OSError, LayoutError) as err:
            raise ConfigError(f"{prefix}data.layouts_file: {err}") from None
    for i, name in enumerate(synthetic.layouts if synthetic is not None else []):
        if name in extra:
            continue
        try:
            bundled_layout(name)
        except LayoutError as err:
            raise ConfigError(f"{prefix}data.synthetic.layouts[{i}]: {err}") from None
