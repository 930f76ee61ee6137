"""Decode curves with a trained model into ranked candidates: the logic behind ``predict.py``.

The work is split into batches of curves of similar length. Batches are decoded in this process
(``num_workers=0``) or spread over worker processes; each worker loads the model itself, receives
the lexicon trie once (a few numpy arrays) and runs torch on one thread. The batches (and the single
thread per process on the CPU) do not depend on the number of workers, so neither does the output,
which is always in input order.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import math
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from swipe.batch import SwipeBatch
from swipe.config import to_dict
from swipe.data.resample import ResampleConfig
from swipe.decoding import (
    GENERATORS,
    GeneratorError,
    LexiconTrie,
    build_generator,
    generator_options,
    score_words,
)
from swipe.decoding.generators import BeamOptions, Candidate, GreedyOptions, IncrementalModel
from swipe.keyboard import Layout
from swipe.lexicon import Lexicon
from swipe.predictions import Predictions, write_predictions
from swipe.shark2 import NoTemplatesError, Shark2Config, Shark2Decoder
from swipe.templates import TemplateRescorer
from swipe.tokenizers import CharTokenizer

# Default cap on curves x padded points per batch: a batch of long curves holds fewer of them.
DEFAULT_MAX_BATCH_POINTS = 8192


class PredictError(ValueError):
    """predict.py cannot run as asked (bad option, missing file, mismatched data)."""


# ---- what a worker needs -------------------------------------------------------------------------


class ModelParts(NamedTuple):
    """A model ready for decoding and the tokenizer it writes."""

    model: IncrementalModel
    tokenizer: CharTokenizer


class ModelLoader(Protocol):
    """A picklable recipe for the model (each worker process calls it once)."""

    def __call__(self, device: str) -> ModelParts: ...


class CurvePoints(NamedTuple):
    """A curve as drawn: its keyboard and its points in pixels."""

    layout: Layout
    x: np.ndarray
    y: np.ndarray


class CurveSource(Protocol):
    """Curves addressable by index, picklable (workers open it themselves).

    ``batch(indices, x_scales)`` collates every curve of ``indices`` once per factor of
    ``x_scales``, as drawn on a keyboard that many times as wide (x scaled about the layout's left
    edge), rows grouped by factor: ``len(x_scales) * len(indices)`` rows.
    """

    def __len__(self) -> int: ...

    @property
    def num_points(self) -> np.ndarray: ...

    def batch(
        self, indices: Sequence[int], x_scales: Sequence[float] = (1.0,)
    ) -> tuple[SwipeBatch, Tensor]: ...

    def points(self, index: int, x_scale: float = 1.0) -> CurvePoints: ...


class CheckpointLoader:
    """Loads a trained model from a checkpoint file (see ``swipe.training.checkpoint``).

    The loaded model is kept for later calls in the same process but never pickled: a worker
    process loads its own copy.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._loaded: dict[str, Any] = {}

    def load(self, device: str) -> Any:
        """The full ``LoadedModel`` (model, config, tokenizer, layouts, step)."""
        if device not in self._loaded:
            from swipe.training.checkpoint import load_model

            self._loaded[device] = load_model(self.path, device)
        return self._loaded[device]

    def __call__(self, device: str) -> ModelParts:
        loaded = self.load(device)
        return ModelParts(loaded.model, loaded.tokenizer)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_loaded": {}}


class DecodeJob(NamedTuple):
    """Everything needed to decode any batch of a run, sent once to every worker.

    ``x_scales``: every curve is decoded as drawn on keyboards this many times as wide (its x
    scaled about the layout's left edge) and each word keeps its best score over these views
    (:func:`merge_views`); ``(1.0,)``: as drawn. ``views_below``: decode each curve as drawn first
    and the other ``x_scales`` views only where its best score is below this (they rarely change
    a word that fits well); None: every view of every curve at once. ``wide_x_scales``: further
    views only for the curves that reach past their keyboard's right edge
    (:func:`reaches_past_keyboard`); ``()``: none. ``template_candidates``: for each curve whose
    best score (after the views) is below ``views_below`` (every curve where that is None), the
    SHARK2 template matcher (:mod:`swipe.shark2`) proposes this many lexicon words; those the
    search did not find are scored by the model as the search would have scored them
    (:func:`~swipe.decoding.score_words`, the curve as drawn), re-ranked by the templates like the
    search's words and merged into the candidates (as many as the search returns); 0: none. Needs
    a lexicon.
    """

    model_loader: ModelLoader
    curves: CurveSource
    generator: str
    options: GreedyOptions | BeamOptions
    trie: LexiconTrie | None
    device: str
    rescorer: TemplateRescorer | None = None
    x_scales: tuple[float, ...] = (1.0,)
    wide_x_scales: tuple[float, ...] = ()
    views_below: float | None = None
    template_candidates: int = 0


def check_x_scales(x_scales: Sequence[float], name: str = "x_scales", empty_ok: bool = False) -> None:
    """Refuse a repeating or non-positive list of view factors (``DecodeJob.x_scales``), or an
    empty one unless ``empty_ok``; the error names ``name``."""
    if len(x_scales) == 0 and not empty_ok:
        raise PredictError(f"{name}: expected at least one factor")
    for factor in x_scales:
        if not (math.isfinite(factor) and factor > 0):
            raise PredictError(f"{name}: each factor must be a finite number > 0, got {factor}")
    if len(set(x_scales)) < len(x_scales):
        raise PredictError(f"{name}: a factor repeats in {list(x_scales)}")


def check_views_below(
    views_below: float | None, x_scales: Sequence[float], name: str = "views_below"
) -> None:
    """Refuse a NaN threshold, or one without the as-drawn view (factor 1) among ``x_scales``."""
    if views_below is None:
        return
    if math.isnan(views_below):
        raise PredictError(f"{name}: expected a number, got nan")
    if 1.0 not in x_scales:
        raise PredictError(
            f"{name} decodes each swipe as drawn first: x_scales must hold 1, got {list(x_scales)}"
        )


def check_template_candidates(count: int, has_lexicon: bool, name: str = "template_candidates") -> None:
    """Refuse a negative count of template candidates, or a positive one without a lexicon."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise PredictError(f"{name}: expected a whole number >= 0, got {count!r}")
    if count and not has_lexicon:
        raise PredictError(f"{name} proposes lexicon words: it needs a lexicon")


def merge_views(rows: Sequence[list[Candidate]]) -> list[Candidate]:
    """One curve's candidates from several views of it (see ``DecodeJob.x_scales``): each word
    with its best score over the views, best first (ties: the order first listed), at most as many
    as the longest view's list."""
    best: dict[str, float] = {}
    for row in rows:
        for score, word in row:
            if word not in best or score > best[word]:
                best[word] = score
    ranked = sorted(best.items(), key=lambda item: -item[1])  # a stable sort keeps first-listed order
    return [(score, word) for word, score in ranked[: max(map(len, rows), default=0)]]


def _scoring_below(rows: Sequence[list[Candidate]], threshold: float) -> list[int]:
    """Indices of the rows whose best score is below ``threshold`` (or that have no candidate)."""
    return [j for j, row in enumerate(rows) if not row or row[0][0] < threshold]


def reaches_past_keyboard(curve: CurvePoints) -> bool:
    """Whether ``curve`` reaches more than a key width past its keyboard's right edge, where no key
    lies: it was logged on a wider keyboard (a phone held sideways, other pixels)."""
    return bool(len(curve.x) and curve.x.max() > curve.layout.width + curve.layout.key_width)


class Decoder:
    """A job with its model and generator built: ``decoder(indices)`` decodes those curves of
    ``job.curves`` (one batch) into their candidates, best first."""

    def __init__(self, job: DecodeJob) -> None:
        parts = job.model_loader(job.device)
        self.curves = job.curves
        self.device = job.device
        self.generator = build_generator(job.generator, job.options, parts.model, parts.tokenizer, job.trie)
        self.rescorer = job.rescorer
        self.trie = job.trie
        self.x_scales = job.x_scales
        self.wide_x_scales = job.wide_x_scales
        self.views_below = job.views_below
        self.template_candidates = job.template_candidates
        self._matchers: dict[str, Shark2Decoder | None] = {}  # per layout name, built at first use

    def __call__(self, indices: Sequence[int]) -> list[list[Candidate]]:
        if self.views_below is None:
            rows = self._decode_views(indices, self.x_scales)
        else:
            rows = self._decode_views(indices, (1.0,))
            others = [scale for scale in self.x_scales if scale != 1.0]
            self._add_views(rows, indices, _scoring_below(rows, self.views_below), others)
        if self.wide_x_scales:
            wide = [j for j, i in enumerate(indices) if reaches_past_keyboard(self.curves.points(i))]
            self._add_views(rows, indices, wide, self.wide_x_scales)
        if self.template_candidates:
            below = math.inf if self.views_below is None else self.views_below
            self._add_template_candidates(rows, indices, _scoring_below(rows, below))
        return rows

    def _add_template_candidates(
        self, rows: list[list[Candidate]], indices: Sequence[int], which: list[int]
    ) -> None:
        """Merge the template matcher's words for curves ``indices[j]``, ``j`` in ``which``, scored
        by the model, into ``rows[j]``."""
        proposals = []
        for j in which:
            curve = self.curves.points(indices[j])
            matcher = self._matcher(curve.layout)
            found = {word for _, word in rows[j]}
            words = [] if matcher is None else [word for _, word in matcher.decode(curve.x, curve.y)]
            proposals.append([word for word in words if word not in found])
        busy = [k for k, words in enumerate(proposals) if words]
        if not busy:
            return
        swipe, pad = self.curves.batch([indices[which[k]] for k in busy])
        search = self.generator
        scored = score_words(search.model, search.tokenizer, search.trie, search.options,
                             swipe.to(self.device), pad.to(self.device), [proposals[k] for k in busy])
        for k, extra in zip(busy, scored, strict=True):
            j = which[k]
            if self.rescorer is not None:
                extra = self._rescore(extra, indices[j], 1.0)
            rows[j] = merge_views([rows[j], extra])[: search.num_candidates]

    def _matcher(self, layout: Layout) -> Shark2Decoder | None:
        """The template matcher of ``layout``'s curves; None where the layout can type no word of
        the lexicon (the search still decodes those curves, with no proposals)."""
        if layout.name not in self._matchers:
            assert self.trie is not None
            lexicon = Lexicon(self.trie.words, np.exp(self.trie.word_log_probs.astype(np.float64)))
            config = Shark2Config(top_k=self.template_candidates)
            try:
                self._matchers[layout.name] = Shark2Decoder(layout, lexicon, config)
            except NoTemplatesError:
                self._matchers[layout.name] = None
        return self._matchers[layout.name]

    def _add_views(
        self, rows: list[list[Candidate]], indices: Sequence[int], which: list[int], x_scales: Sequence[float]
    ) -> None:
        """Merge views ``x_scales`` of curves ``indices[j]``, ``j`` in ``which``, into ``rows[j]``."""
        if not which or not x_scales:
            return
        extra = self._decode_views([indices[j] for j in which], x_scales)
        for j, row in zip(which, extra, strict=True):
            rows[j] = merge_views([rows[j], row])

    def _decode_views(self, indices: Sequence[int], x_scales: Sequence[float]) -> list[list[Candidate]]:
        # Every view of every curve in one search: one batch costs less than one per view.
        swipe, pad = self.curves.batch(indices, x_scales)
        rows = self.generator.generate(swipe.to(self.device), pad.to(self.device))
        n = len(indices)
        views = [rows[v * n : (v + 1) * n] for v in range(len(x_scales))]
        if self.rescorer is not None:
            views = [[self._rescore(row, i, scale) for row, i in zip(view, indices, strict=True)]
                     for view, scale in zip(views, x_scales, strict=True)]
        if len(views) == 1:
            return views[0]
        return [merge_views(curve_rows) for curve_rows in zip(*views, strict=True)]

    def _rescore(self, row: list[Candidate], index: int, x_scale: float) -> list[Candidate]:
        assert self.rescorer is not None
        curve = self.curves.points(index, x_scale)
        log_priors = None if self.trie is None else self.trie.word_log_probs_of([word for _, word in row])
        return self.rescorer.rescore(row, curve.layout, curve.x, curve.y, log_priors)


_worker_decoder: Decoder | None = None


def _init_worker(job: DecodeJob) -> None:
    global _worker_decoder
    # One thread per process: the processes are the parallelism (and a forked process must not
    # reuse the parent's OpenMP pool).
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # a forked process may inherit an inter-op pool that already started
        pass
    _worker_decoder = Decoder(job)


def _decode_in_worker(indices: Sequence[int]) -> list[list[Candidate]]:
    assert _worker_decoder is not None
    return _worker_decoder(indices)


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
        raise PredictError(f"batch size must be >= 1, got {batch_size}")
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


def decode(
    job: DecodeJob,
    batch_size: int,
    num_workers: int = 0,
    max_batch_points: int | None = DEFAULT_MAX_BATCH_POINTS,
    progress: bool = False,
    start_method: str | None = None,
) -> list[list[Candidate]]:
    """Decode every curve of ``job.curves``.

    On the CPU every process decodes on one thread (parallelism comes from ``num_workers``), so
    the output is the same, bit for bit, whatever the number of workers.

    Parameters
    ----------
    job : DecodeJob
        Model, curves, generator and lexicon.
    batch_size : int
        Most curves decoded together.
    max_batch_points : int or None
        Most padded points per batch (see :func:`make_batches`); None: no limit.
    num_workers : int
        Worker processes; 0 decodes in this process.
    progress : bool
        Show a progress bar.
    start_method : str, optional
        Multiprocessing start method; default ``fork`` where available, else ``spawn``.

    Returns
    -------
    list of list of (float, str)
        Per curve, in input order, the candidates best first.
    """
    if num_workers < 0:
        raise PredictError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers > 0 and job.device != "cpu":
        raise PredictError("--num-workers needs --device cpu (workers do not share an accelerator)")
    check_x_scales(job.x_scales)
    check_x_scales(job.wide_x_scales, "wide_x_scales", empty_ok=True)
    check_views_below(job.views_below, job.x_scales)
    check_template_candidates(job.template_candidates, job.trie is not None)
    # Each curve is searched once per view: the batch limits count the views (of the first search).
    views = len(job.x_scales) if job.views_below is None else 1
    batches = make_batches(
        job.curves.num_points,
        max(1, batch_size // views),
        None if max_batch_points is None else max(1, max_batch_points // views),
    )
    results: list[list[Candidate] | None] = [None] * len(job.curves)
    threads = torch.get_num_threads()
    executor = None
    try:
        if num_workers == 0:
            if job.device == "cpu":
                # One thread, as in every worker: float results then do not depend on num_workers.
                torch.set_num_threads(1)
            outputs: Any = map(Decoder(job), batches)
        else:
            if start_method is None:
                methods = multiprocessing.get_all_start_methods()
                start_method = "fork" if "fork" in methods else "spawn"
            executor = ProcessPoolExecutor(
                max_workers=num_workers,
                mp_context=multiprocessing.get_context(start_method),
                initializer=_init_worker,
                initargs=(job,),
            )
            outputs = executor.map(_decode_in_worker, batches)
        with tqdm(total=len(job.curves), unit="curve", disable=not progress, file=sys.stderr) as bar:
            for indices, candidates in zip(batches, outputs, strict=True):
                for i, row in zip(indices, candidates, strict=True):
                    results[i] = row
                bar.update(len(indices))
    finally:
        torch.set_num_threads(threads)
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    return [row if row is not None else [] for row in results]


# ---- files ---------------------------------------------------------------------------------------


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_submission_csv(
    path: str | Path, candidates: Sequence[Sequence[Candidate]], overwrite: bool
) -> None:
    """Write a Yandex Cup submission: per curve its first four candidates, comma-separated, no
    header, no index. Rows with fewer candidates repeat the last one (or are empty)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass --overwrite to replace it)")
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for row in candidates:
            words = [word for _, word in row[:4]]
            if words:
                words += [words[-1]] * (4 - len(words))
            else:
                words = [""] * 4
            writer.writerow(words)
    tmp.replace(path)




# ---- data ----------------------------------------------------------------------------------------


class DatasetCurves:
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
        layouts: Sequence[Any],
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

    def batch(
        self, indices: Sequence[int], x_scales: Sequence[float] = (1.0,)
    ) -> tuple[SwipeBatch, Tensor]:
        from swipe.data import SwipeCollator, with_x_scaled

        if self._collator is None:
            tokenizer = self.dataset.tokenizer
            self._collator = SwipeCollator(self.layouts, tokenizer, self.max_points, self.resample)
        items = [self.dataset[i] for i in indices]
        views = [with_x_scaled(item, factor, self.layouts[item.layout_id])
                 for factor in x_scales for item in items]
        return self._collator.swipes(views)

    def points(self, index: int, x_scale: float = 1.0) -> CurvePoints:
        """Curve ``index`` as drawn (pixels, before any resampling or thinning), its x scaled by
        ``x_scale``."""
        item = self.dataset[index]
        scale = 1.0 / item.coord_scale
        return CurvePoints(self.layouts[item.layout_id], item.x * (scale * x_scale), item.y * scale)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "layouts": self.layouts,
            "max_points": self.max_points,
            "resample": self.resample,
            "_dataset": None,
            "_collator": None,
        }


class FirstCurves:
    """The first ``n`` curves of a curve source."""

    def __init__(self, curves: CurveSource, n: int) -> None:
        self.curves = curves
        self.n = min(n, len(curves))

    def __len__(self) -> int:
        return self.n

    @property
    def num_points(self) -> np.ndarray:
        return self.curves.num_points[: self.n]

    def batch(self, indices: Sequence[int], x_scales: Sequence[float] = (1.0,)) -> tuple[SwipeBatch, Tensor]:
        return self.curves.batch(indices, x_scales)

    def points(self, index: int, x_scale: float = 1.0) -> CurvePoints:
        return self.curves.points(index, x_scale)


# ---- the command line ----------------------------------------------------------------------------

# Generator options that have a command-line flag: flag -> option name.
_OPTION_FLAGS = {
    "beam_size": "--beam-size",
    "num_candidates": "--num-candidates",
    "prior_weight": "--prior-weight",
    "length_penalty": "--length-penalty",
    "max_length": "--max-length",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Decode swipes with a trained model into ranked candidate words (preds.pkl).",
        epilog="An exported model's folder may hold decoding.json, the decoding settings chosen for "
        "it (the shipped English model's: beam 16, prior 0.3, length penalty 0.75, template weight 0.5, "
        "x-scales 0.94,1,1.06 below -8, wide x-scales 0.3 to 0.7, 4 template candidates); it replaces the "
        "defaults above of every decoding flag that is not given.",
    )
    arg = parser.add_argument
    arg("--checkpoint", help="checkpoint file or run directory (default: best.pt of the latest run)")
    arg("--runs-dir", default="runs", help="where to look for the latest run (default: runs)")
    arg("--data", help="built dataset directory or raw data file (default: the run's validation split)")
    arg("--split", help="name of the data split recorded in the output (default: 'val' or the file name)")
    arg("--layouts", help="grids file for raw data whose rows name their grid")
    arg("--skip-bad-rows", action="store_true", help="skip (and count) malformed rows of raw data")
    arg("--lexicon", help="'en', 'ru' or a word-list file (default: the run's lexicon)")
    arg("--no-lexicon", action="store_true", help="decode without a lexicon (any character string)")
    arg("--generator", choices=sorted(GENERATORS),
        help="search (default: the model's decoding.json, else beam)")
    arg("--beam-size", type=int, help="beam: hypotheses per curve (default 8)")
    arg("--num-candidates", type=int, help="beam: candidates kept per curve (default: beam size)")
    arg("--prior-weight", type=float, help="weight of the word-frequency prior (default 0: off)")
    arg("--length-penalty", type=float, help="length-normalisation exponent of scores (default 0.5)")
    arg("--max-length", type=int, help="most tokens per word, <eos> included (default: from the lexicon)")
    arg("--template-weight", type=float,
        help="re-rank the candidates by their score plus this times how well the curve matches each "
        "word's key-centre template (swipe.templates; default 0: off)")
    arg("--template-prior-weight", type=float,
        help="weight of the word-frequency prior within the template score (default 1)")
    arg("--x-scales", type=_float_list,
        help="also decode each swipe as drawn on keyboards this many times as wide, x scaled about "
        "the left edge (comma-separated, e.g. 0.94,1,1.06), and keep each word's best score: for "
        "swipes from devices whose keyboard is a little narrower or wider than the layout; each "
        "factor costs about one more search (default 1: as drawn)")
    arg("--views-below", type=float,
        help="decode the --x-scales views other than 1 only for swipes whose best score as drawn is "
        "below this (they rarely change a word that fits well; inf: every swipe) (default: every swipe)")
    arg("--wide-x-scales", type=_float_list,
        help="further views (comma-separated factors, or 'none') only for swipes that reach more "
        "than a key width past the keyboard's right edge, as swipes logged on a wider keyboard do "
        "(a phone held sideways, other pixels), e.g. 0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75 "
        "(default none)")
    arg("--template-candidates", type=int,
        help="for swipes whose best score is below --views-below (every swipe without it), also "
        "score this many words proposed by the SHARK2 template matcher with the model and merge "
        "them in: finds words the search missed (default 0: none; needs a lexicon)")
    arg("--batch-size", type=int, default=64, help="most curves decoded together (default 64)")
    arg("--max-batch-points", type=int, default=DEFAULT_MAX_BATCH_POINTS,
        help=f"most curves x padded points per batch (default {DEFAULT_MAX_BATCH_POINTS})")
    arg("--device", default="cpu", help="cpu or cuda (default cpu)")
    arg("--num-workers", type=int, default=0, help="decoding processes (default 0: this one)")
    arg("--out", default="preds.pkl", help="predictions file (default preds.pkl)")
    arg("--csv", help="also write a Yandex Cup submission CSV (four candidates per curve)")
    arg("--overwrite", action="store_true", help="replace existing output files")
    arg("--quiet", action="store_true", help="no progress bar")
    return parser


def _float_list(text: str) -> tuple[float, ...]:
    """``"0.94,1,1.06"`` -> ``(0.94, 1.0, 1.06)``, ``"none"`` -> ``()`` (an argparse type)."""
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


class _Inputs(NamedTuple):
    checkpoint: Path
    data: Path
    split: str


def _resolve_inputs(args: argparse.Namespace, loaded: Any, checkpoint: Path) -> _Inputs:
    if args.data is not None:
        data = Path(args.data)
        split = args.split or data.name.split(".")[0]
    else:
        from swipe.training.datasets import resolve_data_config

        run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
        val = resolve_data_config(loaded.config, run_dir).val
        if val is None:
            raise PredictError(f"{checkpoint}: the run's config names no validation data; pass --data")
        data = Path(val)
        split = args.split or "val"
    if not data.exists():
        raise PredictError(f"{data}: no such data file or dataset directory")
    return _Inputs(checkpoint, data, split)


def _data_layout_names(data: Path, args: argparse.Namespace) -> set[str]:
    """The layouts the curves of ``data`` (a built dataset or a raw file) are drawn on."""
    if data.is_dir():
        from swipe.data import SwipeDataset

        return {layout.name for layout in SwipeDataset(data).layouts if layout is not None}
    from swipe.formats import read_curves

    return {curve.grid_name for curve in read_curves(data, grids_file=args.layouts, skip_bad_rows=True)}


def _shipped_checkpoint(args: argparse.Namespace) -> Path:
    """The shipped model that decodes every layout of ``--data`` (used when no run exists)."""
    from swipe.shipped import shipped_model_for_layouts

    no_run = f"no trained run under {args.runs_dir}/ (train one with `python train.py`)"
    if args.data is None:
        raise PredictError(f"{no_run}; or pass --data to decode with the shipped model for its layouts")
    names = _data_layout_names(Path(args.data), args)
    path = shipped_model_for_layouts(names)
    if path is None:
        raise PredictError(
            f"{no_run}, and no shipped model decodes the layouts {sorted(names)} of {args.data}"
        )
    print(f"{no_run}: decoding with the shipped model {path}", file=sys.stderr)
    return path


def _find_checkpoint(args: argparse.Namespace) -> Path:
    if args.checkpoint is None:
        from swipe.training.checkpoint import find_latest_run

        try:
            path = find_latest_run(args.runs_dir)
        except FileNotFoundError:
            return _shipped_checkpoint(args)
    else:
        path = Path(args.checkpoint)
    if path.is_dir():
        ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        for name in ("model.pt", "best.pt", "last.pt"):  # an exported model's folder, or a run's
            if (ckpt_dir / name).is_file():
                return ckpt_dir / name
        raise PredictError(f"{path}: no model.pt, best.pt or last.pt")
    if not path.is_file():
        raise PredictError(f"{path}: no such checkpoint")
    return path


def _open_data(data: Path, args: argparse.Namespace, workdir: Path, model_layouts: Sequence[Any]) -> Path:
    """A built dataset directory for ``data``: itself, or ``data`` built into ``workdir``.

    Rows that name their grid find it in ``--layouts``, else among the model's own layouts (the
    checkpoint carries them), else among the bundled ones.
    """
    from swipe.data import build_dataset

    if data.is_dir():
        return data
    out = workdir / "dataset"
    manifest = build_dataset(
        [data],
        out,
        layouts=args.layouts if args.layouts else {layout.name: layout for layout in model_layouts},
        alphabet=None,
        skip_bad_rows=args.skip_bad_rows,
    )
    if manifest.skipped:
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(manifest.skipped.items()))
        print(f"{data}: skipped {sum(manifest.skipped.values())} bad rows ({counts})", file=sys.stderr)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``predict.py``: decode a data split into ``preds.pkl`` (and optionally a submission CSV)."""
    from swipe.data import DatasetError
    from swipe.formats import BadRowError
    from swipe.keyboard import LayoutError
    from swipe.lexicon import LexiconError
    from swipe.predictions import PredictionsError
    from swipe.training.checkpoint import CheckpointError

    args = build_parser().parse_args(argv)
    expected = (PredictError, GeneratorError, FileExistsError, FileNotFoundError, DatasetError, BadRowError,
                LayoutError, LexiconError, PredictionsError, CheckpointError)
    try:
        run(args)
    except expected as err:
        print(f"predict.py: error: {err}", file=sys.stderr)
        return 2
    return 0


def _generator_options(args: argparse.Namespace) -> GreedyOptions | BeamOptions:
    """The generator's options from the flags that were given, checked; errors name the flags."""
    options = {name: getattr(args, name) for name in _OPTION_FLAGS if getattr(args, name) is not None}
    takes = [f.name for f in dataclasses.fields(GENERATORS[args.generator].options)]
    for name in options:
        if name not in takes:
            known = ", ".join(_OPTION_FLAGS[n] for n in takes)
            raise GeneratorError(
                f"generator {args.generator!r}: {_OPTION_FLAGS[name]} is not one of its options ({known})"
            )
    try:
        return generator_options(args.generator, options)
    except GeneratorError as err:
        message = str(err)
        for name, flag in _OPTION_FLAGS.items():
            message = message.replace(name, flag)
        raise GeneratorError(message) from None


def _template_rescorer(args: argparse.Namespace) -> TemplateRescorer | None:
    """The ``--template-weight`` rescorer, or None when the weight is 0."""
    for flag, value in (("--template-weight", args.template_weight),
                        ("--template-prior-weight", args.template_prior_weight)):
        if not (math.isfinite(value) and value >= 0):
            raise PredictError(f"{flag} must be a finite number >= 0, got {value}")
    if args.template_weight == 0:
        return None
    return TemplateRescorer(args.template_weight, args.template_prior_weight)


def _with_model_settings(args: argparse.Namespace, checkpoint: Path) -> argparse.Namespace:
    """``args`` with the decoding flags that were not given taken from the model's
    ``decoding.json`` (see :class:`swipe.shipped.DecodingSettings`), else their defaults."""
    from swipe.config import ConfigError
    from swipe.shipped import DECODING_FILE, read_decoding_settings

    try:
        settings = read_decoding_settings(checkpoint)
    except ConfigError as err:
        raise PredictError(str(err)) from None
    filled = vars(args).copy()
    if settings is not None and not args.no_lexicon:  # the settings are chosen with a lexicon
        if settings.generator not in GENERATORS:
            raise PredictError(f"{checkpoint.parent / DECODING_FILE}: unknown generator "
                               f"{settings.generator!r}; known: {', '.join(GENERATORS)}")
        names = ["template_weight", "template_prior_weight", "x_scales", "views_below", "wide_x_scales",
                 "template_candidates"]
        if args.generator in (None, settings.generator):
            names = ["generator", *_OPTION_FLAGS, *names]
        taken = [name for name in names if filled[name] is None and getattr(settings, name) is not None]
        for name in taken:
            filled[name] = getattr(settings, name)
        if taken:
            used = ", ".join(f"{name} {filled[name]}" for name in taken)
            print(f"decoding as {checkpoint.parent / DECODING_FILE} recommends: {used} (flags override)",
                  file=sys.stderr)
    defaults = (("generator", "beam"), ("template_weight", 0.0), ("template_prior_weight", 1.0),
                ("x_scales", (1.0,)), ("wide_x_scales", ()), ("template_candidates", 0))
    for name, default in defaults:
        if filled[name] is None:
            filled[name] = default
    return argparse.Namespace(**filled)


def run(args: argparse.Namespace) -> Predictions:
    """Carry out a parsed ``predict.py`` command line; returns what was written."""
    checkpoint = _find_checkpoint(args)
    args = _with_model_settings(args, checkpoint)
    checked = _generator_options(args)
    if args.num_workers < 0:
        raise PredictError(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.batch_size < 1:
        raise PredictError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_batch_points < 1:
        raise PredictError(f"--max-batch-points must be >= 1, got {args.max_batch_points}")
    if args.num_workers > 0 and args.device != "cpu":
        raise PredictError("--num-workers needs --device cpu (workers do not share an accelerator)")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise PredictError(f"--device {args.device}: CUDA is not available")
    rescorer = _template_rescorer(args)
    x_scales = tuple(args.x_scales)
    check_x_scales(x_scales, "--x-scales")
    wide_x_scales = tuple(args.wide_x_scales)
    check_x_scales(wide_x_scales, "--wide-x-scales", empty_ok=True)
    views_below = None if args.views_below is None or args.views_below == math.inf else args.views_below
    check_views_below(views_below, x_scales, "--views-below")
    check_template_candidates(args.template_candidates, not args.no_lexicon, "--template-candidates")
    for path in (args.out, args.csv):
        if path is not None and Path(path).exists() and not args.overwrite:
            raise FileExistsError(f"{path}: already exists (pass --overwrite to replace it)")

    loader = CheckpointLoader(checkpoint)
    loaded = loader.load(args.device)
    inputs = _resolve_inputs(args, loaded, checkpoint)

    trie = None
    lexicon_name = None
    if not args.no_lexicon:
        from swipe.lexicon import load_lexicon

        lexicon_name = args.lexicon or loaded.config.lexicon
        trie = LexiconTrie.from_lexicon(load_lexicon(lexicon_name), loaded.tokenizer)
        if trie.num_skipped:
            print(f"lexicon {lexicon_name}: {trie.num_skipped} words the model cannot spell were left out",
                  file=sys.stderr)
    elif args.lexicon is not None:
        raise PredictError("--lexicon and --no-lexicon exclude each other")

    with tempfile.TemporaryDirectory(prefix="swipe-predict-") as workdir:
        dataset_dir = _open_data(inputs.data, args, Path(workdir), loaded.layouts)
        curves = DatasetCurves.for_model(dataset_dir, loaded)
        job = DecodeJob(loader, curves, args.generator, checked, trie, args.device, rescorer, x_scales,
                        wide_x_scales, views_below, args.template_candidates)
        candidates = decode(job, args.batch_size, args.num_workers, args.max_batch_points,
                            progress=not args.quiet)
        dataset = curves.dataset
        targets = [dataset.word(i) for i in range(len(dataset))]
        layout_names = [layout.name for layout in loaded.layouts]
        row_layouts = [layout_names[dataset[i].layout_id] for i in range(len(dataset))]

    metadata = {
        "model": {
            "architecture": type(loaded.model).__name__,
            "family": loaded.config.model.family,
            "config": to_dict(loaded.config.model),
            "run": loaded.config.name,
            "step": loaded.step,
        },
        "weights": str(checkpoint),
        "weights_sha256": sha256_of(checkpoint),
        "generator": args.generator,
        "generator_options": to_dict(checked),
        "template_rescoring": (
            None if rescorer is None
            else {"weight": rescorer.weight, "prior_weight": rescorer.prior_weight,
                  "scoring": to_dict(rescorer.scoring)}
        ),
        "x_scales": list(x_scales),
        "views_below": views_below,
        "wide_x_scales": list(wide_x_scales),
        "template_candidates": args.template_candidates,
        "lexicon": lexicon_name,
        "layout_names": layout_names,
        "data_file": str(inputs.data),
        "split": inputs.split,
    }
    predictions = Predictions(candidates, targets, row_layouts, metadata)
    write_predictions(args.out, predictions, overwrite=args.overwrite)
    if args.csv is not None:
        write_submission_csv(args.csv, candidates, overwrite=args.overwrite)
    found = sum(1 for row in candidates if row)
    print(f"wrote {args.out}: {len(candidates)} curves ({found} with candidates)", file=sys.stderr)
    return predictions
