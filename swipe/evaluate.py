"""Score predictions files: Swipe MRR, accuracy@1, recall@4, by word length and by layout.
(python evaluate.py, python -m swipe.evaluate or swipe-evaluate)

    python evaluate.py preds.pkl                      # report, and record a row in results.csv
    python evaluate.py preds.pkl more.pkl --no-results # several files, nothing recorded
    python evaluate.py preds.pkl --misses 20          # also: where the targets rank, and 20 misses

Each scored file adds (or, for a predictor already in the table, updates) one row of the results
table. Files without targets (a test split) are reported as such and not recorded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swipe.cli import command_line
from swipe.metrics import find_misses, format_misses, format_report, score_predictions
from swipe.predictions import Predictions, PredictionsError, read_predictions
from swipe.results import ResultsError, canonical_json, record_result


def describe(predictions: Predictions) -> str:
    """One line naming the predictor and the data of ``predictions``."""
    md = predictions.metadata
    rescoring = md.get("template_rescoring")  # absent from files written before it existed
    templates = (f"templates weight {rescoring['weight']:g} prior {rescoring['prior_weight']:g}  "
                 if rescoring else "")
    x_scales = md.get("x_scales", [1.0])  # likewise
    views = f"x-scales {','.join(f'{s:g}' for s in x_scales)}  " if list(x_scales) != [1.0] else ""
    below = md.get("views_below")  # likewise
    views += f"below {below:g}  " if below is not None else ""
    margin, beam = md.get("views_margin"), md.get("views_beam_size")  # likewise
    views += f"margin {margin:g}  " if below is not None and margin is not None else ""
    views += f"views beam {beam}  " if beam is not None else ""
    wide = md.get("wide_x_scales", [])  # likewise
    views += f"wide x-scales {','.join(f'{s:g}' for s in wide)}  " if wide else ""
    proposed = md.get("template_candidates", 0)  # likewise
    views += f"template candidates {proposed}  " if proposed else ""
    return (
        f"generator {md['generator']} {canonical_json(md['generator_options'])}  {templates}{views}"
        f"weights {md['weights_sha256'][:12] or '-'}  split {md['split'] or '-'}  "
        f"data {md['data_file'] or '-'}  layouts {'+'.join(md['layout_names']) or '-'}"
    )


def read_scored(path: Path) -> Predictions:
    """The predictions file ``path``, or an error that says what evaluate.py reads instead."""
    try:
        with open(path, "rb") as f:
            start = f.read(1)
    except OSError:
        start = b""  # read_predictions says why
    if start in (b"{", b"["):
        raise PredictionsError(
            f"{path}: JSON, not a predictions file; evaluate.py reads what predict.py writes "
            "(python predict.py --data SWIPES.jsonl --out FILE.pkl); python -m swipe.runtime prints "
            "its own accuracy@1"
        )
    return read_predictions(path)


@command_line("evaluate.py")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("predictions", nargs="+", type=Path,
                        help="predictions files written by predict.py (preds.pkl) or swipe.aggregate")
    table = parser.add_mutually_exclusive_group()
    table.add_argument("--results", type=Path, default=Path("results.csv"), help="results table (CSV)")
    table.add_argument("--no-results", action="store_true", help="do not record results")
    parser.add_argument("--misses", type=int, default=0, metavar="N",
                        help="also count the targets' ranks and list the first N curves missed at rank 1")
    args = parser.parse_args(argv)
    if args.misses < 0:
        parser.error(f"--misses must be 0 or more, got {args.misses}")

    try:
        loaded = [(path, read_scored(path)) for path in args.predictions]
    except PredictionsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for i, (path, predictions) in enumerate(loaded):
        if i:
            print()
        report = score_predictions(predictions)
        print(f"== {path}")
        print(describe(predictions))
        print(format_report(report))
        if args.misses > 0:
            print()
            print(format_misses(find_misses(predictions), args.misses))
        if args.no_results:
            continue
        if report.overall.num_scored == 0:
            print(f"results: not recorded in {args.results} (no targets)")
            continue
        try:
            recorded = record_result(args.results, path, predictions.metadata, report.overall)
        except (ResultsError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"results: {recorded.action} row {recorded.key} in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
