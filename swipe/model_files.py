"""Model files and folders: find one by name, file or folder, and read it into a model.

Everything that reads a model from disk reads it here; the writers (:mod:`swipe.pt_export`,
:mod:`swipe.onnx_export`, the trainer's :mod:`swipe.training.checkpoint`) build on this module.
Both files are a ``torch.save`` of plain containers and tensors, read with
``torch.load(..., weights_only=True)``.

A training checkpoint (``run/checkpoints/last.pt``, ``best.pt``, ``step-*.pt``)::

    {"format": "swipe-checkpoint", "version": 1,
     "model": state_dict, "optimizer": ..., "scheduler": ..., "early_stopping": ..., "scaler": ...,
     "step": int, "epoch": int, "batch_in_epoch": int,
     "rng": [per-rank RNG states], "config": TrainConfig as a dict,
     "tokenizer": {"alphabet": ...}, "layouts": [grid, ...], "metrics": {...}, "best": {...},
     "weight_average": {"decay", "num_updates", "model": state_dict} or None}

An exported model (``model.pt``; weights in fp16, fp32, or int8 with one fp32 scale per row)::

    {"format": "swipe-model", "version": 1, "dtype": "fp16" | "fp32" | "int8",
     "model": state_dict, "int8_scales": {name: scale per row, ...},
     "step": int, "config": TrainConfig as a dict, "tokenizer": {"alphabet": ...},
     "layouts": [grid, ...], "lexicon": str,
     "provenance": {"run": str, "step": int, "epoch": int, "metrics": {...} | None,
                    "best": {...} | None, "source_file": str, "source_sha256": str,
                    "weight_average": {"decay": float, "num_updates": int} | None}}

A model folder holds ``model.pt``, and optionally ``card.md`` (its model card) and
``decoding.json`` (:class:`DecodingSettings`); the shipped models are such folders in
``swipe/resources/models/``. A run folder holds ``checkpoints/best.pt`` and ``last.pt``. ::

    from swipe.model_files import load_model, resolve_model
    loaded = load_model(resolve_model("en_hws"))     # a shipped model, a file or a folder
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, NamedTuple

import torch
from torch import Tensor

from swipe.config import ConfigError, from_dict, load_json
from swipe.hashing import sha256_of
from swipe.keyboard import Layout
from swipe.models import EncoderDecoder, ModelConfig, build_model
from swipe.safe_pickle import UnsafeFileError, torch_load
from swipe.tokenizers import CharTokenizer
from swipe.training.config import TrainConfig

__all__ = [
    "CARD_FILE", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "DECODING_FILE", "DTYPES", "EXPORT_FORMAT",
    "EXPORT_VERSION", "MODELS_DIR", "MODEL_FILE", "MODEL_SIZE_LIMITS", "CheckpointBytes", "CheckpointError",
    "DecodingSettings", "Dtype", "ExportError", "LoadedModel", "ModelInfo", "ModelNotFoundError",
    "ShippedModel", "ShippedModelError", "check_exported", "check_finite", "check_model_size",
    "find_latest_run", "inference_state", "list_shipped_models", "load_checkpoint", "load_model",
    "model_parts", "model_skeleton", "read_checkpoint_bytes", "read_decoding_settings", "read_model_info",
    "resolve_model", "resolve_model_file", "restore_state_dict", "sha256_of", "shipped_model_for_layouts",
    "shipped_names",
]

CHECKPOINT_FORMAT = "swipe-checkpoint"
CHECKPOINT_VERSION = 1
EXPORT_FORMAT = "swipe-model"
EXPORT_VERSION = 1
DTYPES = ("fp16", "fp32", "int8")
Dtype = Literal["fp16", "fp32", "int8"]

MODELS_DIR = Path(__file__).resolve().parent / "resources" / "models"
MODEL_FILE = "model.pt"
CARD_FILE = "card.md"
DECODING_FILE = "decoding.json"
CHECKPOINTS_DIR = "checkpoints"
BEST_FILE = "best.pt"
LAST_FILE = "last.pt"

# The largest sizes a model file's config may ask for, checked before the model's shapes are
# worked out (model_skeleton); the weights are then checked against those shapes before the model
# is allocated, so a damaged or hostile file cannot make a reader allocate more than it holds.
MODEL_SIZE_LIMITS: dict[str, int] = {
    "d_model": 4096,
    "num_encoder_layers": 48,
    "num_decoder_layers": 48,
    "num_heads": 64,
    "dim_feedforward": 16384,
    "conv_kernel_size": 255,
    "encoder_hidden_size": 4096,
    "decoder_hidden_size": 4096,
    "attention_size": 4096,
}


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a swipe checkpoint."""


class ExportError(ValueError):
    """The checkpoint cannot be exported as asked, or an exported file is damaged."""


class ShippedModelError(RuntimeError):
    """A shipped model's folder is damaged (a packaging error, not a user error)."""


class ModelNotFoundError(FileNotFoundError):
    """A model named on the command line or in ``load_decoder`` is neither a file nor a shipped model."""


# ---- finding the file ----------------------------------------------------------------------------


def resolve_model_file(path: str | Path) -> Path:
    """The model file that ``path`` names.

    A file is itself; a directory gives its ``model.pt`` (an exported model's folder), else
    ``checkpoints/best.pt``, else ``checkpoints/last.pt`` (a run directory).
    """
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    best = path / CHECKPOINTS_DIR / BEST_FILE
    return best if best.is_file() else path / CHECKPOINTS_DIR / LAST_FILE


def resolve_model(model: str | Path, root: str | Path | None = None) -> Path:
    """The model file that ``model`` names.

    Parameters
    ----------
    model : str or Path
        A model or checkpoint file; a folder holding ``model.pt`` (an exported model), or
        ``best.pt`` or ``last.pt`` (directly or in ``checkpoints/``: a run); or the name of a
        shipped model (``en_hws``). A path that exists wins over a shipped model's name.
    root : path, optional
        The folder of shipped models; default :data:`MODELS_DIR`.

    Raises
    ------
    ModelNotFoundError
        ``model`` names nothing of these; the message lists the shipped models.
    """
    path = Path(model)
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            return path / MODEL_FILE
        folder = path / CHECKPOINTS_DIR if (path / CHECKPOINTS_DIR).is_dir() else path
        for name in (BEST_FILE, LAST_FILE):
            if (folder / name).is_file():
                return folder / name
        raise ModelNotFoundError(f"{path}: no {MODEL_FILE}, {BEST_FILE} or {LAST_FILE}")
    if path.is_file():
        return path
    root = Path(root) if root is not None else MODELS_DIR
    names = shipped_names(root)
    if str(model) in names:
        return root / str(model) / MODEL_FILE
    raise ModelNotFoundError(f"{model}: no such checkpoint, model folder or shipped model "
                             f"(shipped models: {', '.join(names) or 'none'})")


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
            for name in (LAST_FILE, BEST_FILE):
                ckpt = run / CHECKPOINTS_DIR / name
                if ckpt.is_file():
                    candidates.append((ckpt.stat().st_mtime, run))
                    break
    if not candidates:
        raise FileNotFoundError(f"no trained run under {root}/ (train one with `python train.py`)")
    return max(candidates, key=lambda c: c[0])[1]


# ---- training checkpoints ------------------------------------------------------------------------


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    ckpt = _load(path, map_location)
    _check_checkpoint(ckpt, path)
    return ckpt


class CheckpointBytes(NamedTuple):
    """A training checkpoint read by :func:`read_checkpoint_bytes`.

    Attributes
    ----------
    checkpoint : dict
        The loaded checkpoint.
    sha256 : str
        SHA-256 of the bytes it was loaded from, hex.
    num_bytes : int
        Their number.
    """

    checkpoint: dict[str, Any]
    sha256: str
    num_bytes: int


def read_checkpoint_bytes(path: Path) -> CheckpointBytes:
    """A training checkpoint with the SHA-256 and size of the exact bytes it was loaded from.

    The file is read once into memory, so a checkpoint replaced by a running trainer meanwhile
    cannot give weights and a hash of two different versions.

    Raises
    ------
    ExportError
        The file is an exported model, not a training checkpoint.
    CheckpointError
        It cannot be read or is not a swipe checkpoint of this version.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read checkpoint: {err.strerror}") from None
    try:
        ckpt = torch_load(data, str(path))
    except UnsafeFileError as err:
        raise CheckpointError(str(err)) from None
    if isinstance(ckpt, dict) and ckpt.get("format") == EXPORT_FORMAT:
        raise ExportError(f"{path}: already an exported model; export the training checkpoint")
    _check_checkpoint(ckpt, path)
    return CheckpointBytes(ckpt, hashlib.sha256(data).hexdigest(), len(data))


def _load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """A torch file checked against :data:`swipe.safe_pickle.TORCH_LIMITS`, loaded onto
    ``map_location`` with ``weights_only=True``."""
    try:
        return torch_load(path, str(path), map_location=map_location)
    except UnsafeFileError as err:
        raise CheckpointError(f"{path}: cannot load checkpoint: {err.reason}") from None


def _check_checkpoint(ckpt: Any, path: Path) -> None:
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a swipe checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported")


def inference_state(ckpt: dict[str, Any]) -> dict[str, Tensor]:
    """The weights a decoder uses from a training checkpoint: the moving average of the weights
    when the run kept one (``optim.ema_decay``), else the training weights."""
    average = ckpt.get("weight_average")
    return average["model"] if average is not None else ckpt["model"]


# ---- exported models -----------------------------------------------------------------------------


class ModelInfo(NamedTuple):
    """The description of an exported model, without its weights (see :func:`read_model_info`).

    Attributes
    ----------
    path : Path
    dtype : str
    layout_names : tuple of str
        The model's layouts, in layout-id order.
    lexicon : str
        The lexicon it was trained and validated with (``en``, ``ru`` or a path).
    step : int
    provenance : dict
        Run name, step, epoch, validation metrics, best metric, source file name and SHA-256,
        and the decay and number of updates of the moving average of the weights, if any.
    """

    path: Path
    dtype: str
    layout_names: tuple[str, ...]
    lexicon: str
    step: int
    provenance: dict[str, Any]


def read_model_info(path: str | Path) -> ModelInfo:
    """Describe an exported model without loading its weights into memory (memory-mapped read)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such exported model")
    try:
        obj = torch_load(path, str(path), mmap=True)
    except UnsafeFileError as err:
        raise ExportError(str(err)) from None
    check_exported(obj, path)
    names = tuple(str(grid.get("grid_name", "")) for grid in obj["layouts"])
    return ModelInfo(path, obj["dtype"], names, obj["lexicon"], int(obj["step"]), obj["provenance"])


def check_exported(obj: Any, path: str | Path) -> None:
    """Raise :class:`ExportError` unless ``obj`` (a loaded file) is an exported model of this version."""
    if not isinstance(obj, dict) or obj.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: not an exported swipe model")
    if obj.get("version") != EXPORT_VERSION:
        raise ExportError(f"{path}: exported model version {obj.get('version')} is not supported")
    missing = [k for k in ("dtype", "model", "step", "config", "tokenizer", "layouts", "lexicon",
                           "provenance") if k not in obj]
    if missing:
        raise ExportError(f"{path}: exported model lacks {', '.join(missing)}")
    if obj["dtype"] not in DTYPES:
        raise ExportError(f"{path}: unknown dtype {obj['dtype']!r}")


def restore_state_dict(exported: dict[str, Any], where: str = "") -> dict[str, Tensor]:
    """The fp32 ``state_dict`` of a loaded exported file (int8 weights dequantised)."""
    prefix = f"{where}: " if where else ""
    scales: dict[str, Tensor] = exported.get("int8_scales") or {}
    state: dict[str, Tensor] = {}
    for name, tensor in exported["model"].items():
        if not isinstance(tensor, Tensor):
            raise ExportError(f"{prefix}weight {name!r} is not a tensor")
        if name in scales:
            if tensor.dtype != torch.int8 or scales[name].shape != tensor.shape[:1]:
                raise ExportError(f"{prefix}int8 weight {name!r} does not match its scales")
            state[name] = tensor.float() * scales[name].float()[:, None]
        elif tensor.is_floating_point():
            state[name] = tensor.float()
        else:
            state[name] = tensor
    unknown = set(scales) - set(exported["model"])
    if unknown:
        raise ExportError(f"{prefix}scales for unknown weights: {sorted(unknown)}")
    return state


# ---- the model -----------------------------------------------------------------------------------


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


def check_model_size(config: ModelConfig, where: str = "") -> None:
    """Raise :class:`~swipe.config.ConfigError` naming the first size of ``config`` over
    :data:`MODEL_SIZE_LIMITS` (``where``, e.g. ``"path: config:"``, starts the message)."""
    section = config.family
    arch = config.transformer if section == "transformer" else config.rnn
    for field in dataclasses.fields(arch):
        limit = MODEL_SIZE_LIMITS.get(field.name)
        value = getattr(arch, field.name)
        if limit is not None and value > limit:
            message = f"model.{section}.{field.name}: {value} is over the limit of {limit} for a model file"
            raise ConfigError(f"{where} {message}" if where else message)


def check_finite(state: dict[str, Tensor], where: str) -> None:
    """Raise :class:`CheckpointError` naming the first floating-point tensor of ``state`` that
    holds a NaN or an infinity."""
    for name, tensor in state.items():
        floating = isinstance(tensor, Tensor) and tensor.is_floating_point()
        if floating and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: weight {name!r} holds NaN or infinite values; "
                                  "the file is damaged or the run diverged")


def model_parts(ckpt: dict[str, Any], where: str = "") -> tuple[Any, CharTokenizer, list[Layout]]:
    """The training config, tokenizer and layouts stored in a loaded checkpoint or exported model.

    Raises
    ------
    swipe.config.ConfigError
        The config is not a valid training config, or asks for a model over
        :data:`MODEL_SIZE_LIMITS`.
    """
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
    check_model_size(config.model, where)
    tokenizer = CharTokenizer.from_dict(ckpt["tokenizer"])
    layouts = [Layout.from_grid(grid) for grid in ckpt["layouts"]]
    return config, tokenizer, layouts


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a trained decoder from a checkpoint or an exported model file alone.

    A checkpoint's moving average of the weights is used where the run kept one
    (:func:`inference_state`). Exported weights (fp16, int8) are upcast to fp32.

    Parameters
    ----------
    path : path
        A checkpoint (``last.pt``, ``best.pt``, ``step-*.pt``), an exported model, or a directory
        (see :func:`resolve_model_file`).
    device : str or torch.device
        Where to put the model.

    Raises
    ------
    CheckpointError
        The file is missing, damaged, or its weights do not fit the model of its config.
    """
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
        _check_checkpoint(ckpt, path)
        state = inference_state(ckpt)
    try:
        config, tokenizer, layouts = model_parts(ckpt, f"{path}: config:")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    _check_fit(model_skeleton(config.model, layouts, tokenizer).state_dict(), state, path)
    check_finite(state, str(path))
    model = build_model(config.model, layouts, tokenizer)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model of its config: {err}") from None
    model.to(device).eval()
    return LoadedModel(model, config, tokenizer, layouts, int(ckpt["step"]))


def model_skeleton(config: ModelConfig, layouts: list[Layout], tokenizer: CharTokenizer) -> EncoderDecoder:
    """The model of ``config`` on the meta device: its modules and weight shapes, without memory."""
    with torch.device("meta"):
        return build_model(config, layouts, tokenizer)


def _check_fit(expected: dict[str, Tensor], state: dict[str, Tensor], path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``state`` has the names and shapes of ``expected``."""
    problems = [f"{name} is not a tensor" for name, value in state.items() if not isinstance(value, Tensor)]
    if problems:
        raise CheckpointError(f"{path}: {problems[0]}")
    problems = [f"{name} missing" for name in expected if name not in state]
    problems += [f"{name} unexpected" for name in state if name not in expected]
    problems += [f"{name} is {tuple(state[name].shape)}, not {tuple(tensor.shape)}"
                 for name, tensor in expected.items() if name in state and state[name].shape != tensor.shape]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{path}: the weights do not fit the model of its config: "
                              f"{'; '.join(problems[:3])}{more}")


# ---- decoding settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodingSettings:
    """The decoding settings chosen for an exported model, read from the ``decoding.json`` next to
    its ``model.pt``; ``predict.py`` uses each one whose flag is not given.

    Attributes
    ----------
    generator : str
        ``beam`` or ``greedy``.
    beam_size, num_candidates, prior_weight, length_penalty, max_length : optional
        Generator options (None: the generator's default); they apply only when ``predict.py``
        decodes with this generator.
    template_weight, template_prior_weight : float
        Template rescoring (``predict.py --template-weight``, ``--template-prior-weight``).
    x_scales : list of float, optional
        Keyboard-width views (``predict.py --x-scales``); None: the swipe as drawn only.
    views_below : float, optional
        Decode the ``x_scales`` views only for swipes scoring below this as drawn
        (``predict.py --views-below``); None: every swipe.
    views_margin : float, optional
        And only where their best two words score less than this apart (``predict.py
        --views-margin``); None: whatever the margin.
    views_beam_size : int, optional
        Beam of those views and of the wide views (``predict.py --views-beam-size``); None:
        ``beam_size``.
    wide_x_scales : list of float, optional
        Views of swipes that reach past the keyboard (``predict.py --wide-x-scales``); None: none.
    template_candidates : int, optional
        Words the template matcher proposes to poorly scoring swipes (``predict.py
        --template-candidates``); None: none.
    templates_below : float, optional
        The score (after the views) below which a swipe gets them (``predict.py
        --templates-below``); None: ``views_below``.
    chosen_on : str
        How the settings were chosen (for people; not read).
    """

    generator: str
    beam_size: int | None = None
    num_candidates: int | None = None
    prior_weight: float | None = None
    length_penalty: float | None = None
    max_length: int | None = None
    template_weight: float = 0.0
    template_prior_weight: float = 1.0
    x_scales: tuple[float, ...] | None = None
    views_below: float | None = None
    views_margin: float | None = None
    views_beam_size: int | None = None
    wide_x_scales: tuple[float, ...] | None = None
    template_candidates: int | None = None
    templates_below: float | None = None
    chosen_on: str = ""


def read_decoding_settings(model_file: str | Path) -> DecodingSettings | None:
    """The :class:`DecodingSettings` of an exported model's folder, or None where it has none.

    Only an exported model (a ``model.pt``) has them: a training run's checkpoints do not.

    Raises
    ------
    swipe.config.ConfigError
        The file is not valid JSON, has an unknown, missing or mistyped key, or names an unknown
        generator (the message names the file and the key).
    """
    from swipe.decoding import GENERATORS

    model_file = Path(model_file)
    path = model_file.parent / DECODING_FILE
    if model_file.name != MODEL_FILE or not path.is_file():
        return None
    settings = load_json(DecodingSettings, path)
    if settings.generator not in GENERATORS:
        raise ConfigError(f"{path}: unknown generator {settings.generator!r}; known: {', '.join(GENERATORS)}")
    return settings


# ---- the shipped models --------------------------------------------------------------------------


class ShippedModel(NamedTuple):
    """A shipped model.

    Attributes
    ----------
    name : str
        Its folder's name, e.g. ``en_hws``.
    path : Path
        The exported model file; pass it to :func:`load_model` or ``predict.py --checkpoint``.
    card : Path or None
        Its model card, if the folder has one.
    layout_names : tuple of str
        The layouts it decodes, in the model's layout-id order.
    lexicon : str
        The lexicon it was trained with (``en``, ``ru``).
    step : int
        Optimizer steps it was trained for.
    """

    name: str
    path: Path
    card: Path | None
    layout_names: tuple[str, ...]
    lexicon: str
    step: int


def shipped_names(root: str | Path | None = None) -> list[str]:
    """The shipped models' names (folders of ``root``, default :data:`MODELS_DIR`, holding a
    ``model.pt``), sorted."""
    root = Path(root) if root is not None else MODELS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MODEL_FILE).is_file())


def list_shipped_models(root: str | Path | None = None) -> list[ShippedModel]:
    """The shipped models, sorted by folder name.

    Parameters
    ----------
    root : path, optional
        The folder of model folders; default :data:`MODELS_DIR`. Subfolders without a
        ``model.pt`` are not models and are passed over.

    Raises
    ------
    ShippedModelError
        A ``model.pt`` is not a readable exported model.
    """
    root = Path(root) if root is not None else MODELS_DIR
    models = []
    for name in shipped_names(root):
        folder = root / name
        path = folder / MODEL_FILE
        try:
            info = read_model_info(path)
        except ExportError as err:
            raise ShippedModelError(f"shipped model {folder.name}: {err}") from None
        card = folder / CARD_FILE
        models.append(ShippedModel(folder.name, path, card if card.is_file() else None,
                                   info.layout_names, info.lexicon, info.step))
    return models


def shipped_model_for_layouts(layout_names: Iterable[str], root: str | Path | None = None) -> Path | None:
    """The shipped model that decodes every one of ``layout_names``, or None.

    Parameters
    ----------
    layout_names : iterable of str
        The layouts of the data to decode (e.g. ``["hws_fitted"]`` or ``["default", "extra"]``).
    root : path, optional
        As for :func:`list_shipped_models`.

    Returns
    -------
    Path or None
        The ``model.pt`` of the first model (by folder name) whose layouts include them all; None
        when none does or ``layout_names`` is empty.
    """
    wanted = set(layout_names)
    if not wanted:
        return None
    for model in list_shipped_models(root):
        if wanted <= set(model.layout_names):
            return model.path
    return None
