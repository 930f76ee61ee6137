"""Decode real swipes with the classic baselines and print a comparison table.

    python bench/baselines/run_baselines.py [--data FILE] [--lexicon en] [--layout hws_fitted]
                                            [--baselines dtw shark2] [--out-dir DIR] [--overwrite]
                                            [--shark2-config FILE] [--dtw-config FILE]

Baselines:

* ``dtw``: the Yandex Cup 2023 baseline (first-letter candidates ranked by DTW to the key-centre
  polyline), see ``dtw_baseline.py``;
* ``shark2``: a SHARK2-style template matcher, see ``shark2.py``. Its settings were tuned on the
  odd lines of the default data file, so its row on the even lines is the held-out figure.

For each baseline the table gives Swipe MRR, accuracy@1 and recall@4 (``swipe.metrics``) on all
curves and on the even lines, the share of target words that the lexicon holds (the ceiling of
accuracy@1) and the decoding speed (one process, one curve at a time, after the templates are
built). With ``--out-dir`` each baseline's candidates are written as ``<baseline>.pkl``
(``swipe.predictions``), so that ``python evaluate.py DIR/shark2.pkl`` scores them.
``--shark2-config`` and ``--dtw-config`` take JSON files of settings (for instance written by
``tune_shark2.py --save-config``); fields left out keep their defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.baselines.common import DEFAULT_DATA, DEFAULT_LAYOUT, Candidates, read_labelled_curves
from bench.baselines.dtw_baseline import DTWConfig, DTWDecoder
from swipe.config import ConfigError, load_json
from swipe.formats import BadRowError, Curve
from swipe.keyboard import Layout, LayoutError, bundled_layout
from swipe.lexicon import Lexicon, LexiconError, load_lexicon
from swipe.metrics import score_predictions
from swipe.predictions import Predictions, write_predictions
from swipe.shark2 import Shark2Config, Shark2Decoder

BASELINES = ("dtw", "shark2")


class Run(NamedTuple):
    """One baseline's predictions on all curves, with its timings."""

    name: str
    predictions: Predictions
    build_seconds: float
    decode_seconds: float
    in_lexicon: float  # share of targets the decoder can produce


def run_baseline(config: DTWConfig | Shark2Config, layout: Layout, lexicon: Lexicon, lexicon_name: str,
                 curves: list[Curve], data_file: str, split: str = "all") -> Run:
    """Build the baseline that ``config`` configures and decode ``curves`` with it, one at a time.

    ``data_file`` and ``split`` name the curves in the predictions' metadata (``swipe.aggregate``
    merges only predictions of the same data file and split)."""
    started = time.perf_counter()
    decoder: DTWDecoder | Shark2Decoder
    if isinstance(config, DTWConfig):
        name, decoder = "dtw", DTWDecoder(layout, lexicon, config)
    else:
        name, decoder = "shark2", Shark2Decoder(layout, lexicon, config)
    built = time.perf_counter()
    candidates: list[Candidates] = [decoder.decode(c.x, c.y) for c in curves]
    decoded = time.perf_counter()
    options = dataclasses.asdict(config)
    predictions = Predictions(
        candidates=candidates,
        targets=[c.word for c in curves],
        layouts=[c.grid_name for c in curves],
        metadata={
            "model": {"baseline": name, "lexicon": lexicon_name, "config": options},
            "weights": "",
            "weights_sha256": "",
            "generator": f"baseline-{name}",
            "generator_options": options,
            "layout_names": [layout.name],
            "data_file": data_file,
            "split": split,
        },
    )
    vocabulary = set(decoder.templates.words)
    targets = [c.word for c in curves if c.word is not None]
    in_lexicon = sum(t in vocabulary for t in targets) / max(1, len(targets))
    return Run(name, predictions, built - started, decoded - built, in_lexicon)


def subset(predictions: Predictions, keep: list[bool]) -> Predictions:
    """The predictions of the curves where ``keep`` is true."""
    rows = [i for i, k in enumerate(keep) if k]
    return Predictions(
        candidates=[predictions.candidates[i] for i in rows],
        targets=[predictions.targets[i] for i in rows],
        layouts=[predictions.layouts[i] for i in rows],
        metadata=predictions.metadata,
    )


def format_table(runs: list[Run], curves: list[Curve]) -> str:
    """The comparison table (markdown): one row per baseline and half."""
    header = ("| baseline | curves | swipe_mrr | accuracy@1 | recall@4 | targets in lexicon | curves/s |\n"
              "| --- | --- | --- | --- | --- | --- | --- |")
    lines = [header]
    halves = (("all", [True] * len(curves)), ("even lines", [c.line % 2 == 0 for c in curves]))
    for run in runs:
        speed = len(curves) / run.decode_seconds if run.decode_seconds > 0 else float("inf")
        for label, keep in halves:
            s = score_predictions(subset(run.predictions, keep)).overall
            if s.num_scored == 0:
                continue
            lines.append(f"| {run.name} | {label} ({s.num_curves}) | {s.swipe_mrr:.4f} | {s.accuracy:.4f} "
                         f"| {s.recall_at_4:.4f} | {run.in_lexicon:.4f} | {speed:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="jsonl swipes with target words")
    parser.add_argument("--lexicon", default="en", help="bundled lexicon name or word<TAB>frequency file")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, help="bundled layout the swipes are drawn on")
    parser.add_argument("--baselines", nargs="+", choices=BASELINES, default=list(BASELINES))
    parser.add_argument("--dtw-config", type=Path, help="JSON file of DTWConfig fields")
    parser.add_argument("--shark2-config", type=Path, help="JSON file of Shark2Config fields")
    parser.add_argument("--out-dir", type=Path, help="write <baseline>.pkl predictions here")
    parser.add_argument("--overwrite", action="store_true", help="replace existing predictions files")
    args = parser.parse_args(argv)

    try:
        layout = bundled_layout(args.layout)
        lexicon = load_lexicon(args.lexicon)
        curves = read_labelled_curves(args.data, layout)
        configs: dict[str, DTWConfig | Shark2Config] = {
            "dtw": DTWConfig() if args.dtw_config is None else load_json(DTWConfig, args.dtw_config),
            "shark2": (Shark2Config() if args.shark2_config is None
                       else load_json(Shark2Config, args.shark2_config)),
        }
    except (BadRowError, ConfigError, LayoutError, LexiconError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        # Refuse before decoding rather than after: no file is replaced without --overwrite.
        existing = [p for n in args.baselines if (p := args.out_dir / f"{n}.pkl").exists()]
        if existing and not args.overwrite:
            print(f"error: {existing[0]}: already exists (pass --overwrite to replace it)", file=sys.stderr)
            return 1
    print(f"{len(curves)} curves from {args.data}, lexicon {args.lexicon} ({len(lexicon)} words), "
          f"layout {layout.name}")
    runs = []
    for name in args.baselines:
        run = run_baseline(configs[name], layout, lexicon, args.lexicon, curves, str(args.data))
        print(f"{name}: templates built in {run.build_seconds:.1f} s, {len(curves)} curves decoded in "
              f"{run.decode_seconds:.1f} s")
        if args.out_dir is not None:
            path = args.out_dir / f"{name}.pkl"
            write_predictions(path, run.predictions, overwrite=args.overwrite)
            print(f"{name}: predictions written to {path}")
        runs.append(run)
    print()
    print(format_table(runs, curves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
