"""Throughput of the synthetic swipe generator on one core.

    nice -n 10 python bench/bench_synth.py [--count 20000]

Prints curves/s of ``synthesize_curve`` alone and of ``write_synthetic_jsonl`` (generation, JSON
formatting and writing, grid inline and by name) for an English and a Russian layout, by wall-clock
time and by the process's CPU time (the rate one core gives when other jobs share the machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swipe.keyboard import bundled_layout  # noqa: E402
from swipe.lexicon import load_lexicon  # noqa: E402
from swipe.synth import synthesize_curve, typeable_words, write_synthetic_jsonl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="curves per measurement")
    args = parser.parse_args(argv)
    rows = []
    for layout_name, lexicon_name in (("hws_fitted", "en"), ("default", "ru")):
        layout, lexicon = bundled_layout(layout_name), load_lexicon(lexicon_name)
        words = typeable_words(lexicon, layout).lexicon.words
        rng = np.random.default_rng(0)
        sample = [words[i] for i in rng.choice(len(words), size=args.count, p=lexicon.probabilities)]
        start, cpu = time.perf_counter(), time.process_time()
        points = sum(len(synthesize_curve(w, layout, rng).x) for w in sample)
        rates = args.count / (time.perf_counter() - start), args.count / (time.process_time() - cpu)
        rows.append((layout_name, lexicon_name, "synthesize_curve", *rates, points / args.count, ""))
        for inline in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "synth.jsonl"
                start, cpu = time.perf_counter(), time.process_time()
                write_synthetic_jsonl(out, layout, lexicon, args.count, seed=0, inline_grid=inline)
                rates = args.count / (time.perf_counter() - start), args.count / (time.process_time() - cpu)
                size = os.path.getsize(out) / args.count
            what = "write_synthetic_jsonl, grid " + ("inline" if inline else "by name")
            rows.append((layout_name, lexicon_name, what, *rates, float("nan"), f"{size:,.0f}"))
    print(f"{args.count:,} curves per row, one process, numpy {np.__version__}, {os.cpu_count()} CPUs "
          f"(load average {os.getloadavg()[0]:.1f})\n")
    print("| layout | lexicon | what | curves/s (wall) | curves/s (CPU time) | points/curve | bytes/curve |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for layout_name, lexicon_name, what, wall, cpu, pts, size in rows:
        pts_text = "" if np.isnan(pts) else f"{pts:.1f}"
        print(f"| {layout_name} | {lexicon_name} | {what} | {wall:,.0f} | {cpu:,.0f} | {pts_text} | {size} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
