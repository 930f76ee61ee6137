"""Speed of the SHARK2 template matcher (swipe.shark2.Shark2Decoder, which proposes the decoding
pipeline's template candidates) beside the plain computation of the same proposals.

The plain matcher scores every word that passes start/end pruning by the location, shape and end
channels, and the ``rescore_top`` best of them by both DTW channels. The matcher returns the same
words and scores while computing less (see swipe/shark2.py); this script checks that on every swipe
and prints, for each, single-swipe latency p50 / p95 / max / mean in ms, one swipe at a time on one
thread, the two timed alternately on the same swipes (wall clock, and the thread's CPU time, which
other processes on a busy machine disturb less), with the load average.

    nice python bench/bench_matcher.py                      # the 800 real English dev swipes, top 4
    nice python bench/bench_matcher.py --top-k 10 --limit 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REAL_EN_SWIPES  # noqa: E402

WARM_UP = 20  # swipes decoded by both before timing


class PlainMatcher:
    """The proposals of a :class:`swipe.shark2.Shark2Decoder` computed plainly: every channel of
    every word that passes pruning, from the decoder's templates, and both DTW distances of each of
    the ``rescore_top`` best."""

    def __init__(self, decoder) -> None:
        from swipe.shark2 import in_chunks
        from swipe.templates import normalize_shape, resample_many

        self.decoder, self.config = decoder, decoder.config
        points = np.ascontiguousarray(decoder.templates.points)
        count, n = len(points), self.config.dtw_points
        self.points, self.shapes = points, in_chunks(normalize_shape, points, count)
        self.dtw = points if n == self.config.num_points else in_chunks(
            lambda chunk: resample_many(chunk, n), points, count)
        self.dtw_shapes = in_chunks(normalize_shape, self.dtw, count)

    def channel_distances(self, x: np.ndarray, y: np.ndarray, start_radius: float, end_radius: float):
        """As :meth:`swipe.shark2.Shark2Decoder.channel_distances`."""
        from swipe.shark2 import ChannelDistances
        from swipe.templates import key_units, normalize_shape, path_length, point_distances, resample

        gesture = key_units(self.decoder.layout, x, y)
        is_tap = path_length(gesture) < self.config.tap_length
        points = resample(gesture, self.config.num_points).astype(np.float32)
        start = point_distances(self.points[:, 0], points[0])
        end = point_distances(self.points[:, -1], points[-1])
        index = np.flatnonzero((start <= start_radius) & (end <= end_radius))
        location = point_distances(self.points[index], points).mean(axis=1)
        shape = (np.zeros(len(index), np.float32) if is_tap
                 else point_distances(self.shapes[index], normalize_shape(points)).mean(axis=1))
        return ChannelDistances(index, start[index], end[index], location, shape,
                                self.decoder.templates.log_prior[index], is_tap)

    def decode(self, x: np.ndarray, y: np.ndarray) -> list[tuple[float, str]]:
        """As :meth:`swipe.shark2.Shark2Decoder.decode`."""
        from swipe.shark2 import ElasticDistances, base_scores, elastic_scores, top_candidates
        from swipe.templates import dtw_distances, key_units, normalize_shape, resample

        cfg, words = self.config, self.decoder.templates.words
        start_radius, end_radius = cfg.start_radius, cfg.end_radius
        for _ in range(4):
            distances = self.channel_distances(x, y, start_radius, end_radius)
            if len(distances.index):
                break
            start_radius, end_radius = 2 * start_radius, 2 * end_radius
        scores = base_scores(distances, cfg)
        if distances.is_tap:
            return top_candidates(scores, words, distances.index, cfg.top_k)
        keep = np.argsort(-scores, kind="stable")[: cfg.rescore_top]
        index, n = distances.index[keep], cfg.dtw_points
        query = resample(key_units(self.decoder.layout, x, y), n)
        elastic = ElasticDistances(dtw_distances(query, self.dtw[index]) / n,
                                   dtw_distances(normalize_shape(query), self.dtw_shapes[index]) / n)
        return top_candidates(scores[keep] + elastic_scores(elastic, cfg), words, index, cfg.top_k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: nice python bench/bench_matcher.py --limit 200",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REAL_EN_SWIPES), help="swipes, one JSON object a line")
    parser.add_argument("--lexicon", default="en", help="bundled lexicon name or lexicon file")
    parser.add_argument("--layout", default="hws_fitted", help="bundled layout name")
    parser.add_argument("--top-k", type=int, default=4, help="proposals per swipe (the pipeline's "
                        "template_candidates)")
    parser.add_argument("--limit", type=int, default=None, help="first swipes only")
    args = parser.parse_args(argv)

    from swipe.keyboard import bundled_layout
    from swipe.lexicon import load_lexicon
    from swipe.shark2 import Shark2Config, Shark2Decoder

    lines = Path(args.data).read_text(encoding="utf-8").splitlines()[: args.limit]
    curves = [json.loads(line)["curve"] for line in lines]
    swipes = [(np.asarray(c["x"], np.float64), np.asarray(c["y"], np.float64)) for c in curves]
    start = time.perf_counter()
    decoder = Shark2Decoder(bundled_layout(args.layout), load_lexicon(args.lexicon),
                            Shark2Config(top_k=args.top_k))
    build = time.perf_counter() - start
    plain = PlainMatcher(decoder)
    matchers = {"plain (every word that passes pruning)": plain.decode,
                "Shark2Decoder.decode": decoder.decode}
    for x, y in swipes[:WARM_UP]:
        for decode in matchers.values():
            decode(x, y)
    load_before = os.getloadavg()[0]
    seconds: dict[str, list[float]] = {name: [] for name in matchers}
    cpu: dict[str, list[float]] = {name: [] for name in matchers}
    differ = 0
    for i, (x, y) in enumerate(swipes):
        names = list(matchers) if i % 2 == 0 else list(matchers)[::-1]  # alternate who goes first
        got = {}
        for name in names:
            t, c = time.perf_counter(), time.thread_time()
            got[name] = matchers[name](x, y)
            seconds[name].append(time.perf_counter() - t)
            cpu[name].append(time.thread_time() - c)
        differ += len({json.dumps(row) for row in got.values()}) > 1
    load_after = os.getloadavg()[0]

    print(f"{len(swipes)} swipes of {args.data}, layout {args.layout}, lexicon {args.lexicon} "
          f"({len(decoder.templates.words)} words), top_k {args.top_k}; matcher built in {build:.1f} s; "
          f"load average {load_before:.2f} before, {load_after:.2f} after\n")
    print("| matcher | p50 ms | p95 ms | max ms | mean ms | CPU p50 ms | CPU p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, values in seconds.items():
        ms, cpu_ms = np.asarray(values) * 1e3, np.asarray(cpu[name]) * 1e3
        print(f"| {name} | {np.median(ms):.2f} | {np.percentile(ms, 95):.2f} | {ms.max():.2f} "
              f"| {ms.mean():.2f} | {np.median(cpu_ms):.2f} | {np.percentile(cpu_ms, 95):.2f} |")
    plain_ms, fast_ms = (np.asarray(v) for v in seconds.values())
    print(f"\nplain / matcher: p50 {np.median(plain_ms) / np.median(fast_ms):.2f}x, "
          f"p95 {np.percentile(plain_ms, 95) / np.percentile(fast_ms, 95):.2f}x; "
          f"swipes whose proposals differ: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
