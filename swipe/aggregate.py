"""Ensembles: merge the ranked candidates of several predictors with per-predictor weights.

For each curve, every member's candidate list is de-duplicated (first occurrence kept) and its
scores normalised:

``softmax``
    ``p(word) = exp(score) / sum(exp(scores))`` over the member's candidates; right for
    log-probability scores (what the beam and greedy generators produce).
``reciprocal_rank``
    ``1 / rank``; ignores the scores, so it also merges members whose scores are not comparable.

A word's merged score is ``sum_k weight_k * normalised_k(word)`` (0 where member ``k`` does not
list it); words listed only by members of weight 0 are dropped. Candidates are ordered by merged
score, ties in the order first listed (member order, then rank).

``fit`` chooses the weights (and, with ``--method auto``, the normalisation) that maximise Swipe MRR
on a validation predictions set: the best of equal weights and each member alone, then coordinate
ascent over a small grid of weights. ``apply`` merges a test predictions set of the same members::

    python -m swipe.aggregate fit val_a.pkl val_b.pkl --out ensemble.json
    python -m swipe.aggregate apply ensemble.json test_a.pkl test_b.pkl --out test_ensemble.pkl

Files are merged only if their rows describe the same curves: same number of rows, data file,
split and layouts, and equal targets wherever both files know them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, Sequence

import numpy as np

from swipe.cli import command_line
from swipe.config import ConfigError, load_json, to_dict
from swipe.metrics import SWIPE_MRR_WEIGHTS, score_predictions, unique_words
from swipe.predictions import (
    Predictions,
    PredictionsError,
    atomic_write_bytes,
    read_predictions,
    write_predictions,
)
from swipe.results import canonical_json, predictor_key

Method = Literal["softmax", "reciprocal_rank"]
METHODS: tuple[Method, ...] = ("softmax", "reciprocal_rank")
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)

# Swipe MRR points by rank (1-based), 0 from rank 5 on.
_POINTS = np.array([*SWIPE_MRR_WEIGHTS, 0.0])

# Metadata that describes the data rather than the predictor.
_DATA_KEYS = ("data_file", "split")


class EnsembleError(ValueError):
    """Predictions that cannot be merged, or an ensemble that does not fit its members."""


@dataclass
class EnsembleMember:
    """A member predictor: its key (identity without the data) and a readable description."""

    predictor: str
    generator: str
    weights_sha256: str


@dataclass
class Ensemble:
    """Fitted ensemble weights, saved as JSON.

    Attributes
    ----------
    method : {"softmax", "reciprocal_rank"}
        How each member's scores are normalised per curve.
    weights : list of float
        Per member, summing to 1.
    members : list of EnsembleMember
        The predictors, in the order their files must be given.
    fitted_on : str
        The validation data (``data_file:split``).
    validation_swipe_mrr : float
        The ensemble's Swipe MRR on it.
    member_swipe_mrr : list of float
        Each member's own Swipe MRR on it.
    """

    method: Method
    weights: list[float]
    members: list[EnsembleMember]
    fitted_on: str = ""
    validation_swipe_mrr: float = 0.0
    member_swipe_mrr: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.members):
            raise EnsembleError(f"{len(self.weights)} weights for {len(self.members)} members")
        _check_weights(self.weights)


class Normalised(NamedTuple):
    """One member's de-duplicated candidates for a curve and their normalised scores."""

    words: list[str]
    scores: np.ndarray


def normalise(candidates: Sequence[tuple[float, str]], method: Method) -> Normalised:
    """De-duplicate ``candidates`` (best first, first occurrence kept) and normalise their scores."""
    best: dict[str, float] = {}
    for score, word in candidates:
        best.setdefault(word, score)
    words = list(best)
    if method == "reciprocal_rank":
        return Normalised(words, 1.0 / np.arange(1, len(words) + 1, dtype=np.float64))
    scores = np.fromiter(best.values(), dtype=np.float64, count=len(words))
    if not words or not np.isfinite(scores.max()):
        return Normalised(words, np.full(len(words), 1.0 / max(len(words), 1)))
    p = np.exp(scores - scores.max())
    return Normalised(words, p / p.sum())


def check_same_curves(members: Sequence[Predictions], names: Sequence[str]) -> None:
    """Raise :class:`EnsembleError` unless all ``members`` describe the same curves.

    Parameters
    ----------
    members : sequence of Predictions
        The predictions to merge.
    names : sequence of str
        Their file names, for error messages.
    """
    first, first_name = members[0], names[0]
    for other, name in zip(members[1:], names[1:], strict=True):
        where = f"{name} and {first_name}"
        if len(other) != len(first):
            raise EnsembleError(f"{where}: different numbers of curves ({len(other)} and {len(first)})")
        if os.path.normpath(other.metadata["data_file"]) != os.path.normpath(first.metadata["data_file"]):
            raise EnsembleError(
                f"{where}: different data_file ({other.metadata['data_file']!r} and "
                f"{first.metadata['data_file']!r}); predict every member with the same --data"
            )
        if other.metadata["split"] != first.metadata["split"]:
            raise EnsembleError(
                f"{where}: different split ({other.metadata['split']!r} and {first.metadata['split']!r})"
            )
        rows = zip(other.targets, first.targets, other.layouts, first.layouts, strict=True)
        for i, (a, b, la, lb) in enumerate(rows):
            if a is not None and b is not None and a != b:
                raise EnsembleError(f"{where}: row {i}: different targets ({a!r} and {b!r})")
            if la != lb:
                raise EnsembleError(f"{where}: row {i}: different layouts ({la!r} and {lb!r})")


def merge(
    members: Sequence[Predictions],
    weights: Sequence[float],
    method: Method,
    names: Sequence[str] | None = None,
) -> Predictions:
    """Merge the candidates of ``members`` with ``weights`` (see the module docstring).

    Parameters
    ----------
    members : sequence of Predictions
        Predictions of several predictors for the same curves.
    weights : sequence of float
        Per member, non-negative, not all zero.
    method : {"softmax", "reciprocal_rank"}
        Per-curve score normalisation.
    names : sequence of str, optional
        The members' file names, for error messages.

    Returns
    -------
    Predictions
        Merged candidates (score = merged score), the members' targets and layouts, and metadata
        naming the members, the method and the weights.
    """
    names = list(names) if names is not None else [f"predictions {i}" for i in range(len(members))]
    if not members:
        raise EnsembleError("nothing to merge")
    if len(weights) != len(members):
        raise EnsembleError(f"{len(weights)} weights for {len(members)} predictions files")
    _check_weights(weights)
    check_same_curves(members, names)
    candidates = []
    for rows in zip(*(m.candidates for m in members), strict=True):
        merged: dict[str, float] = {}
        for row, weight in zip(rows, weights, strict=True):
            if weight == 0:
                continue
            norm = normalise(row, method)
            for word, score in zip(norm.words, norm.scores.tolist(), strict=True):
                merged[word] = merged.get(word, 0.0) + weight * score
        ranked = sorted(merged.items(), key=lambda item: -item[1])  # stable: ties keep listing order
        candidates.append([(score, word) for word, score in ranked])
    targets = [
        next((t for t in ts if t is not None), None) for ts in zip(*(m.targets for m in members), strict=True)
    ]
    return Predictions(
        candidates, targets, list(members[0].layouts), _merged_metadata(members, weights, method)
    )


def fit(
    members: Sequence[Predictions],
    method: Method | Literal["auto"] = "auto",
    names: Sequence[str] | None = None,
    grid: Sequence[float] = WEIGHT_GRID,
    max_rounds: int = 5,
) -> Ensemble:
    """Choose ensemble weights that maximise Swipe MRR on validation predictions.

    Parameters
    ----------
    members : sequence of Predictions
        Validation predictions of two or more predictors for the same curves, with targets.
    method : {"auto", "softmax", "reciprocal_rank"}
        Score normalisation; ``auto`` tries both and keeps the better.
    names : sequence of str, optional
        The members' file names, for error messages.
    grid : sequence of float
        Candidate values for each weight in the coordinate search.
    max_rounds : int
        Passes of the coordinate search over all members.
    """
    names = list(names) if names is not None else [f"predictions {i}" for i in range(len(members))]
    if len(members) < 2:
        raise EnsembleError("an ensemble needs two or more predictions files")
    check_same_curves(members, names)
    if not any(t is not None for m in members for t in m.targets):
        raise EnsembleError(f"{', '.join(names)}: no targets to fit the weights on")
    best: tuple[float, Method, np.ndarray] | None = None
    for m in METHODS if method == "auto" else (method,):
        table = _ScoreTable(members, m)
        score, weights = _search(table, grid, max_rounds)
        if best is None or score > best[0]:
            best = (score, m, weights)
    assert best is not None
    score, chosen, weights = best
    md = members[0].metadata
    return Ensemble(
        method=chosen,
        weights=(weights / weights.sum()).tolist(),
        members=[_member(m) for m in members],
        fitted_on=f"{md['data_file']}:{md['split']}",
        validation_swipe_mrr=round(score, 6),
        member_swipe_mrr=[round(_swipe_mrr(m), 6) for m in members],
    )


def apply(
    ensemble: Ensemble, members: Sequence[Predictions], names: Sequence[str] | None = None
) -> Predictions:
    """Merge ``members`` with fitted ``ensemble`` weights, after checking they are its predictors."""
    names = list(names) if names is not None else [f"predictions {i}" for i in range(len(members))]
    if len(members) != len(ensemble.members):
        raise EnsembleError(f"the ensemble has {len(ensemble.members)} members, got {len(members)} files")
    for i, (m, expected, name) in enumerate(zip(members, ensemble.members, names, strict=True)):
        got = _member(m)
        if got.predictor != expected.predictor:
            raise EnsembleError(
                f"{name}: not the predictor the ensemble's member {i + 1} was fitted for "
                f"(expected generator {expected.generator!r}, weights {expected.weights_sha256[:12] or '-'}; "
                f"got generator {got.generator!r}, weights {got.weights_sha256[:12] or '-'}, "
                "or other options differ); give the files in the fitted order"
            )
    return merge(members, ensemble.weights, ensemble.method, names)


def save_ensemble(path: str | Path, ensemble: Ensemble, overwrite: bool = False) -> None:
    """Write ``ensemble`` as JSON (atomically); an existing file is an error unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass --overwrite to replace it)")
    atomic_write_bytes(path, (json.dumps(to_dict(ensemble), indent=2) + "\n").encode("utf-8"))


def load_ensemble(path: str | Path) -> Ensemble:
    """Read an ensemble written by :func:`save_ensemble`; errors name the file and key."""
    return load_json(Ensemble, path)


class _ScoreTable:
    """Validation candidates as arrays, so that scoring a weight vector is a few numpy operations.

    For curve ``n``, column ``j`` is the ``j``-th word of the union of the members' de-duplicated
    lists in listing order (member order, then rank), the same order :func:`merge` breaks ties by.
    """

    def __init__(self, members: Sequence[Predictions], method: Method) -> None:
        n, p = len(members[0]), len(members)
        per_curve = []
        for i in range(n):
            index: dict[str, int] = {}
            entries = []
            for k, m in enumerate(members):
                norm = normalise(m.candidates[i], method)
                for word, score in zip(norm.words, norm.scores.tolist(), strict=True):
                    entries.append((index.setdefault(word, len(index)), k, score))
            target = next((m.targets[i] for m in members if m.targets[i] is not None), None)
            per_curve.append((entries, len(index), index.get(target, -1) if target is not None else -2))
        width = max([1, *(w for _, w, _ in per_curve)])
        self.scores = np.zeros((n, width, p))
        self.listed = np.zeros((n, width, p), dtype=bool)
        for i, (entries, _, _) in enumerate(per_curve):
            for j, k, score in entries:
                self.scores[i, j, k] = score
                self.listed[i, j, k] = True
        target_index = np.array([t for _, _, t in per_curve], dtype=np.int64)
        self.has_target = target_index != -2
        self.target_index = np.where(self.has_target, target_index, -1)

    def swipe_mrr(self, weights: np.ndarray) -> float:
        merged = np.zeros(self.scores.shape[:2])
        for k, weight in enumerate(weights.tolist()):  # member by member, as merge() adds them up
            merged += weight * self.scores[:, :, k]
        listed = (self.listed & (weights > 0)).any(axis=2)
        merged = np.where(listed, merged, -np.inf)
        rows = np.flatnonzero(self.has_target & (self.target_index >= 0))
        t = self.target_index[rows]
        target_score = merged[rows, t]
        columns = np.arange(merged.shape[1])
        ahead = (merged[rows] > target_score[:, None]) | (
            (merged[rows] == target_score[:, None]) & (columns[None, :] < t[:, None])
        )
        rank = 1 + ahead.sum(axis=1)
        points = _POINTS[np.minimum(rank, len(_POINTS)) - 1]
        return float(points[listed[rows, t]].sum() / self.has_target.sum())


def _check_weights(weights: Sequence[float]) -> None:
    if any(w < 0 or not math.isfinite(w) for w in weights) or not any(weights):
        raise EnsembleError(f"weights must be finite, non-negative and not all zero, got {list(weights)}")


def _search(table: _ScoreTable, grid: Sequence[float], max_rounds: int) -> tuple[float, np.ndarray]:
    p = table.scores.shape[2]
    starts = [np.ones(p)] + [np.eye(p)[k] for k in range(p)]
    best_score, best = max(((table.swipe_mrr(w), w) for w in starts), key=lambda sw: sw[0])
    for _ in range(max_rounds):
        improved = False
        for k in range(p):
            for value in grid:
                w = best.copy()
                w[k] = value
                if not w.any():
                    continue
                score = table.swipe_mrr(w)
                if score > best_score + 1e-12:
                    best_score, best, improved = score, w, True
        if not improved:
            break
    return best_score, best


def _swipe_mrr(predictions: Predictions) -> float:
    value = score_predictions(predictions).overall.swipe_mrr
    return 0.0 if value is None else value


def _member(predictions: Predictions) -> EnsembleMember:
    md = predictions.metadata
    return EnsembleMember(predictor_key(md, without=_DATA_KEYS), md["generator"], md["weights_sha256"])


def _merged_metadata(members: Sequence[Predictions], weights: Sequence[float], method: Method) -> dict:
    mds = [m.metadata for m in members]
    layout_names = unique_words(name for md in mds for name in md["layout_names"])
    hashes = canonical_json([md["weights_sha256"] for md in mds]).encode("utf-8")
    return {
        "model": {"ensemble": [md["model"] for md in mds]},
        "weights": ";".join(md["weights"] for md in mds),
        "weights_sha256": hashlib.sha256(hashes).hexdigest(),
        "generator": "ensemble",
        "generator_options": {
            "method": method,
            "weights": [float(w) for w in weights],
            "members": [
                {
                    "generator": md["generator"],
                    "generator_options": md["generator_options"],
                    "weights_sha256": md["weights_sha256"],
                }
                for md in mds
            ],
        },
        "layout_names": layout_names,
        "data_file": mds[0]["data_file"],
        "split": mds[0]["split"],
    }


@command_line("python -m swipe.aggregate")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swipe.aggregate",
        description=__doc__.replace("``", "").replace("::\n", ":\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fit = sub.add_parser(
        "fit", help="fit ensemble weights on validation predictions",
        epilog="example:\n  python -m swipe.aggregate fit val_a.pkl val_b.pkl --out ensemble.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p_fit.add_argument(
        "predictions", nargs="+", type=Path, help="validation predictions files, one per member"
    )
    p_fit.add_argument("--out", type=Path, required=True, help="ensemble weights file (JSON) to write")
    p_fit.add_argument("--method", choices=("auto", *METHODS), default="auto", help="score normalisation")
    p_fit.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p_apply = sub.add_parser(
        "apply", help="merge predictions with fitted ensemble weights",
        epilog="example:\n"
        "  python -m swipe.aggregate apply ensemble.json test_a.pkl test_b.pkl --out test_ensemble.pkl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p_apply.add_argument("ensemble", type=Path, help="ensemble weights file written by fit")
    p_apply.add_argument("predictions", nargs="+", type=Path, help="predictions files, in the fitted order")
    p_apply.add_argument("--out", type=Path, required=True, help="merged predictions file to write")
    p_apply.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(argv)

    names = [str(p) for p in args.predictions]
    try:
        if args.out.exists() and not args.overwrite:
            raise FileExistsError(f"{args.out}: already exists (pass --overwrite to replace it)")
        ensemble = load_ensemble(args.ensemble) if args.command == "apply" else None
        members = [read_predictions(p) for p in args.predictions]
        if ensemble is None:
            ensemble = fit(members, args.method, names)
            save_ensemble(args.out, ensemble, overwrite=args.overwrite)
            for name, score, weight in zip(names, ensemble.member_swipe_mrr, ensemble.weights, strict=True):
                print(f"member    swipe_mrr {score:.4f}  weight {weight:.4f}  {name}")
            print(f"ensemble  swipe_mrr {ensemble.validation_swipe_mrr:.4f}  method {ensemble.method}")
            print(f"wrote {args.out}")
        else:
            merged = apply(ensemble, members, names)
            write_predictions(args.out, merged, overwrite=args.overwrite)
            weights = ", ".join(f"{w:.4f}" for w in ensemble.weights)
            print(f"wrote {args.out} ({len(merged)} curves, method {ensemble.method}, weights {weights})")
    except (EnsembleError, PredictionsError, ConfigError, FileExistsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
