"""Decoding in bfloat16 against float32 on the CPU: speed, and how often the words change. One table.

    nice -n 10 python bench/bench_precision.py --checkpoint swipe/resources/models/en_hws_transformer

The same model decodes the same curves (default: the 800 real English swipes of
``swipe/resources/swipes/hws_real_en_dev.jsonl``) with the batched cached beam search, as ``predict.py``
runs it (``swipe.predict.decode``, length-sorted batches, one torch thread), three ways:

- ``fp32``: as shipped;
- ``bf16 autocast``: inside ``torch.autocast("cpu", dtype=torch.bfloat16)``, so products and
  attentions run in bfloat16 and the rest (layer norms, the search's scores) in float32;
- ``bf16 weights``: a copy of the model cast to bfloat16 throughout (the search still takes the
  log-softmax in float32).

Each way runs ``--repeats`` times, in turn, and keeps its fastest run. The table gives curves per
second, the speed-up over ``fp32``, accuracy@1 against the target words, on how many curves the
first word and the whole candidate list are those of ``fp32``, and the single-swipe latency (p50,
of ``--latency-curves`` curves decoded one at a time). On CPUs without bfloat16 units
(AVX512-BF16 / AMX) bfloat16 is emulated and slower.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import ContextManager

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_search_arguments, dataset_dir  # noqa: E402
from swipe.decoder import BatchDecoder as Decoder  # noqa: E402
from swipe.decoding import BeamOptions, Candidate, LexiconTrie  # noqa: E402
from swipe.lexicon import load_lexicon  # noqa: E402
from swipe.predict import CheckpointLoader, DatasetCurves, DecodeJob, ModelParts, decode  # noqa: E402


class Bfloat16Loader:
    """A checkpoint's model cast to bfloat16 (a ``ModelLoader`` for ``DecodeJob``)."""

    def __init__(self, loader: CheckpointLoader) -> None:
        self.loader = loader
        self._parts: ModelParts | None = None

    def __call__(self, device: str) -> ModelParts:
        if self._parts is None:
            parts = self.loader(device)
            self._parts = ModelParts(copy.deepcopy(parts.model).to(torch.bfloat16), parts.tokenizer)
        return self._parts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_search_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-curves", type=int, default=200)
    args = parser.parse_args()

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = dataset_dir(Path(args.data), Path(tmp))
        loader = CheckpointLoader(args.checkpoint)
        loaded = loader.load("cpu")
        trie = LexiconTrie.from_lexicon(load_lexicon(args.lexicon), loaded.tokenizer)
        curves = DatasetCurves.for_model(data, loaded)
        options = BeamOptions(beam_size=args.beam_size)
        as_shipped = DecodeJob(loader, curves, "beam", options, trie, "cpu")
        bf16_weights = DecodeJob(Bfloat16Loader(loader), curves, "beam", options, trie, "cpu")
        ways: dict[str, tuple[DecodeJob, Callable[[], ContextManager[object]]]] = {
            "fp32": (as_shipped, contextlib.nullcontext),
            "bf16 autocast": (as_shipped, lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
            "bf16 weights": (bf16_weights, contextlib.nullcontext),
        }
        seconds: dict[str, float] = {}
        outputs: dict[str, list[list[Candidate]]] = {}
        for _ in range(args.repeats):
            for name, (job, context) in ways.items():
                with context():
                    start = time.perf_counter()
                    outputs[name] = decode(job, args.batch_size)
                    elapsed = time.perf_counter() - start
                seconds[name] = min(seconds.get(name, elapsed), elapsed)
        latencies: dict[str, float] = {}
        for name, (job, context) in ways.items():
            decoder = Decoder(job)
            times = []
            for i in range(min(args.latency_curves, len(curves))):
                with context():
                    start = time.perf_counter()
                    decoder([i])
                    times.append(1000 * (time.perf_counter() - start))
            latencies[name] = statistics.median(times)
        n = len(curves)
        words = [curves.dataset.word(i) for i in range(n)]

    reference = outputs["fp32"]
    print(f"model: {args.checkpoint}; data: {args.data} ({n} curves); beam size {args.beam_size}, "
          f"batch size {args.batch_size}, 1 thread; curves/s: fastest of {args.repeats}")
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}\n")
    print("| decoding | curves/s | speed-up | accuracy@1 | first word as fp32 | all words as fp32 "
          "| single swipe p50 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, rows in outputs.items():
        accuracy = sum(bool(row) and row[0][1] == word for row, word in zip(rows, words, strict=True)) / n
        pairs = list(zip(rows, reference, strict=True))
        same_first = sum(bool(a) and bool(b) and a[0][1] == b[0][1] for a, b in pairs)
        same_all = sum([w for _, w in a] == [w for _, w in b] for a, b in pairs)
        print(f"| {name} | {n / seconds[name]:.1f} | {seconds['fp32'] / seconds[name]:.2f}x | {accuracy:.4f} "
              f"| {same_first}/{n} | {same_all}/{n} | {latencies[name]:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
