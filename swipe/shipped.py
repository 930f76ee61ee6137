"""The pre-trained models shipped with the package, found by the layouts they decode.

Each model lives in a folder of ``swipe/resources/models/``::

    swipe/resources/models/en_hws/model.pt      an exported model (python -m swipe.export)
    swipe/resources/models/en_hws/card.md       its model card (data, recipe, metrics)
    swipe/resources/models/en_hws/decoding.json the decoding settings chosen for it (optional)

A model serves the layouts it was trained on (stored in ``model.pt``); the features a decoder reads
depend on the keyboard's geometry, so a layout of the same letters but another geometry is not
served. ::

    from swipe.shipped import resolve_model, shipped_model_for_layouts
    path = shipped_model_for_layouts(["hws_fitted"])     # .../en_hws/model.pt, or None
    path = resolve_model("en_hws")                       # a shipped model by name (or any path)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

from swipe.config import ConfigError, load_json
from swipe.export import ExportError, read_model_info

MODELS_DIR = Path(__file__).resolve().parent / "resources" / "models"
MODEL_FILE = "model.pt"
CARD_FILE = "card.md"
DECODING_FILE = "decoding.json"


class ShippedModelError(RuntimeError):
    """A shipped model's folder is damaged (a packaging error, not a user error)."""


class ModelNotFoundError(FileNotFoundError):
    """A model named on the command line or in ``load_decoder`` is neither a file nor a shipped model."""


class ShippedModel(NamedTuple):
    """A shipped model.

    Attributes
    ----------
    name : str
        Its folder's name, e.g. ``en_hws``.
    path : Path
        The exported model file; pass it to ``swipe.training.load_model`` or
        ``predict.py --checkpoint``.
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


def shipped_names(root: str | Path | None = None) -> list[str]:
    """The shipped models' names (folders of ``root``, default :data:`MODELS_DIR`, holding a
    ``model.pt``), sorted."""
    root = Path(root) if root is not None else MODELS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MODEL_FILE).is_file())


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
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        for name in ("best.pt", "last.pt"):
            if (folder / name).is_file():
                return folder / name
        raise ModelNotFoundError(f"{path}: no {MODEL_FILE}, best.pt or last.pt")
    if path.is_file():
        return path
    root = Path(root) if root is not None else MODELS_DIR
    names = shipped_names(root)
    if str(model) in names:
        return root / str(model) / MODEL_FILE
    raise ModelNotFoundError(f"{model}: no such checkpoint, model folder or shipped model "
                             f"(shipped models: {', '.join(names) or 'none'})")


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
    wide_x_scales : list of float, optional
        Views of swipes that reach past the keyboard (``predict.py --wide-x-scales``); None: none.
    template_candidates : int, optional
        Words the template matcher proposes to poorly scoring swipes (``predict.py
        --template-candidates``); None: none.
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
    wide_x_scales: tuple[float, ...] | None = None
    template_candidates: int | None = None
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
