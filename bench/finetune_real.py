"""Fine-tune a trained model on half of the real swipes and score it on the other half. One table.

    nice -n 10 python bench/finetune_real.py                      # the shipped English model
    nice -n 10 python bench/finetune_real.py --model runs/a --steps 600 --work /tmp/ft
    nice -n 10 python bench/finetune_real.py --model-decoding     # decoded as predict.py decodes en_hws

The rows of the data file (default: the 800 real English swipes of
``swipe/resources/swipes/hws_real_en_dev.jsonl`` on layout ``hws_fitted``) are split by 1-based row number:
odd rows fine-tune, even rows are held out. The model (default: the shipped English model) is
fine-tuned with ``init_from`` for ``--steps`` optimizer steps on the odd half (one CPU thread, small
peak learning rate after a short warm-up, the model's own loss settings and curve thinning; the
odd half also serves as the run's validation split, so nothing is chosen on the held-out rows and
the last weights are scored). Then the fine-tuned model and the untouched one decode the even half
exactly as ``bench/eval_real.py --held-out even`` does (``swipe.predict.decode``, beam search,
lexicon prior; with ``--model-decoding`` the exported model's ``decoding.json`` settings, as
``predict.py`` decodes it by default) and the table gives Swipe MRR and accuracy@1 of each.

Everything is written under ``--work`` (default: a temporary directory, removed at the end).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import REAL_EN_SWIPES  # noqa: E402
from bench.eval_real import Row, Setting, evaluate_model, settings_grid  # noqa: E402
from swipe.config import from_dict, to_dict  # noqa: E402
from swipe.data import build_dataset  # noqa: E402
from swipe.decoding import BeamOptions  # noqa: E402
from swipe.model_files import read_decoding_settings, resolve_model_file  # noqa: E402
from swipe.training import (  # noqa: E402
    CheckpointError,
    DataError,
    TrainConfig,
    TrainingError,
    load_model,
    train,
)

DEFAULT_MODEL = ROOT / "swipe" / "resources" / "models" / "en_hws"


def split_rows(source: Path, work: Path) -> tuple[Path, Path]:
    """Write the odd (1-based) rows of ``source`` to ``work/tune.jsonl``, the even ones to
    ``work/held_out.jsonl``; blank lines are not rows."""
    rows = [line for line in source.read_text("utf-8").splitlines() if line.strip()]
    tune, held_out = work / "tune.jsonl", work / "held_out.jsonl"
    tune.write_text("".join(line + "\n" for line in rows[0::2]), "utf-8")
    held_out.write_text("".join(line + "\n" for line in rows[1::2]), "utf-8")
    return tune, held_out


def fine_tune_config(
    model_file: Path, tune_dir: Path, run_dir: Path, steps: int, lr: float, warmup: int, batch_size: int,
    seed: int,
) -> TrainConfig:
    """The training config of the fine-tuning run: the source's architecture, loss settings and
    curve resampling and thinning; one CPU thread; validation (on the fine-tuning half) only at the
    end."""
    source = load_model(model_file).config
    return from_dict(TrainConfig, {
        "name": "finetune_real",
        "model": to_dict(source.model),
        "data": {"train": str(tune_dir), "val": str(tune_dir), "max_points": source.data.max_points,
                 "resample": to_dict(source.data.resample),
                 "batch_size": batch_size},
        "lexicon": source.lexicon,
        "max_steps": steps,
        "seed": seed,
        "device": "cpu",
        "num_threads": 1,
        "run_dir": str(run_dir),
        "init_from": str(model_file),
        "optim": {"lr": lr},
        "loss": to_dict(source.loss),
        "schedule": {"warmup_steps": warmup},
        "validation": {"every_steps": steps},
        "logging": {"tensorboard": False, "progress_bar": False},
    })


class DecodingChoiceError(ValueError):
    """The model's decoding settings cannot be used here."""


def model_decoding(model_file: Path) -> Setting:
    """The beam-search setting of an exported model's ``decoding.json``, as ``predict.py`` decodes
    the model by default."""
    settings = read_decoding_settings(model_file)
    if settings is None:
        raise DecodingChoiceError(f"{model_file}: no decoding.json next to it")
    if settings.generator != "beam" or settings.template_prior_weight != 1.0:
        raise DecodingChoiceError(f"{model_file}: only decoding.json with beam search and template prior "
                                  "weight 1 can be reproduced here")
    names = ("beam_size", "num_candidates", "prior_weight", "length_penalty", "max_length")
    given = {name: getattr(settings, name) for name in names if getattr(settings, name) is not None}
    return Setting("beam", from_dict(BeamOptions, given), settings.template_weight,
                   tuple(settings.x_scales or (1.0,)), tuple(settings.wide_x_scales or ()),
                   settings.views_below, settings.template_candidates or 0, settings.views_margin,
                   settings.templates_below)


def format_table(rows: Sequence[Row]) -> str:
    head = ["model", "rows", "Swipe MRR", "accuracy@1"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        mrr, accuracy = r.scores.swipe_mrr or 0.0, r.scores.accuracy or 0.0
        lines.append(f"| {r.model} | {r.scores.num_scored} | {mrr:.4f} | {accuracy:.4f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace, work: Path) -> int:
    model_file = resolve_model_file(args.model)
    if not model_file.is_file():
        print(f"finetune_real.py: error: {model_file}: no such model file", file=sys.stderr)
        return 2
    try:
        setting = (model_decoding(model_file) if args.model_decoding
                   else settings_grid(["beam"], [args.beam_size], [args.prior_weight])[0])
    except DecodingChoiceError as err:
        print(f"finetune_real.py: error: {err}", file=sys.stderr)
        return 2
    if not args.data.is_file():
        print(f"finetune_real.py: error: {args.data}: no such data file", file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    tune_jsonl, held_out_jsonl = split_rows(args.data, work)
    tune_dir, held_out_dir = work / "data" / "tune", work / "data" / "held_out"
    build_dataset([tune_jsonl], tune_dir, overwrite=True)
    build_dataset([held_out_jsonl], held_out_dir, overwrite=True)

    config = fine_tune_config(model_file, tune_dir, work / "run", args.steps, args.lr, args.warmup,
                              args.batch_size, args.seed)
    start = time.perf_counter()
    try:
        result = train(config)
    except (TrainingError, DataError, CheckpointError) as err:
        print(f"finetune_real.py: error: {err}", file=sys.stderr)
        return 2
    train_seconds = time.perf_counter() - start
    tuned = result.run_dir / "checkpoints" / "last.pt"

    rows: list[Row] = []
    for path, label in ((model_file, f"{args.model} (untouched)"),
                        (tuned, f"fine-tuned, {result.step} steps")):
        found, _, _ = evaluate_model(path, label, held_out_dir, [setting], args.lexicon, None, None, 64)
        rows += found
    print()
    print(f"data: {args.data} (rows 1-based: odd fine-tune, even held out); model: {model_file}")
    print(f"fine-tuning: {result.step} steps of {args.batch_size} curves, lr {args.lr:g} after "
          f"{args.warmup} warm-up steps, seed {args.seed}, one CPU thread, {train_seconds:.0f} s")
    print(f"held-out decoding: {setting.label}, lexicon {args.lexicon} (torch {torch.__version__})")
    print()
    print(format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arg = parser.add_argument
    arg("--model", default=os.path.relpath(DEFAULT_MODEL),
        help="checkpoint, run directory or exported model folder (default: the shipped English model)")
    arg("--data", type=Path, default=REAL_EN_SWIPES, help=f"raw real swipes (default: {REAL_EN_SWIPES})")
    arg("--steps", type=int, default=300, help="fine-tuning optimizer steps (default 300)")
    arg("--lr", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
    arg("--warmup", type=int, default=30, help="warm-up steps (default 30)")
    arg("--batch-size", type=int, default=32, help="curves per step (default 32)")
    arg("--seed", type=int, default=0, help="batch order and dropout (default 0)")
    arg("--beam-size", type=int, default=8, help="beam size of the evaluation (default 8)")
    arg("--prior-weight", type=float, default=0.6, help="lexicon prior weight (default 0.6)")
    arg("--model-decoding", action="store_true",
        help="decode both models as predict.py decodes the given exported model by default (its "
        "decoding.json) instead of with --beam-size and --prior-weight")
    arg("--lexicon", default="en", help="'en', 'ru' or a word-list file (default en)")
    arg("--work", type=Path, help="keep the split, datasets and run here (default: a temporary directory)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        print("finetune_real.py: error: --steps and --batch-size must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    if args.work is not None:
        return run(args, args.work)
    with tempfile.TemporaryDirectory(prefix="finetune-real-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
