"""Speed of scoring given words (the template candidates' stage): one teacher-forced network call
(``backend.score``, the ``decoder_score.onnx`` graph) beside one decoder step per character.

For each swipe: its memory (encoded once, not timed) and the words the SHARK2 template matcher
proposes (not timed), then ``Pipeline.score_words`` both ways, timed alternately on the same
swipe, one swipe at a time on one thread. Prints per swipe p50 / p95 / max / mean ms, the largest
difference of a word's score between the two, and the load average.

    python -m swipe.export en_hws --format onnx --out /tmp/en_hws_onnx
    nice python bench/bench_scoring.py /tmp/en_hws_onnx             # the 800 dev swipes
    nice python bench/bench_scoring.py /tmp/en_hws_onnx --int8 --limit 200
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REAL_EN_SWIPES  # noqa: E402

WARM_UP = 20  # swipes scored both ways before timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n")[-1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="an ONNX folder (python -m swipe.export NAME --format onnx --out DIR)")
    parser.add_argument("--data", default=str(REAL_EN_SWIPES), help="swipes (jsonl)")
    parser.add_argument("--int8", action="store_true", help="the int8 graphs")
    parser.add_argument("--top-k", type=int, default=4, help="words the matcher proposes per swipe")
    parser.add_argument("--limit", type=int, default=None, help="first N swipes only")
    args = parser.parse_args(argv)

    from swipe.decoding.pipeline import Settings
    from swipe.runtime import OnnxDecoder, read_swipes

    one_call = OnnxDecoder(args.folder, int8=args.int8, threads=1,
                           settings=Settings(prior_weight=0.5, template_candidates=args.top_k)).pipeline
    if one_call.backend.decoder_score is None:
        parser.error(f"{args.folder}: no decoder_score graph: export the model again")
    b = one_call.backend
    stepping = copy.copy(one_call)  # the same backend without score: one step per character
    stepping.backend = SimpleNamespace(encode=b.encode, take=b.take, step=b.step, reorder=b.reorder)
    swipes = [swipe for swipe, _ in read_swipes(args.data)][: args.limit]
    times: dict[str, list[float]] = {"one decoder step per character": [], "one score call": []}
    worst = 0.0
    for i, swipe in enumerate(swipes):
        memory = one_call.encode([(swipe, 1.0)])
        words = [[word for _, word in one_call.matcher(one_call.layout(swipe)).decode(swipe.x, swipe.y)]]
        rows = []
        for name, pipeline in zip(times, (stepping, one_call), strict=True):
            start = time.perf_counter()
            rows.append(pipeline.score_words(memory, words)[0])
            if i >= WARM_UP:
                times[name].append((time.perf_counter() - start) * 1e3)
        stepped, called = ({word: score for score, word in row} for row in rows)
        assert stepped.keys() == called.keys(), rows
        worst = max([worst, *(abs(stepped[word] - called[word]) for word in stepped)])
    print(f"scoring the matcher's top {args.top_k} words of {len(swipes) - WARM_UP} swipes "
          f"({'int8' if args.int8 else 'fp32'}, one thread); load {os.getloadavg()[0]:.2f}")
    print("| scoring | p50 ms | p95 ms | max ms | mean ms |\n| --- | ---: | ---: | ---: | ---: |")
    for name, values in times.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {max(values):.2f} | {np.mean(values):.2f} |")
    print(f"largest score difference: {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
