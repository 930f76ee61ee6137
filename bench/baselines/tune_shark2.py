"""Tune the SHARK2 matcher's channel widths and pruning radii on one half of a swipe file.

    python bench/baselines/tune_shark2.py [--data FILE] [--lexicon en] [--tune-on odd|even|all]
                                          [--held-out FILE] [--save-config FILE]

Coordinate search: each parameter in turn is set to the value of its grid that maximises
accuracy@1 (then Swipe MRR) on the tuning swipes, the others held fixed, for a few rounds. The
chosen settings are printed with their scores on the tuning swipes and on the held-out swipes: the
other half of ``--data``, or all of ``--held-out`` (required with ``--tune-on all``, e.g. to tune on
synthetic swipes and test on real ones). Only the tuning swipes take part in the choice.
Resampling sizes (``num_points``, ``dtw_points``) stay fixed.

Channel distances are computed once per swipe for every word within the largest radii of the
grids; DTW distances are computed on demand and cached. A swipe without any word within a
setting's radii counts as a miss here (the decoder would widen its radii).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.baselines.common import DEFAULT_DATA, DEFAULT_LAYOUT, HALVES, read_labelled_curves, select_half
from swipe.config import save_json
from swipe.formats import BadRowError, Curve
from swipe.keyboard import bundled_layout
from swipe.lexicon import LexiconError, load_lexicon
from swipe.metrics import SWIPE_MRR_WEIGHTS
from swipe.shark2 import (
    ChannelDistances,
    ElasticDistances,
    Shark2Config,
    Shark2Decoder,
    base_scores,
    elastic_scores,
)

GRIDS: dict[str, tuple[float, ...]] = {
    "sigma_location": (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0),
    "sigma_shape": (0.03, 0.04, 0.06, 0.08, 0.11, 0.15, 0.2),
    "sigma_ends": (0.3, 0.4, 0.5, 0.7, 1.0, 1.4),
    "sigma_elastic_location": (0.1, 0.14, 0.2, 0.28, 0.4, 0.56),
    "sigma_elastic_shape": (0.018, 0.025, 0.035, 0.05, 0.07, 0.1),
    "start_radius": (0.75, 1.0, 1.25, 1.5, 2.0),
    "end_radius": (1.0, 1.5, 2.0, 2.5),
    "rescore_top": (25, 50, 100, 200),
    "sigma_tap": (0.2, 0.3, 0.4, 0.5, 0.7, 1.0),
}


class Prepared(NamedTuple):
    """One swipe's channel distances within the largest radii, its target's row, and a DTW cache."""

    gesture: Curve
    distances: ChannelDistances
    target_row: int  # row of the target word among the templates, -1 if not in the lexicon
    elastic_location: np.ndarray  # (C,) DTW distances, NaN where not computed yet
    elastic_shape: np.ndarray


class Split(NamedTuple):
    accuracy: float
    swipe_mrr: float


def prepare(decoder: Shark2Decoder, gestures: list[Curve]) -> list[Prepared]:
    rows = {w: i for i, w in enumerate(decoder.templates.words)}
    radius_s, radius_e = max(GRIDS["start_radius"]), max(GRIDS["end_radius"])
    out = []
    for g in gestures:
        d = decoder.channel_distances(g.x, g.y, radius_s, radius_e)
        out.append(Prepared(g, d, rows.get(g.word or "", -1), np.full(len(d.index), np.nan),
                            np.full(len(d.index), np.nan)))
    return out


def evaluate(decoder: Shark2Decoder, prepared: list[Prepared], config: Shark2Config) -> Split:
    """Accuracy@1 and Swipe MRR of ``config`` on prepared swipes, as the decoder would rank them."""
    hits = mrr = 0.0
    for p in prepared:
        d = p.distances
        sel = np.flatnonzero((d.start <= config.start_radius) & (d.end <= config.end_radius))
        if len(sel) == 0 or p.target_row < 0:
            continue
        sub = ChannelDistances(d.index[sel], d.start[sel], d.end[sel], d.location[sel], d.shape[sel],
                               d.log_prior[sel], d.is_tap)
        scores = base_scores(sub, config)
        if d.is_tap:
            top = sub.index[np.argsort(-scores, kind="stable")[: len(SWIPE_MRR_WEIGHTS)]]
            hits, mrr = _add(top, p.target_row, hits, mrr)
            continue
        keep = sel[np.argsort(-scores, kind="stable")[: config.rescore_top]]
        missing = keep[np.isnan(p.elastic_location[keep])]
        if len(missing):
            elastic = decoder.elastic_distances(p.gesture.x, p.gesture.y, d.index[missing])
            p.elastic_location[missing], p.elastic_shape[missing] = elastic
        elastic = ElasticDistances(p.elastic_location[keep], p.elastic_shape[keep])
        final = scores[np.searchsorted(sel, keep)] + elastic_scores(elastic, config)
        top = d.index[keep[np.argsort(-final, kind="stable")[: len(SWIPE_MRR_WEIGHTS)]]]
        hits, mrr = _add(top, p.target_row, hits, mrr)
    return Split(hits / len(prepared), mrr / len(prepared))


def _add(top: np.ndarray, target_row: int, hits: float, mrr: float) -> tuple[float, float]:
    ranks = np.flatnonzero(top == target_row)
    if len(ranks) == 0:
        return hits, mrr
    return hits + (ranks[0] == 0), mrr + SWIPE_MRR_WEIGHTS[ranks[0]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="jsonl swipes with target words")
    parser.add_argument("--lexicon", default="en", help="bundled lexicon name or word<TAB>frequency file")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, help="bundled layout name")
    parser.add_argument("--tune-on", choices=HALVES, default="odd", help="lines of --data to tune on")
    parser.add_argument("--held-out", type=Path, help="score on all of this file, not the other half")
    parser.add_argument("--rounds", type=int, default=2, help="coordinate-search rounds")
    parser.add_argument("--save-config", type=Path, help="write the chosen Shark2Config as JSON here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --save-config file")
    args = parser.parse_args(argv)

    if args.tune_on == "all" and args.held_out is None:
        parser.error("--tune-on all needs --held-out FILE")
    if args.save_config is not None and args.save_config.exists() and not args.overwrite:
        parser.error(f"{args.save_config}: already exists (pass --overwrite to replace it)")
    started = time.perf_counter()
    layout = bundled_layout(args.layout)
    try:
        curves = read_labelled_curves(args.data, layout)
        if args.held_out is None:
            held_name = f"{args.data} {'even' if args.tune_on == 'odd' else 'odd'} lines"
            held_curves = select_half(curves, "even" if args.tune_on == "odd" else "odd")
        else:
            held_name, held_curves = str(args.held_out), read_labelled_curves(args.held_out, layout)
        lexicon = load_lexicon(args.lexicon)
    except (BadRowError, LexiconError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tune_name = f"{args.data} {args.tune_on} lines"
    decoder = Shark2Decoder(layout, lexicon)
    tune = prepare(decoder, select_half(curves, args.tune_on))
    held = prepare(decoder, held_curves)
    print(f"prepared {len(tune)} tuning and {len(held)} held-out swipes "
          f"in {time.perf_counter() - started:.0f} s")

    config = Shark2Config()
    best = evaluate(decoder, tune, config)
    print(f"start: accuracy@1 {best.accuracy:.4f}  swipe_mrr {best.swipe_mrr:.4f}")
    for round_no in range(1, args.rounds + 1):
        for name, grid in GRIDS.items():
            for value in grid:
                trial = dataclasses.replace(config, **{name: value})
                result = evaluate(decoder, tune, trial)
                if (result.accuracy, result.swipe_mrr) > (best.accuracy, best.swipe_mrr):
                    config, best = trial, result
            print(f"round {round_no} {name:>22} = {getattr(config, name):<5}  "
                  f"accuracy@1 {best.accuracy:.4f}  swipe_mrr {best.swipe_mrr:.4f}")
    held_out = evaluate(decoder, held, config)
    default_held = evaluate(decoder, held, Shark2Config())
    chosen = {name: getattr(config, name) for name in GRIDS}
    print(f"\nchosen on {tune_name}: {chosen}")
    print(f"tuning: {tune_name} ({len(tune)}): accuracy@1 {best.accuracy:.4f}  "
          f"swipe_mrr {best.swipe_mrr:.4f}")
    print(f"held out: {held_name} ({len(held)}): accuracy@1 {held_out.accuracy:.4f}  "
          f"swipe_mrr {held_out.swipe_mrr:.4f}  (current defaults: {default_held.accuracy:.4f})")
    if args.save_config is not None:
        save_json(config, args.save_config)
        print(f"settings written to {args.save_config}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
