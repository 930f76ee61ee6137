"""``predict.py``: decode a data file with a trained model into ``preds.pkl`` (and a submission CSV).

A command line over :mod:`swipe.decoder`: it chooses the model and the data, reads the flags into
:class:`~swipe.model_files.DecodingSettings`, says what it is about to do, and writes the outputs.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from swipe.atomic import atomic_output
from swipe.cli import command_line
from swipe.config import to_dict
from swipe.data.build import sha256_of
from swipe.decoder import (  # noqa: F401 (names the bench scripts import from here)
    DEFAULT_GENERATOR,
    DEFAULT_MAX_BATCH_POINTS,
    GENERATOR_SETTINGS,
    CheckpointLoader,
    CurvePoints,
    DatasetCurves,
    DecodeError,
    DecodeJob,
    Decoder,
    DecodingPlan,
    FirstCurves,
    ModelParts,
    check_speed,
    check_template_candidates,
    check_views_below,
    check_x_scales,
    decode_job,
    make_batches,
    merge_views,
    reaches_past_keyboard,
)
from swipe.decoding import GENERATORS, GeneratorError
from swipe.decoding.generators import Candidate
from swipe.model_files import DecodingSettings
from swipe.predictions import Predictions, write_predictions

# Older names, kept for the scripts under bench/ (and their runs of older revisions).
decode = decode_job
PredictError = DecodeError

# Each decoding setting's flag.
_FLAGS = {
    "generator": "--generator",
    "beam_size": "--beam-size",
    "num_candidates": "--num-candidates",
    "prior_weight": "--prior-weight",
    "length_penalty": "--length-penalty",
    "max_length": "--max-length",
    "template_weight": "--template-weight",
    "template_prior_weight": "--template-prior-weight",
    "x_scales": "--x-scales",
    "views_below": "--views-below",
    "views_margin": "--views-margin",
    "views_beam_size": "--views-beam-size",
    "wide_x_scales": "--wide-x-scales",
    "template_candidates": "--template-candidates",
    "templates_below": "--templates-below",
}
_SPEED_FLAGS = {"num_workers": "--num-workers", "batch_size": "--batch-size",
                "max_batch_points": "--max-batch-points", "device": "--device"}


# ---- the command line ----------------------------------------------------------------------------

_EPILOG = """\
which model decodes:
  --checkpoint given          that file, folder, or shipped model (en_hws, en_hws_transformer, ru_yandex)
  --data without --checkpoint the shipped model for the data's layouts if one decodes them all,
                              else the best checkpoint of the latest run under --runs-dir
  neither                     the latest run's best checkpoint, on its validation split
The settings in a model folder's decoding.json (the shipped models') replace the defaults of every
decoding flag that is not given. With --skip-bad-rows and --csv, each skipped row gets an empty line
(,,,) in the CSV, so its rows keep the order of the data file's rows.

examples:
  python predict.py --generator beam --num-workers 0
  python predict.py --data swipe/resources/swipes/hws_real_en_dev.jsonl --out real.pkl
  python predict.py --checkpoint en_hws --data swipe/resources/swipes/hws_real_en_dev.jsonl --beam-size 4
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Decode swipes with a trained model into ranked candidate words (preds.pkl).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_argument_group("input")
    add = group.add_argument
    add("--data", metavar="PATH", help="raw data file (jsonl, .log) or built dataset directory "
                       "(default: the run's validation split)")
    add("--split", metavar="NAME", help="split name recorded in the output (default: 'val' or the file name)")
    add("--layouts", metavar="FILE", help="grids file for raw data whose rows name their grid")
    add("--skip-bad-rows", action="store_true", help="skip (and count) malformed rows of raw data")

    group = parser.add_argument_group("model")
    add = group.add_argument
    add("--checkpoint", metavar="MODEL", help="checkpoint or model file, run or model folder, or a shipped "
                       "model's name (default: see below)")
    add("--runs-dir", metavar="DIR", default="runs", help="where to look for the latest run (default: runs)")
    add("--lexicon", metavar="NAME", help="'en', 'ru' or a word-list file (default: the model's lexicon)")
    add("--no-lexicon", action="store_true", help="decode any character string")

    group = parser.add_argument_group("search")
    add = group.add_argument
    add("--generator", choices=sorted(GENERATORS), help="default: decoding.json's, else beam")
    add("--beam-size", metavar="N", type=int, help="beam: hypotheses per curve (default 8)")
    add("--num-candidates", metavar="N", type=int, help="beam: candidates kept (default: beam size)")
    add("--prior-weight", metavar="W", type=float, help="weight of the word-frequency prior (default 0)")
    add("--length-penalty", metavar="P", type=float, help="length-normalisation exponent (default 0.5)")
    add("--max-length", metavar="N", type=int, help="most tokens per word, <eos> included (default: lexicon)")

    group = parser.add_argument_group("rescoring")
    add = group.add_argument
    add("--template-weight", metavar="W", type=float, help="re-rank candidates by their score plus this "
                       "times their key-centre template's match (default 0: off)")
    add("--template-prior-weight", metavar="W", type=float,
                       help="weight of the word-frequency prior within the template score (default 1)")
    add("--x-scales", metavar="F,F,...", type=_float_list, help="also decode each swipe x-scaled by these "
                       "factors (e.g. 0.94,1,1.06), each word keeping its best score (default 1)")
    add("--views-below", metavar="SCORE", type=float, help="the other --x-scales views only for swipes "
                       "scoring below this as drawn (default: every swipe)")
    add("--views-margin", metavar="SCORE", type=float, help="and only where their best two words score "
                       "less than this apart (default: any margin)")
    add("--views-beam-size", metavar="N", type=int, help="beam of the views searched after the first "
                       "(the other --x-scales, --wide-x-scales; default: --beam-size)")
    add("--wide-x-scales", metavar="F,F,...", type=_float_list, help="views (or 'none') only for swipes "
                       "reaching past the keyboard's right edge (default none)")
    add("--template-candidates", metavar="N", type=int, help="merge in this many words of the template "
                       "matcher for swipes scoring below --templates-below (default 0; needs a lexicon)")
    add("--templates-below", metavar="SCORE", type=float, help="the score, after the views, below which "
                       "a swipe gets template candidates (default: --views-below)")

    group = parser.add_argument_group("output")
    add = group.add_argument
    add("--out", metavar="FILE", default="preds.pkl", help="predictions file (default preds.pkl)")
    add("--csv", metavar="FILE", help="also write a Yandex Cup submission CSV (four candidates per row)")
    add("--overwrite", action="store_true", help="replace existing output files")
    add("--quiet", action="store_true", help="no progress bar (drawn only on a terminal)")

    group = parser.add_argument_group("speed")
    add = group.add_argument
    add("--batch-size", metavar="N", type=int, default=64, help="most curves decoded together (default 64)")
    add("--max-batch-points", metavar="N", type=int, default=DEFAULT_MAX_BATCH_POINTS,
                       help=f"most curves x padded points per batch (default {DEFAULT_MAX_BATCH_POINTS})")
    add("--device", metavar="DEV", default="cpu", help="cpu or cuda (default cpu)")
    add("--num-workers", metavar="N", type=int, default=0, help="decoding processes (default 0: this one)")
    return parser


def _float_list(text: str) -> tuple[float, ...]:
    """``"0.94,1,1.06"`` -> ``(0.94, 1.0, 1.06)``, ``"none"`` -> ``()`` (an argparse type)."""
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


# ---- choosing the model and the data -------------------------------------------------------------


class ModelChoice(NamedTuple):
    """The model file and why it was chosen (for the line ``predict.py`` prints)."""

    path: Path
    why: str


def _data_layout_names(data: Path, args: argparse.Namespace) -> set[str]:
    """The layouts the curves of ``data`` (a built dataset or a raw file) are drawn on."""
    if data.is_dir():
        from swipe.data import SwipeDataset

        return {layout.name for layout in SwipeDataset(data).layouts if layout is not None}
    from swipe.formats import BadRowError, read_curves

    names = {curve.grid_name for curve in read_curves(data, grids_file=args.layouts, skip_bad_rows=True)}
    if not names:  # not one good row: say why the first one is not
        try:
            next(read_curves(data, grids_file=args.layouts), None)
        except BadRowError as err:
            raise PredictError(f"{data}: not swipe data (line {str(err).removeprefix(f'{data}:')})") from None
        raise PredictError(f"{data}: no swipes in it")
    return names


def _latest_run(args: argparse.Namespace, why: str) -> ModelChoice | None:
    from swipe.model_files import find_latest_run, resolve_model

    try:
        run = find_latest_run(args.runs_dir)
    except FileNotFoundError:
        return None
    return ModelChoice(resolve_model(run), why)


def choose_model(args: argparse.Namespace) -> ModelChoice:
    """The model ``predict.py`` decodes with (see its ``--help``)."""
    from swipe.model_files import ModelNotFoundError, resolve_model, shipped_model_for_layouts

    if args.checkpoint is not None:
        try:
            path = resolve_model(args.checkpoint)
        except ModelNotFoundError as err:
            raise PredictError(str(err)) from None
        shipped = not Path(args.checkpoint).exists()
        return ModelChoice(path, f"shipped model {args.checkpoint}, given" if shipped else "given")
    no_run = f"no trained run under {args.runs_dir}/ (train one with `python train.py`)"
    if args.data is None:
        choice = _latest_run(args, f"the latest run under {args.runs_dir}/")
        if choice is None:
            raise PredictError(f"{no_run}; or pass --data to decode with the shipped model for its layouts")
        return choice
    data = Path(args.data)
    if not data.exists():
        raise PredictError(f"{data}: no such data file or dataset directory")
    names = _data_layout_names(data, args)
    layouts = ", ".join(sorted(names))
    path = shipped_model_for_layouts(names)
    if path is not None:  # a shipped model's folder is named after it
        return ModelChoice(path, f"shipped model {path.parent.name}, for the data's layouts {layouts}")
    choice = _latest_run(args, f"the latest run under {args.runs_dir}/: no shipped model decodes the "
                         f"data's layouts {layouts}")
    if choice is None:
        raise PredictError(f"{no_run}, and no shipped model decodes the layouts {sorted(names)} "
                           f"of {args.data}")
    return choice


class _Data(NamedTuple):
    """The curves to decode and what the outputs record of them."""

    path: Path
    split: str
    curves: Any  # a CurveSource
    targets: list[str | None]
    layouts: list[str]
    rows: list[int] | None  # where each curve's CSV row goes, where rows were skipped; else None
    num_rows: int


def _validation_data(loaded: Any, checkpoint: Path) -> Path:
    from swipe.training.datasets import resolve_data_config

    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    val = resolve_data_config(loaded.config, run_dir).val
    if val is None:
        raise PredictError(f"{checkpoint}: the run's config names no validation data; pass --data")
    return Path(val)


def _row_lines(path: Path) -> list[int]:
    """The line numbers of a jsonl file's rows (its non-blank lines)."""
    from swipe.formats import numbered_lines

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:  # lines as the reader sees them: bounded, one too long still a row
        return [lineno for lineno, text in numbered_lines(f)
                if (text.strip() if isinstance(text, bytes) else text.reason == "line too long")]


def _read_data(args: argparse.Namespace, decoder: Decoder, data: Path) -> _Data:
    """The curves of ``data`` (a built dataset, or a raw file read here, bad rows as asked)."""
    split = args.split or ("val" if args.data is None else data.name.split(".")[0])
    if data.is_dir():
        curves = DatasetCurves.for_model(data, decoder.loaded)
        dataset = curves.dataset
        names = [layout.name for layout in decoder.layouts]
        targets = [dataset.word(i) for i in range(len(dataset))]
        layouts = [names[dataset[i].layout_id] for i in range(len(dataset))]
        return _Data(data, split, curves, targets, layouts, None, len(dataset))
    from swipe.formats import BadRowError, ReadStats, read_curves

    stats = ReadStats()
    models = None if args.layouts else {layout.name: layout for layout in decoder.layouts}
    read = list(read_curves(data, models, args.layouts, args.skip_bad_rows, stats))
    kept = []
    limit = np.iinfo(np.int16).max / 4.0  # what a built dataset stores, in 1/4 px
    for curve in read:
        if max(np.abs(curve.x).max(), np.abs(curve.y).max()) <= limit:
            kept.append(curve)
        elif args.skip_bad_rows:
            stats.skipped["coordinate out of range"] += 1
        else:
            raise BadRowError(f"{data}:{curve.line}: coordinate out of range (|x|, |y| <= {limit} px)")
    if stats.skipped:
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(stats.skipped.items()))
        print(f"{data}: skipped {sum(stats.skipped.values())} bad rows ({counts})", file=sys.stderr)
    if not kept:
        raise PredictError(f"{data}: no curves to decode")
    rows, num_rows = None, len(kept)
    if stats.skipped and args.csv is not None:
        if data.name.endswith((".log", ".log.gz")):
            raise PredictError("--csv with --skip-bad-rows keeps the rows of a jsonl file: "
                               f"{data} is a How-We-Swipe log")
        lines = _row_lines(data)
        where = {line: row for row, line in enumerate(lines)}
        rows, num_rows = [where[curve.line] for curve in kept], len(lines)
    try:
        curves = decoder.curves(kept)
    except DecodeError as err:
        raise PredictError(f"{data}: {err}") from None
    return _Data(data, split, curves, [c.word for c in kept], [c.grid_name for c in kept], rows, num_rows)


# ---- settings ------------------------------------------------------------------------------------


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


class ChosenSettings(NamedTuple):
    """The decoding settings ``predict.py`` uses, and where each one given came from."""

    settings: DecodingSettings
    sources: dict[str, str]  # setting -> "flags" or the decoding.json file; absent: a default


def settings_from_flags(args: argparse.Namespace, model: Path) -> ChosenSettings:
    """The decoding settings of the flags given, else the model's ``decoding.json``, else the
    defaults."""
    from swipe.config import ConfigError
    from swipe.model_files import DECODING_FILE, read_decoding_settings

    try:
        recommended = None if args.no_lexicon else read_decoding_settings(model)  # chosen with a lexicon
    except ConfigError as err:
        raise PredictError(str(err)) from None
    flags = {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not None}
    sources: dict[str, str] = {name: "flags" for name in flags}
    values: dict[str, Any] = {}
    if recommended is not None:
        names = [name for name in _FLAGS if name != "generator" and name not in GENERATOR_SETTINGS]
        if flags.get("generator", recommended.generator) == recommended.generator:
            names = list(_FLAGS)  # another search takes none of the recommended search's options
        for name in names:
            if getattr(recommended, name) is not None:
                values[name] = getattr(recommended, name)
                sources.setdefault(name, str(model.parent / DECODING_FILE))
    values.update(flags)
    generator = values.pop("generator", DEFAULT_GENERATOR)
    return ChosenSettings(dataclasses.replace(DecodingSettings(generator), **values), sources)


def describe_settings(chosen: ChosenSettings, plan: DecodingPlan) -> str:
    """One line: each setting in force and its source, e.g. ``decoding: flags: beam_size 4;
    models/en_hws/decoding.json: prior_weight 0.3, ...; defaults: generator beam, ...``."""
    in_force = {"generator": plan.generator, "template_weight": chosen.settings.template_weight,
                "template_prior_weight": chosen.settings.template_prior_weight, "x_scales": plan.x_scales,
                "views_below": plan.views_below, "views_margin": plan.views_margin,
                "views_beam_size": plan.views_beam_size, "templates_below": plan.templates_below,
                "wide_x_scales": plan.wide_x_scales, "template_candidates": plan.template_candidates}
    for name in GENERATOR_SETTINGS:
        in_force[name] = getattr(plan.options, name, None)
    parts: dict[str, list[str]] = {}
    for name in _FLAGS:
        value = in_force[name]
        source = chosen.sources.get(name, "defaults")
        unused = name == "template_prior_weight" and plan.rescorer is None
        if source == "defaults" and (value is None or unused):
            continue  # decided elsewhere (max_length: the lexicon's), or a weight of nothing
        parts.setdefault(source, []).append(f"{name} {_value_text(value)}")
    order = sorted(parts, key=lambda source: (source == "defaults", source != "flags"))
    return "decoding: " + "; ".join(f"{source}: {', '.join(parts[source])}" for source in order)


# ---- outputs -------------------------------------------------------------------------------------


def write_submission_csv(
    path: str | Path, candidates: Sequence[Sequence[Candidate]], overwrite: bool
) -> None:
    """Write a Yandex Cup submission: per curve its first four candidates, comma-separated, no
    header, no index. Rows with fewer candidates repeat the last one (or are empty)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass --overwrite to replace it)")
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for row in candidates:
            words = [word for _, word in row[:4]]
            if words:
                words += [words[-1]] * (4 - len(words))
            else:
                words = [""] * 4
            writer.writerow(words)


def _metadata(decoder: Decoder, checkpoint: Path, data: _Data) -> dict[str, Any]:
    loaded, plan = decoder.loaded, decoder.plan
    rescorer = plan.rescorer
    return {
        "model": {
            "architecture": type(loaded.model).__name__,
            "family": loaded.config.model.family,
            "config": to_dict(loaded.config.model),
            "run": loaded.config.name,
            "step": loaded.step,
        },
        "weights": str(checkpoint),
        "weights_sha256": sha256_of(checkpoint),
        "generator": plan.generator,
        "generator_options": to_dict(plan.options),
        "template_rescoring": (
            None if rescorer is None
            else {"weight": rescorer.weight, "prior_weight": rescorer.prior_weight,
                  "scoring": to_dict(rescorer.scoring)}
        ),
        "x_scales": list(plan.x_scales),
        "views_below": plan.views_below,
        "views_margin": plan.views_margin,
        "views_beam_size": plan.views_beam_size,
        "templates_below": plan.templates_below,
        "wide_x_scales": list(plan.wide_x_scales),
        "template_candidates": plan.template_candidates,
        "lexicon": decoder.lexicon_name,
        "layout_names": [layout.name for layout in decoder.layouts],
        "data_file": str(data.path),
        "split": data.split,
    }


# ---- main ----------------------------------------------------------------------------------------


@command_line("predict.py")
def main(argv: Sequence[str] | None = None) -> int:
    """``predict.py``: decode a data split into ``preds.pkl`` (and optionally a submission CSV)."""
    from swipe.config import ConfigError
    from swipe.data import DatasetError
    from swipe.formats import BadRowError
    from swipe.keyboard import LayoutError
    from swipe.lexicon import LexiconError
    from swipe.model_files import CheckpointError
    from swipe.predictions import PredictionsError

    args = build_parser().parse_args(argv)
    expected = (DecodeError, GeneratorError, FileExistsError, FileNotFoundError, DatasetError, BadRowError,
                LayoutError, LexiconError, PredictionsError, CheckpointError, ConfigError)
    try:
        run(args)
    except expected as err:
        print(f"predict.py: error: {err}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace) -> Predictions:
    """Carry out a parsed ``predict.py`` command line; returns what was written."""
    from swipe.decoder import load_decoder, plan_decoding

    if args.no_lexicon and args.lexicon is not None:
        raise PredictError("--lexicon and --no-lexicon exclude each other")
    check_speed(args.num_workers, args.batch_size, args.max_batch_points, args.device, _SPEED_FLAGS)
    choice = choose_model(args)
    chosen = settings_from_flags(args, choice.path)
    settings = chosen.settings
    plan = plan_decoding(settings, not args.no_lexicon, _FLAGS)  # flag errors before the model loads
    for path in (args.out, args.csv):
        if path is not None and Path(path).is_dir():
            raise FileExistsError(f"{path}: is a folder; --out and --csv take a file name")
        if path is not None and Path(path).exists() and not args.overwrite:
            raise FileExistsError(f"{path}: already exists (pass --overwrite to replace it)")
    print(f"model: {choice.path} ({choice.why})", file=sys.stderr)
    decoder = load_decoder(choice.path, settings=settings, lexicon=args.lexicon,
                           use_lexicon=not args.no_lexicon, device=args.device, num_workers=args.num_workers,
                           batch_size=args.batch_size, max_batch_points=args.max_batch_points)
    if decoder.lexicon_name is None:
        print("lexicon: none (--no-lexicon)", file=sys.stderr)
    else:
        why = "--lexicon" if args.lexicon is not None else "the model's"
        left_out = f"; {decoder.num_unspellable} words the model cannot spell left out" * bool(
            decoder.num_unspellable)
        print(f"lexicon: {decoder.lexicon_name} ({why}{left_out})", file=sys.stderr)
    print(describe_settings(chosen, plan), file=sys.stderr)
    data_path = _validation_data(decoder.loaded, choice.path) if args.data is None else Path(args.data)
    if not data_path.exists():
        raise PredictError(f"{data_path}: no such data file or dataset directory")
    data = _read_data(args, decoder, data_path)
    decoded = decoder.decode_source(data.curves, progress=not args.quiet)
    candidates = [[(c.score, c.word) for c in row] for row in decoded]
    predictions = Predictions(candidates, data.targets, data.layouts,
                              _metadata(decoder, choice.path, data))
    write_predictions(args.out, predictions, overwrite=args.overwrite)
    if args.csv is not None:
        rows: list[list[Candidate]] = candidates
        if data.rows is not None:  # a placeholder line for each skipped row
            rows = [[] for _ in range(data.num_rows)]
            for row, found in zip(data.rows, candidates, strict=True):
                rows[row] = found
        write_submission_csv(args.csv, rows, overwrite=args.overwrite)
    found = sum(1 for row in candidates if row)
    print(f"wrote {args.out}: {len(candidates)} curves ({found} with candidates)", file=sys.stderr)
    return predictions


if __name__ == "__main__":
    sys.exit(main())
