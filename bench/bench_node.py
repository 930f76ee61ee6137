"""Decoding in Node: latency per swipe of the JavaScript decoder (js/, onnxruntime-node, one thread)
next to swipe.runtime's (native onnxruntime from Python, one thread) on the same swipes.

Each runtime loads the ONNX folder (timed), decodes a few swipes to warm up, then decodes the real
English swipes one at a time, each timed on its own. Printed: load time, p50 / p95 / max latency,
and how often the two give the same candidate lists.

    nice python bench/bench_node.py                          # en_hws, the first 100 dev swipes
    nice python bench/bench_node.py --limit 800 --onnx /tmp/en_hws_onnx --int8

Needs node, the JavaScript package (npm ci --prefix js) and requirements-export.txt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import REAL_EN_SWIPES  # noqa: E402

WARM_UP = 10  # swipes decoded before timing

# Run by node in js/: reads {folder, int8, swipes} on stdin, prints {load_s, ms, rows}.
_NODE_SCRIPT = """
import * as ort from "onnxruntime-node";
import { loadDecoder } from "./src/index.mjs";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { folder, int8, warmUp, swipes } = JSON.parse(input);
const start = performance.now();
const decoder = await loadDecoder(folder, { ort, int8 });
const loadS = (performance.now() - start) / 1000;
for (const swipe of swipes.slice(0, warmUp)) await decoder.decode(swipe);
const ms = [], rows = [];
for (const swipe of swipes) {
  const t0 = performance.now();
  const row = await decoder.decode(swipe);
  ms.push(performance.now() - t0);
  rows.push(row.map((c) => c.word));
}
process.stdout.write(JSON.stringify({ load_s: loadS, ms, rows }));
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: nice python bench/bench_node.py --limit 100")
    parser.add_argument("--onnx", type=Path, help="an ONNX export folder (default: en_hws, exported now)")
    parser.add_argument("--limit", type=int, default=100, help="swipes timed (default 100)")
    parser.add_argument("--int8", action="store_true", help="the int8 graphs")
    args = parser.parse_args(argv)
    node = shutil.which("node")
    if node is None or not (ROOT / "js" / "node_modules" / "onnxruntime-node").is_dir():
        parser.error("needs node and the JavaScript package: npm ci --prefix js")
    from swipe.runtime import OnnxDecoder, read_swipes

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.onnx
        if folder is None:
            from swipe.export import main as export_main

            folder = Path(tmp) / "en_hws"
            assert export_main(["en_hws", "--format", "onnx", "--out", str(folder)]) == 0
        swipes = [swipe for swipe, _ in read_swipes(REAL_EN_SWIPES)][: args.limit]

        start = time.perf_counter()
        decoder = OnnxDecoder(folder, int8=args.int8, threads=1)
        python_load = time.perf_counter() - start
        for swipe in swipes[:WARM_UP]:
            decoder.decode([swipe])
        python_ms, python_rows = [], []
        for swipe in swipes:
            t0 = time.perf_counter()
            row = decoder.decode([swipe])[0]
            python_ms.append(1000 * (time.perf_counter() - t0))
            python_rows.append([c.word for c in row])

        payload = {"folder": str(folder.resolve()), "int8": args.int8, "warmUp": WARM_UP,
                   "swipes": [{"x": s.x.tolist(), "y": s.y.tolist(), "t": s.t.tolist(), "layout": s.layout}
                              for s in swipes]}
        done = subprocess.run([node, "--input-type=module", "-e", _NODE_SCRIPT], cwd=ROOT / "js",
                              input=json.dumps(payload), capture_output=True, text=True)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return 1
        result = json.loads(done.stdout)

    same = sum(a == b for a, b in zip(python_rows, result["rows"], strict=True))
    graphs = "int8" if args.int8 else "fp32"
    print(f"{len(swipes)} real dev swipes, one at a time, one thread, {graphs} graphs of {folder.name}")
    print("| runtime | load s | p50 ms | p95 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, load, ms in (("swipe.runtime (Python)", python_load, python_ms),
                           ("js/ in Node (onnxruntime-node)", result["load_s"], result["ms"])):
        p50, p95 = np.percentile(ms, [50, 95])
        print(f"| {name} | {load:.2f} | {p50:.1f} | {p95:.1f} | {max(ms):.1f} |")
    print(f"same candidate lists: {same} of {len(swipes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
