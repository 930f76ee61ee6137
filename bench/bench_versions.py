"""Decoding speed of the working tree against an earlier revision, run in turn. One table.

    python bench/bench_versions.py --base HEAD~1 --checkpoint swipe/resources/models/en_hws_transformer

The revision ``--base`` is exported (``git archive``) to a temporary folder. Then, ``--rounds``
times, each tree in turn decodes the same curves (default: the 800 real English swipes of
``swipe/resources/swipes/hws_real_en_dev.jsonl``) in a fresh process with its own ``swipe`` package: the
batched cached beam search as ``predict.py`` runs it (``swipe.predict.decode``, batches of
``--batch-size``, one thread, the fastest of three passes), then ``--latency-curves`` curves one
at a time (p50). Taking turns spreads the host's slow and fast moments over both trees. The table
gives each tree's fastest round, its speed against the base, and whether its candidates (words and
scores) are those of the base, bit for bit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_search_arguments, dataset_dir  # noqa: E402  (imports no swipe)


def measure(tree: Path, args: argparse.Namespace) -> dict[str, float | str]:
    """Time decoding with the ``swipe`` package of ``tree`` and the options ``args`` (call in a
    fresh process)."""
    sys.path.insert(0, str(tree))
    import torch

    import swipe
    from swipe.decoding import BeamOptions, LexiconTrie, build_generator
    from swipe.lexicon import load_lexicon
    from swipe.predict import CheckpointLoader, DatasetCurves, DecodeJob, decode

    if not Path(swipe.__file__).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"timing {tree} imported swipe from {swipe.__file__}")
    loader = CheckpointLoader(args.checkpoint)
    loaded = loader.load("cpu")
    trie = LexiconTrie.from_lexicon(load_lexicon(args.lexicon), loaded.tokenizer)
    curves = DatasetCurves.for_model(Path(args.data), loaded)
    options = BeamOptions(beam_size=args.beam_size)
    job = DecodeJob(loader, curves, "beam", options, trie, "cpu")
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        candidates = decode(job, args.batch_size)
        seconds.append(time.perf_counter() - start)
    torch.set_num_threads(1)
    generator = build_generator("beam", options, loaded.model, loaded.tokenizer, trie)
    latencies = []
    for i in range(min(args.latency_curves, len(curves))):
        start = time.perf_counter()
        generator.generate(*curves.batch([i]))
        latencies.append(1000 * (time.perf_counter() - start))
    return {
        "seconds": min(seconds),
        "curves": len(curves),
        "p50_ms": statistics.median(latencies),
        "digest": hashlib.sha256(pickle.dumps(candidates)).hexdigest(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default="HEAD", help="git revision to compare against (default HEAD)")
    add_search_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-curves", type=int, default=200)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the tree a child process times
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        archive = subprocess.run(["git", "archive", args.base], cwd=ROOT, check=True, capture_output=True)
        base.mkdir()
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
        data = dataset_dir(Path(args.data), Path(tmp))
        trees = {f"base ({args.base}, {commit})": base, "working tree": ROOT}
        results: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                command = [sys.executable, __file__, "--measure", str(tree), "--data", str(data),
                           "--checkpoint", args.checkpoint, "--lexicon", args.lexicon,
                           "--beam-size", str(args.beam_size), "--batch-size", str(args.batch_size),
                           "--latency-curves", str(args.latency_curves)]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                results[name].append(json.loads(out.strip().splitlines()[-1]))

    base_name = next(iter(trees))
    base_seconds = min(r["seconds"] for r in results[base_name])
    base_digest = results[base_name][0]["digest"]
    print(f"checkpoint {args.checkpoint}; data {args.data}; beam size {args.beam_size}, batch size "
          f"{args.batch_size}, 1 thread; {args.rounds} rounds in turn\n")
    print("| tree | batched search, s per round | curves/s (fastest) | speed against base "
          "| single swipe p50, ms per round | candidates as base |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rounds in results.items():
        fastest = min(r["seconds"] for r in rounds)
        same = "identical" if all(r["digest"] == base_digest for r in rounds) else "DIFFERENT"
        per_round = " / ".join(f"{r['seconds']:.3f}" for r in rounds)
        p50s = " / ".join(f"{r['p50_ms']:.2f}" for r in rounds)
        print(f"| {name} | {per_round} | {rounds[0]['curves'] / fastest:.1f} | {base_seconds / fastest:.3f}x "
              f"| {p50s} | {same} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
