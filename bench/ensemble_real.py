"""Neural models and the SHARK2 matcher ensembled on real swipes, fitted on one half. One table.

    nice -n 10 python bench/ensemble_real.py                      # the shipped English model
    nice -n 10 python bench/ensemble_real.py --model runs/a --work /tmp/ens
    nice -n 10 python bench/ensemble_real.py --model runs/a --model runs/b --no-shark2 \
        --beam-size 16 --prior-weight 0.3 --template-weight 0.5    # two neural models

The rows of the data file (default: the 800 real English swipes of
``swipe/resources/swipes/hws_real_en_dev.jsonl`` on layout ``hws_fitted``) are split by 1-based row number,
as ``bench/finetune_real.py`` splits them: odd rows fit the ensemble, even rows are held out. Every
member decodes both halves into predictions files:

- each neural model ``--model`` (default: the shipped English model) with ``predict.py`` (beam
  search, beam 8, lexicon prior weight 0.6, length penalty 0.5, no template rescoring, the swipe as drawn only
  (``--x-scales 1``, ``--views-below inf``, ``--wide-x-scales none``), no template candidates
  (``--template-candidates 0``), lexicon ``en``; the options
  below change these for every neural member);
- unless ``--no-shark2``, the SHARK2-style template matcher (:mod:`swipe.shark2`) with its
  default settings, which were tuned on the odd rows (``bench/baselines/run_baselines.py``).

``swipe.aggregate.fit`` (method auto) chooses the ensemble's score normalisation and weights on the
odd half; ``swipe.aggregate.apply`` merges the even half with them. The table scores each member
alone and the ensemble on the even half, where nothing was chosen.

Everything is written under ``--work`` (default: a temporary directory, removed at the end): the
halves ``tune.jsonl`` and ``held_out.jsonl``, the predictions ``<member>_odd.pkl`` and
``<member>_even.pkl`` (members ``neural`` or, with several models, ``neural1``, ``neural2``, ...,
and ``shark2``), the fitted ``ensemble.json`` and the merged ``ensemble_even.pkl`` (``python
evaluate.py`` scores any of them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.baselines.common import DEFAULT_LAYOUT, read_labelled_curves  # noqa: E402
from bench.baselines.run_baselines import run_baseline  # noqa: E402
from bench.common import REAL_EN_SWIPES  # noqa: E402
from bench.finetune_real import DEFAULT_MODEL, split_rows  # noqa: E402
from swipe.aggregate import EnsembleError, apply, fit, save_ensemble  # noqa: E402
from swipe.formats import BadRowError  # noqa: E402
from swipe.keyboard import LayoutError, bundled_layout  # noqa: E402
from swipe.lexicon import LexiconError, load_lexicon  # noqa: E402
from swipe.metrics import Scores, score_predictions  # noqa: E402
from swipe.predict import main as predict_main  # noqa: E402
from swipe.predictions import Predictions, read_predictions, write_predictions  # noqa: E402
from swipe.shark2 import Shark2Config  # noqa: E402

HALVES = ("odd", "even")


class MemberError(Exception):
    """A member could not decode a half (its own message went to stderr)."""


def predict_neural(args: argparse.Namespace, model: str, data: Path, split: str, out: Path) -> None:
    """Decode ``data`` with a neural model exactly as ``predict.py`` does, into ``out``."""
    code = predict_main([
        "--checkpoint", model, "--data", str(data), "--split", split, "--lexicon", args.lexicon,
        "--generator", "beam", "--beam-size", str(args.beam_size), "--prior-weight", str(args.prior_weight),
        "--length-penalty", str(args.length_penalty),
        "--template-weight", str(args.template_weight), "--x-scales", args.x_scales,
        "--views-below", args.views_below, "--wide-x-scales", args.wide_x_scales,
        "--template-candidates", str(args.template_candidates), "--out", str(out), "--overwrite", "--quiet",
    ])
    if code != 0:
        raise MemberError(f"predict.py failed on {model}, {data} (exit status {code})")


def predict_shark2(args: argparse.Namespace, data: Path, split: str, out: Path) -> None:
    """Decode ``data`` with the SHARK2 matcher at its default (tuned) settings, into ``out``."""
    layout = bundled_layout(args.layout)
    curves = read_labelled_curves(data, layout)
    run = run_baseline(Shark2Config(), layout, load_lexicon(args.lexicon), args.lexicon, curves, str(data),
                       split)
    write_predictions(out, run.predictions, overwrite=True)


def format_table(rows: Sequence[tuple[str, Scores]]) -> str:
    """A markdown table: one row per predictor, its Swipe MRR, accuracy@1 and recall@4."""
    lines = ["| predictor | rows | Swipe MRR | accuracy@1 | recall@4 |", "|---|---|---|---|---|"]
    for label, s in rows:
        lines.append(f"| {label} | {s.num_scored} | {s.swipe_mrr:.4f} | {s.accuracy:.4f} "
                     f"| {s.recall_at_4:.4f} |")
    return "\n".join(lines)


class Member(NamedTuple):
    """One predictor of the ensemble: its file-name stem, its table row's label, and how it decodes
    a half (``decode(data, split, out)``)."""

    name: str
    label: str
    decode: Callable[[Path, str, Path], None]


def members(args: argparse.Namespace) -> list[Member]:
    """The ensemble's members, neural models first."""
    neural = []
    numbered = len(args.model) > 1
    options = f"beam {args.beam_size}, prior {args.prior_weight:g}"
    if args.length_penalty != 0.5:
        options += f", length penalty {args.length_penalty:g}"
    if args.template_weight:
        options += f", templates {args.template_weight:g}"
    if args.x_scales != "1":
        options += f", x-scales {args.x_scales}"
    if args.views_below != "inf":
        options += f", below {args.views_below}"
    if args.wide_x_scales != "none":
        options += f", wide x-scales {args.wide_x_scales}"
    if args.template_candidates:
        options += f", template candidates {args.template_candidates}"
    for i, model in enumerate(args.model, start=1):
        name = f"neural{i}" if numbered else "neural"
        neural.append(Member(name, f"{name}: {model}, {options}", partial(predict_neural, args, model)))
    if not args.shark2:
        return neural
    label = "SHARK2: default settings (tuned on the odd rows)"
    return [*neural, Member("shark2", label, partial(predict_shark2, args))]


def run(args: argparse.Namespace, work: Path) -> int:
    work.mkdir(parents=True, exist_ok=True)
    halves = dict(zip(HALVES, split_rows(args.data, work), strict=True))
    predictions: dict[tuple[str, str], Predictions] = {}
    chosen = members(args)
    for member in chosen:
        start = time.perf_counter()
        for split, data in halves.items():
            path = work / f"{member.name}_{split}.pkl"
            member.decode(data, split, path)
            predictions[member.name, split] = read_predictions(path)  # what swipe.aggregate would read
        print(f"{member.name}: both halves decoded in {time.perf_counter() - start:.0f} s", file=sys.stderr)

    names = [member.name for member in chosen]
    ensemble = fit([predictions[m, "odd"] for m in names], "auto", [f"{m}_odd.pkl" for m in names])
    save_ensemble(work / "ensemble.json", ensemble, overwrite=True)
    merged = apply(ensemble, [predictions[m, "even"] for m in names], [f"{m}_even.pkl" for m in names])
    write_predictions(work / "ensemble_even.pkl", merged, overwrite=True)

    rows = [(member.label, predictions[member.name, "even"]) for member in chosen]
    together = "the two" if len(chosen) == 2 else f"the {len(chosen)}"
    rows.append((f"ensemble of {together} (fitted on the odd rows)", merged))
    print(f"data: {args.data} (rows 1-based: odd fit the ensemble, even held out); lexicon {args.lexicon}; "
          f"one torch thread (torch {torch.__version__})")
    print()
    print(format_table([(label, score_predictions(p).overall) for label, p in rows]))
    print()
    weights = ", ".join(f"{m} {w:.4f}" for m, w in zip(names, ensemble.weights, strict=True))
    fitted = ", ".join(f"{m} {s:.4f}" for m, s in zip(names, ensemble.member_swipe_mrr, strict=True))
    print(f"ensemble: method {ensemble.method}, weights {weights}; Swipe MRR on the odd rows (fit): "
          f"ensemble {ensemble.validation_swipe_mrr:.4f}, {fitted}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arg = parser.add_argument
    arg("--model", action="append",
        help="checkpoint, run directory or exported model folder; repeat for several neural members "
             "(default: the shipped English model)")
    arg("--data", type=Path, default=REAL_EN_SWIPES, help=f"raw real swipes (default: {REAL_EN_SWIPES})")
    arg("--layout", default=DEFAULT_LAYOUT, help=f"bundled layout of the swipes (default {DEFAULT_LAYOUT})")
    arg("--lexicon", default="en", help="'en', 'ru' or a word-list file, for both members (default en)")
    arg("--beam-size", type=int, default=8, help="beam size of the neural model (default 8)")
    arg("--prior-weight", type=float, default=0.6, help="neural model's lexicon prior weight (default 0.6)")
    arg("--length-penalty", type=float, default=0.5,
        help="neural model's length normalisation exponent (default 0.5, whatever its decoding.json says)")
    arg("--template-weight", type=float, default=0.0,
        help="neural models' template rescoring weight, as predict.py --template-weight (default 0: off)")
    arg("--x-scales", default="1",
        help="neural models' keyboard-width views, as predict.py --x-scales (default 1: as drawn)")
    arg("--views-below", default="inf",
        help="neural models' views only below this score, as predict.py --views-below (default inf: "
             "every swipe)")
    arg("--wide-x-scales", default="none",
        help="neural models' views of swipes past the keyboard, as predict.py --wide-x-scales "
             "(default none)")
    arg("--template-candidates", type=int, default=0,
        help="neural models' words proposed by the template matcher, as predict.py "
             "--template-candidates (default 0: none)")
    arg("--no-shark2", dest="shark2", action="store_false", help="leave the SHARK2 matcher out")
    arg("--work", type=Path, help="keep the halves, predictions and ensemble here (default: temporary)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.model = args.model or [os.path.relpath(DEFAULT_MODEL)]
    if len(args.model) + args.shark2 < 2:
        parser.error("an ensemble needs two members: give another --model or leave out --no-shark2")
    if not args.data.is_file():
        print(f"ensemble_real.py: error: {args.data}: no such data file", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    try:
        if args.work is not None:
            return run(args, args.work)
        with tempfile.TemporaryDirectory(prefix="ensemble-real-") as tmp:
            return run(args, Path(tmp))
    except (MemberError, EnsembleError, BadRowError, LayoutError, LexiconError) as err:
        print(f"ensemble_real.py: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
