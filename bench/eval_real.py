"""Accuracy of trained models on real swipes under a grid of generator settings. One table.

    nice -n 10 python bench/eval_real.py swipe/resources/models/en_hws
    nice -n 10 python bench/eval_real.py runs/a runs/b/checkpoints/best.pt --beam-sizes 4,8 \
        --prior-weights 0,0.6
    nice -n 10 python bench/eval_real.py runs/a --held-out odd          # settings tuned on the even rows
    nice -n 10 python bench/eval_real.py runs/a --synthetic-val runs/a/data/val --max-curves 1000

Each model (a training checkpoint, a run directory, an exported model or a shipped model's folder)
decodes the curves (default: the 800 real English swipes of ``swipe/resources/swipes/hws_real_en_dev.jsonl``
on layout ``hws_fitted``) constrained to a lexicon (default: the model's own, ``en`` for English
models), once per setting of the grid:

- ``greedy`` for every ``--prior-weights`` value,
- ``beam`` for every ``--beam-sizes`` x ``--prior-weights`` value,

each with every ``--length-penalties`` value (default: the generators' own, 0.5), every
``--template-weights`` value (default 0: no template rescoring) and every ``--x-scales`` set of
keyboard-width views (repeatable; default: the swipe as drawn), every ``--views-below`` threshold
(default: views for every swipe), every ``--wide-x-scales`` set of further views for swipes
that reach past the keyboard (repeatable; default: none) and every ``--template-candidates``
count of words the template matcher proposes (default 0: none),

with ``swipe.predict.decode`` (length-sorted batches, one torch thread, as ``predict.py`` runs it),
scored with ``swipe.metrics``: Swipe MRR, accuracy@1, recall@4, and decoding speed in curves per
second (wall clock, model loading excluded).

``--held-out odd|even`` reports the metrics on the odd (even) rows of the data file, 1-based, and
adds ``tune_mrr``, the Swipe MRR on the other half: the row marked ``*`` is the setting with the
best ``tune_mrr`` for its model, so its held-out metrics are an honest estimate for a setting
chosen on data it was not measured on. Speed is always measured on all decoded curves.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import REAL_EN_SWIPES, dataset_dir  # noqa: E402
from swipe.decoding import BeamOptions, GreedyOptions, LexiconTrie  # noqa: E402
from swipe.lexicon import load_lexicon  # noqa: E402
from swipe.metrics import SWIPE_MRR_WEIGHTS, Scores, target_rank  # noqa: E402
from swipe.model_files import resolve_model_file  # noqa: E402
from swipe.predict import (  # noqa: E402
    CheckpointLoader,
    DatasetCurves,
    DecodeJob,
    FirstCurves,
    PredictError,
    check_template_candidates,
    check_views_below,
    check_x_scales,
    decode,
)
from swipe.templates import TemplateRescorer  # noqa: E402

DEFAULT_LENGTH_PENALTY = BeamOptions().length_penalty


class Setting(NamedTuple):
    """One generator configuration of the grid, with its template rescoring weight (0: none)."""

    generator: str
    options: GreedyOptions | BeamOptions
    template_weight: float = 0.0
    x_scales: tuple[float, ...] = (1.0,)
    wide_x_scales: tuple[float, ...] = ()
    views_below: float | None = None
    template_candidates: int = 0
    views_margin: float | None = None
    templates_below: float | None = None

    @property
    def label(self) -> str:
        templates = f" templates={self.template_weight:g}" if self.template_weight else ""
        if self.x_scales != (1.0,):
            templates += f" x_scales={','.join(f'{s:g}' for s in self.x_scales)}"
        if self.views_below is not None:
            templates += f" views_below={self.views_below:g}"
        if self.wide_x_scales:
            templates += f" wide_x_scales={','.join(f'{s:g}' for s in self.wide_x_scales)}"
        if self.views_margin is not None:
            templates += f" views_margin={self.views_margin:g}"
        if self.template_candidates:
            templates += f" template_candidates={self.template_candidates}"
        if self.templates_below is not None:
            templates += f" templates_below={self.templates_below:g}"
        penalty = self.options.length_penalty
        length = "" if penalty == DEFAULT_LENGTH_PENALTY else f" length_penalty={penalty:g}"
        if isinstance(self.options, BeamOptions):
            return f"beam={self.options.beam_size} prior={self.options.prior_weight:g}{length}{templates}"
        return f"prior={self.options.prior_weight:g}{length}{templates}"

    @property
    def rescorer(self) -> TemplateRescorer | None:
        return TemplateRescorer(self.template_weight) if self.template_weight else None


class Row(NamedTuple):
    """One line of the table."""

    model: str
    step: int
    setting: Setting
    scores: Scores
    tune: Scores | None
    curves_per_second: float


def parse_list(text: str, kind: type) -> list:
    """``"1,4,8"`` -> ``[1, 4, 8]``."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        message = f"expected a comma-separated list of {kind.__name__}, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def settings_grid(
    generators: Sequence[str], beam_sizes: Sequence[int], prior_weights: Sequence[float],
    template_weights: Sequence[float] = (0.0,), length_penalties: Sequence[float] = (DEFAULT_LENGTH_PENALTY,),
    x_scales: Sequence[tuple[float, ...]] = ((1.0,),),
    wide_x_scales: Sequence[tuple[float, ...]] = ((),),
    views_below: Sequence[float | None] = (None,),
    template_candidates: Sequence[int] = (0,),
    views_margins: Sequence[float | None] = (None,),
    templates_below: Sequence[float | None] = (None,),
) -> list[Setting]:
    """Greedy for every prior weight, then beam search for every beam size and prior weight, each
    with every length penalty, template weight, set of keyboard-width views, set of views of
    swipes that reach past the keyboard, score threshold of the views (None: every swipe), number
    of template candidates, margin of the views (None: any) and threshold of the template
    candidates (None: that of the views)."""
    rest = list(product(template_weights, x_scales, wide_x_scales, views_below, template_candidates,
                        views_margins, templates_below))
    grid = []
    if "greedy" in generators:
        grid += [Setting("greedy", GreedyOptions(prior_weight=w, length_penalty=p), *r)
                 for w, p, r in product(prior_weights, length_penalties, rest)]
    if "beam" in generators:
        grid += [Setting("beam", BeamOptions(beam_size=b, prior_weight=w, length_penalty=p), *r)
                 for b, w, p, r in product(beam_sizes, prior_weights, length_penalties, rest)]
    return grid


def scores_of(candidates: list, targets: list, rows: Sequence[int]) -> Scores:
    """Swipe MRR, accuracy@1 and recall@4 of curves ``rows`` (those with a target)."""
    ranks = [target_rank([w for _, w in candidates[i]], targets[i]) for i in rows if targets[i] is not None]
    if not ranks:
        return Scores(len(rows), 0, None, None, None)
    n = len(ranks)
    mrr = sum(SWIPE_MRR_WEIGHTS[r - 1] for r in ranks if r is not None) / n
    return Scores(len(rows), n, mrr, sum(r == 1 for r in ranks) / n, sum(r is not None for r in ranks) / n)


def evaluate_model(
    model_path: Path, label: str, dataset_dir: Path, grid: Sequence[Setting], lexicon: str | None,
    max_curves: int | None, held_out: str | None, batch_size: int,
) -> tuple[list[Row], str, int]:
    """Decode the dataset with one model under every setting; returns the rows, lexicon name and curves."""
    loader = CheckpointLoader(model_path)
    loaded = loader.load("cpu")
    lexicon_name = lexicon or loaded.config.lexicon
    trie = LexiconTrie.from_lexicon(load_lexicon(lexicon_name), loaded.tokenizer)
    # Resample and thin curves as the model was trained, as predict.py does.
    full = DatasetCurves.for_model(dataset_dir, loaded)
    curves = FirstCurves(full, max_curves if max_curves is not None else len(full))
    n = len(curves)
    dataset = full.dataset
    targets = [dataset.word(i) for i in range(n)]
    everything = list(range(n))
    # 1-based row r is odd when its 0-based index is even.
    odd, even = everything[0::2], everything[1::2]
    report, tune = {None: (everything, None), "odd": (odd, even), "even": (even, odd)}[held_out]
    # Warm up (lazy dataset opening, first-call allocations) so the first setting is timed fairly.
    warm = FirstCurves(full, min(n, batch_size))
    decode(DecodeJob(loader, warm, grid[0].generator, grid[0].options, trie, "cpu"), batch_size)
    rows = []
    for setting in grid:
        job = DecodeJob(loader, curves, setting.generator, setting.options, trie, "cpu", setting.rescorer,
                        setting.x_scales, setting.wide_x_scales, setting.views_below,
                        setting.template_candidates, setting.views_margin, setting.templates_below)
        start = time.perf_counter()
        candidates = decode(job, batch_size, num_workers=0)
        seconds = time.perf_counter() - start
        rows.append(Row(label, loaded.step, setting, scores_of(candidates, targets, report),
                        scores_of(candidates, targets, tune) if tune is not None else None,
                        n / seconds))
    return rows, lexicon_name, n


def format_table(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows``; with ``tune`` scores, the best setting per model is starred."""
    held_out = any(r.tune is not None for r in rows)
    chosen: dict[str, Row] = {}
    for r in rows:
        if r.tune is None or r.tune.swipe_mrr is None:
            continue
        best = chosen.get(r.model)
        if best is None or r.tune.swipe_mrr > best.tune.swipe_mrr:
            chosen[r.model] = r
    head = ["model", "step", "generator", "options", "swipe_mrr", "accuracy@1", "recall@4", "curves/s"]
    if held_out:
        head[4:4] = ["tune_mrr"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for r in rows:
        star = " *" if chosen.get(r.model) is r else ""
        cells = [r.model, str(r.step), r.setting.generator, r.setting.label + star, fmt(r.scores.swipe_mrr),
                 fmt(r.scores.accuracy), fmt(r.scores.recall_at_4), f"{r.curves_per_second:.0f}"]
        if held_out:
            cells[4:4] = [fmt(r.tune.swipe_mrr if r.tune is not None else None)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arg = parser.add_argument
    arg("models", nargs="+", help="checkpoints, run directories, exported models or shipped model folders")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help=f"raw curves or a built dataset (default: {REAL_EN_SWIPES})")
    source.add_argument("--synthetic-val", metavar="DIR", help="a built synthetic validation dataset instead")
    arg("--lexicon", help="'en', 'ru' or a word-list file (default: each model's own lexicon)")
    arg("--generators", type=lambda s: parse_list(s, str), default=["greedy", "beam"],
        help="comma-separated, of greedy and beam (default: greedy,beam)")
    arg("--beam-sizes", type=lambda s: parse_list(s, int), default=[1, 4, 8, 16], help="default 1,4,8,16")
    arg("--prior-weights", type=lambda s: parse_list(s, float), default=[0.0, 0.3, 0.6, 1.0],
        help="default 0,0.3,0.6,1")
    arg("--length-penalties", type=lambda s: parse_list(s, float), default=[DEFAULT_LENGTH_PENALTY],
        help=f"exponents of the length normalisation (default {DEFAULT_LENGTH_PENALTY:g})")
    arg("--template-weights", type=lambda s: parse_list(s, float), default=[0.0],
        help="weights of template rescoring (predict.py --template-weight; default 0: none)")
    arg("--x-scales", type=lambda s: tuple(parse_list(s, float)), action="append",
        help="keyboard-width views (predict.py --x-scales), comma-separated; repeat for several sets "
        "(default: 1, the swipe as drawn)")
    arg("--wide-x-scales", type=lambda s: () if s == "none" else tuple(parse_list(s, float)), action="append",
        help="views of swipes that reach past the keyboard's right edge (predict.py --wide-x-scales), "
        "comma-separated or 'none'; repeat for several sets (default: none)")
    arg("--views-below", type=lambda s: parse_list(s, float), default=[math.inf],
        help="score thresholds below which a swipe gets its --x-scales views (predict.py "
        "--views-below), comma-separated, inf: every swipe (default inf)")
    arg("--template-candidates", type=lambda s: parse_list(s, int), default=[0],
        help="words the template matcher proposes to swipes scoring below --templates-below "
        "(predict.py --template-candidates), comma-separated (default 0: none)")
    arg("--views-margins", type=lambda s: parse_list(s, float), default=[math.inf],
        help="the --x-scales views only where the best two words score less than this apart "
        "(predict.py --views-margin), comma-separated, inf: any margin (default inf)")
    arg("--templates-below", type=lambda s: parse_list(s, float), default=[math.nan],
        help="score thresholds, after the views, below which a swipe gets template candidates "
        "(predict.py --templates-below), comma-separated, nan: --views-below (default nan)")
    arg("--held-out", choices=["odd", "even"],
        help="report on these rows (1-based) and tune (mark the best setting) on the others")
    arg("--max-curves", type=int, help="decode only the first this many curves")
    arg("--batch-size", type=int, default=64, help="most curves decoded together (default 64)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = set(args.generators) - {"greedy", "beam"}
    if unknown:
        print(f"eval_real.py: error: unknown generators {sorted(unknown)} (greedy, beam)", file=sys.stderr)
        return 2
    if args.max_curves is not None and args.max_curves < 1:
        print("eval_real.py: error: --max-curves must be >= 1", file=sys.stderr)
        return 2
    models = [resolve_model_file(m) for m in args.models]
    for path in models:
        if not path.is_file():
            print(f"eval_real.py: error: {path}: no such model file", file=sys.stderr)
            return 2
    if any(not w >= 0 for w in args.template_weights):
        print("eval_real.py: error: --template-weights must be >= 0", file=sys.stderr)
        return 2
    x_scales, wide_x_scales = args.x_scales or [(1.0,)], args.wide_x_scales or [()]
    views_below = [None if below == math.inf else below for below in args.views_below]
    try:
        for views in x_scales:
            check_x_scales(views, "--x-scales")
            for below in views_below:
                check_views_below(below, views, "--views-below")
        for views in wide_x_scales:
            check_x_scales(views, "--wide-x-scales", empty_ok=True)
        for count in args.template_candidates:
            check_template_candidates(count, True, "--template-candidates")
    except PredictError as err:
        print(f"eval_real.py: error: {err}", file=sys.stderr)
        return 2
    grid = settings_grid(args.generators, args.beam_sizes, args.prior_weights, args.template_weights,
                         args.length_penalties, x_scales, wide_x_scales, views_below,
                         args.template_candidates,
                         [None if margin == math.inf else margin for margin in args.views_margins],
                         [None if math.isnan(below) else below for below in args.templates_below])
    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="eval-real-") as tmp:
        data = Path(args.synthetic_val or args.data or REAL_EN_SWIPES)
        if not data.exists():
            print(f"eval_real.py: error: {data}: no such data file or dataset", file=sys.stderr)
            return 2
        built = dataset_dir(data, Path(tmp))
        lexicons, curves = set(), 0
        for arg_path, path in zip(args.models, models, strict=True):
            found, lexicon, curves = evaluate_model(path, arg_path, built, grid, args.lexicon,
                                                    args.max_curves, args.held_out, args.batch_size)
            rows += found
            lexicons.add(lexicon)
    load_after = os.getloadavg()
    kind = "synthetic validation" if args.synthetic_val else "real swipes"
    print(f"data: {os.path.relpath(data)} ({kind}, {curves} curves); lexicon: {', '.join(sorted(lexicons))}")
    if args.held_out:
        print(f"metrics on the {args.held_out} rows; tune_mrr on the others; * = best tune_mrr per model")
    print(f"one torch thread (torch {torch.__version__}); load average 1 min: {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; {os.cpu_count()} CPUs")
    print()
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
