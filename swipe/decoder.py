"""Decode swipes with a trained model into ranked candidate words.

::

    import swipe
    decoder = swipe.load_decoder("en_hws")          # a shipped model's name, or a model file
    curve = swipe.make_curve([40, 120, 300], [600, 640, 610], [0, 50, 100], "hws_fitted")
    (candidates,) = decoder.decode([curve])         # best first: candidates[0].word, .score

A :class:`Decoder` decodes exactly as ``predict.py`` does with the same model and settings. The
work is done by pieces that also serve ``predict.py`` and the benchmarks:

- a curve source (:class:`MemoryCurves` for curves in memory, :class:`DatasetCurves` for a built
  dataset) gives any of its curves as logged;
- :class:`BatchDecoder` decodes a batch of them with the one decoding pipeline
  (:mod:`swipe.decoding.pipeline`: beam search, views, template candidates and rescoring, also
  run by :mod:`swipe.runtime`) on the PyTorch backend (:mod:`swipe.decoding.torch_backend`);
- :func:`decode_job` splits the curves into batches of similar length and decodes them in this
  process or in worker processes (which die with their parent however it ends).

On the CPU every process decodes on one torch thread, so the output is the same, bit for bit,
whatever the number of workers; it is always in input order.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from swipe.batch import SwipeBatch
from swipe.data.resample import ResampleConfig, resampled_lengths
from swipe.decoding import GENERATORS, GeneratorError, LexiconTrie, generator_options, pipeline
from swipe.decoding.generators import BeamOptions, GreedyOptions, IncrementalModel
from swipe.decoding.pipeline import Swipe, merge_views  # noqa: F401 (predict.py and tests import it from here)
from swipe.decoding.user_words import Candidate, UserWords, VerbatimSettings, offer_verbatim, verbatim
from swipe.formats import Curve, SwipeError, check_swipe
from swipe.keyboard import Layout
from swipe.model_files import DecodingSettings, read_decoding_settings, resolve_model
from swipe.progress import progress_bar
from swipe.templates import TemplateRescorer
from swipe.tokenizers import CharTokenizer

# Default cap on curves x padded points per batch: a batch of long curves holds fewer of them.
DEFAULT_MAX_BATCH_POINTS = 8192
# The search where neither the caller nor the model's decoding.json names one.
DEFAULT_GENERATOR = "beam"
# Stored coordinates are in 1/COORD_SCALE px, as in a built dataset (swipe.data.build).
COORD_SCALE = 4.0


class DecodeError(ValueError):
    """Decoding cannot run as asked (a bad setting, a curve on a layout the model does not know)."""


Row = list[tuple[float, str]]  # one curve's candidates, best first


# ---- models ----------------------------------------------------------------------------------------


class ModelParts(NamedTuple):
    """A model ready for decoding and the tokenizer it writes."""

    model: IncrementalModel
    tokenizer: CharTokenizer


class ModelLoader(Protocol):
    """A picklable recipe for the model (each worker process calls it once)."""

    def __call__(self, device: str) -> ModelParts: ...


class CheckpointLoader:
    """Loads a trained model from a checkpoint or exported model file (``swipe.training.load_model``).

    The loaded model is kept for later calls in the same process but never pickled: a worker
    process loads its own copy.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._loaded: dict[str, Any] = {}

    def load(self, device: str) -> Any:
        """The full ``LoadedModel`` (model, config, tokenizer, layouts, step)."""
        if device not in self._loaded:
            from swipe.model_files import load_model

            self._loaded[device] = load_model(self.path, device)
        return self._loaded[device]

    def __call__(self, device: str) -> ModelParts:
        loaded = self.load(device)
        return ModelParts(loaded.model, loaded.tokenizer)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_loaded": {}}


# ---- curves ----------------------------------------------------------------------------------------


class CurvePoints(NamedTuple):
    """A curve as drawn: its keyboard and its points in pixels."""

    layout: Layout
    x: np.ndarray
    y: np.ndarray


class CurveSource(Protocol):
    """Curves addressable by index, picklable (workers receive it once).

    ``swipe(index)`` is a curve as logged (pixels, milliseconds), which the decoding pipeline
    prepares as the model was trained (``layouts``, ``resample``, ``max_points``).
    ``batch(indices, x_scales)`` collates every curve of ``indices`` once per factor of
    ``x_scales``, as drawn on a keyboard that many times as wide (x scaled about the layout's left
    edge), rows grouped by factor: ``len(x_scales) * len(indices)`` rows.
    """

    layouts: list[Layout]
    max_points: int | None
    resample: ResampleConfig | None

    def __len__(self) -> int: ...

    def swipe(self, index: int) -> Swipe: ...

    @property
    def num_points(self) -> np.ndarray: ...

    def batch(
        self, indices: Sequence[int], x_scales: Sequence[float] = (1.0,)
    ) -> tuple[SwipeBatch, Tensor]: ...

    def points(self, index: int, x_scale: float = 1.0) -> CurvePoints: ...


class _ItemCurves:
    """Shared by the curve sources: collation and points from ``_item(index)`` (a ``SwipeItem``)."""

    layouts: list[Layout]
    max_points: int | None
    resample: ResampleConfig | None
    _collator: Any

    def _item(self, index: int) -> Any:
        raise NotImplementedError

    def _tokenizer(self) -> CharTokenizer:
        raise NotImplementedError

    def batch(
        self, indices: Sequence[int], x_scales: Sequence[float] = (1.0,)
    ) -> tuple[SwipeBatch, Tensor]:
        from swipe.data import SwipeCollator, with_x_scaled

        if self._collator is None:
            self._collator = SwipeCollator(self.layouts, self._tokenizer(), self.max_points, self.resample)
        items = [self._item(i) for i in indices]
        views = [with_x_scaled(item, factor, self.layouts[item.layout_id])
                 for factor in x_scales for item in items]
        return self._collator.swipes(views)

    def swipe(self, index: int) -> Swipe:
        """Curve ``index`` as logged: pixels and milliseconds from its first point."""
        item = self._item(index)
        scale = 1.0 / item.coord_scale
        return Swipe(item.x * scale, item.y * scale, item.t.astype(np.float64), item.layout_name)

    def points(self, index: int, x_scale: float = 1.0) -> CurvePoints:
        """Curve ``index`` as drawn (pixels, before any resampling or thinning), its x scaled by
        ``x_scale``."""
        item = self._item(index)
        scale = 1.0 / item.coord_scale
        return CurvePoints(self.layouts[item.layout_id], item.x * (scale * x_scale), item.y * scale)


class DatasetCurves(_ItemCurves):
    """The curves of a built dataset, laid out for the model (its layout list).

    Picklable: the memory-mapped dataset is opened lazily in each process. Target words are kept
    in the dataset's own alphabet (decoding never reads them), so a target with a character the
    model cannot write is no obstacle.

    Parameters
    ----------
    path : path
        A dataset directory built by ``swipe.data``.
    layouts : sequence of Layout
        The model's layouts, in layout-id order; every layout of the dataset must be among them.
    max_points : int or None
        Thin longer curves to this many points, as the model was trained (``data.max_points``).
    resample : ResampleConfig or None
        Resample curves as the model was trained (``data.resample``).
    """

    def __init__(
        self,
        path: str | Path,
        layouts: Sequence[Layout],
        max_points: int | None = None,
        resample: ResampleConfig | None = None,
    ) -> None:
        self.path = str(path)
        self.layouts = list(layouts)
        self.max_points = max_points
        self.resample = resample
        self._dataset: Any = None
        self._collator: Any = None

    @classmethod
    def for_model(cls, path: str | Path, loaded: Any) -> DatasetCurves:
        """The curves of ``path`` laid out, resampled and thinned as the loaded model (a
        ``swipe.training.LoadedModel``) was trained."""
        data = loaded.config.data
        return cls(path, loaded.layouts, data.max_points, data.resample)

    @property
    def dataset(self) -> Any:
        """The opened ``SwipeDataset``."""
        if self._dataset is None:
            from swipe.data import SwipeDataset

            names = [layout.name for layout in self.layouts]
            self._dataset = SwipeDataset(self.path, layout_names=names)
        return self._dataset

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def num_points(self) -> np.ndarray:
        """Points per curve as the model reads them (resampled and thinned), to batch by length."""
        points = self.dataset.resampled_num_points(self.resample)
        return points if self.max_points is None else np.minimum(points, self.max_points)

    def _item(self, index: int) -> Any:
        return self.dataset[index]

    def _tokenizer(self) -> CharTokenizer:
        return self.dataset.tokenizer

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "layouts": self.layouts, "max_points": self.max_points,
                "resample": self.resample, "_dataset": None, "_collator": None}


class MemoryCurves(_ItemCurves):
    """Curves in memory (:class:`swipe.formats.Curve`), stored as a built dataset stores them
    (coordinates rounded to 1/4 px, times from the first point), so they decode exactly as the
    same rows of a built dataset would.

    Parameters
    ----------
    curves : sequence of Curve
        Each on one of ``layouts`` (by ``grid_name``).
    layouts : sequence of Layout
        The model's layouts, in layout-id order.
    tokenizer : CharTokenizer
        The model's tokenizer.
    max_points, resample
        As for :class:`DatasetCurves`.

    Raises
    ------
    DecodeError
        A curve is on a layout the model does not know, has no points, or has coordinates a
        dataset cannot store (beyond +-8191 px); the message names the curve's line.
    """

    def __init__(
        self,
        curves: Sequence[Curve],
        layouts: Sequence[Layout],
        tokenizer: CharTokenizer,
        max_points: int | None = None,
        resample: ResampleConfig | None = None,
    ) -> None:
        from swipe.data.dataset import SwipeItem

        self.layouts = list(layouts)
        self.max_points = max_points
        self.resample = resample
        self.tokenizer = tokenizer
        self._collator: Any = None
        ids = {layout.name: i for i, layout in enumerate(self.layouts)}
        limit = np.iinfo(np.int16).max
        no_chars = np.zeros(0, np.uint8)
        self.items = []
        for index, curve in enumerate(curves):
            where = f"curve {index} (line {curve.line})"
            layout_id = ids.get(curve.grid_name)
            if layout_id is None:
                raise DecodeError(f"{where}: layout {curve.grid_name!r} is not one of the model's "
                                  f"layouts ({', '.join(ids)})")
            if len(curve.t) == 0 or not len(curve.x) == len(curve.y) == len(curve.t):
                raise DecodeError(f"{where}: x, y and t must hold the same number of points, at least one")
            xq = np.rint(np.asarray(curve.x, np.float32).astype(np.float64) * COORD_SCALE)
            yq = np.rint(np.asarray(curve.y, np.float32).astype(np.float64) * COORD_SCALE)
            if not (np.isfinite(xq).all() and np.isfinite(yq).all()
                    and np.abs(xq).max() <= limit and np.abs(yq).max() <= limit):
                raise DecodeError(f"{where}: coordinates must be finite, |x|, |y| <= "
                                  f"{limit / COORD_SCALE} px")
            t = np.asarray(curve.t, np.float64)
            # Nearest keys of the stored (rounded) coordinates, as a built dataset has them.
            keys = self.layouts[layout_id].nearest_keys(xq / COORD_SCALE, yq / COORD_SCALE).astype(np.uint8)
            self.items.append(SwipeItem(index, xq.astype(np.int16), yq.astype(np.int16),
                                        (t - t[0]).astype(np.float32), keys, no_chars, layout_id,
                                        curve.grid_name, COORD_SCALE, tokenizer.alphabet))
        self._num_points = self._count_points()

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_points(self) -> np.ndarray:
        """Points per curve as the model reads them (resampled and thinned), to batch by length."""
        return self._num_points

    def _count_points(self) -> np.ndarray:
        """As ``SwipeDataset.resampled_num_points``, then capped at ``max_points``."""
        points = np.fromiter((len(item.t) for item in self.items), np.int64, len(self.items))
        if self.resample is not None and len(self.items):
            if self.resample.mode == "time":
                extent = np.array([float(item.t[-1]) - float(item.t[0]) for item in self.items])
                step: np.ndarray | float = self.resample.step
            else:
                # Path lengths from one running sum over all curves, as the dataset computes them.
                scale = 1.0 / COORD_SCALE
                x = np.concatenate([item.x for item in self.items]) * scale
                y = np.concatenate([item.y for item in self.items]) * scale
                along = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
                offsets = np.concatenate([[0], np.cumsum(points)])
                first, last = offsets[:-1], np.maximum(offsets[1:] - 1, offsets[:-1])
                extent = along[last] - along[first]
                key_widths = np.array([self.layouts[item.layout_id].key_width for item in self.items])
                step = self.resample.step * key_widths
            points = resampled_lengths(points, extent, step)
        return points if self.max_points is None else np.minimum(points, self.max_points)

    def _item(self, index: int) -> Any:
        return self.items[index]

    def _tokenizer(self) -> CharTokenizer:
        return self.tokenizer

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_collator"] = None
        return state


class FirstCurves:
    """The first ``n`` curves of a curve source."""

    def __init__(self, curves: CurveSource, n: int) -> None:
        self.curves = curves
        self.n = min(n, len(curves))
        self.layouts = curves.layouts
        self.max_points = curves.max_points
        self.resample = curves.resample

    def __len__(self) -> int:
        return self.n

    @property
    def num_points(self) -> np.ndarray:
        return self.curves.num_points[: self.n]

    def batch(self, indices: Sequence[int], x_scales: Sequence[float] = (1.0,)) -> tuple[SwipeBatch, Tensor]:
        return self.curves.batch(indices, x_scales)

    def points(self, index: int, x_scale: float = 1.0) -> CurvePoints:
        return self.curves.points(index, x_scale)

    def swipe(self, index: int) -> Swipe:
        return self.curves.swipe(index)


def make_curve(
    x: Sequence[float], y: Sequence[float], t: Sequence[float], layout: str, word: str | None = None
) -> Curve:
    """A :class:`swipe.formats.Curve` from its points, as :func:`swipe.formats.read_curves` makes them.

    Parameters
    ----------
    x, y : sequence of float
        Pixel coordinates on the layout.
    t : sequence of float
        Milliseconds, non-decreasing.
    layout : str
        The layout's name (one of the decoding model's layouts).
    word : str, optional
        The target word, if known.

    Raises
    ------
    DecodeError
        The points fail :func:`swipe.formats.check_swipe` (lists that differ in length or are
        empty, a non-number, a value out of range, ``t`` decreasing, too many points).
    """
    try:
        xs, ys, ts = check_swipe(x, y, t)
    except SwipeError as err:
        raise DecodeError(str(err)) from None
    return Curve(xs.astype(np.float32), ys.astype(np.float32), ts, word, layout, 0)


# ---- the search and the stages ----------------------------------------------------------------------


def check_x_scales(x_scales: Sequence[float], name: str = "x_scales", empty_ok: bool = False) -> None:
    """Refuse a repeating or non-positive list of view factors (``DecodeJob.x_scales``), or an
    empty one unless ``empty_ok``; the error names ``name``."""
    if len(x_scales) == 0 and not empty_ok:
        raise DecodeError(f"{name}: expected at least one factor")
    for factor in x_scales:
        if not (math.isfinite(factor) and factor > 0):
            raise DecodeError(f"{name}: each factor must be a finite number > 0, got {factor}")
    if len(set(x_scales)) < len(x_scales):
        raise DecodeError(f"{name}: a factor repeats in {list(x_scales)}")


def check_views_below(
    views_below: float | None, x_scales: Sequence[float], name: str = "views_below"
) -> None:
    """Refuse a NaN threshold, or one without the as-drawn view (factor 1) among ``x_scales``."""
    if views_below is None:
        return
    if math.isnan(views_below):
        raise DecodeError(f"{name}: expected a number, got nan")
    if 1.0 not in x_scales:
        raise DecodeError(
            f"{name} decodes each swipe as drawn first: x_scales must hold 1, got {list(x_scales)}"
        )


def check_optional_number(value: float | None, name: str) -> None:
    """Refuse a NaN where a number or None is expected."""
    if value is not None and math.isnan(value):
        raise DecodeError(f"{name}: expected a number, got nan")


def check_views_beam_size(value: int | None, name: str = "views_beam_size") -> None:
    """Refuse a views beam that is not a whole number >= 1 (None: the beam size)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DecodeError(f"{name} must be a whole number >= 1, got {value!r}")


def check_speed(
    num_workers: int, batch_size: int, max_batch_points: int | None, device: str,
    names: dict[str, str] | None = None,
) -> None:
    """Refuse a negative ``num_workers``, a ``batch_size`` or ``max_batch_points`` below 1, or
    workers on another device than the CPU; the errors call each setting by ``names`` (default:
    its own name)."""
    names = names or {}
    for field, value, least in (("num_workers", num_workers, 0), ("batch_size", batch_size, 1),
                                ("max_batch_points", max_batch_points, 1)):
        if value is not None and value < least:
            raise DecodeError(f"{names.get(field, field)} must be >= {least}, got {value}")
    if num_workers > 0 and device != "cpu":
        raise DecodeError(f"{names.get('num_workers', 'num_workers')} needs {names.get('device', 'device')} "
                          "cpu (workers do not share an accelerator)")


def check_template_candidates(count: int, has_lexicon: bool, name: str = "template_candidates") -> None:
    """Refuse a negative count of template candidates, or a positive one without a lexicon."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise DecodeError(f"{name}: expected a whole number >= 0, got {count!r}")
    if count and not has_lexicon:
        raise DecodeError(f"{name} proposes lexicon words: it needs a lexicon")


def reaches_past_keyboard(curve: CurvePoints) -> bool:
    """Whether ``curve`` reaches more than a key width past its keyboard's right edge
    (:func:`swipe.decoding.pipeline.reaches_past_keyboard`)."""
    return pipeline.reaches_past_keyboard(curve.layout, curve.x)


class DecodeJob(NamedTuple):
    """Everything needed to decode any batch of a run, sent once to every worker.

    ``x_scales``: every curve is decoded as drawn on keyboards this many times as wide (its x
    scaled about the layout's left edge) and each word keeps its best score over these views
    (:func:`merge_views`); ``(1.0,)``: as drawn. ``views_below``: decode each curve as drawn first
    and the other ``x_scales`` views only where its best score is below this (they rarely change
    a word that fits well); None: every view of every curve at once. ``wide_x_scales``: further
    views only for the curves that reach past their keyboard's right edge; ``()``: none.
    ``template_candidates``: for each curve whose best score (after the views) is below
    ``views_below`` (every curve where that is None), this many words from the template matcher;
    0: none. Needs a lexicon. ``views_margin`` and ``templates_below`` narrow these stages,
    ``views_beam_size`` is the beam of the views searched after the first
    (:class:`swipe.decoding.pipeline.Settings`). The stages themselves are
    :class:`swipe.decoding.pipeline.Pipeline`'s.
    """

    model_loader: ModelLoader
    curves: CurveSource
    generator: str
    options: GreedyOptions | BeamOptions
    trie: LexiconTrie | pipeline.Trie | None  # a flat trie is used as is (user words edit it)
    device: str
    rescorer: TemplateRescorer | None = None
    x_scales: tuple[float, ...] = (1.0,)
    wide_x_scales: tuple[float, ...] = ()
    views_below: float | None = None
    template_candidates: int = 0
    views_margin: float | None = None
    templates_below: float | None = None
    views_beam_size: int | None = None

    def check(self) -> None:
        """Refuse inconsistent view and template settings (errors name the field)."""
        check_x_scales(self.x_scales)
        check_x_scales(self.wide_x_scales, "wide_x_scales", empty_ok=True)
        check_views_below(self.views_below, self.x_scales)
        check_optional_number(self.views_margin, "views_margin")
        check_optional_number(self.templates_below, "templates_below")
        check_views_beam_size(self.views_beam_size)
        check_template_candidates(self.template_candidates, self.trie is not None)
        if self.trie is None and self.options.prior_weight:
            raise GeneratorError(f"generator {self.generator!r}: a word-frequency prior (prior_weight > 0) "
                                 "needs a lexicon")

    def settings(self) -> pipeline.Settings:
        """The pipeline's settings: the greedy generator is the beam search of one hypothesis."""
        options = self.options
        beam = options.beam_size if isinstance(options, BeamOptions) else 1
        candidates = options.num_candidates if isinstance(options, BeamOptions) else 1
        rescorer = self.rescorer
        return pipeline.Settings(
            beam_size=beam, num_candidates=candidates, prior_weight=options.prior_weight,
            length_penalty=options.length_penalty, max_length=options.max_length,
            template_weight=0.0 if rescorer is None else rescorer.weight,
            template_prior_weight=1.0 if rescorer is None else rescorer.prior_weight,
            x_scales=tuple(self.x_scales), views_below=self.views_below,
            wide_x_scales=tuple(self.wide_x_scales), template_candidates=self.template_candidates,
            views_margin=self.views_margin, templates_below=self.templates_below,
            views_beam_size=self.views_beam_size)


class BatchDecoder:
    """A job with its model and pipeline built: ``decoder(indices)`` decodes those curves of
    ``job.curves`` (one batch), ``decoder.run(curves, indices)`` those of another source."""

    def __init__(self, job: DecodeJob) -> None:
        from swipe.decoding.torch_backend import TorchBackend

        job.check()
        parts = job.model_loader(job.device)
        self.curves = job.curves
        layouts = job.curves.layouts
        tokenizer = parts.tokenizer
        vocabulary = pipeline.Vocabulary(tokenizer.alphabet, tokenizer.eos_id, tokenizer.sos_id)
        resample = job.curves.resample
        prep = pipeline.Preprocessing(
            None if resample is None else pipeline.Resample(resample.mode, resample.step, resample.keep_time),
            job.curves.max_points)
        trie = job.trie.flat() if isinstance(job.trie, LexiconTrie) else job.trie
        self.pipeline = pipeline.Pipeline(TorchBackend(parts.model, layouts, job.device), vocabulary,
                                          layouts, prep, job.settings(), trie)

    def __call__(self, indices: Sequence[int]) -> list[Row]:
        return self.run(self.curves, indices)

    def run(self, curves: CurveSource, indices: Sequence[int]) -> list[Row]:
        """Candidates of curves ``indices`` of ``curves``, best first."""
        return self.pipeline.decode([curves.swipe(i) for i in indices])


# ---- batches and workers ----------------------------------------------------------------------------


def make_batches(num_points: np.ndarray, batch_size: int, max_points: int | None = None) -> list[list[int]]:
    """Curve indices grouped into batches of similar length, longest first.

    Parameters
    ----------
    num_points : numpy.ndarray
        Points per curve.
    batch_size : int
        Most curves per batch.
    max_points : int, optional
        Most padded points per batch (curves times the longest curve's points): batches of long
        curves get fewer curves, which keeps the per-step cost of every batch alike. A curve
        longer than ``max_points`` gets a batch of its own.
    """
    if batch_size < 1:
        raise DecodeError(f"batch size must be >= 1, got {batch_size}")
    points = np.asarray(num_points, dtype=np.int64)
    order = np.argsort(-points, kind="stable")
    if max_points is None:
        return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    batches, start = [], 0
    while start < len(order):
        # Sorted longest first: the batch's first curve sets its padded length.
        size = max(1, min(batch_size, max_points // max(int(points[order[start]]), 1)))
        batches.append(order[start : start + size].tolist())
        start += size
    return batches


_worker_decoder: BatchDecoder | None = None

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """End this worker when process ``parent`` ends, however it ends: the kernel kills it on Linux
    (``PR_SET_PDEATHSIG``), a watchdog thread elsewhere (and as a backstop)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _init_worker(job: DecodeJob, parent: int) -> None:
    global _worker_decoder
    _die_with_parent(parent)
    # One thread per process: the processes are the parallelism (and a forked process must not
    # reuse the parent's OpenMP pool).
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # a forked process may inherit an inter-op pool that already started
        pass
    _worker_decoder = BatchDecoder(job)


def _decode_in_worker(indices: Sequence[int]) -> list[Row]:
    assert _worker_decoder is not None
    return _worker_decoder(indices)


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """End the workers now: an interrupted or failed decode leaves no process behind."""
    # The executor offers no public way to end busy workers before Python 3.14.
    workers = dict(getattr(executor, "_processes", None) or {})
    for process in workers.values():
        if process.is_alive():
            process.kill()
    executor.shutdown(wait=True, cancel_futures=True)


def decode_job(
    job: DecodeJob,
    batch_size: int,
    num_workers: int = 0,
    max_batch_points: int | None = DEFAULT_MAX_BATCH_POINTS,
    progress: bool = False,
    start_method: str | None = None,
    decoder: BatchDecoder | None = None,
) -> list[Row]:
    """Decode every curve of ``job.curves``.

    On the CPU every process decodes on one thread (parallelism comes from ``num_workers``), so
    the output is the same, bit for bit, whatever the number of workers.

    Parameters
    ----------
    job : DecodeJob
        Model, curves, search and stages.
    batch_size : int
        Most curves decoded together.
    num_workers : int
        Worker processes; 0 decodes in this process. Workers end with this call, and with this
        process however it ends.
    max_batch_points : int or None
        Most padded points per batch (see :func:`make_batches`); None: no limit.
    progress : bool
        Show a progress bar (on a terminal only).
    start_method : str, optional
        Multiprocessing start method; default ``fork`` where available, else ``spawn``.
    decoder : BatchDecoder, optional
        The job's decoder already built (``num_workers=0``): saves loading the model again.

    Returns
    -------
    list of list of (float, str)
        Per curve, in input order, the candidates best first.
    """
    check_speed(num_workers, batch_size, max_batch_points, job.device)
    job.check()
    # Each curve is searched once per view: the batch limits count the views (of the first search).
    views = len(job.x_scales) if job.views_below is None else 1
    batches = make_batches(
        job.curves.num_points,
        max(1, batch_size // views),
        None if max_batch_points is None else max(1, max_batch_points // views),
    )
    results: list[Row | None] = [None] * len(job.curves)
    threads = torch.get_num_threads()
    executor = None
    bar = None
    finished = False
    try:
        if num_workers == 0:
            if job.device == "cpu":
                # One thread, as in every worker: float results then do not depend on num_workers.
                torch.set_num_threads(1)
            decoder = decoder if decoder is not None else BatchDecoder(job)
            outputs: Any = (decoder.run(job.curves, indices) for indices in batches)
        else:
            if start_method is None:
                methods = multiprocessing.get_all_start_methods()
                start_method = "fork" if "fork" in methods else "spawn"
            executor = ProcessPoolExecutor(
                max_workers=min(num_workers, max(len(batches), 1)),
                mp_context=multiprocessing.get_context(start_method),
                initializer=_init_worker,
                initargs=(job, os.getpid()),
            )
            outputs = executor.map(_decode_in_worker, batches)
        bar = progress_bar(len(job.curves), "decode", "curve", enabled=progress)
        for indices, candidates in zip(batches, outputs, strict=True):
            for i, row in zip(indices, candidates, strict=True):
                results[i] = row
            if bar is not None:
                bar.update(len(indices))
        finished = True
    finally:
        if bar is not None:
            bar.close()
        torch.set_num_threads(threads)
        if executor is not None:
            if finished:
                executor.shutdown()
            else:
                _stop_workers(executor)
    return [row if row is not None else [] for row in results]


# ---- settings ---------------------------------------------------------------------------------------

# The settings that are generator options (the rest apply whatever the generator).
GENERATOR_SETTINGS = ("beam_size", "num_candidates", "prior_weight", "length_penalty", "max_length")


class DecodingPlan(NamedTuple):
    """:class:`~swipe.model_files.DecodingSettings` turned into what a :class:`DecodeJob` takes, checked."""

    generator: str
    options: GreedyOptions | BeamOptions
    rescorer: TemplateRescorer | None
    x_scales: tuple[float, ...]
    wide_x_scales: tuple[float, ...]
    views_below: float | None
    template_candidates: int
    views_margin: float | None = None
    templates_below: float | None = None
    views_beam_size: int | None = None


def plan_decoding(
    settings: DecodingSettings, has_lexicon: bool, names: dict[str, str] | None = None
) -> DecodingPlan:
    """Check ``settings`` and fill what they leave open with the defaults.

    Parameters
    ----------
    settings : DecodingSettings
        None among them: the default (the generator's option default, views as drawn only, no
        template candidates); ``views_below`` infinite: every swipe (as None).
    has_lexicon : bool
        Whether a lexicon constrains the search (template candidates need one).
    names : dict of str to str, optional
        What the error messages call each setting (``predict.py`` passes its flags).

    Raises
    ------
    DecodeError, swipe.decoding.GeneratorError
        A setting is out of range, or names an option its generator does not take.
    """
    names = names or {}

    def name(field: str) -> str:
        return names.get(field, field)

    if settings.generator not in GENERATORS:
        raise DecodeError(f"{name('generator')}: unknown generator {settings.generator!r}; "
                          f"known: {', '.join(GENERATORS)}")
    given = {field: getattr(settings, field) for field in GENERATOR_SETTINGS
             if getattr(settings, field) is not None}
    takes = [f.name for f in dataclasses.fields(GENERATORS[settings.generator].options)]
    for field in given:
        if field not in takes:
            known = ", ".join(name(n) for n in takes)
            raise GeneratorError(
                f"generator {settings.generator!r}: {name(field)} is not one of its options ({known})"
            )
    try:
        options = generator_options(settings.generator, given)
    except GeneratorError as err:
        message = str(err)
        for field in GENERATOR_SETTINGS:
            message = message.replace(field, name(field))
        raise GeneratorError(message) from None
    for field in ("template_weight", "template_prior_weight"):
        value = getattr(settings, field)
        if not (math.isfinite(value) and value >= 0):
            raise DecodeError(f"{name(field)} must be a finite number >= 0, got {value}")
    rescorer = None
    if settings.template_weight != 0:
        rescorer = TemplateRescorer(settings.template_weight, settings.template_prior_weight)
    x_scales = tuple(settings.x_scales) if settings.x_scales is not None else (1.0,)
    check_x_scales(x_scales, name("x_scales"))
    wide = tuple(settings.wide_x_scales) if settings.wide_x_scales is not None else ()
    check_x_scales(wide, name("wide_x_scales"), empty_ok=True)
    below = settings.views_below
    below = None if below is None or below == math.inf else below
    check_views_below(below, x_scales, name("views_below"))
    count = settings.template_candidates if settings.template_candidates is not None else 0
    check_template_candidates(count, has_lexicon, name("template_candidates"))
    check_optional_number(settings.views_margin, name("views_margin"))
    check_optional_number(settings.templates_below, name("templates_below"))
    check_views_beam_size(settings.views_beam_size, name("views_beam_size"))
    return DecodingPlan(settings.generator, options, rescorer, x_scales, wide, below, count,
                        settings.views_margin, settings.templates_below, settings.views_beam_size)


# ---- the Python API ---------------------------------------------------------------------------------


class Decoder:
    """A model ready to decode curves as ``predict.py`` decodes them; made by :func:`load_decoder`.

    ``decode`` may be called from several threads at once (calls take turns on the model).

    Attributes
    ----------
    path : Path
        The model file.
    model : torch.nn.Module
        The loaded model (in eval mode, on ``device``).
    layouts : list of Layout
        The model's keyboard layouts, in layout-id order.
    tokenizer : CharTokenizer
        The characters the model writes.
    lexicon : list of str or None
        The words the search may return (most frequent first), or None without a lexicon.
    lexicon_name : str or None
        The lexicon's name or file.
    user_words : UserWords or None
        The user's words and learned choices on top of the lexicon, and the file they are saved
        to (``user_words.path``); None without a lexicon.
    verbatim_settings : VerbatimSettings or None
        When :meth:`decode` offers the verbatim candidate (None: never).
    settings : DecodingSettings
        The settings in force.
    device : str
    num_workers, batch_size, max_batch_points : int
        As for :func:`decode_job`.
    """

    def __init__(
        self,
        loader: CheckpointLoader,
        settings: DecodingSettings,
        lexicon: str | None,
        device: str,
        num_workers: int,
        batch_size: int,
        max_batch_points: int | None,
        user_data: str | Path | None = None,
        verbatim: VerbatimSettings | None = None,
    ) -> None:
        check_speed(num_workers, batch_size, max_batch_points, device)
        self.path = Path(loader.path)
        self.settings = settings
        self.device = device
        self.num_workers = num_workers
        self.batch_size = batch_size
        self.max_batch_points = max_batch_points
        self._loader = loader
        loaded = loader.load(device)
        self.loaded = loaded
        self.model = loaded.model
        self.layouts: list[Layout] = list(loaded.layouts)
        self.tokenizer: CharTokenizer = loaded.tokenizer
        self.lexicon_name = lexicon
        self.trie: LexiconTrie | None = None
        self.num_unspellable = 0
        if lexicon is not None:
            from swipe.lexicon import load_lexicon

            self.trie = LexiconTrie.from_lexicon(load_lexicon(lexicon), self.tokenizer)
            self.num_unspellable = self.trie.num_skipped
        self.plan = plan_decoding(settings, self.trie is not None)
        self._decoder: BatchDecoder | None = None
        self._lexicon_words: list[str] | None = None
        self._lock = threading.Lock()
        self.user_words: UserWords | None = None
        if self.trie is not None:
            self.user_words = UserWords(self.trie.flat(), self.tokenizer.alphabet, self.layouts,
                                        path=user_data)
        elif user_data is not None:
            raise DecodeError("user data needs a lexicon (use_lexicon=False was given)")
        if verbatim is not None and self.trie is None:
            raise DecodeError("the verbatim candidate needs a lexicon (use_lexicon=False was given)")
        self.verbatim_settings = verbatim

    @property
    def lexicon(self) -> list[str] | None:
        """The lexicon's words, most frequent first (None without a lexicon)."""
        if self.user_words is None:
            return None
        if self._lexicon_words is None:
            trie = self.user_words.trie
            live = np.fromiter(trie.word_index().values(), np.int64)
            order = live[np.argsort(-trie.word_log_probs[live], kind="stable")]
            self._lexicon_words = [trie.words[i] for i in order]
        return list(self._lexicon_words)

    # -- user words (swipe.decoding.user_words) -----------------------------------------------------

    def add_words(self, words: str | Sequence[str], frequency: float | None = None) -> None:
        """Let the decoder output ``words`` from the next decode on (saved to ``user_data``).

        Parameters
        ----------
        words : str or sequence of str
        frequency : float, optional
            Occurrences per billion words (the lexicon files' unit); default: a word of the
            lexicon keeps its own, another gets that of the word 10 % down the lexicon (rank
            5,000 of 50,000; about 16,000 per billion in English).

        Raises
        ------
        swipe.decoding.user_words.UserWordError
            A word has a character the model cannot write or its keyboards cannot type (named).
        """
        self._change(lambda user: user.add(words, frequency))

    def remove_words(self, words: str | Sequence[str]) -> None:
        """Never output ``words`` again (until added or learned); saved to ``user_data``."""
        self._change(lambda user: user.remove(words))

    def learn(self, word: str) -> None:
        """Record that the user chose or typed ``word``: similar swipes rank it higher (a word the
        decoder does not know is added); saved to ``user_data``."""
        self._change(lambda user: user.learn(word))

    def verbatim(self, curves: Sequence[Curve]) -> list[str]:
        """Each curve's best string by the network alone, without the lexicon: the word as typed
        verbatim, for a keyboard to offer apart from the candidates (and to pass to
        :meth:`add_words` when the user picks it)."""
        source = self.curves(curves)
        with self._lock, self._one_thread():
            return verbatim(self._pipeline(source), [source.swipe(i) for i in range(len(source))])

    @contextlib.contextmanager
    def _one_thread(self) -> Iterator[None]:
        """One torch thread on the CPU while searching in this process, as :func:`decode_job`."""
        threads = torch.get_num_threads()
        if self.device == "cpu":
            torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _pipeline(self, curves: CurveSource) -> pipeline.Pipeline:
        """The pipeline of this process's decoder (made now if the decodes ran in workers)."""
        if self._decoder is None:
            self._decoder = BatchDecoder(self.job(curves))
        return self._decoder.pipeline

    def _change(self, change: Callable[[UserWords], None]) -> None:
        if self.user_words is None:
            raise DecodeError("user words need a lexicon (this decoder was loaded with use_lexicon=False)")
        with self._lock:
            change(self.user_words)
            self._lexicon_words = None

    def job(self, curves: CurveSource) -> DecodeJob:
        """The :class:`DecodeJob` that decodes ``curves`` with this model and settings."""
        plan = self.plan
        trie = self.trie if self.user_words is None else self.user_words.trie
        return DecodeJob(self._loader, curves, plan.generator, plan.options, trie, self.device,
                         plan.rescorer, plan.x_scales, plan.wide_x_scales, plan.views_below,
                         plan.template_candidates, plan.views_margin, plan.templates_below,
                         plan.views_beam_size)

    def curves(self, curves: Sequence[Curve]) -> MemoryCurves:
        """``curves`` laid out, resampled and thinned as the model was trained."""
        data = self.loaded.config.data
        return MemoryCurves(curves, self.layouts, self.tokenizer, data.max_points, data.resample)

    def decode(self, curves: Sequence[Curve], progress: bool = False) -> list[list[Candidate]]:
        """Each curve's candidates, best first, in input order (with the verbatim candidate,
        ``in_lexicon`` False, where :attr:`verbatim_settings` offer it).

        Parameters
        ----------
        curves : sequence of Curve
            From :func:`swipe.formats.read_curves` or :func:`make_curve`, on the model's layouts.
        progress : bool
            Show a progress bar on stderr (when it is a terminal).

        Raises
        ------
        DecodeError
            A curve is on a layout the model does not know, or cannot be stored.
        """
        return self.decode_source(self.curves(curves), progress)

    def decode_source(self, curves: CurveSource, progress: bool = False) -> list[list[Candidate]]:
        """As :meth:`decode`, for any curve source (e.g. :class:`DatasetCurves`)."""
        if len(curves) == 0:
            return []
        job = self.job(curves)
        with self._lock:
            if self.user_words is not None:
                self.user_words.sync()
            if self.num_workers == 0 and self._decoder is None:
                self._decoder = BatchDecoder(job)
            rows = decode_job(job, self.batch_size, self.num_workers, self.max_batch_points, progress,
                              decoder=self._decoder)
            if self.verbatim_settings is None:
                return [[Candidate(score, word) for score, word in row] for row in rows]
            swipes = [curves.swipe(i) for i in range(len(curves))]
            with self._one_thread():
                return offer_verbatim(self._pipeline(curves), swipes, rows, self.verbatim_settings)


def load_decoder(
    model: str | Path,
    *,
    settings: DecodingSettings | None = None,
    lexicon: str | None = None,
    use_lexicon: bool = True,
    device: str = "cpu",
    num_workers: int = 0,
    batch_size: int = 64,
    max_batch_points: int | None = DEFAULT_MAX_BATCH_POINTS,
    user_data: str | Path | None = None,
    verbatim: VerbatimSettings | None = None,
) -> Decoder:
    """Load a model for decoding, with the settings ``predict.py`` would use.

    Parameters
    ----------
    model : str or Path
        A shipped model's name (``en_hws``, ``en_hws_transformer``, ``ru_yandex``), an exported
        model or checkpoint file, or a folder holding one (an exported model's, or a run's).
    settings : DecodingSettings, optional
        Default: the model's ``decoding.json`` where it has one, else plain beam search. To change
        a few, ``dataclasses.replace(load_decoder(...).settings, beam_size=4)``.
    lexicon : str, optional
        ``en``, ``ru`` or a word-list file; default: the lexicon the model was trained with.
    use_lexicon : bool
        False: decode any character string (the model's ``decoding.json`` then does not apply).
    device : str
        ``cpu`` or ``cuda``.
    num_workers : int
        Worker processes per :meth:`Decoder.decode` call (0: decode in this process).
    batch_size : int
        Most curves decoded together.
    max_batch_points : int or None
        Most curves x padded points per batch.
    user_data : str or Path, optional
        The user's words, removed words and learned choices (a small JSON file,
        :class:`swipe.decoding.user_words.UserData`): read if it exists, rewritten atomically
        at each :meth:`Decoder.add_words`, ``remove_words`` and ``learn``.
    verbatim : VerbatimSettings, optional
        Offer the network's best string without the lexicon among the candidates where no
        lexicon word scores well (``VerbatimSettings()``: second, as measured for ``en_hws``);
        None (default): the candidates are ``predict.py``'s.

    Raises
    ------
    swipe.model_files.ModelNotFoundError
        ``model`` is neither a model file or folder nor a shipped model's name.
    DecodeError, swipe.decoding.GeneratorError, swipe.config.ConfigError
        A setting is out of range, or the model's ``decoding.json`` is malformed.
    """
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:[0-9]+)?", device):
        raise DecodeError(f"device {device!r}: must be cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DecodeError(f"device {device}: CUDA is not available")
    loader = CheckpointLoader(resolve_model(model))
    if settings is None:
        found = read_decoding_settings(loader.path) if use_lexicon else None
        settings = found if found is not None else DecodingSettings(DEFAULT_GENERATOR)
    if use_lexicon:
        name = lexicon if lexicon is not None else loader.load(device).config.lexicon
    elif lexicon is not None:
        raise DecodeError("lexicon and use_lexicon=False exclude each other")
    else:
        name = None
    return Decoder(loader, settings, name, device, num_workers, batch_size, max_batch_points, user_data,
                   verbatim)
