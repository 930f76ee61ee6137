"""Write a training checkpoint as a compact inference file (``python -m swipe.export`` runs it).

An exported model holds what decoding needs and nothing of the training state (no optimizer,
scheduler or RNG state), with the weights stored in half precision (``fp16``, the default), full
precision (``fp32``) or as 8-bit integers (``int8``: the weight matrix of every ``nn.Linear`` is
quantised symmetrically, one fp32 scale per output row; every other tensor is stored in fp16).
Its format, and reading it back, are in :mod:`swipe.model_files`.

The weights are the checkpoint's moving average of them where the run kept one
(``optim.ema_decay``), else its training weights.

:func:`swipe.model_files.load_model` loads exported files as it loads checkpoints, with the weights
upcast to fp32 for CPU inference::

    python -m swipe.export runs/en/checkpoints/best.pt --out en.pt             # fp16
    python -m swipe.export runs/en --out en-int8.pt --dtype int8 --overwrite
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, NamedTuple

import torch
from torch import Tensor, nn

from swipe.config import ConfigError
from swipe.model_files import (
    DTYPES,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    CheckpointError,
    Dtype,
    ExportError,
    check_finite,
    inference_state,
    model_parts,
    model_skeleton,
    read_checkpoint_bytes,
    resolve_model_file,
)
from swipe.training.checkpoint import atomic_save

__all__ = ["ExportResult", "compress_state_dict", "export_checkpoint", "exported_model", "quantize_int8"]


class ExportResult(NamedTuple):
    """What :func:`export_checkpoint` wrote.

    Attributes
    ----------
    path : Path
        The exported file.
    dtype : str
        ``fp16``, ``fp32`` or ``int8``.
    num_bytes, source_bytes : int
        Sizes of the exported file and of the checkpoint it came from.
    run : str
        The training run's name.
    step : int
        Optimizer steps the weights were trained for.
    """

    path: Path
    dtype: str
    num_bytes: int
    source_bytes: int
    run: str
    step: int


# ---- weights -------------------------------------------------------------------------------------


def _linear_weight_names(checkpoint: dict[str, Any], where: str) -> set[str]:
    """State-dict names of the ``nn.Linear`` weights of the checkpoint's model."""
    try:
        config, tokenizer, layouts = model_parts(checkpoint, f"{where}: config:")
    except ConfigError as err:
        raise ExportError(str(err)) from None
    model = model_skeleton(config.model, layouts, tokenizer)
    return {f"{name}.weight" if name else "weight"
            for name, module in model.named_modules() if isinstance(module, nn.Linear)}


def quantize_int8(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-row int8 quantisation: ``weight ~= q * scale[:, None]``.

    Returns
    -------
    q : Tensor
        int8, the shape of ``weight``, values in ``[-127, 127]``.
    scale : Tensor
        float32, one per row (all-zero rows get scale 1).
    """
    w = weight.detach().float()
    scale = w.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(w / scale[:, None]), -127, 127).to(torch.int8)
    return q, scale


def compress_state_dict(
    state: dict[str, Tensor], dtype: Dtype, linear_weights: Collection[str] = frozenset()
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The weights of ``state`` as stored in an exported file.

    Parameters
    ----------
    state : dict of str to Tensor
        A model's ``state_dict``.
    dtype : {"fp16", "fp32", "int8"}
        Floating-point tensors are stored in this precision; with ``int8``, the tensors named in
        ``linear_weights`` are quantised per row and the other floating-point ones stored in fp16.
        Integer tensors are kept as they are.

    Returns
    -------
    weights : dict of str to Tensor
    int8_scales : dict of str to Tensor
        The per-row scales of the quantised tensors (empty unless ``dtype`` is ``int8``).
    """
    if dtype not in DTYPES:
        raise ExportError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    weights: dict[str, Tensor] = {}
    scales: dict[str, Tensor] = {}
    for name, tensor in state.items():
        # clone(): a view would drag its whole storage (e.g. a fused parameter) into the file.
        tensor = tensor.detach().cpu()
        if not tensor.is_floating_point():
            weights[name] = tensor.clone()
        elif dtype == "int8" and name in linear_weights and tensor.dim() == 2:
            weights[name], scales[name] = quantize_int8(tensor)
        elif dtype == "fp32":
            weights[name] = tensor.to(torch.float32).clone()
        else:
            weights[name] = tensor.to(torch.float16).clone()
    return weights, scales


# ---- the file -----------------------------------------------------------------------------------


def exported_model(checkpoint: dict[str, Any], dtype: Dtype, source_file: str, source_sha256: str,
                   where: str = "") -> dict[str, Any]:
    """The contents of an exported file made from a loaded training checkpoint."""
    linear = _linear_weight_names(checkpoint, where) if dtype == "int8" else set()
    weights, scales = compress_state_dict(inference_state(checkpoint), dtype, linear)
    config = checkpoint["config"]
    average = checkpoint.get("weight_average")
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "dtype": dtype,
        "model": weights,
        "int8_scales": scales,
        "step": int(checkpoint["step"]),
        "config": config,
        "tokenizer": checkpoint["tokenizer"],
        "layouts": checkpoint["layouts"],
        "lexicon": config.get("lexicon", "en"),
        "provenance": {
            "run": config.get("name"),
            "step": int(checkpoint["step"]),
            "epoch": checkpoint.get("epoch"),
            "metrics": checkpoint.get("metrics"),
            "best": checkpoint.get("best"),
            "source_file": source_file,
            "source_sha256": source_sha256,
            "weight_average": (
                {"decay": average["decay"], "num_updates": average["num_updates"]} if average else None
            ),
        },
    }


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, dtype: Dtype = "fp16", overwrite: bool = False
) -> ExportResult:
    """Write the compact inference file of a training checkpoint.

    Parameters
    ----------
    checkpoint : path
        A training checkpoint, or a run directory (its ``best.pt``, else ``last.pt``).
    out : path
        The file to write (atomically).
    dtype : {"fp16", "fp32", "int8"}
        Storage precision of the weights (see the module docstring).
    overwrite : bool
        Replace ``out`` if it exists; never replaces the checkpoint itself.

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    CheckpointError, ExportError
        The checkpoint is missing, damaged or not a training checkpoint.
    """
    if dtype not in DTYPES:
        raise ExportError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    source = resolve_model_file(checkpoint)
    if not source.is_file():
        raise CheckpointError(f"{source}: no such checkpoint")
    out = Path(out)
    if out.exists():
        if out.resolve() == source.resolve():
            raise ExportError(f"{out}: is the checkpoint being exported; choose another --out")
        if not overwrite:
            raise FileExistsError(f"{out}: already exists (overwrite=True replaces it)")
    if out.is_dir():
        raise ExportError(f"{out}: is a directory; give the file to write")
    ckpt, sha256, size = read_checkpoint_bytes(source)
    check_finite(inference_state(ckpt), str(source))
    contents = exported_model(ckpt, dtype, source.name, sha256, str(source))
    atomic_save(contents, out)
    return ExportResult(out, dtype, out.stat().st_size, size, str(contents["provenance"]["run"]),
                        contents["step"])
