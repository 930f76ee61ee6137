"""Checkpoints: atomic writes, safe loading, RNG state capture, and rebuilding a trained model.

A checkpoint is a ``torch.save`` of plain containers, tensors and numbers only, so it loads with
``torch.load(..., weights_only=True)``. It holds everything a resumed run or a decoder needs::

    {"format": "swipe-checkpoint", "version": 1,
     "model": state_dict, "optimizer": ..., "scheduler": ..., "early_stopping": ..., "scaler": ...,
     "step": int, "epoch": int, "batch_in_epoch": int,
     "rng": [per-rank RNG states], "config": TrainConfig as a dict,
     "tokenizer": {"alphabet": ...}, "layouts": [grid, ...], "metrics": {...}, "best": {...},
     "weight_average": {"decay", "num_updates", "model": state_dict} or None}

``model`` holds the weights training continues from; with ``optim.ema_decay`` the moving average of
them (:mod:`swipe.training.averaging`) is what decoders use (:func:`inference_state`).

Run directory layout::

    run_dir/config.json
    run_dir/.lock                       held by the one process training in it (:class:`RunDirLock`)
    run_dir/checkpoints/last.pt         latest state (written at every validation and on exit)
    run_dir/checkpoints/best.pt         state at the best validation metric
    run_dir/checkpoints/step-00001234.pt  the last K validation checkpoints
    run_dir/tb/                         TensorBoard event files

:func:`load_model` also loads the compact inference files of :mod:`swipe.export`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from swipe.atomic import atomic_output, sweep_stale
from swipe.config import ConfigError, from_dict
from swipe.keyboard import Layout
from swipe.safe_pickle import UnsafeFileError, torch_load
from swipe.tokenizers import CharTokenizer

CHECKPOINT_FORMAT = "swipe-checkpoint"
CHECKPOINT_VERSION = 1
STEP_PATTERN = re.compile(r"^step-(\d{8,})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a swipe checkpoint."""


# ---- files ------------------------------------------------------------------------------------


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, flush, fsync, then rename over it.

    A process killed at any moment leaves either the previous file or the new one, never a
    truncated file; the temporary file of a killed process is removed by the next write in the
    same folder (:mod:`swipe.atomic`).
    """
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file and a rename."""
    with atomic_output(dst) as tmp:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    ckpt = _load(path, map_location)
    _check_format(ckpt, path)
    return ckpt


def _load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """A torch file checked against :data:`swipe.safe_pickle.TORCH_LIMITS`, loaded onto
    ``map_location`` with ``weights_only=True``."""
    try:
        return torch_load(path, str(path), map_location=map_location)
    except UnsafeFileError as err:
        raise CheckpointError(f"{path}: cannot load checkpoint: {err.reason}") from None


def _check_format(ckpt: Any, path: Path) -> None:
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a swipe checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported")


class CheckpointFiles:
    """The checkpoint files of one run directory.

    Parameters
    ----------
    run_dir : path
        The run directory; files go to ``run_dir/checkpoints``.
    keep_last : int
        How many ``step-*.pt`` checkpoints to keep (0 keeps none).
    """

    def __init__(self, run_dir: str | Path, keep_last: int) -> None:
        self.dir = Path(run_dir) / "checkpoints"
        self.keep_last = keep_last

    @property
    def last(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best(self) -> Path:
        return self.dir / "best.pt"

    def step_path(self, step: int) -> Path:
        return self.dir / f"step-{step:08d}.pt"

    def step_checkpoints(self) -> list[Path]:
        """Existing ``step-*.pt`` files, oldest step first."""
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := STEP_PATTERN.match(p.name))]
        return [p for _, p in sorted(found)]

    def any_exist(self) -> bool:
        return self.dir.is_dir() and any(p.suffix == ".pt" for p in self.dir.iterdir())

    def save(self, state: dict[str, Any], step: int, is_best: bool, keep_step: bool) -> None:
        """Write ``last.pt`` (and ``best.pt``, ``step-N.pt`` as asked), then prune old step files."""
        atomic_save(state, self.last)
        if is_best:
            atomic_copy(self.last, self.best)
        if keep_step and self.keep_last > 0:
            atomic_copy(self.last, self.step_path(step))
            for old in self.step_checkpoints()[: -self.keep_last]:
                old.unlink(missing_ok=True)


class RunDirLock:
    """One writer per run directory: an exclusive ``flock`` on ``run_dir/.lock``, which holds
    the owner's process id for the message a second writer gets.

    The kernel releases the lock when its process ends, however it ends, so a lock left by a
    killed process never blocks. Taking it also removes temporary checkpoint files that killed
    processes left behind (:func:`swipe.atomic.sweep_stale`).

    Parameters
    ----------
    run_dir : path
        The run directory (created if missing).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / ".lock"
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> RunDirLock:
        """Take the lock, or raise :class:`CheckpointError` naming the process that holds it."""
        try:
            import fcntl
        except ImportError:  # no flock on this platform: no lock
            return self
        self._created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointError(
                f"{self.run_dir} is in use by another training process (pid {holder}); wait for it "
                "to finish or stop it first, or give another run directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        sweep_stale(self.run_dir / "checkpoints")
        return self

    def release(self) -> None:
        """Let the lock go (ending the process does too); a run directory that the lock created
        and that holds nothing else is removed."""
        if self._fd is not None:
            if self._created and [p.name for p in self.run_dir.iterdir()] == [self.path.name]:
                self.path.unlink()
                self.run_dir.rmdir()
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---- RNG state ---------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy, torch and CUDA RNG states, as tensors and plain types."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    keys = np_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        ("MT19937", keys, np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ---- rebuilding a trained model ----------------------------------------------------------------


class LoadedModel(NamedTuple):
    """A trained decoder rebuilt from a checkpoint.

    Attributes
    ----------
    model : EncoderDecoder
        In eval mode, on the requested device.
    config : TrainConfig
        The full training configuration of the run.
    tokenizer : CharTokenizer
    layouts : list of Layout
        The model's layouts, in the order of its layout ids.
    step : int
        Optimizer steps the weights were trained for.
    """

    model: torch.nn.Module
    config: Any
    tokenizer: CharTokenizer
    layouts: list[Layout]
    step: int


def model_parts(ckpt: dict[str, Any], where: str = "") -> tuple[Any, CharTokenizer, list[Layout]]:
    """The training config, tokenizer and layouts stored in a loaded checkpoint."""
    from swipe.training.config import TrainConfig

    raw = ckpt["config"]
    try:
        config = from_dict(TrainConfig, raw, where)
    except ConfigError as err:
        # The synthetic-data settings of an older version are not needed to decode: keep the
        # dataset paths and drop the generator settings rather than refuse the checkpoint.
        data = raw.get("data")
        if "data.synthetic" not in str(err) or not isinstance(data, dict) or data.get("train") is None:
            raise
        warnings.warn(f"{err}; ignoring the checkpoint's data.synthetic section", stacklevel=2)
        config = from_dict(TrainConfig, {**raw, "data": {**data, "synthetic": None}}, where)
    tokenizer = CharTokenizer.from_dict(ckpt["tokenizer"])
    layouts = [Layout.from_grid(grid) for grid in ckpt["layouts"]]
    return config, tokenizer, layouts


def resolve_model_file(path: str | Path) -> Path:
    """The model file that ``path`` names.

    A file is itself; a directory gives its ``model.pt`` (an exported model's folder), else
    ``checkpoints/best.pt``, else ``checkpoints/last.pt`` (a run directory).
    """
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / "model.pt").is_file():
        return path / "model.pt"
    files = CheckpointFiles(path, 0)
    return files.best if files.best.is_file() else files.last


def inference_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a decoder uses from a training checkpoint: the moving average of the weights
    when the run kept one (``optim.ema_decay``), else the training weights."""
    average = ckpt.get("weight_average")
    return average["model"] if average is not None else ckpt["model"]


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a trained decoder from a checkpoint or an exported model file alone.

    A checkpoint's moving average of the weights is used where the run kept one
    (:func:`inference_state`). Exported weights (fp16, int8; see :mod:`swipe.export`) are upcast to fp32.

    Parameters
    ----------
    path : path
        A checkpoint (``last.pt``, ``best.pt``, ``step-*.pt``), an exported model, or a directory
        (see :func:`resolve_model_file`).
    device : str or torch.device
        Where to put the model.
    """
    from swipe.export import EXPORT_FORMAT, ExportError, check_exported, restore_state_dict
    from swipe.models import build_model

    path = resolve_model_file(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    ckpt = _load(path)
    if isinstance(ckpt, dict) and ckpt.get("format") == EXPORT_FORMAT:
        try:
            check_exported(ckpt, path)
            state = restore_state_dict(ckpt, str(path))
        except ExportError as err:
            raise CheckpointError(str(err)) from None
    else:
        _check_format(ckpt, path)
        state = inference_state(ckpt)
    try:
        config, tokenizer, layouts = model_parts(ckpt, f"{path}: config:")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    model = build_model(config.model, layouts, tokenizer)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model of its config: {err}") from None
    model.to(device).eval()
    return LoadedModel(model, config, tokenizer, layouts, int(ckpt["step"]))


def find_latest_run(root: str | Path = "runs") -> Path:
    """The run directory under ``root`` whose latest checkpoint was written most recently.

    Raises
    ------
    FileNotFoundError
        When no run under ``root`` holds a checkpoint.
    """
    root = Path(root)
    candidates: list[tuple[float, Path]] = []
    if root.is_dir():
        for run in root.iterdir():
            for name in ("last.pt", "best.pt"):
                ckpt = run / "checkpoints" / name
                if ckpt.is_file():
                    candidates.append((ckpt.stat().st_mtime, run))
                    break
    if not candidates:
        raise FileNotFoundError(f"no trained run under {root}/ (train one with `python train.py`)")
    return max(candidates, key=lambda c: c[0])[1]


def layouts_to_grids(layouts: Sequence[Layout]) -> list[dict[str, Any]]:
    return [layout.to_grid() for layout in layouts]
