"""The training loop: AdamW, accumulation, AMP, validation, checkpoints, exact resume, DDP.

Everything is driven by a :class:`~swipe.training.config.TrainConfig`; :func:`train` is the one
entry point (``train.py`` only parses arguments and calls it).

Exact resume. The batches of an epoch are a pure function of ``(seed, epoch)`` (the length-bucket
sampler), and a checkpoint records the epoch, the number of micro-batches consumed in it, the
optimizer, scheduler and scaler states, and every RNG state of every rank. A resumed run therefore
replays the remaining batches with the same dropout masks and ends with bit-identical weights (on
the same hardware, software and number of processes).

With ``optim.ema_decay`` the trainer also keeps a moving average of the weights
(:class:`~swipe.training.averaging.WeightAverage`), updated after every optimizer step, checkpointed
with the rest, and used for validation (so for ``best.pt``, the plateau schedule and early
stopping too).
"""

from __future__ import annotations

import dataclasses
import math
import random
import signal
import sys
import time
from collections import deque
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader

from swipe.batch import Batch
from swipe.config import ConfigError, from_dict, save_json, to_dict
from swipe.keyboard import Layout
from swipe.progress import progress_bar
from swipe.tokenizers import CharTokenizer
from swipe.training.averaging import WeightAverage
from swipe.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    CheckpointFiles,
    LoadedModel,
    RunDirLock,
    capture_rng_state,
    layouts_to_grids,
    load_checkpoint,
    load_model,
    model_parts,
    resolve_model_file,
    restore_rng_state,
)
from swipe.training.config import (
    HIGHER_IS_BETTER,
    DataConfig,
    TrainConfig,
    check_config_files,
    check_max_minutes,
)
from swipe.training.datasets import PreparedData, open_data, prepare_data_files, resolve_data_config
from swipe.training.distributed import (
    DistInfo,
    any_flag,
    barrier,
    broadcast_object,
    cleanup_distributed,
    gather_objects,
    init_distributed,
)
from swipe.training.loss import TokenStats, sequence_loss, token_stats
from swipe.training.schedule import EarlyStopping, WarmupPlateauScheduler

# The config ``python train.py`` runs without arguments: in configs/, which an installed package
# carries as swipe/configs (a link to it in the clone).
QUICKSTART_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "quickstart_en.json"


class TrainingError(RuntimeError):
    """Training cannot start or continue (the message says why and what to do)."""


class NonFiniteLossError(TrainingError):
    """The loss or the gradient became NaN or infinite; the last good state was saved."""


class ValidationMetrics(NamedTuple):
    """One validation pass.

    Attributes
    ----------
    loss : float
        Mean cross-entropy per target token (no smoothing, no masking).
    token_accuracy : float
        Share of target tokens predicted by the argmax under teacher forcing.
    word_accuracy : float
        Share of curves whose every token is the argmax under teacher forcing (greedy word accuracy).
    swipe_mrr : float or None
        Swipe MRR of lexicon-constrained beam search on the first ``validation.mrr_curves`` curves.
    num_curves : int
        Curves validated.
    """

    loss: float
    token_accuracy: float
    word_accuracy: float
    swipe_mrr: float | None
    num_curves: int

    def get(self, name: str) -> float:
        value = getattr(self, name)
        if value is None:
            raise KeyError(f"validation metric {name!r} was not computed")
        return float(value)


class TrainResult(NamedTuple):
    """How a call to :func:`train` ended.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    step, epoch : int
        Optimizer steps done, epochs completed.
    stop_reason : str
        ``max_steps``, ``max_epochs``, ``early_stopping``, ``time_limit``, ``signal`` or
        ``already_done``.
    metrics : ValidationMetrics or None
        The last validation.
    best_value : float or None
        Best value of ``validation.metric`` so far.
    """

    run_dir: Path
    step: int
    epoch: int
    stop_reason: str
    metrics: ValidationMetrics | None
    best_value: float | None


# ---- helpers ----------------------------------------------------------------------------------


def resolve_device(config: TrainConfig, dist_info: DistInfo) -> torch.device:
    """The device of this process (``cuda:<local_rank>`` under DDP on GPUs)."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was asked for but CUDA is not available")
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return torch.device(
            "cuda", dist_info.local_rank if dist_info.enabled else torch.cuda.current_device()
        )
    return torch.device("cpu")


def resolve_precision(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (``None`` for plain fp32)."""
    if device.type != "cuda" or config.precision == "fp32":
        return None
    if config.precision == "bf16" or (config.precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive the numpy and python seeds from the worker's torch seed
    (itself drawn from the loader's seeded generator), so workers are deterministic."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay for matrices and embeddings, none for biases, norms and scalars."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _grad_scaler() -> Any:
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


class _StopSignals:
    """Turns SIGINT / SIGTERM into a flag the loop checks after each optimizer step; a second
    SIGINT interrupts at once. Previous handlers are restored on exit (matters in notebooks)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---- the trainer ------------------------------------------------------------------------------


class Trainer:
    """One training run in one process (one rank under DDP).

    Most users call :func:`train`; the class is public for notebooks and benchmarks that want
    :meth:`train_step` or :meth:`validate` alone.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        data: PreparedData,
        dist_info: DistInfo,
        device: torch.device,
        init_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Build the model, optimizer, schedule and data loader; ``init_state`` (a model state
        dict, e.g. of the model ``config.init_from`` names) replaces the initial weights."""
        from swipe.models import build_model

        self.config = config
        self.run_dir = run_dir
        self.data = data
        self.dist = dist_info
        self.device = device
        self.amp_dtype = resolve_precision(config, device)
        self.files = CheckpointFiles(run_dir, config.keep_last_checkpoints)

        seed_everything(config.seed)
        model = build_model(config.model, data.layouts, data.tokenizer).to(device)
        if init_state is not None:
            model.load_state_dict(init_state)
        self.model = model
        if dist_info.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.ddp_model = model
        # Dropout differs per rank; every rank's RNG state is checkpointed.
        seed_everything(config.seed + 1_000_003 * (dist_info.rank + 1))

        opt = config.optim
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, opt.weight_decay),
            lr=opt.lr,
            betas=opt.betas,
            eps=opt.eps,
            fused=True if device.type == "cuda" else None,
        )
        sched = config.schedule
        self.mode = "max" if config.validation.metric in HIGHER_IS_BETTER else "min"
        self.scheduler = WarmupPlateauScheduler(
            self.optimizer,
            warmup_steps=sched.warmup_steps,
            mode=self.mode,
            patience=sched.plateau_patience,
            factor=sched.plateau_factor,
            min_lr=sched.min_lr,
            threshold=sched.plateau_threshold,
        )
        self.early_stopping = (
            EarlyStopping(self.mode, sched.early_stopping_patience, sched.plateau_threshold)
            if sched.early_stopping_patience is not None
            else None
        )
        self.scaler = _grad_scaler() if self.amp_dtype == torch.float16 else None
        self.average = WeightAverage(self.model, opt.ema_decay) if opt.ema_decay is not None else None

        self.trie = None
        if config.loss.mask_impossible or config.validation.mrr_curves > 0:
            from swipe.decoding.trie import LexiconTrie
            from swipe.lexicon import load_lexicon

            self.trie = LexiconTrie.from_lexicon(load_lexicon(config.lexicon), data.tokenizer)

        self.sampler = data.make_sampler(config.data.batch_size, config.seed, dist_info)
        self.loader_generator = torch.Generator()
        self.train_loader = DataLoader(
            data.train,
            batch_sampler=self.sampler,
            collate_fn=data.collator,
            num_workers=config.data.num_workers,
            pin_memory=device.type == "cuda",
            worker_init_fn=seed_worker,
            generator=self.loader_generator,
        )
        self.batches_per_epoch = len(self.sampler)
        if self.batches_per_epoch == 0:
            raise TrainingError("the training split is empty (or smaller than one batch per process)")
        accum = config.optim.grad_accum_steps
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / accum)

        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.last_metrics: ValidationMetrics | None = None
        self.last_validation_step: int | None = None
        self._last_save_seconds = 0.0

    # ---- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint of the current state (call on every rank: RNG states are gathered)."""
        rng = gather_objects(self.dist, capture_rng_state())
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "weight_average": self.average.state_dict() if self.average is not None else None,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "world_size": self.dist.world_size,
            "rng": rng,
            "config": to_dict(self.config),
            "tokenizer": self.data.tokenizer.to_dict(),
            "layouts": layouts_to_grids(self.data.layouts),
            "metrics": self.last_metrics._asdict() if self.last_metrics is not None else None,
            "last_validation_step": self.last_validation_step,
            "best": {
                "metric": self.config.validation.metric,
                "value": self.best_value,
                "step": self.best_step,
            },
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        """Restore a checkpoint written by :meth:`state_dict` (exact resume)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.early_stopping is not None and ckpt["early_stopping"] is not None:
            self.early_stopping.load_state_dict(ckpt["early_stopping"])
        if self.scaler is not None and ckpt["scaler"] is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self._load_average(ckpt.get("weight_average"))
        self.step = int(ckpt["step"])
        self.epoch = int(ckpt["epoch"])
        self.batch_in_epoch = int(ckpt["batch_in_epoch"])
        self.best_value = ckpt["best"]["value"]
        self.best_step = ckpt["best"]["step"]
        self.last_validation_step = ckpt["last_validation_step"]
        if ckpt["metrics"] is not None:
            self.last_metrics = ValidationMetrics(**ckpt["metrics"])
        rng = ckpt["rng"]
        if len(rng) == self.dist.world_size:
            restore_rng_state(rng[self.dist.rank])
        elif self.dist.is_main:
            print(
                f"note: the checkpoint was written by {len(rng)} processes and this run has "
                f"{self.dist.world_size}; training continues but not bit-identically",
                file=sys.stderr,
            )

    def _load_average(self, stored: dict[str, Any] | None) -> None:
        # The average may be switched on or off between sessions of a run.
        if self.average is not None and stored is not None:
            self.average.load_state_dict(stored)
            return
        if self.average is not None:
            self.average = WeightAverage(self.model, self.average.decay)
            note = "the checkpoint has no moving average of the weights; it starts from the resumed ones"
        elif stored is not None:
            note = "optim.ema_decay is null: the checkpoint's moving average of the weights is dropped"
        else:
            return
        if self.dist.is_main:
            print(f"note: {note}", file=sys.stderr)

    def save(self, is_best: bool, keep_step: bool) -> None:
        """Write ``last`` (and ``best`` / ``step-N``) on rank 0; every rank takes part."""
        state = self.state_dict()
        if self.dist.is_main:
            self.files.save(state, self.step, is_best=is_best, keep_step=keep_step)
        barrier(self.dist)

    # ---- one step -----------------------------------------------------------------------------

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def forward_loss(self, batch: Batch) -> torch.Tensor:
        """Training loss of one micro-batch (on the trainer's device)."""
        allowed = (
            self.trie.teacher_forcing_mask(batch.decoder_input) if self.config.loss.mask_impossible else None
        )
        batch = batch.to(self.device)
        with self._autocast():
            logits = self.ddp_model(
                batch.decoder_input, batch.swipe, batch.swipe_pad_mask, batch.tokens_pad_mask
            )
        return sequence_loss(
            logits, batch.target, batch.tokens_pad_mask, self.config.loss.label_smoothing, allowed
        )

    def train_step(self, batches: list[Batch], window_size: int) -> tuple[float, float, bool]:
        """Forward and backward over ``batches`` (one accumulation window) and one optimizer step.

        Returns the mean loss, the gradient norm (before clipping) and whether both were finite;
        when they were not, no update is applied.
        """
        self.ddp_model.train()
        total = torch.zeros((), device=self.device)
        for i, batch in enumerate(batches):
            sync = i == len(batches) - 1 or not self.dist.enabled
            ctx = nullcontext() if sync else self.ddp_model.no_sync()
            with ctx:
                loss = self.forward_loss(batch) / window_size
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            total += loss.detach()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        clip = self.config.optim.grad_clip
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), clip if clip is not None else float("inf")
        )
        loss_value = float(total) * window_size / len(batches)  # mean over the micro-batches
        finite = math.isfinite(loss_value) and (self.scaler is not None or bool(torch.isfinite(grad_norm)))
        if not any_flag(self.dist, not finite, self.device):
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.scheduler.step()
            if self.average is not None:
                self.average.update(self.model)
        else:
            finite = False
        self.optimizer.zero_grad(set_to_none=True)
        return loss_value, float(grad_norm), finite

    # ---- validation ---------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> ValidationMetrics:
        """Loss, token and word accuracy under teacher forcing, and optionally beam-search MRR."""
        model = self.model
        model.eval()
        limit = self.config.validation.max_curves
        num_curves = len(self.data.val) if limit is None else min(limit, len(self.data.val))
        batch_size = self.config.data.val_batch_size or self.config.data.batch_size
        loader = DataLoader(
            self.data.val,
            batch_sampler=self.data.make_val_sampler(num_curves, batch_size),
            collate_fn=self.data.collator,
            num_workers=0,
        )
        totals = [0.0, 0, 0, 0, 0]
        for batch in loader:
            batch = batch.to(self.device)
            with self._autocast():
                logits = model(batch.decoder_input, batch.swipe, batch.swipe_pad_mask, batch.tokens_pad_mask)
            stats: TokenStats = token_stats(logits, batch.target, batch.tokens_pad_mask)
            totals = [a + b for a, b in zip(totals, stats, strict=True)]
        nll_sum, num_tokens, correct_tokens, num_words, correct_words = totals
        mrr = self._beam_mrr() if self.config.validation.mrr_curves > 0 else None
        return ValidationMetrics(
            loss=nll_sum / max(num_tokens, 1),
            token_accuracy=correct_tokens / max(num_tokens, 1),
            word_accuracy=correct_words / max(num_words, 1),
            swipe_mrr=mrr,
            num_curves=int(num_words),
        )

    def _beam_mrr(self) -> float:
        """Swipe MRR of lexicon-constrained beam search on the first ``mrr_curves`` validation curves."""
        from swipe.decoding import BeamOptions, BeamSearchGenerator
        from swipe.metrics import swipe_mrr_score

        opts = self.config.validation
        beam = BeamSearchGenerator(
            self.model,
            self.data.tokenizer,
            BeamOptions(beam_size=opts.beam_size, num_candidates=min(4, opts.beam_size)),
            self.trie,
        )
        indices = list(range(min(opts.mrr_curves, len(self.data.val))))
        batch_size = self.config.data.val_batch_size or self.config.data.batch_size
        total = 0.0
        for start in range(0, len(indices), batch_size):
            rows = indices[start : start + batch_size]
            batch = self.data.collator([self.data.val[i] for i in rows]).to(self.device)
            with self._autocast():
                candidates = beam.generate(batch.swipe, batch.swipe_pad_mask)
            for i, cands in zip(rows, candidates, strict=True):
                total += swipe_mrr_score([word for _, word in cands], self.data.val.word(i))
        return total / max(len(indices), 1)

    # ---- the loop ----------------------------------------------------------------------------

    def _epoch_batches(self) -> Iterator[tuple[int, Batch]]:
        """The remaining micro-batches of the current epoch with their index in the epoch."""
        self.sampler.set_epoch(self.epoch, start_batch=self.batch_in_epoch)
        # Worker seeds are a function of (seed, epoch, rank) only.
        self.loader_generator.manual_seed(
            (self.config.seed * 1_000_003 + self.epoch * 7919 + self.dist.rank) % 2**63
        )
        yield from enumerate(self.train_loader, start=self.batch_in_epoch)

    def fit(
        self,
        max_minutes: float | None = None,
        stop_signals: _StopSignals | None = None,
        start_time: float | None = None,
    ) -> TrainResult:
        """Train until a stop condition; checkpoint at every validation and on the way out."""
        cfg = self.config
        start_time = time.monotonic() if start_time is None else start_time
        deadline = start_time + max_minutes * 60.0 if max_minutes is not None else None
        accum = cfg.optim.grad_accum_steps
        total_steps = self._planned_steps()
        writer = self._tensorboard()
        progress = self._progress(total_steps)
        losses: deque[float] = deque(maxlen=cfg.logging.loss_window)
        meter = _Throughput()
        step_times: deque[float] = deque(maxlen=20)
        val_seconds = save_seconds = 0.0

        stop_reason: str | None = self._done_reason()
        if stop_reason is not None:
            if self.dist.is_main:
                print(f"{self.run_dir}: training is already complete ({stop_reason}) at step {self.step}")
            stop_reason = "already_done"
        try:
            while stop_reason is None:
                window: list[Batch] = []
                for index, batch in self._epoch_batches():
                    window.append(batch)
                    meter.add_batch(batch)
                    window_start = index - index % accum
                    window_size = min(accum, self.batches_per_epoch - window_start)
                    if len(window) < window_size:
                        continue
                    t0 = time.monotonic()
                    loss, grad_norm, finite = self.train_step(window, window_size)
                    self.batch_in_epoch = index + 1
                    window = []
                    if not finite:
                        self._non_finite(loss, grad_norm, index)
                    self.step += 1
                    step_times.append(time.monotonic() - t0)
                    losses.append(loss)
                    if progress is not None:
                        progress.update(1)
                        progress.set_postfix(
                            loss=f"{sum(losses) / len(losses):.4f}",
                            lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                        )
                    if writer is not None and self.step % cfg.logging.every_steps == 0:
                        self._log_training(writer, loss, sum(losses) / len(losses), grad_norm, meter)

                    stop_reason = self._done_reason()
                    if self.step % cfg.validation.every_steps == 0 or stop_reason is not None:
                        t0 = time.monotonic()
                        if self._validate_and_save(writer, progress):
                            stop_reason = stop_reason or "early_stopping"
                        val_seconds = time.monotonic() - t0
                        save_seconds = max(save_seconds, self._last_save_seconds)
                    if stop_reason is not None:
                        break
                    if stop_signals is not None and any_flag(
                        self.dist, stop_signals.received is not None, self.device
                    ):
                        stop_reason = "signal"
                    elif deadline is not None:
                        next_val = (self.step + 1) % cfg.validation.every_steps == 0
                        needed = max(step_times) + (val_seconds if next_val else 0.0) + 2 * save_seconds + 1.0
                        if any_flag(self.dist, time.monotonic() + needed > deadline, self.device):
                            stop_reason = "time_limit"
                    if stop_reason is not None:
                        self.save(is_best=False, keep_step=False)
                        break
                else:
                    # The epoch is exhausted.
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    if cfg.max_epochs is not None and self.epoch >= cfg.max_epochs:
                        stop_reason = "max_epochs"
                        if self.last_validation_step != self.step:
                            self._validate_and_save(writer, progress)
        finally:
            if progress is not None:
                progress.close()
            if writer is not None:
                writer.close()
        if self.dist.is_main:
            self._report(stop_reason)
        return TrainResult(
            self.run_dir, self.step, self.epoch, stop_reason, self.last_metrics, self.best_value
        )

    def _log_training(
        self, writer: Any, loss: float, mean_loss: float, grad_norm: float, meter: _Throughput
    ) -> None:
        curves_s, tokens_s = meter.rates(self.dist.world_size)
        scalars = {
            "loss": loss,
            "loss_mean": mean_loss,
            "lr": self.scheduler.get_last_lr()[0],
            "grad_norm": grad_norm,
            "curves_per_s": curves_s,
            "tokens_per_s": tokens_s,
            "epoch": self.epoch + self.batch_in_epoch / self.batches_per_epoch,
        }
        for name, value in scalars.items():
            writer.add_scalar(f"train/{name}", value, self.step)

    def _validate_and_save(self, writer: Any, progress: Any) -> bool:
        """Validate on rank 0, share the result, step the schedulers and save; ``True`` = stop early."""
        metrics = None
        if self.dist.is_main:
            with self.average.applied_to(self.model) if self.average is not None else nullcontext():
                metrics = self.validate()
        metrics = broadcast_object(self.dist, metrics)
        assert metrics is not None
        value = metrics.get(self.config.validation.metric)
        is_best = self.best_value is None or (
            value > self.best_value if self.mode == "max" else value < self.best_value
        )
        if is_best:
            self.best_value, self.best_step = value, self.step
        reduced = self.scheduler.validation_step(value)
        stop = self.early_stopping.update(value) if self.early_stopping is not None else False
        self.last_metrics = metrics
        self.last_validation_step = self.step
        # Events reach the disk before the checkpoint: a run killed in between resumes from the
        # previous checkpoint, whose purge_step drops them and logs them again.
        if writer is not None:
            for name, v in metrics._asdict().items():
                if v is not None and name != "num_curves":
                    writer.add_scalar(f"val/{name}", v, self.step)
            writer.flush()
        t0 = time.monotonic()
        self.save(is_best=is_best, keep_step=True)
        self._last_save_seconds = time.monotonic() - t0
        if self.dist.is_main:
            text = (
                f"step {self.step}: val loss {metrics.loss:.4f}, token acc {metrics.token_accuracy:.4f}, "
                f"word acc {metrics.word_accuracy:.4f}"
                + (f", swipe MRR {metrics.swipe_mrr:.4f}" if metrics.swipe_mrr is not None else "")
                + (" (best)" if is_best else "")
                + (f"; lr reduced to {self.scheduler.get_last_lr()[0]:.2e}" if reduced else "")
            )
            (progress.write if progress is not None else print)(text)
        return stop

    def _non_finite(self, loss: float, grad_norm: float, index: int) -> None:
        # The update was not applied: the weights are the last good ones. Save them (the position
        # moves past the offending batches, so a resumed run does not meet them again).
        self.save(is_best=False, keep_step=False)
        what = "loss" if not math.isfinite(loss) else "gradient norm"
        raise NonFiniteLossError(
            f"non-finite {what} (loss {loss}, grad norm {grad_norm}) at step {self.step + 1} "
            f"(epoch {self.epoch}, batch {index}); the last good state is saved in {self.files.last}. "
            "Lower optim.lr, set optim.grad_clip, or use precision 'bf16'/'fp32', then continue "
            "with --resume."
        )

    def _planned_steps(self) -> int | None:
        candidates = []
        if self.config.max_steps is not None:
            candidates.append(self.config.max_steps)
        if self.config.max_epochs is not None:
            candidates.append(self.config.max_epochs * self.steps_per_epoch)
        return min(candidates) if candidates else None

    def _done_reason(self) -> str | None:
        if self.config.max_steps is not None and self.step >= self.config.max_steps:
            return "max_steps"
        if self.config.max_epochs is not None and self.epoch >= self.config.max_epochs:
            return "max_epochs"
        return None

    def _tensorboard(self) -> Any:
        if not (self.dist.is_main and self.config.logging.tensorboard):
            return None
        from torch.utils.tensorboard import SummaryWriter

        # purge_step hides events a killed run wrote after its last checkpoint.
        return SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=self.step + 1 if self.step else 0)

    def _progress(self, total: int | None) -> Any:
        if not self.dist.is_main:
            return None
        return progress_bar(total, self.config.name, "step", self.step, self.config.logging.progress_bar)

    def _report(self, stop_reason: str | None) -> None:
        m = self.last_metrics
        summary = f"{self.config.name}: stopped ({stop_reason}) at step {self.step}, epoch {self.epoch}"
        if m is not None:
            summary += (
                f"; last validation: loss {m.loss:.4f}, token accuracy {m.token_accuracy:.4f}, "
                f"greedy word accuracy {m.word_accuracy:.4f}"
            )
            if m.swipe_mrr is not None:
                summary += f", swipe MRR {m.swipe_mrr:.4f}"
        print(summary)
        planned = self._planned_steps()
        if stop_reason == "time_limit" and planned is not None:
            print(
                f"note: the time budget cut the run short at step {self.step} of {planned}; a faster or "
                "less busy machine trains further (continue with --resume)"
            )
        print(f"checkpoints: {self.files.dir}")


class _Throughput:
    """Curves and target tokens per second since the last reading."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.curves = 0
        self.tokens = 0

    def add_batch(self, batch: Batch) -> None:
        self.curves += int(batch.target.shape[0])
        self.tokens += int((~batch.tokens_pad_mask).sum())

    def rates(self, world_size: int) -> tuple[float, float]:
        now = time.monotonic()
        elapsed = max(now - self.t0, 1e-9)
        rates = (self.curves * world_size / elapsed, self.tokens * world_size / elapsed)
        self.t0, self.curves, self.tokens = now, 0, 0
        return rates


# ---- entry point ------------------------------------------------------------------------------


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to overwrite an existing run, or to resume one that has no checkpoint."""
    files = CheckpointFiles(run_dir, 0)
    if not resume and files.any_exist():
        raise TrainingError(
            f"{run_dir} already holds checkpoints ({files.dir}); nothing was overwritten. "
            f"Continue that run with `python train.py --resume --run-dir {run_dir}`, or start a new "
            "one with --run-dir <another directory> (or another 'name' in the config)."
        )
    if resume and not files.last.is_file():
        raise TrainingError(f"--resume: {files.last} does not exist; start the run without --resume")


def _moved_paths(data: dict[str, Any], old_run_dir: str | None, run_dir: Path) -> dict[str, Any]:
    """``data`` with paths inside the run directory the checkpoint was written in moved to
    ``run_dir``, so that a run directory can be moved (or copied to another machine) and resumed."""
    if not old_run_dir or Path(old_run_dir) == run_dir:
        return data
    old = Path(old_run_dir)

    def moved(value: Any) -> Any:
        if isinstance(value, str) and Path(value).is_relative_to(old):
            return str(run_dir / Path(value).relative_to(old))
        return value

    return {key: moved(value) for key, value in data.items()}


def _with_defaults(section_type: type, stored: dict[str, Any]) -> dict[str, Any]:
    """A config section as a checkpoint stored it, with the keys added to the config since then at
    their defaults (a new key's default keeps the old behaviour); as stored where it does not
    parse (a key since removed), so that the comparison names it."""
    try:
        return to_dict(from_dict(section_type, stored))
    except ConfigError:
        return stored


def _check_resume_config(saved: dict[str, Any], config: TrainConfig, run_dir: Path) -> None:
    """The model and data of a resumed run must be those of its checkpoint."""
    from swipe.models import ModelConfig

    current = to_dict(config)
    saved = {
        **saved,
        "model": _with_defaults(ModelConfig, saved["model"]),
        "data": _with_defaults(DataConfig, _moved_paths(saved["data"], saved.get("run_dir"), run_dir)),
    }
    for section in ("model", "data"):
        if saved[section] != current[section]:
            keys = sorted(
                k
                for k in set(saved[section]) | set(current[section])
                if saved[section].get(k) != current[section].get(k)
            )
            raise TrainingError(
                f"--resume: the config's '{section}' section differs from the checkpoint's "
                f"({', '.join(keys)}); resume with the run's own config ({run_dir / 'config.json'})"
            )


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a section"
    return "absent" if value is None else repr(value)


def _differences(source: Any, config: Any, prefix: str) -> list[str]:
    """``"key: value in the model file, value in the config"`` for each differing nested key."""
    if isinstance(source, dict) and isinstance(config, dict):
        keys = sorted(set(source) | set(config))
        return [d for k in keys for d in _differences(source.get(k), config.get(k), f"{prefix}.{k}")]
    if source == config:
        return []
    return [f"{prefix}: {_describe(source)} in the model file, {_describe(config)} in the config"]


def load_init_model(config: TrainConfig) -> LoadedModel:
    """The model ``config.init_from`` names, checked against the config.

    Its ``model`` section must be the config's, and ``data.layouts`` / ``data.alphabet``, when
    given, must be its layouts and alphabet (a fine-tuned model keeps both).

    Raises
    ------
    TrainingError
        Naming the model file and what differs.
    """
    assert config.init_from is not None
    path = resolve_model_file(config.init_from)
    try:
        source = load_model(path)
    except CheckpointError as err:
        raise TrainingError(f"init_from: {err}") from None
    where = f"init_from: {path}"
    diffs = _differences(to_dict(source.config.model), to_dict(config.model), "model")
    if diffs:
        raise TrainingError(
            f"{where}: the model's architecture differs from the config's 'model' section "
            f"({'; '.join(diffs)}); a fine-tuned model keeps the architecture: copy the 'model' "
            "section of the model's config"
        )
    names = [layout.name for layout in source.layouts]
    if config.data.layouts is not None and list(config.data.layouts) != names:
        raise TrainingError(
            f"{where}: data.layouts {config.data.layouts} are not the model's layouts {names}; "
            "leave data.layouts out (a fine-tuned model keeps the layouts of the model it starts from)"
        )
    if config.data.alphabet is not None and config.data.alphabet != source.tokenizer.alphabet:
        raise TrainingError(
            f"{where}: data.alphabet {config.data.alphabet!r} is not the model's alphabet "
            f"{source.tokenizer.alphabet!r}; leave data.alphabet out"
        )
    return source


def check_data_fits_model(
    where: str, layouts: list[Layout], tokenizer: CharTokenizer, data: DataConfig
) -> None:
    """Every layout of the built ``data.train`` / ``data.val`` must be one of ``layouts`` (same
    name, same keys) and every character they use must be in ``tokenizer``'s alphabet.

    Raises
    ------
    TrainingError
        Starting with ``where`` (the model file), naming the split, the layout or the characters.
    """
    from swipe.data import read_manifest

    by_name = {layout.name: layout for layout in layouts}
    for split in ("train", "val"):
        path = getattr(data, split)
        manifest = read_manifest(Path(path))
        for grid in manifest.layouts:
            layout = Layout.from_grid(grid)
            if layout.name not in by_name:
                raise TrainingError(
                    f"{where}: layout {layout.name!r} of data.{split} ({path}) is not one of the "
                    f"model's layouts {list(by_name)}"
                )
            if layout != by_name[layout.name]:
                raise TrainingError(
                    f"{where}: layout {layout.name!r} of data.{split} ({path}) has other keys or "
                    "key positions than the model's layout of that name"
                )
        missing = [
            char
            for char, count in zip(manifest.alphabet, manifest.char_counts, strict=True)
            if count and not tokenizer.can_encode(char)
        ]
        if missing:
            raise TrainingError(
                f"{where}: characters {''.join(missing)!r} of data.{split} ({path}) are not in the "
                f"model's alphabet {tokenizer.alphabet!r}"
            )


def train(
    config: TrainConfig,
    resume: bool = False,
    max_minutes: float | None = None,
    run_dir: str | Path | None = None,
) -> TrainResult:
    """Train a model as ``config`` says (the function behind ``train.py``).

    Parameters
    ----------
    config : TrainConfig
        The run's configuration.
    resume : bool
        Continue exactly from ``<run_dir>/checkpoints/last.pt``. Without it, a run directory that
        already holds checkpoints is refused.
    max_minutes : float, optional
        Wall-clock budget (overrides ``config.max_minutes``): stop in time to write a checkpoint
        before it runs out.
    run_dir : path, optional
        Overrides ``config.run_dir`` (default ``runs/<config.name>``).

    Returns
    -------
    TrainResult
    """
    start_time = time.monotonic()
    check_max_minutes(max_minutes, "--max-minutes")
    run_dir = Path(run_dir) if run_dir is not None else config.resolved_run_dir
    if config.run_dir is None or Path(config.run_dir) != run_dir:
        config = dataclasses.replace(config, run_dir=str(run_dir))
    wanted_device = (
        "cuda"
        if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    check_config_files(config)
    dist_info = init_distributed(wanted_device)
    # One writer per run directory (rank 0 holds the lock for all ranks).
    lock = RunDirLock(run_dir) if dist_info.is_main else None
    try:
        if lock is not None:
            lock.acquire()
        _check_run_dir(run_dir, resume)
        config = dataclasses.replace(config, data=resolve_data_config(config, run_dir))
        last = CheckpointFiles(run_dir, 0).last
        ckpt = load_checkpoint(last) if resume else None
        if ckpt is not None:
            _check_resume_config(ckpt["config"], config, run_dir)
        # A fine-tuned model keeps the layouts and tokenizer of the model it started from (on
        # resume, those of the run's own checkpoint); the data may use a subset of them.
        init_state: dict[str, torch.Tensor] | None = None
        model_from: tuple[str, list[Layout], CharTokenizer] | None = None
        if config.init_from is not None and ckpt is not None:
            _, tokenizer, layouts = model_parts(ckpt, f"{last}: config:")
            model_from = (str(last), layouts, tokenizer)
        elif config.init_from is not None:
            source = load_init_model(config)
            init_state = source.model.state_dict()
            source_file = resolve_model_file(config.init_from)
            model_from = (f"init_from: {source_file}", source.layouts, source.tokenizer)
            if dist_info.is_main:
                print(f"fine-tuning {source_file} (trained {source.step} steps)")
        device = resolve_device(config, dist_info)
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        # Rank 0 generates / builds the data while the others wait.
        built = prepare_data_files(config, run_dir) if dist_info.is_main else None
        built = broadcast_object(dist_info, built)
        if model_from is None:
            data = open_data(built)
        else:
            check_data_fits_model(*model_from, built)
            data = open_data(built, model_from[1], model_from[2])
        if dist_info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_json(config, run_dir / "config.json")
        trainer = Trainer(config, run_dir, data, dist_info, device, init_state)
        if ckpt is not None:
            trainer.load_state_dict(ckpt)
            if dist_info.is_main:
                where = f"step {trainer.step} (epoch {trainer.epoch}, batch {trainer.batch_in_epoch})"
                print(f"resumed {run_dir} at {where}")
        with _StopSignals() as stop_signals:
            budget = max_minutes if max_minutes is not None else config.max_minutes
            return trainer.fit(budget, stop_signals, start_time)
    finally:
        if lock is not None:
            lock.release()
        cleanup_distributed(dist_info)


def load_config_for_run(
    config_path: str | Path | None, run_dir: str | Path | None, resume: bool
) -> TrainConfig:
    """The config a ``train.py`` invocation means: ``--config``, else the run's own
    ``config.json`` when resuming, else the bundled quickstart."""
    from swipe.training.config import load_train_config

    if config_path is not None:
        return load_train_config(config_path)
    if resume and run_dir is not None and (Path(run_dir) / "config.json").is_file():
        return load_train_config(Path(run_dir) / "config.json")
    default = QUICKSTART_CONFIG
    if resume and run_dir is None:
        quick = load_train_config(default)
        saved = quick.resolved_run_dir / "config.json"
        return load_train_config(saved) if saved.is_file() else quick
    return load_train_config(default)
