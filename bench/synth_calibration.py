"""Compare synthetic swipes with real ones, statistic by statistic.

For every real swipe the generator draws ``--reps`` synthetic swipes of the same word on the same
layout (``hws_fitted`` by default), then both sets are summarised side by side: mean, percentiles
and the two-sample Kolmogorov-Smirnov distance (0 = same distribution, 1 = disjoint).

    python bench/synth_calibration.py                       # the bundled real English swipes
    python bench/synth_calibration.py --real my.jsonl --layout my_grids.json --reps 3 --seed 1
    python bench/synth_calibration.py --fit overlap,fitts_b_ms --seed 1  # fit (seed 0), then compare

Distances are in key widths of the layout; the ideal length of a word is the length of the
polyline through its keys' centres (a run of one key counted once).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swipe.config import load_json  # noqa: E402
from swipe.keyboard import Layout, LayoutError  # noqa: E402
from swipe.synth import SynthConfig, resolve_layouts, synthesize_curve, word_keys  # noqa: E402

DEFAULT_REAL = (Path(__file__).resolve().parents[1] / "swipe"
                / "resources" / "swipes" / "hws_real_en_dev.jsonl")
SPEED_BINS = 10


class Swipe(NamedTuple):
    word: str
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray


class Stats(NamedTuple):
    """Per-swipe statistics (NaN where one does not apply) and per-swipe speed profiles."""

    scalars: dict[str, np.ndarray]
    speed_profiles: np.ndarray  # (swipes with >= 2 keys and motion, SPEED_BINS)


# name, description
STATISTICS = {
    "points": "points per swipe",
    "duration_ms": "duration (ms)",
    "ms_per_key_width": "duration / ideal length (ms per key width), >= 2 keys",
    "path_over_ideal": "path length / ideal length, >= 2 keys",
    "start_dist": "first point to first key centre (key widths)",
    "start_dx": "first point - first key centre, x (key widths)",
    "start_dy": "first point - first key centre, y (key heights)",
    "end_dist": "last point to last key centre (key widths)",
    "end_dx": "last point - last key centre, x (key widths)",
    "end_dy": "last point - last key centre, y (key heights)",
    "inner_dist": "closest approach to inner keys' centres (key widths)",
    "inner_dx": "closest approach to inner keys' centres, |x| (key widths)",
    "inner_dy": "closest approach to inner keys' centres, |y| (key heights)",
    "left_dx": "closest approach to keys in the left 40 %, x (key widths)",
    "right_dx": "closest approach to keys in the right 40 %, x (key widths)",
    "median_dt_ms": "median time between points (ms)",
    "first_dt_ms": "time from the first to the second point (ms)",
    "last_dt_ms": "time from the last but one to the last point (ms)",
    "gap_share": "share of steps with dt > 25 ms",
    "still_share": "share of steps without movement",
    "turn_deg": "mean absolute turn per step (degrees), moving steps",
    "tap_points": "points per swipe, single-key words",
}


def read_real(path: Path) -> list[Swipe]:
    swipes = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                row = json.loads(line)
                curve = row["curve"]
                swipes.append(Swipe(row["word"], *(np.asarray(curve[k], dtype=np.float64) for k in "xyt")))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise SystemExit(f"{path}:{lineno}: bad row: {err}") from None
    return swipes


def synthesize(words: list[str], layout: Layout, reps: int, seed: int, config: SynthConfig) -> list[Swipe]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        for word in words:
            c = synthesize_curve(word, layout, rng, config)
            out.append(Swipe(word, c.x.astype(np.float64), c.y.astype(np.float64), c.t))
    return out


def swipe_stats(swipes: list[Swipe], layout: Layout) -> Stats:
    unit = layout.key_width
    height = layout.key_height
    values: dict[str, list[float]] = {name: [] for name in STATISTICS}
    profiles = []
    nan = float("nan")
    for s in swipes:
        keys = word_keys(s.word, layout)
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
        centres = layout.centers[keys].astype(np.float64)
        ideal = float(np.hypot(*np.diff(centres, axis=0).T).sum()) / unit
        steps = np.hypot(np.diff(s.x), np.diff(s.y)) / unit
        path = float(steps.sum())
        dt = np.diff(s.t)
        duration = float(s.t[-1] - s.t[0])
        multi = len(keys) > 1 and ideal > 0
        values["points"].append(len(s.x))
        values["duration_ms"].append(duration)
        values["ms_per_key_width"].append(duration / ideal if multi else nan)
        values["path_over_ideal"].append(path / ideal if multi else nan)
        values["start_dist"].append(np.hypot(s.x[0] - centres[0, 0], s.y[0] - centres[0, 1]) / unit)
        values["start_dx"].append((s.x[0] - centres[0, 0]) / unit)
        values["start_dy"].append((s.y[0] - centres[0, 1]) / height)
        values["end_dist"].append(np.hypot(s.x[-1] - centres[-1, 0], s.y[-1] - centres[-1, 1]) / unit)
        values["end_dx"].append((s.x[-1] - centres[-1, 0]) / unit)
        values["end_dy"].append((s.y[-1] - centres[-1, 1]) / height)
        # Closest approach of the path to each key of the word: signed offsets per axis.
        gaps_x, gaps_y = s.x[:, None] - centres[:, 0], s.y[:, None] - centres[:, 1]
        nearest = np.hypot(gaps_x, gaps_y).argmin(axis=0)
        keys_in_order = np.arange(len(centres))
        offset_x = gaps_x[nearest, keys_in_order] / unit
        offset_y = gaps_y[nearest, keys_in_order] / height
        if len(centres) > 2:
            inner_x, inner_y = offset_x[1:-1], offset_y[1:-1]
            values["inner_dist"].append(float(np.mean(np.hypot(inner_x, inner_y * height / unit))))
            values["inner_dx"].append(float(np.mean(np.abs(inner_x))))
            values["inner_dy"].append(float(np.mean(np.abs(inner_y))))
        else:
            values["inner_dist"].append(nan)
            values["inner_dx"].append(nan)
            values["inner_dy"].append(nan)
        for name, side in (("left_dx", centres[:, 0] < 0.4 * layout.width),
                           ("right_dx", centres[:, 0] > 0.6 * layout.width)):
            values[name].append(float(offset_x[side].mean()) if side.any() else nan)
        values["median_dt_ms"].append(float(np.median(dt)) if len(dt) else nan)
        values["first_dt_ms"].append(float(dt[0]) if len(dt) else nan)
        values["last_dt_ms"].append(float(dt[-1]) if len(dt) else nan)
        values["gap_share"].append(float(np.mean(dt > 25)) if len(dt) else nan)
        values["still_share"].append(float(np.mean(steps == 0)) if len(dt) else nan)
        dx, dy = np.diff(s.x), np.diff(s.y)
        moving = np.hypot(dx, dy) > 0
        heading = np.arctan2(dy[moving], dx[moving])
        turns = np.abs((np.diff(heading) + np.pi) % (2 * np.pi) - np.pi)
        values["turn_deg"].append(float(np.degrees(turns.mean())) if len(turns) else nan)
        values["tap_points"].append(len(s.x) if len(keys) == 1 else nan)
        if multi and path > 0 and duration > 0:
            # Share of the path covered in each tenth of the time, times 10 (1 = constant speed).
            arc = np.r_[0.0, np.cumsum(steps)]
            edges = np.linspace(s.t[0], s.t[-1], SPEED_BINS + 1)
            covered = np.diff(np.interp(edges, s.t, arc))
            profiles.append(covered / path * SPEED_BINS)
    scalars = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    return Stats(scalars, np.asarray(profiles).reshape(-1, SPEED_BINS))


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs)."""
    a, b = np.sort(a[np.isfinite(a)]), np.sort(b[np.isfinite(b)])
    if not len(a) or not len(b):
        return float("nan")
    grid = np.r_[a, b]
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


class Comparison(NamedTuple):
    table: str
    ks: dict[str, float]


def compare(real: Stats, synth: Stats) -> Comparison:
    lines = [
        "| statistic | real mean | synth mean | real p10 / p50 / p90 | synth p10 / p50 / p90 | KS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    ks = {}
    for name, what in STATISTICS.items():
        r, s = real.scalars[name], synth.scalars[name]
        r, s = r[np.isfinite(r)], s[np.isfinite(s)]
        ks[name] = ks_distance(r, s)
        fmt = "{:.0f}" if np.nanmedian(np.abs(r)) >= 20 else "{:.3g}"

        def pct(v: np.ndarray, fmt: str = fmt) -> str:
            return " / ".join(fmt.format(q) for q in np.percentile(v, [10, 50, 90]))

        means = f"{fmt.format(r.mean())} | {fmt.format(s.mean())}"
        lines.append(f"| {what} | {means} | {pct(r)} | {pct(s)} | {ks[name]:.3f} |")
    lines += ["", "Speed profile: mean speed in each tenth of a swipe's time / the swipe's mean speed", ""]
    header = " | ".join(f"{i / SPEED_BINS:.1f}" for i in range(SPEED_BINS))
    lines += [f"| time | {header} |", "| --- |" + " ---: |" * SPEED_BINS]
    for label, stats in (("real", real), ("synth", synth)):
        means = stats.speed_profiles.mean(axis=0)
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in means) + " |")
    ks["speed_profile"] = float(np.abs(real.speed_profiles.mean(0) - synth.speed_profiles.mean(0)).mean())
    return Comparison("\n".join(lines), ks)


def _resample(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """``size`` points equally spaced along the polyline ``(x, y)``, shape ``(size, 2)``."""
    points = np.stack([x, y], axis=1).astype(np.float64)
    arc = np.r_[0.0, np.cumsum(np.hypot(*np.diff(points, axis=0).T))]
    if arc[-1] == 0:
        return np.repeat(points[:1], size, axis=0)
    s = np.linspace(0.0, arc[-1], size)
    return np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], axis=1)


class Recognition(NamedTuple):
    key_centres: float  # accuracy@1 of nearest key-centre template
    synthetic: float  # accuracy@1 of the per-word Gaussian of synthetic swipes


def recognition(
    real: list[Swipe], layout: Layout, config: SynthConfig, samples: int = 24, seed: int = 0, size: int = 32
) -> Recognition:
    """How well synthetic swipes explain real ones: classify each real swipe among the real words.

    Every swipe is resampled to ``size`` points equally spaced along its path (in key widths). Each
    word gets a diagonal Gaussian over these points from ``samples`` synthetic swipes; a real swipe
    goes to the word of highest likelihood. A generator whose swipes vary as real ones do scores
    higher; too clean or too noisy swipes score lower. Baseline: the nearest key-centre polyline.
    """
    vocab = sorted({s.word for s in real})
    target = np.array([vocab.index(s.word) for s in real])
    unit = layout.key_width
    swipes = np.stack([_resample(s.x, s.y, size) for s in real]) / unit  # (R, size, 2)
    ideal = np.stack([_resample(*layout.centers[word_keys(w, layout)].T, size) for w in vocab]) / unit
    ideal_dist = np.sqrt(((swipes[:, None] - ideal[None]) ** 2).sum(-1)).mean(-1)
    rng = np.random.default_rng(seed)
    synth = np.stack([
        [_resample(*synthesize_curve(w, layout, rng, config)[:2], size) for _ in range(samples)]
        for w in vocab
    ]) / unit  # (words, samples, size, 2)
    mean, var = synth.mean(axis=1), synth.var(axis=1) + 0.01
    log_lik = -((swipes[:, None] - mean[None]) ** 2 / (2 * var[None]) + 0.5 * np.log(var[None])).sum((-1, -2))
    return Recognition(
        float(np.mean(ideal_dist.argmin(1) == target)), float(np.mean(log_lik.argmax(1) == target))
    )


def fit_loss(result: Comparison) -> float:
    """What the fit minimises: mean KS distance over the statistics plus half the speed-profile error."""
    return float(np.nanmean([v for k, v in result.ks.items() if k != "speed_profile"])) + 0.5 * result.ks[
        "speed_profile"
    ]


def fit(
    config: SynthConfig,
    params: list[str],
    real: Stats,
    words: list[str],
    layout: Layout,
    seed: int,
    rounds: int,
) -> SynthConfig:
    """Coordinate search: scale one parameter at a time, keep a change when the loss drops.

    Each evaluation draws 2 synthetic swipes per real one with the same seed, so that changes are
    compared on the same random numbers.
    """

    def loss(cfg: SynthConfig) -> float:
        return fit_loss(compare(real, swipe_stats(synthesize(words, layout, 2, seed, cfg), layout)))

    best = loss(config)
    print(f"start: loss {best:.4f}", flush=True)
    for r in range(rounds):
        for name in params:
            value = getattr(config, name)
            for factor in (0.6, 1.6) if r == 0 else (0.8, 1.25):
                new_value = value * factor if value else 0.05 * factor
                try:
                    candidate = dataclasses.replace(config, **{name: new_value})
                except ValueError:
                    continue  # out of the parameter's range
                current = loss(candidate)
                if current < best - 1e-4:
                    best, config = current, candidate
                    print(f"round {r}: {name} = {getattr(config, name):.4g}, loss {best:.4f}", flush=True)
                    break
    changed = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
               if getattr(config, f.name) != getattr(SynthConfig(), f.name)}
    print("fitted (changes from the defaults):", json.dumps(changed))
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="real swipes (Yandex jsonl)")
    parser.add_argument("--layout", default="hws_fitted", help="bundled layout name or grids file")
    parser.add_argument("--reps", type=int, default=5, help="synthetic swipes per real swipe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, help="JSON file of SynthConfig overrides")
    parser.add_argument("--fit", help="comma-separated SynthConfig fields to fit first (coordinate search)")
    parser.add_argument("--fit-rounds", type=int, default=2)
    parser.add_argument("--recognition", action="store_true",
                        help="also classify the real swipes with per-word Gaussians of synthetic swipes")
    parser.add_argument("--recognition-samples", type=int, default=24, help="synthetic swipes per word")
    args = parser.parse_args(argv)
    config = load_json(SynthConfig, args.config) if args.config else SynthConfig()
    layouts = resolve_layouts(args.layout)
    if len(layouts) != 1:
        parser.error(f"{args.layout} holds {len(layouts)} layouts; give one")
    layout = layouts[0]
    real = read_real(args.real)
    try:
        words = [s.word for s in real]
        for w in set(words):
            word_keys(w, layout)
    except LayoutError as err:
        raise SystemExit(f"{args.real}: {err}") from None
    real_stats = swipe_stats(real, layout)
    if args.fit:
        params = [name.strip() for name in args.fit.split(",") if name.strip()]
        unknown = [name for name in params if not isinstance(getattr(config, name, None), float)]
        if unknown:
            parser.error(f"--fit: not float fields of SynthConfig: {', '.join(unknown)}")
        config = fit(config, params, real_stats, words, layout, 0, args.fit_rounds)
    start = time.perf_counter()
    synth = synthesize(words, layout, args.reps, args.seed, config)
    elapsed = time.perf_counter() - start
    result = compare(real_stats, swipe_stats(synth, layout))
    print(f"{len(real)} real swipes from {args.real.name}; {len(synth)} synthetic swipes of the same words "
          f"on {layout.name} (seed {args.seed}, {len(synth) / elapsed:,.0f} curves/s without writing)\n")
    print(result.table)
    mean_ks = np.nanmean([v for k, v in result.ks.items() if k != "speed_profile"])
    print(f"\nmean KS over statistics: {mean_ks:.3f}")
    if args.recognition:
        rec = recognition(real, layout, config, samples=args.recognition_samples, seed=args.seed)
        words = len({s.word for s in real})
        print(f"\nrecognition of the {len(real)} real swipes among their {words} words, accuracy@1: "
              f"nearest key-centre template {rec.key_centres:.3f}, "
              f"per-word Gaussian of {args.recognition_samples} synthetic swipes {rec.synthetic:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
