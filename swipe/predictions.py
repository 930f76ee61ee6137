"""The ``preds.pkl`` format: a decoder's ranked candidates per curve, with what made them.

A predictions file is a pickle of plain values only, a fixed handful of them however many curves
it holds: strings are concatenated with their end offsets, numbers are little-endian arrays in
``bytes``::

    {"format": "swipe-predictions", "version": 2, "num_curves": n,
     "candidate_counts": bytes,   # uint32 per curve: how many candidates it has
     "scores": bytes,             # float64 per candidate, curve by curve, best first
     "words": str,                # the candidates' words concatenated in the same order
     "word_ends": bytes,          # int64 per candidate: where its word ends in "words"
     "has_target": bytes,         # uint8 per curve: 1 if it has a target word
     "targets": str, "target_ends": bytes,   # the target words (of curves that have one)
     "layout_names": [name, ...], "layout_ids": bytes,   # uint32 per curve
     "metadata":   {"model": {...}, "weights": str, "weights_sha256": str,
                    "generator": str, "generator_options": {...},
                    "layout_names": [...], "data_file": str, "split": str}}

Files of version 1 (lists of ``(score, word)`` pairs per curve) are read too.

It is read back with a restricted unpickler that refuses every global (class or function), so a
file can only ever produce dicts, lists, tuples, strings, bytes, numbers, booleans and ``None``:
opening a predictions file from someone else cannot run code. The file is checked against
:data:`swipe.safe_pickle.PREDICTIONS_LIMITS` (size, objects, nesting) before it is unpickled; the
columnar form keeps the number of objects small, so a split of millions of curves stays within
them.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from swipe.atomic import atomic_output
from swipe.safe_pickle import PREDICTIONS_LIMITS, UnsafeFileError, plain_loads

FORMAT = "swipe-predictions"
VERSION = 2
READABLE_VERSIONS = (1, 2)

# Required metadata keys and their types; other keys may be added and are kept.
METADATA_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": dict,
    "weights": str,
    "weights_sha256": str,
    "generator": str,
    "generator_options": dict,
    "layout_names": (list, tuple),
    "data_file": str,
    "split": str,
}


def _numbers(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(_number(v) for v in value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Optional metadata keys that the tools read (absent from files written before they existed), and
# what each must be where present: a file with odd ones is refused when read, not in a report.
OPTIONAL_METADATA: dict[str, tuple[str, Any]] = {
    "x_scales": ("a list of numbers", _numbers),
    "wide_x_scales": ("a list of numbers", _numbers),
    "views_below": ("a number or null", lambda v: v is None or _number(v)),
    "views_margin": ("a number or null", lambda v: v is None or _number(v)),
    "views_beam_size": ("a whole number >= 1 or null", lambda v: v is None or (
        isinstance(v, int) and not isinstance(v, bool) and v >= 1)),
    "templates_below": ("a number or null", lambda v: v is None or _number(v)),
    "template_candidates": ("a whole number >= 0 or null", lambda v: v is None or (
        isinstance(v, int) and not isinstance(v, bool) and v >= 0)),
    "template_rescoring": ("null or {weight, prior_weight} numbers", lambda v: v is None or (
        isinstance(v, Mapping) and _number(v.get("weight")) and _number(v.get("prior_weight")))),
    "lexicon": ("a name or null", lambda v: v is None or isinstance(v, str)),
}


class PredictionsError(ValueError):
    """A predictions file or object is malformed, unsafe or cannot be read or written."""


@dataclass
class Predictions:
    """Ranked candidates for a sequence of curves.

    Attributes
    ----------
    candidates : list of list of (float, str)
        Per curve, ``(score, word)`` pairs, best first. Scores are the generator's (for example
        log-probabilities); higher is better.
    targets : list of str or None
        Per curve, the target word, or ``None`` where the data has none (a test split).
    layouts : list of str
        Per curve, the name of its keyboard layout.
    metadata : dict
        What produced the candidates (see the module docstring for the required keys); plain,
        JSON-like values only.
    """

    candidates: list[list[tuple[float, str]]]
    targets: list[str | None]
    layouts: list[str]
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        n = len(self.candidates)
        if len(self.targets) != n or len(self.layouts) != n:
            raise PredictionsError(
                f"candidates, targets and layouts must have one entry per curve, got "
                f"{n}, {len(self.targets)} and {len(self.layouts)}"
            )
        self.candidates = [_check_candidates(row, i) for i, row in enumerate(self.candidates)]
        for i, target in enumerate(self.targets):
            if target is not None and not isinstance(target, str):
                raise PredictionsError(f"targets[{i}]: expected a word or None, got {target!r}")
        self.targets = [None if t is None else str(t) for t in self.targets]
        for i, layout in enumerate(self.layouts):
            if not isinstance(layout, str):
                raise PredictionsError(f"layouts[{i}]: expected a layout name, got {layout!r}")
        self.layouts = [str(name) for name in self.layouts]
        if not isinstance(self.metadata, Mapping):
            raise PredictionsError(f"metadata: expected a dict, got {type(self.metadata).__name__}")
        for key, types in METADATA_KEYS.items():
            if key not in self.metadata:
                raise PredictionsError(f"metadata.{key}: missing required key")
            if not isinstance(self.metadata[key], types):
                expected = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
                raise PredictionsError(f"metadata.{key}: expected {expected}, got {self.metadata[key]!r}")
        if not all(isinstance(name, str) for name in self.metadata["layout_names"]):
            raise PredictionsError("metadata.layout_names: expected layout names")
        for key, (expected, valid) in OPTIONAL_METADATA.items():
            if key in self.metadata and not valid(self.metadata[key]):
                shown = str(self.metadata[key])[:60]
                raise PredictionsError(f"metadata.{key}: expected {expected}, got {shown}")
        self.metadata = _plain(dict(self.metadata), "metadata")

    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def num_with_targets(self) -> int:
        """Number of curves that have a target word."""
        return sum(t is not None for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """The plain form that is pickled into ``preds.pkl`` (the module docstring has its keys)."""
        words = _pack([word for row in self.candidates for _, word in row])
        targets = _pack([t for t in self.targets if t is not None])
        names = sorted(set(self.layouts))
        index = {name: i for i, name in enumerate(names)}
        return {
            "format": FORMAT,
            "version": VERSION,
            "num_curves": len(self),
            "candidate_counts": np.array([len(row) for row in self.candidates], "<u4").tobytes(),
            "scores": np.array([score for row in self.candidates for score, _ in row], "<f8").tobytes(),
            "words": words.text,
            "word_ends": words.ends,
            "has_target": np.array([t is not None for t in self.targets], "u1").tobytes(),
            "targets": targets.text,
            "target_ends": targets.ends,
            "layout_names": names,
            "layout_ids": np.array([index[name] for name in self.layouts], "<u4").tobytes(),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Predictions:
        """Build from :meth:`to_dict`'s form (or version 1's), checking every field.

        Parameters
        ----------
        data : dict
            The plain form.
        where : str
            Prefix for error messages (usually the file name).
        """
        prefix = f"{where}: " if where else ""
        if not isinstance(data, Mapping):
            raise PredictionsError(f"{prefix}not a predictions file (top level is {type(data).__name__})")
        if data.get("format") != FORMAT:
            raise PredictionsError(f"{prefix}not a predictions file (format is {data.get('format')!r})")
        version = data.get("version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise PredictionsError(
                f"{prefix}unsupported predictions version {version!r} (this reader: {VERSION})"
            )
        expected = set(_KEYS[version])
        if set(data) != expected:
            extra, missing = sorted(set(data) - expected), sorted(expected - set(data))
            raise PredictionsError(f"{prefix}unexpected keys {extra}, missing keys {missing}")
        try:
            if version == 1:
                for key in ("candidates", "targets", "layouts"):
                    if not isinstance(data[key], (list, tuple)):
                        raise PredictionsError(f"{key}: expected a list, got {type(data[key]).__name__}")
                return cls(list(data["candidates"]), list(data["targets"]), list(data["layouts"]),
                           data["metadata"])
            return cls(*_unpack_columns(data), metadata=data["metadata"])
        except PredictionsError as err:
            raise PredictionsError(f"{prefix}{err}") from None


_KEYS = {
    1: ("format", "version", "candidates", "targets", "layouts", "metadata"),
    2: ("format", "version", "num_curves", "candidate_counts", "scores", "words", "word_ends",
        "has_target", "targets", "target_ends", "layout_names", "layout_ids", "metadata"),
}


class _Packed(NamedTuple):
    text: str
    ends: bytes


def _pack(strings: list[str]) -> _Packed:
    """Strings concatenated, with each one's end offset (int64, little-endian)."""
    ends = np.cumsum([len(s) for s in strings], dtype="<i8") if strings else np.zeros(0, "<i8")
    return _Packed("".join(strings), ends.tobytes())


def _array(data: Mapping[str, Any], key: str, dtype: str, count: int | None) -> np.ndarray:
    value = data[key]
    width = np.dtype(dtype).itemsize
    if not isinstance(value, bytes) or len(value) % width:
        raise PredictionsError(f"{key}: expected bytes of {np.dtype(dtype).name} values")
    array = np.frombuffer(value, dtype)
    if count is not None and len(array) != count:
        raise PredictionsError(f"{key}: expected {count} values, got {len(array)}")
    return array


def _unpack(data: Mapping[str, Any], text_key: str, ends_key: str, count: int) -> list[str]:
    text = data[text_key]
    if not isinstance(text, str):
        raise PredictionsError(f"{text_key}: expected a string, got {type(text).__name__}")
    ends = _array(data, ends_key, "<i8", count)
    if count and (ends[0] < 0 or np.any(np.diff(ends) < 0) or ends[-1] != len(text)):
        raise PredictionsError(f"{ends_key}: offsets must rise to the length of {text_key}")
    if not count and text:
        raise PredictionsError(f"{text_key}: expected an empty string")
    bounds = [0, *ends.tolist()]
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _unpack_columns(data: Mapping[str, Any]) -> tuple[list, list, list]:
    """Version 2's columns back into per-curve candidates, targets and layouts."""
    n = data["num_curves"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise PredictionsError(f"num_curves: expected a count, got {n!r}")
    counts = _array(data, "candidate_counts", "<u4", n)
    total = int(counts.sum())
    scores = _array(data, "scores", "<f8", total).tolist()
    words = _unpack(data, "words", "word_ends", total)
    has_target = _array(data, "has_target", "u1", n)
    if np.any(has_target > 1):
        raise PredictionsError("has_target: expected 0 or 1 per curve")
    targets = iter(_unpack(data, "targets", "target_ends", int(has_target.sum())))
    names = data["layout_names"]
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise PredictionsError("layout_names: expected a list of layout names")
    ids = _array(data, "layout_ids", "<u4", n)
    if n and int(ids.max()) >= len(names):
        raise PredictionsError(f"layout_ids: an id beyond the {len(names)} layout names")
    starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).tolist()
    candidates = [list(zip(scores[a:b], words[a:b], strict=True))
                  for a, b in zip(starts[:-1], starts[1:], strict=True)]
    return (candidates, [next(targets) if has else None for has in has_target.tolist()],
            [names[i] for i in ids.tolist()])


def write_predictions(path: str | Path, predictions: Predictions, overwrite: bool = False) -> None:
    """Write ``predictions`` to ``path`` atomically (a temporary file, then a rename).

    Parameters
    ----------
    path : str or Path
        The ``.pkl`` file to write.
    predictions : Predictions
        What to write.
    overwrite : bool
        Replace an existing file; without it an existing file is an error.
    """
    path = Path(path)
    if path.is_dir():
        raise PredictionsError(f"{path}: is a folder; predictions are written to a file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    payload = pickle.dumps(predictions.to_dict(), protocol=4)
    # Never write a file our own reader would refuse.
    _restricted_loads(payload, str(path))
    atomic_write_bytes(path, payload)


def read_predictions(path: str | Path) -> Predictions:
    """Read a predictions file with a restricted unpickler.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`write_predictions`.

    Raises
    ------
    PredictionsError
        The file cannot be read, is not a predictions file, is malformed, or tries to import or
        call anything (nothing it names is ever imported or called).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > PREDICTIONS_LIMITS.max_bytes:
            raise PredictionsError(
                f"{path}: {size} bytes, more than a predictions file may have "
                f"({PREDICTIONS_LIMITS.max_bytes})"
            )
        payload = path.read_bytes()
    except OSError as err:
        raise PredictionsError(f"{path}: cannot read predictions: {err.strerror}") from None
    return Predictions.from_dict(_restricted_loads(payload, str(path)), str(path))


def _restricted_loads(payload: bytes, where: str) -> Any:
    try:
        return plain_loads(payload, where, PREDICTIONS_LIMITS)
    except UnsafeFileError as err:
        raise PredictionsError(f"{where}: unsafe or corrupt predictions file: {err.reason}") from None


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename: readers see the old or
    the new file, never a partial one. An existing file keeps its permissions."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_candidates(row: Any, i: int) -> list[tuple[float, str]]:
    if not isinstance(row, (list, tuple)):
        raise PredictionsError(f"candidates[{i}]: expected a list of (score, word), got {type(row).__name__}")
    out = []
    for j, pair in enumerate(row):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise PredictionsError(f"candidates[{i}][{j}]: expected a (score, word) pair, got {pair!r}")
        score, word = pair
        if isinstance(score, bool) or not isinstance(score, numbers.Real):
            raise PredictionsError(f"candidates[{i}][{j}]: score must be a number, got {score!r}")
        if not isinstance(word, str):
            raise PredictionsError(f"candidates[{i}][{j}]: word must be a string, got {word!r}")
        score = float(score)
        if math.isnan(score):
            raise PredictionsError(f"candidates[{i}][{j}]: score is NaN")
        out.append((score, str(word)))
    return out


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain, JSON-like containers (numpy scalars unwrapped), or an error naming it."""
    if isinstance(value, bool) or value is None:
        return value
    for plain_type in (str, int, float):  # also unwraps subclasses such as numpy.float64
        if isinstance(value, plain_type):
            return plain_type(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise PredictionsError(f"{where}: keys must be strings, got {k!r}")
            out[str(k)] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _plain(item(), where)
    raise PredictionsError(f"{where}: {type(value).__name__} is not a plain value (str, number, list, dict)")
