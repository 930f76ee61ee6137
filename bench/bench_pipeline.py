"""Speed and accuracy of one model's decoding, per backend, plain and as its decoding.json says.

For each backend (PyTorch, ONNX Runtime fp32 and int8) a fresh process loads the model once and
decodes the real English swipes one at a time on one thread, each swipe by the plain search (beam
search with the lexicon, prior, length penalty and template rescoring; no keyboard-width views,
no template candidates) and then by the default decoding (the model's decoding.json), side by side.
Printed per row: single-swipe latency p50 / p95 / max, swipes per second (one at a time), the
process's peak resident memory (its model and both decodings), accuracy@1 and Swipe MRR; and per
backend the default's p95 over the plain search's. ``--variant`` adds decodings: the default with
some settings changed (``decoding.json`` names), decoded beside the others.

    nice python bench/bench_pipeline.py                         # en_hws, all 800 dev swipes
    nice python bench/bench_pipeline.py --variant views_margin=1 --variant views_below=-9
    nice python bench/bench_pipeline.py --limit 100 --backends torch,fp32
    nice python bench/bench_pipeline.py --model en_hws_transformer --onnx /tmp/en_hws_transformer_onnx
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REAL_EN_SWIPES, ROOT  # noqa: E402

BACKENDS = {"torch": "PyTorch", "fp32": "ONNX Runtime fp32", "int8": "ONNX Runtime int8"}
WARM_UP = 20  # swipes decoded before timing


def plain(settings: Any) -> Any:
    """``settings`` without keyboard-width views and template candidates."""
    return dataclasses.replace(settings, x_scales=(1.0,), views_below=None, wide_x_scales=(),
                               template_candidates=0)


def parse_variant(text: str) -> dict[str, Any]:
    """``"views_margin=1,templates_below=-11"`` -> ``{"views_margin": 1, "templates_below": -11}``."""
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        out[name.strip()] = json.loads(value)
    return out


def decoders(backend: str, model: str, onnx: Path | None,
             variants: list[str]) -> tuple[dict[str, Callable], list]:
    """The plain, the default and each variant decoding of one swipe on ``backend`` (by name), and
    the swipes to decode."""
    from swipe.runtime.decoder import read_swipes

    swipes = read_swipes(REAL_EN_SWIPES)
    if backend == "torch":
        import torch

        import swipe

        torch.set_num_threads(1)
        default = swipe.load_decoder(model, batch_size=1)
        plain_settings = dataclasses.replace(default.settings, x_scales=None, views_below=None,
                                             wide_x_scales=None, template_candidates=None)
        fast = swipe.Decoder(default._loader, plain_settings, default.lexicon_name, "cpu", 0, 1, None)

        def run(decoder: Any) -> Callable:
            def decode(s: Any) -> list:
                (row,) = decoder.decode([swipe.make_curve(s.x, s.y, s.t, s.layout)])
                return [(c.score, c.word) for c in row]
            return decode

        out = {"plain": run(fast), "default": run(default)}
        for variant in variants:
            settings = dataclasses.replace(default.settings, **parse_variant(variant))
            other = swipe.Decoder(default._loader, settings, default.lexicon_name, "cpu", 0, 1, None)
            out[variant] = run(other)
        return out, swipes
    from swipe.decoding.pipeline import Pipeline
    from swipe.runtime import OnnxDecoder

    assert onnx is not None
    decoder = OnnxDecoder(onnx, int8=backend == "int8", threads=1)
    p = decoder.pipeline

    def pipeline(settings: Any) -> Callable:
        other = Pipeline(p.backend, p.vocabulary, p.layouts, p.prep, settings, p.trie)
        return lambda s: other.decode([s])[0]

    out = {"plain": pipeline(plain(p.settings)), "default": (lambda s: p.decode([s])[0])}
    for variant in variants:
        changed = {k: tuple(v) if isinstance(v, list) else v for k, v in parse_variant(variant).items()}
        out[variant] = pipeline(dataclasses.replace(p.settings, **changed))
    return out, swipes


def worker(backend: str, model: str, onnx: Path | None, limit: int | None, variants: list[str]) -> None:
    """Decode the swipes every way, print one JSON line: times, candidates, peak memory."""
    from swipe.runtime.__main__ import peak_resident_mb

    decodings, swipes = decoders(backend, model, onnx, variants)
    swipes = swipes[:limit]
    for s, _ in swipes[:WARM_UP]:
        for decode in decodings.values():
            decode(s)
    out: dict[str, Any] = {name: {"seconds": [], "words": []} for name in decodings}
    out["decodings"] = list(decodings)
    for s, _ in swipes:
        for name, decode in decodings.items():
            start = time.perf_counter()
            row = decode(s)
            out[name]["seconds"].append(time.perf_counter() - start)
            out[name]["words"].append([w for _, w in row])
    out["targets"] = [word for _, word in swipes]
    out["peak_mb"] = peak_resident_mb()
    print(json.dumps(out))


def table(results: dict[str, dict[str, Any]]) -> str:
    from swipe.metrics import swipe_mrr_score

    lines = ["| backend | decoding | p50 ms | p95 ms | max ms | swipes/s | peak MB | acc@1 | Swipe MRR |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ratios = []
    for backend, out in results.items():
        targets = out["targets"]
        p95 = {}
        for name in out["decodings"]:
            ms = np.array(out[name]["seconds"]) * 1000
            words = out[name]["words"]
            acc = np.mean([bool(w) and w[0] == t for w, t in zip(words, targets, strict=True)])
            mrr = np.mean([swipe_mrr_score(w, t) for w, t in zip(words, targets, strict=True)])
            p95[name] = np.percentile(ms, 95)
            lines.append(f"| {BACKENDS[backend]} | {name} | {np.percentile(ms, 50):.1f} | "
                         f"{p95[name]:.1f} | {ms.max():.0f} | {1000 / ms.mean():.0f} | "
                         f"{out['peak_mb']:.0f} | {acc:.4f} | {mrr:.4f} |")
        ratios += [f"{BACKENDS[backend]}: {name} p95 / plain p95 = {p95[name] / p95['plain']:.2f}"
                   for name in out["decodings"][1:]]
    return "\n".join(lines + [""] + ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="example: nice python bench/bench_pipeline.py --limit 100")
    parser.add_argument("--model", default="en_hws",
                        help="shipped model name or model file (default en_hws)")
    parser.add_argument("--onnx", type=Path,
                        help="the model's ONNX folder (default: exported into a temporary one)")
    parser.add_argument("--backends", default="torch,fp32,int8", help="comma-separated: torch, fp32, int8")
    parser.add_argument("--limit", type=int, help="decode only the first N swipes")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE,...",
                        help="also decode with these settings of the default changed, e.g. "
                        "views_margin=1 (JSON values; repeatable)")
    parser.add_argument("--worker", choices=list(BACKENDS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.model, args.onnx, args.limit, args.variant)
        return 0
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        onnx = args.onnx
        if onnx is None and set(backends) - {"torch"}:
            onnx = Path(tmp) / "onnx"
            subprocess.run([sys.executable, "-m", "swipe.export", args.model, "--format", "onnx",
                            "--out", str(onnx)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        results = {}
        for backend in backends:
            command = [sys.executable, __file__, "--worker", backend, "--model", args.model]
            command += ["--onnx", str(onnx)] if onnx is not None else []
            command += ["--limit", str(args.limit)] if args.limit else []
            command += [f"--variant={variant}" for variant in args.variant]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
            results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.model}, {len(results[backends[0]]['targets'])} real English swipes "
          f"(swipe/resources/swipes/hws_real_en_dev.jsonl), one at a time, one thread")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
