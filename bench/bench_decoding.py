"""Decoding speed: batched cached beam search against a naive per-curve search, single-swipe
latency, and worker processes. One run, one table.

    nice -n 10 python bench/bench_decoding.py                          # random-init `base` model
    nice -n 10 python bench/bench_decoding.py --min-word-length 5      # words of 5+ letters
    nice -n 10 python bench/bench_decoding.py --checkpoint runs/x/checkpoints/best.pt

Measured on the same model, the same curves (default: the 800 real English swipes of
``swipe/resources/swipes/hws_real_en_dev.jsonl``) and a lexicon (default: the bundled 50,000-word ``en``):

- cached: :class:`~swipe.decoding.BeamSearchGenerator` over length-sorted batches of
  ``--batch-size`` curves with the decoder's key/value cache, as ``predict.py`` runs it, on
  ``--num-curves`` curves;
- naive: beam search one curve at a time, re-running the decoder over the whole prefix of every
  hypothesis at every step, one hypothesis per call as the reference project's beam search did
  (:mod:`swipe.decoding.naive`), on ``--naive-curves`` evenly spaced curves of those (their top
  candidates must be identical to the cached search's); and the same with the hypotheses of a
  curve decoded in one call;
- single-swipe latency: one curve at a time (collate, encode, beam search), p50 / p95;
  with ``--template-weight W`` also with the beam's words re-ranked by their templates, as
  ``predict.py --template-weight`` does; with ``--x-scales`` (and ``--views-below``,
  ``--wide-x-scales``) also as ``predict.py`` decodes with those views, and with
  ``--template-candidates N`` that in turn with the template matcher's words added;
- workers: ``swipe.predict.decode`` with ``--workers`` processes against 0, on ``--num-curves``
  curves, process start-up included; also the workers' CPU time, which tells the speed-up on
  otherwise idle cores.

With ``--device cuda`` the batched cached beam and the single swipe latency are also timed on
CUDA, and the CUDA search's top candidates are compared with the CPU's.

Every search uses ``--beam-size``, ``--prior-weight`` and ``--length-penalty`` (default: beam 8,
no prior, 0.5). Throughput runs alternate and are repeated (``--repeats``), each keeping its
fastest run.

Everything runs on one torch thread per process. Without ``--checkpoint`` the `base` preset is
randomly initialised: speeds are representative, candidates are not, and its searches end after
few steps (short words). A trained model decodes longer words, which costs the naive search
(quadratic in the length) much more than the cached one (linear): ``--min-word-length N``
restricts every search (cached, naive and latency) to the lexicon's words of at least ``N``
letters, which makes a random model decode words of about a trained model's length. ``predict.py``
has no such option, so the workers row is then left out and the cached row times the PyTorch
generator (the search training's validation runs, tested equal to ``predict.py``'s) with a logits
processor instead of ``predict.py``'s pipeline. The header gives the average length of
the top candidates and of the target words.
"""

from __future__ import annotations

import argparse
import os
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
from swipe.config import from_dict, to_dict  # noqa: E402
from swipe.decoder import BatchDecoder as Decoder  # noqa: E402
from swipe.decoding import BeamOptions, LexiconTrie, build_generator  # noqa: E402
from swipe.decoding.naive import NaiveBeamSearch  # noqa: E402
from swipe.keyboard import bundled_layout  # noqa: E402
from swipe.lexicon import load_lexicon  # noqa: E402
from swipe.models import build_model, preset  # noqa: E402
from swipe.predict import (  # noqa: E402
    DEFAULT_MAX_BATCH_POINTS,
    CheckpointLoader,
    DatasetCurves,
    DecodeJob,
    FirstCurves,
    decode,
    make_batches,
)
from swipe.templates import TemplateRescorer  # noqa: E402
from swipe.tokenizers import CharTokenizer  # noqa: E402
from swipe.training.checkpoint import (  # noqa: E402
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    layouts_to_grids,
)
from swipe.training.config import TrainConfig  # noqa: E402


def random_base_checkpoint(path: Path, layout_name: str, seed: int) -> None:
    """Save a randomly initialised `base` model in the trainer's checkpoint format."""
    layout = bundled_layout(layout_name)
    tokenizer = CharTokenizer.from_layouts([layout])
    model_config = preset("base")
    raw = {"name": "random-base", "model": to_dict(model_config), "max_steps": 1,
           "data": {"train": "-", "val": "-"}}
    config = from_dict(TrainConfig, raw)
    torch.manual_seed(seed)
    model = build_model(model_config, [layout], tokenizer)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": model.state_dict(),
                "step": 0, "config": to_dict(config), "tokenizer": tokenizer.to_dict(),
                "layouts": layouts_to_grids([layout])}, path)


class Timing:
    """Wall-clock and CPU seconds (user + system, this process) of one measurement."""

    def __init__(self, wall: float, cpu: float) -> None:
        self.wall = wall
        self.cpu = cpu


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, Timing(time.perf_counter() - wall, time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", help="a trained model (default: random-init `base`)")
    parser.add_argument("--data", default=str(REAL_EN_SWIPES), help="raw curves or a built dataset")
    parser.add_argument("--lexicon", default="en")
    parser.add_argument("--beam-size", type=int, default=8)
    parser.add_argument("--prior-weight", type=float, default=0.0, help="word-frequency prior weight")
    parser.add_argument("--length-penalty", type=float, default=0.5, help="length normalisation exponent")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-curves", type=int, default=800, help="curves for throughput and workers")
    parser.add_argument("--naive-curves", type=int, default=64, help="curves for the naive comparison")
    parser.add_argument("--latency-curves", type=int, default=200)
    parser.add_argument("--template-weight", type=float, default=0.0,
                        help="also time single swipes with template rescoring at this weight (0: not)")
    parser.add_argument("--x-scales", type=str, default=None,
                        help="also time single swipes decoded with these keyboard-width views "
                        "(predict.py --x-scales, e.g. 0.94,1,1.06; with --template-weight, rescored too)")
    parser.add_argument("--views-below", type=float, default=None,
                        help="with --x-scales: the views only for swipes scoring below this as drawn "
                        "(predict.py --views-below)")
    parser.add_argument("--wide-x-scales", type=str, default=None,
                        help="with --x-scales: views of swipes past the keyboard "
                        "(predict.py --wide-x-scales)")
    parser.add_argument("--template-candidates", type=int, default=0,
                        help="with --x-scales: also time the views with the words the template "
                        "matcher proposes to swipes scoring below --views-below (predict.py "
                        "--template-candidates), in turn with the views alone")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of the throughput measurements (alternating), fastest kept")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: also time the batched cached beam and the single swipe latency on "
                        "CUDA, and compare its candidates with the CPU's (the other rows stay on the CPU)")
    parser.add_argument("--min-word-length", type=int, default=0,
                        help="decode only lexicon words of at least this many letters (0: all); "
                        "skips the workers row")
    args = parser.parse_args()
    if args.template_candidates and args.min_word_length:
        parser.error("--template-candidates with --min-word-length: the template matcher would "
                     "propose the short words the search may not output")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    if args.device == "cuda" and args.min_word_length:
        parser.error("--device cuda times predict.py's decoding, which has no --min-word-length")
    load_start = os.getloadavg()

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-decoding-") as tmp:
        data = dataset_dir(Path(args.data), Path(tmp))
        checkpoint = Path(args.checkpoint) if args.checkpoint else Path(tmp) / "base.pt"
        if not args.checkpoint:
            from swipe.data import SwipeDataset

            random_base_checkpoint(checkpoint, SwipeDataset(data).layouts[0].name, seed=0)
        loader = CheckpointLoader(checkpoint)
        loaded = loader.load("cpu")
        model, tokenizer = loaded.model, loaded.tokenizer
        trie, trie_time = timed(lambda: LexiconTrie.from_lexicon(load_lexicon(args.lexicon), tokenizer))
        curves = DatasetCurves.for_model(data, loaded)
        n = min(args.num_curves, len(curves))
        options = BeamOptions(beam_size=args.beam_size, prior_weight=args.prior_weight,
                              length_penalty=args.length_penalty)
        cached = build_generator("beam", options, model, tokenizer, trie)
        naive = NaiveBeamSearch(model, tokenizer, options, trie)
        naive_beams = NaiveBeamSearch(model, tokenizer, options, trie, batch_beams=True)
        if args.min_word_length:
            long_words = LongWordsOnly(trie, args.min_word_length)
            for search in (cached, naive, naive_beams):
                search.processors.append(long_words)
        params = sum(p.numel() for p in model.parameters())

        # Batched cached beam search in this process (one thread), as predict.py runs it.
        sub = FirstCurves(curves, n)
        job = DecodeJob(loader, sub, "beam", options, trie, "cpu")
        if args.min_word_length:
            # As predict.py batches them (length-sorted, --max-batch-points), with the processor.
            batches = make_batches(sub.num_points, args.batch_size, DEFAULT_MAX_BATCH_POINTS)

            def run_serial():
                out = [[] for _ in range(n)]
                for rows in batches:
                    for i, row in zip(rows, cached.generate(*sub.batch(rows)), strict=True):
                        out[i] = row
                return out

        else:

            def run_serial():
                return decode(job, args.batch_size, num_workers=0)

        # Naive per-curve search on an evenly spaced sample of the same curves.
        ids = list(range(0, n, max(1, n // args.naive_curves)))[: args.naive_curves]

        def run_naive(search):
            return lambda: [search.generate(*curves.batch([i]))[0] for i in ids]

        # The three measurements take turns, --repeats times, and each keeps its fastest run
        # (wall clock and CPU time separately): a load burst on a shared machine then spoils
        # one run of one of them, not the comparison.
        timings: dict[str, list[Timing]] = {"serial": [], "naive": [], "beams": []}
        for _ in range(args.repeats):
            serial, t = timed(run_serial)
            timings["serial"].append(t)
            naive_out, t = timed(run_naive(naive))
            timings["naive"].append(t)
            beams_out, t = timed(run_naive(naive_beams))
            timings["beams"].append(t)
        serial_s, naive_s, beams_s = (
            Timing(min(t.wall for t in ts), min(t.cpu for t in ts)) for ts in timings.values()
        )
        top_length = statistics.mean(len(row[0][1]) + 1 for row in serial if row)
        words = [curves.dataset.word(i) for i in range(n)]
        target_length = statistics.mean(len(w) + 1 for w in words if w) if any(words) else float("nan")

        pairs = [(a, serial[i]) for a, i in zip(naive_out, ids, strict=True)]
        same_top = sum(bool(a) and bool(b) and a[0][1] == b[0][1] for a, b in pairs)
        same_all = sum([w for _, w in a] == [w for _, w in b] for a, b in pairs)
        assert same_top == len(ids), f"top candidates differ on {len(ids) - same_top} of {len(ids)} curves"
        top_words = [[w for _, w in row[:1]] for row in naive_out]
        assert [[w for _, w in row[:1]] for row in beams_out] == top_words, "the naive searches disagree"

        # Single-swipe latency: collate + encode + beam search, one curve at a time.
        latencies, cpu_latencies = [], []
        for i in range(min(args.latency_curves, n)):
            _, t = timed(lambda i=i: cached.generate(*curves.batch([i])))
            latencies.append(1000 * t.wall)
            cpu_latencies.append(1000 * t.cpu)
        p50, p95 = statistics.median(latencies), float(np.percentile(latencies, 95))
        cpu_p50, cpu_p95 = statistics.median(cpu_latencies), float(np.percentile(cpu_latencies, 95))
        # The same with the beam's words re-ranked by their templates, as predict.py --template-weight.
        rescored_latencies = []
        if args.template_weight > 0:
            rescorer = TemplateRescorer(args.template_weight)

            def rescored(i: int) -> list:
                (row,) = cached.generate(*curves.batch([i]))
                curve = curves.points(i)
                priors = trie.word_log_probs_of([word for _, word in row])
                return rescorer.rescore(row, curve.layout, curve.x, curve.y, priors)

            for i in range(min(args.latency_curves, n)):
                _, t = timed(lambda i=i: rescored(i))
                rescored_latencies.append(1000 * t.wall)

        # The same on CUDA: batched as predict.py --device cuda decodes, and one curve at a time.
        cuda_rows = []
        if args.device == "cuda":
            cuda_job = job._replace(device="cuda")

            def run_cuda():
                out = decode(cuda_job, args.batch_size, num_workers=0)
                torch.cuda.synchronize()
                return out

            run_cuda()  # model on the device, kernels loaded
            cuda_runs = [timed(run_cuda) for _ in range(args.repeats)]
            cuda_out, cuda_s = cuda_runs[0][0], min(t.wall for _, t in cuda_runs)
            pairs_cuda = zip(serial, cuda_out, strict=True)
            cuda_same = sum(bool(a) and bool(b) and a[0][1] == b[0][1] for a, b in pairs_cuda)
            cuda_search = build_generator("beam", options, loader.load("cuda").model, tokenizer, trie)

            def one_on_cuda(i: int) -> None:
                swipe, pad = curves.batch([i])
                cuda_search.generate(swipe.to("cuda"), pad.to("cuda"))
                torch.cuda.synchronize()

            one_on_cuda(0)
            cuda_latencies = [1000 * timed(lambda i=i: one_on_cuda(i))[1].wall
                              for i in range(min(args.latency_curves, n))]
            g50, g95 = statistics.median(cuda_latencies), float(np.percentile(cuda_latencies, 95))
            name = torch.cuda.get_device_name()
            cuda_rows = [
                ("batched cached beam, cuda", f"{n / cuda_s:.1f} curves/s", "",
                 f"{n} curves on {name}: {serial_s.wall / cuda_s:.1f}x the CPU row; top-1 identical to the "
                 f"CPU's on {cuda_same}/{n}"),
                ("single swipe latency, cuda", f"p50 {g50:.1f} ms, p95 {g95:.1f} ms", "",
                 f"{len(cuda_latencies)} curves, batch of 1, on {name}"),
            ]

        # Worker processes against none (start-up, model loading and trie transfer included).
        if not args.min_word_length:
            runs = []
            for _ in range(args.repeats):
                children = os.times()
                parallel, t = timed(lambda: decode(job, args.batch_size, num_workers=args.workers))
                after = os.times()
                assert parallel == serial, "workers changed the output"
                # CPU seconds of the (reaped) worker processes, start-up included.
                cpu = (after.children_user + after.children_system) - (
                    children.children_user + children.children_system
                )
                runs.append((t.wall, cpu))
            parallel_s = Timing(min(wall for wall, _ in runs), 0.0)
            workers_cpu = min(cpu for _, cpu in runs)

        # The same with keyboard-width views, as predict.py --x-scales decodes them.
        views_latencies, proposing_latencies = [], []
        if args.x_scales:
            x_scales = tuple(float(v) for v in args.x_scales.split(","))
            rescorer = TemplateRescorer(args.template_weight) if args.template_weight > 0 else None
            wide = tuple(float(v) for v in args.wide_x_scales.split(",")) if args.wide_x_scales else ()
            views_job = DecodeJob(loader, curves, "beam", options, trie, "cpu", rescorer, x_scales, wide,
                                  args.views_below)
            views = Decoder(views_job)
            if args.min_word_length:
                views.generator.processors.append(LongWordsOnly(trie, args.min_word_length))
            latency_ids = list(range(min(args.latency_curves, n)))
            proposing = None
            if args.template_candidates:  # (refused above with --min-word-length)
                proposing = Decoder(views_job._replace(template_candidates=args.template_candidates))
                proposing(latency_ids)  # builds the template matcher, before the timing
            for i in latency_ids:  # with and without template candidates in turn
                _, t = timed(lambda i=i: views([i]))
                views_latencies.append(1000 * t.wall)
                if proposing is not None:
                    _, t = timed(lambda i=i: proposing([i]))
                    proposing_latencies.append(1000 * t.wall)

    load = os.getloadavg()
    points = curves.num_points[:n]
    print(f"model: {'checkpoint ' + str(checkpoint) if args.checkpoint else 'random-init base'} "
          f"({params / 1e6:.2f} M parameters); lexicon {args.lexicon}: {trie.num_words} words, "
          f"{trie.num_nodes} trie nodes, built in {trie_time.wall:.2f} s")
    print(f"data: {args.data} ({n} curves, median {int(np.median(points))} points); beam size "
          f"{args.beam_size}, prior weight {args.prior_weight:g}, length penalty {args.length_penalty:g}, "
          f"batch size {args.batch_size}; top candidates average {top_length:.1f} "
          f"tokens (<eos> included; targets {target_length:.1f})"
          + (f", words of {args.min_word_length}+ letters only" if args.min_word_length else ""))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average at the start "
          f"{load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, at the end "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    naive_rate, serial_rate = len(ids) / naive_s.wall, n / serial_s.wall
    naive_cpu_rate, serial_cpu_rate = len(ids) / naive_s.cpu, n / serial_s.cpu
    rows = [
        ("naive beam, per curve and hypothesis", f"{naive_rate:.1f} curves/s",
         f"{naive_cpu_rate:.1f} curves/s",
         f"{len(ids)} of the curves, 1 thread; full prefix re-decoded for each hypothesis at each step "
         "(as the reference project)"),
        ("naive beam, per curve", f"{len(ids) / beams_s.wall:.1f} curves/s",
         f"{len(ids) / beams_s.cpu:.1f} curves/s",
         f"same curves; the hypotheses of a curve decoded together: {naive_s.cpu / beams_s.cpu:.1f}x the "
         "row above by CPU time; batched cached beam is "
         f"{serial_cpu_rate / (len(ids) / beams_s.cpu):.1f}x this by CPU time"),
        ("batched cached beam", f"{serial_rate:.1f} curves/s", f"{serial_cpu_rate:.1f} curves/s",
         f"{n} curves, 0 workers, 1 thread: {serial_rate / naive_rate:.1f}x naive "
         f"({serial_cpu_rate / naive_cpu_rate:.1f}x by CPU time); top-1 identical {same_top}/{len(ids)}, "
         f"all candidates {same_all}/{len(ids)}"),
    ]
    if not args.min_word_length:
        rows.append(
            (f"batched cached beam, {args.workers} workers", f"{n / parallel_s.wall:.1f} curves/s",
             f"{args.workers * n / workers_cpu:.1f} curves/s",
             f"{n} curves: {serial_s.wall / parallel_s.wall:.2f}x 0 workers (start-up included; identical "
             f"output). By CPU time: {args.workers} x curves per CPU second of the workers (start-up "
             f"included), i.e. {args.workers * serial_s.cpu / workers_cpu:.2f}x 0 workers on "
             f"{args.workers} idle cores if the batches split evenly"))
    rows += [
        ("single swipe latency", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms",
         f"p50 {cpu_p50:.1f} ms, p95 {cpu_p95:.1f} ms", f"{len(latencies)} curves, 1 thread, batch of 1"),
    ]
    rows += cuda_rows
    if rescored_latencies:
        r50, r95 = statistics.median(rescored_latencies), float(np.percentile(rescored_latencies, 95))
        rows.append((f"single swipe latency, template rescoring {args.template_weight:g}",
                     f"p50 {r50:.1f} ms, p95 {r95:.1f} ms", "",
                     "the same curves, the beam's words re-ranked (predict.py --template-weight)"))
    if views_latencies:
        v50, v95 = statistics.median(views_latencies), float(np.percentile(views_latencies, 95))
        rescored = f", template rescoring {args.template_weight:g}" if args.template_weight > 0 else ""
        below = f", below {args.views_below:g}" if args.views_below is not None else ""
        wide = f", wide x-scales {args.wide_x_scales}" if args.wide_x_scales else ""
        how = (f"as drawn, then on the other {len(x_scales) - 1} widths if its best score is below "
               f"{args.views_below:g}" if args.views_below is not None
               else f"as drawn on {len(x_scales)} keyboard widths in one batch")
        rows.append((f"single swipe latency, x-scales {args.x_scales}{below}{wide}{rescored}",
                     f"p50 {v50:.1f} ms, p95 {v95:.1f} ms", "",
                     f"the same curves, each decoded {how}, each word's best score kept "
                     "(predict.py --x-scales)"))
    if proposing_latencies:
        c50, c95 = statistics.median(proposing_latencies), float(np.percentile(proposing_latencies, 95))
        rows.append((f"the same, template candidates {args.template_candidates}",
                     f"p50 {c50:.1f} ms, p95 {c95:.1f} ms", "",
                     "timed in turn with the row above; swipes scoring below --views-below also get "
                     "the template matcher's words, scored by the model (predict.py --template-candidates)"))
    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(4)]
    for row in [HEADER, tuple("-" * w for w in widths)] + rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
    return 0


HEADER = ("measurement", "wall clock", "by CPU time", "notes")


class LongWordsOnly:
    """A logits processor keeping only the lexicon's words of at least ``min_letters`` letters:
    a token survives where the trie below it holds such a word, ``<eos>`` where the prefix is one."""

    def __init__(self, trie: LexiconTrie, min_letters: int) -> None:
        longest = np.where(trie.word_ids >= 0, trie.depth, -1)  # longest word below each node
        for d in range(trie.max_word_length, 0, -1):
            at = np.flatnonzero(trie.depth == d)
            np.maximum.at(longest, trie.parent[at], longest[at])
        children = trie.children.numpy()
        allowed = (children >= 0) & (longest[np.maximum(children, 0)] >= min_letters)
        allowed[:, 0] = (children[:, 0] >= 0) & (trie.depth >= min_letters)
        self.allowed = allowed

    def __call__(self, log_probs: torch.Tensor, tokens: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        allowed = torch.from_numpy(self.allowed[np.maximum(nodes.numpy(), 0)])
        return log_probs.masked_fill(~allowed, float("-inf"))


if __name__ == "__main__":
    sys.exit(main())
