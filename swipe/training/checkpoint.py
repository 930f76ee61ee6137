"""The trainer's checkpoints: atomic writes, the files and lock of a run directory, RNG state.

A checkpoint holds everything a resumed run or a decoder needs; its format, and reading it back
into a model (:func:`~swipe.model_files.load_model`), are in :mod:`swipe.model_files`. ``model``
holds the weights training continues from; with ``optim.ema_decay`` the moving average of them
(:mod:`swipe.training.averaging`) is what decoders use (:func:`~swipe.model_files.inference_state`).

Run directory layout::

    run_dir/config.json
    run_dir/.lock                       held by the one process training in it (:class:`RunDirLock`)
    run_dir/checkpoints/last.pt         latest state (written at every validation and on exit)
    run_dir/checkpoints/best.pt         state at the best validation metric
    run_dir/checkpoints/step-00001234.pt  the last K validation checkpoints
    run_dir/tb/                         TensorBoard event files

The names that read checkpoints (``load_checkpoint``, ``load_model``, ``resolve_model_file``, ...)
are kept here for one release; import them from :mod:`swipe.model_files`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from swipe.atomic import atomic_output, sweep_stale
from swipe.keyboard import Layout
from swipe.model_files import (
    BEST_FILE,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CHECKPOINTS_DIR,
    LAST_FILE,
    CheckpointError,
    LoadedModel,
    find_latest_run,
    inference_state,
    load_checkpoint,
    load_model,
    model_parts,
    resolve_model_file,
)

__all__ = [
    "STEP_PATTERN", "CheckpointFiles", "RunDirLock", "atomic_copy", "atomic_save", "capture_rng_state",
    "layouts_to_grids", "restore_rng_state",
    # Kept here for one release: import these from swipe.model_files.
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "LoadedModel", "find_latest_run",
    "inference_state", "load_checkpoint", "load_model", "model_parts", "resolve_model_file",
]

STEP_PATTERN = re.compile(r"^step-(\d{8,})\.pt$")


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
        self.dir = Path(run_dir) / CHECKPOINTS_DIR
        self.keep_last = keep_last

    @property
    def last(self) -> Path:
        return self.dir / LAST_FILE

    @property
    def best(self) -> Path:
        return self.dir / BEST_FILE

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


# ---- layouts ----------------------------------------------------------------------------------


def layouts_to_grids(layouts: Sequence[Layout]) -> list[dict[str, Any]]:
    return [layout.to_grid() for layout in layouts]
