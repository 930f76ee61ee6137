"""PyTorch, ONNX Runtime fp32 and ONNX Runtime int8 side by side on the real English swipes.

Every row decodes the same way: beam search with the lexicon trie, prior and length penalty, then
template rescoring, as the model's decoding.json says, less its keyboard-width views and template
candidates (``bench/bench_pipeline.py`` times the default decoding against this plain one; the
peak memory below is of ``python -m swipe.runtime``, which decodes with the whole decoding.json).
Printed per row: the model files' size;
single-swipe latency p50/p95 (one thread, the whole pipeline from raw points to ranked words);
throughput (batches of --batch-size, one thread); the peak resident memory of a process that
decodes the swipes one by one (for ONNX, ``python -m swipe.runtime``, which never imports torch);
accuracy@1 and Swipe MRR on all the swipes.

    nice python bench/bench_onnx.py                      # the shipped en_hws_transformer
    nice python bench/bench_onnx.py --model swipe/resources/models/en_hws --onnx /tmp/en_hws_onnx
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REAL_EN_SWIPES, ROOT  # noqa: E402

# predict.py as decoding.json says, less what the reference decoder does not do.
NOT_PORTED_OFF = ["--x-scales", "1", "--wide-x-scales", "none", "--template-candidates", "0"]
# predict.py run in a process that reports its peak resident memory at exit.
PEAK_MEMORY_OF_PREDICT = """import runpy, sys
from swipe.runtime.__main__ import peak_resident_mb
sys.argv = {argv!r}
try:
    runpy.run_path("predict.py", run_name="__main__")
finally:
    print("peak memory %d MB" % peak_resident_mb(), file=sys.stderr)
"""

def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def scores(candidates: list[list[tuple[float, str]]], targets: list[str]) -> tuple[float, float]:
    """Accuracy@1 and Swipe MRR, in percent."""
    from swipe.metrics import swipe_mrr_score

    top = np.mean([bool(row) and row[0][1] == word for row, word in zip(candidates, targets, strict=True)])
    mrr = np.mean([swipe_mrr_score([w for _, w in row], word) for row, word in zip(candidates, targets,
                                                                                    strict=True)])
    return 100 * float(top), 100 * float(mrr)


def peak_memory(command: list[str]) -> float:
    """The peak resident memory (MB) a decoding process reports on its last stderr line."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
    return float(re.findall(r"peak memory (\d+) MB", done.stderr)[-1])


def single_swipe_seconds(decode: Callable[[list[Any]], Any], swipes: list[Any], count: int) -> list[float]:
    """Seconds ``decode`` takes for each of the first ``count`` swipes alone, after a warm-up of 5."""
    for swipe in swipes[:5]:
        decode([swipe])
    seconds = []
    for swipe in swipes[:count]:
        start = time.perf_counter()
        decode([swipe])
        seconds.append(time.perf_counter() - start)
    return seconds


def bench_pytorch(model: Path, data: Path, latency_swipes: int,
                  batch_size: int) -> tuple[list[float], float, list[list[tuple[float, str]]]]:
    """``swipe.load_decoder`` (what predict.py runs) with the model's decoding.json less the views
    and template candidates, on one torch thread."""
    import dataclasses

    import torch

    import swipe
    from swipe.formats import read_curves

    torch.set_num_threads(1)
    decoder = swipe.load_decoder(model, batch_size=batch_size, max_batch_points=None)
    settings = dataclasses.replace(decoder.settings, x_scales=(1.0,), wide_x_scales=(), template_candidates=0)
    decoder = swipe.load_decoder(model, settings=settings, batch_size=batch_size, max_batch_points=None)
    curves = list(read_curves(data))
    seconds = single_swipe_seconds(decoder.decode, curves, latency_swipes)
    start = time.perf_counter()
    rows = decoder.decode(curves)
    rate = len(curves) / (time.perf_counter() - start)
    return seconds, rate, [[(c.score, c.word) for c in row] for row in rows]


def bench_onnx(folder: Path, data: Path, int8: bool, latency_swipes: int,
               batch_size: int) -> tuple[list[float], float, list[list[tuple[float, str]]]]:
    from swipe.runtime import OnnxDecoder, read_swipes

    decoder = OnnxDecoder(folder, int8=int8, threads=1)
    plain = dataclasses.replace(decoder.settings, x_scales=(1.0,), views_below=None, wide_x_scales=(),
                                template_candidates=0)  # as bench_pytorch decodes
    decoder = OnnxDecoder(folder, int8=int8, threads=1, settings=plain)
    swipes = [swipe for swipe, _ in read_swipes(data)]
    seconds = single_swipe_seconds(decoder.decode, swipes, latency_swipes)
    start = time.perf_counter()
    candidates = []
    for i in range(0, len(swipes), batch_size):
        candidates += decoder.decode(swipes[i : i + batch_size])
    return seconds, len(swipes) / (time.perf_counter() - start), candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "swipe/resources/models/en_hws_transformer"),
                        help="exported model folder (with decoding.json) or model file")
    parser.add_argument("--onnx", help="its ONNX folder (default: exported into a temporary folder)")
    parser.add_argument("--data", default=str(REAL_EN_SWIPES), help="jsonl swipes with their words")
    parser.add_argument("--latency-swipes", type=int, default=200, help="swipes timed one by one")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    from swipe.runtime import read_swipes

    data = Path(args.data)
    targets = [word for _, word in read_swipes(data)]
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        workdir = Path(tmp)
        folder = Path(args.onnx) if args.onnx else workdir / "onnx"
        if not (folder / "model.json").is_file():
            from swipe.onnx_export import export_onnx

            export_onnx(args.model, folder)
        model_file = Path(args.model) / "model.pt" if Path(args.model).is_dir() else Path(args.model)
        rows = []
        seconds, rate, candidates = bench_pytorch(Path(args.model), data, args.latency_swipes,
                                                  args.batch_size)
        argv = ["predict.py", "--checkpoint", args.model, "--data", str(data), "--batch-size", "1",
                "--out", str(workdir / "preds.pkl"), "--quiet", *NOT_PORTED_OFF]
        code = PEAK_MEMORY_OF_PREDICT.format(argv=argv)
        memory = peak_memory([sys.executable, "-c", code])
        rows.append(("PyTorch (fp16 file)", model_file.stat().st_size, seconds, rate, memory, candidates))
        for int8 in (False, True):
            suffix = ".int8.onnx" if int8 else ".onnx"
            size = sum((folder / f"{name}{suffix}").stat().st_size for name in ("encoder", "decoder_step"))
            seconds, rate, candidates = bench_onnx(folder, data, int8, args.latency_swipes, args.batch_size)
            command = [sys.executable, "-m", "swipe.runtime", str(folder), str(data), "--batch-size", "1"]
            memory = peak_memory(command + (["--int8"] if int8 else []))
            rows.append((f"ORT {'int8' if int8 else 'fp32'}", size, seconds, rate, memory, candidates))
    print(f"{len(targets)} swipes of {data.name}; model {args.model}; latency over the first "
          f"{args.latency_swipes}, one thread; throughput in batches of {args.batch_size}")
    torch_rows, onnx_rows = rows[0][5], rows[1][5]
    pairs = list(zip(torch_rows, onnx_rows, strict=True))
    first = sum(bool(a) and bool(b) and a[0][1] == b[0][1] for a, b in pairs)
    lists = sum([w for _, w in a] == [w for _, w in b] for a, b in pairs)
    same_words = [(x, y) for a, b in pairs for x, y in zip(a, b, strict=False) if x[1] == y[1]]
    diff = max((abs(x[0] - y[0]) for x, y in same_words), default=0.0)
    print(f"ORT fp32 against PyTorch: the same first word for {first} of {len(pairs)} swipes, the same "
          f"list for {lists}; scores of the same words differ by at most {diff:.1e}")
    print("| runtime | model files | p50 ms | p95 ms | swipes/s | peak memory | accuracy@1 | Swipe MRR |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, size, seconds, rate, memory, candidates in rows:
        p50, p95 = percentiles(seconds)
        top, mrr = scores(candidates, targets)
        shown = f"{memory:.0f} MB"
        print(f"| {name} | {size / 1e6:.2f} MB | {p50:.1f} | {p95:.1f} | {rate:.1f} | {shown} | "
              f"{top:.2f} | {mrr:.2f} |")


if __name__ == "__main__":
    main()
