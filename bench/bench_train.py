"""Training throughput (curves/s) of a model preset: CPU, and CUDA with and without mixed precision.

    nice -n 10 python bench/bench_train.py                         # base preset, every device here
    nice -n 10 python bench/bench_train.py --preset small --batch-size 64 --steps 10

Synthetic curves (layout ``hws_fitted``, the bundled English lexicon) are generated and built once
into ``--work``; batches are collated up front, so the figures are the optimizer step alone
(forward, loss, backward, clipping, AdamW) as :class:`swipe.training.Trainer` runs it. The first
``--warmup`` steps are not timed. Rows: CPU fp32, and when CUDA is available, CUDA fp32, bf16
(if supported) and fp16 with a gradient scaler.

With ``--resample-step S`` the curves are resampled every ``S`` key widths along the path with a
uniform clock and thinned to 128 points, as the shipped English models train
(``swipe/resources/models/en_hws/config.json``), and the CPU row is timed four times, alternating
batches bucketed by the resampled lengths (as the trainer buckets them) and by the logged lengths.
The ``padding`` column is the share of the batches' points that are padding.

    nice -n 10 python bench/bench_train.py --threads 1 --resample-step 0.25 --cpu-only

With ``--config FILE`` the model, ``max_points`` and ``resample`` come from a training config
instead of ``--preset`` (the shipped conformer: ``--config swipe/resources/models/en_hws/config.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swipe.config import from_dict, to_dict  # noqa: E402
from swipe.data import LengthBucketBatchSampler  # noqa: E402
from swipe.models import preset  # noqa: E402
from swipe.training import TrainConfig, Trainer, load_train_config  # noqa: E402
from swipe.training.datasets import open_data, prepare_data_files  # noqa: E402
from swipe.training.distributed import DistInfo  # noqa: E402


class Row(NamedTuple):
    device: str
    precision: str
    batch_size: int
    ms_per_step: float
    curves_per_s: float
    tokens_per_s: float
    cpu_ms_per_step: float
    batching: str
    padding: float


def make_config(args: argparse.Namespace, work: Path, device: str, precision: str) -> TrainConfig:
    resample = {}
    if args.resample_step is not None:
        resample = {"resample": {"mode": "path", "step": args.resample_step, "keep_time": False},
                    "max_points": 128}
    model = preset(args.preset)
    if args.config is not None:
        recipe = load_train_config(args.config)
        model = recipe.model
        resample = {"resample": to_dict(recipe.data.resample) if recipe.data.resample else None,
                    "max_points": recipe.data.max_points}
    return from_dict(
        TrainConfig,
        {
            "name": "bench",
            "model": to_dict(model),
            "data": {
                "train": str(work / "train"),
                "val": str(work / "val"),
                "synthetic": {
                    "layouts": ["hws_fitted"],
                    "lexicon": "en",
                    "num_train": args.curves,
                    "num_val": 64,
                },
                "batch_size": args.batch_size,
                **resample,
            },
            "max_steps": 1,
            "device": device,
            "precision": precision,
            "logging": {"tensorboard": False, "progress_bar": False},
        },
    )


def measure(config: TrainConfig, work: Path, steps: int, warmup: int, by_logged_length: bool = False) -> Row:
    device = torch.device(config.device)
    data = open_data(dataclasses.replace(config.data, synthetic=None))
    trainer = Trainer(config, work / "run", data, DistInfo(0, 1, 0), device)
    if by_logged_length:
        sampler = LengthBucketBatchSampler(data.train.num_points, config.data.batch_size, seed=0)
    else:
        sampler = data.make_sampler(config.data.batch_size, 0, DistInfo(0, 1, 0))
    sampler.set_epoch(0)
    batches = []
    for indices in sampler:
        batches.append(data.collator([data.train[i] for i in indices]))
        if len(batches) == steps + warmup:
            break
    if len(batches) < steps + warmup:
        raise SystemExit(
            f"--curves {config.data.synthetic.num_train} is too few for {steps + warmup} batches"
        )
    for batch in batches[:warmup]:
        trainer.train_step([batch], 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    curves = tokens = 0
    points = sum(int((~batch.swipe_pad_mask).sum()) for batch in batches[warmup:])
    padded = sum(batch.swipe_pad_mask.numel() for batch in batches[warmup:])
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in batches[warmup:]:
        trainer.train_step([batch], 1)  # returns Python floats: synchronises on CUDA
        curves += batch.target.shape[0]
        tokens += int((~batch.tokens_pad_mask).sum())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16+scaler"}[trainer.amp_dtype]
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    return Row(
        name,
        precision,
        config.data.batch_size,
        1000 * elapsed / steps,
        curves / elapsed,
        tokens / elapsed,
        1000 * cpu / steps,
        "logged lengths" if by_logged_length else "read lengths",
        1 - points / padded,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="base", help="model preset (default: base)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--curves", type=int, default=8192, help="synthetic curves to generate")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--config", type=Path, default=None,
                        help="time the model (and max_points, resample) of this training config instead "
                        "of --preset")
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA even when available")
    parser.add_argument("--cuda-only", action="store_true", help="skip the CPU row")
    parser.add_argument("--work", type=Path, default=None, help="cache directory (default: a temp dir)")
    parser.add_argument("--resample-step", type=float, default=None,
                        help="resample along the path every this many key widths (uniform clock, 128 "
                        "points at most) and time the CPU row with batches by resampled and by logged "
                        "lengths, in turn")
    args = parser.parse_args()
    if args.config is not None and args.resample_step is not None:
        parser.error("--config brings its own resampling: leave out --resample-step")
    if args.cpu_only and args.cuda_only:
        parser.error("give --cpu-only or --cuda-only, not both")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepare_data_files(make_config(args, work, "cpu", "fp32"), work)
        setups = [] if args.cuda_only else [("cpu", "fp32")]
        if torch.cuda.is_available() and not args.cpu_only:
            setups += [("cuda", "fp32")]
            if torch.cuda.is_bf16_supported():
                setups += [("cuda", "bf16")]
            setups += [("cuda", "fp16")]
        rows = [
            measure(make_config(args, work, dev, prec), work, args.steps, args.warmup) for dev, prec in setups
        ]
        if args.resample_step is not None:
            cpu = make_config(args, work, "cpu", "fp32")
            # In turn with a second run by read lengths, so that a load burst spoils one of four.
            rows[1:1] = [measure(cpu, work, args.steps, args.warmup, by_logged_length=True),
                         measure(cpu, work, args.steps, args.warmup),
                         measure(cpu, work, args.steps, args.warmup, by_logged_length=True)]

    model = f"config {str(args.config)!r}" if args.config is not None else f"preset {args.preset!r}"
    print(f"\ntraining throughput, {model}, batch {args.batch_size}, {args.steps} timed steps")
    print("(process CPU ms/step: all threads of this process; compare with wall ms/step to see contention)")
    head = ("device", "precision", "batch", "batches by", "padding", "ms/step", "CPU ms/step", "curves/s",
            "tokens/s")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in head) + "|")
    for r in rows:
        print(
            f"| {r.device} | {r.precision} | {r.batch_size} | {r.batching} | {r.padding:.1%} | "
            f"{r.ms_per_step:.1f} | {r.cpu_ms_per_step:.1f} | {r.curves_per_s:.1f} | {r.tokens_per_s:.0f} |"
        )


if __name__ == "__main__":
    main()
