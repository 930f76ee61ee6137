"""Encoder speed: the eval-mode fast path against the encoder's modules, side by side.

    nice -n 10 python bench/bench_encoders.py                       # the shipped English model
    nice -n 10 python bench/bench_encoders.py --checkpoint swipe/resources/models/en_hws \\
        --checkpoint swipe/resources/models/en_hws_transformer

In eval mode the transformer and conformer encoders run on weights gathered once (fused
projections, no module calls; see ``swipe.models.encoders``); in training mode they run their
modules. For each checkpoint this times ``model.encode`` both ways on the same curves (default:
the 800 real English swipes), alternating the two on every input so that a change of the
machine's speed spoils both alike: single swipes (p50 and p95 over ``--single-curves`` curves)
and length-sorted batches of ``--batch-size`` curves as ``predict.py`` makes them (curves/s,
fastest of ``--repeats`` passes). The modules run with dropout off and without gradients; the
``largest difference`` column is the largest difference between the two memories. One torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import REAL_EN_SWIPES, dataset_dir  # noqa: E402
from swipe.batch import SwipeBatch  # noqa: E402
from swipe.predict import DEFAULT_MAX_BATCH_POINTS, CheckpointLoader, DatasetCurves, make_batches  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "swipe" / "resources" / "models" / "en_hws"


def without_dropout(model: torch.nn.Module) -> None:
    """Set every dropout probability to 0 (modules and attention), for the modules' timing."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "dropout", None), float):
            module.dropout = 0.0


def timed_encode(
    model: torch.nn.Module, swipe: SwipeBatch, mask: torch.Tensor, fast: bool
) -> tuple[torch.Tensor, float]:
    """``model.encode`` on its eval fast path (``fast``) or its modules, and the seconds it took."""
    model.train(not fast)
    start = time.perf_counter()
    memory = model.encode(swipe, mask)
    return memory, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", action="append", default=None,
                        help="a trained model (repeatable; default: the shipped en_hws)")
    parser.add_argument("--data", default=str(REAL_EN_SWIPES), help="raw curves or a built dataset")
    parser.add_argument("--single-curves", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the batches, fastest kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = []
    with tempfile.TemporaryDirectory(prefix="bench-encoders-") as tmp, torch.no_grad():
        data = dataset_dir(Path(args.data), Path(tmp))
        for checkpoint in args.checkpoint or [str(DEFAULT_CHECKPOINT)]:
            loaded = CheckpointLoader(Path(checkpoint)).load("cpu")
            model = loaded.model
            without_dropout(model)
            curves = DatasetCurves.for_model(data, loaded)
            singles = [curves.batch([i]) for i in range(min(args.single_curves, len(curves)))]
            groups = make_batches(curves.num_points, args.batch_size, DEFAULT_MAX_BATCH_POINTS)
            batches = [curves.batch(group) for group in groups]
            timed_encode(model, *singles[0], fast=True)  # gathers the fast path's weights
            single = {True: [], False: []}
            diff = 0.0
            for swipe, mask in singles:
                fast_memory, t = timed_encode(model, swipe, mask, fast=True)
                single[True].append(1000 * t)
                memory, t = timed_encode(model, swipe, mask, fast=False)
                single[False].append(1000 * t)
                diff = max(diff, float((fast_memory - memory).abs().max()))
            batched = {True: [], False: []}
            for _ in range(args.repeats):
                for fast in (True, False):
                    batched[fast].append(sum(timed_encode(model, s, m, fast)[1] for s, m in batches))
            encoder = loaded.config.model.transformer.encoder if loaded.config.model.transformer else "rnn"
            for fast in (True, False):
                times = single[fast]
                table.append((
                    f"{checkpoint} ({encoder})",
                    "eval fast path" if fast else "modules",
                    f"p50 {statistics.median(times):.2f} ms, p95 {np.percentile(times, 95):.2f} ms",
                    f"{len(curves) / min(batched[fast]):.0f} curves/s",
                    f"{diff:.1e}" if fast else "",
                ))
    header = ("model", "encoder run as", "single swipe", f"batches of {args.batch_size}",
              "largest difference")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *table]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
