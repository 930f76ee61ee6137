"""Decoding in the browser: latency per swipe in headless Chromium and the bytes the page downloads,
next to the Python runtime's latency on the same swipes.

The demo server (``python -m swipe.demo --onnx DIR``) serves the page, the ONNX folder,
onnxruntime-web and the JavaScript decoder; the page loads them (download timed and counted:
bytes of each file fetched, and what gzip would make of them) and decodes the real English
swipes one at a time after a warm-up, timed in the page (``performance.now()``). swipe.runtime
(native onnxruntime, one thread) decodes the same swipes in this process, one at a time. Printed:
p50 / p95 / max latency per runtime, how often the two agree, and the download table.

    nice python bench/bench_browser.py                       # en_hws, the first 100 dev swipes
    nice python bench/bench_browser.py --limit 800 --onnx /tmp/en_hws_onnx --int8

Needs Chromium and chromedriver (/usr/bin), selenium, onnx (requirements-export.txt) and
onnxruntime-web (npm ci --prefix js).
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import REAL_EN_SWIPES  # noqa: E402

WARM_UP = 10  # swipes decoded before timing

_LOAD = """
const [int8, done] = arguments;
import('/static/ondevice.mjs').then(async (m) => {
  const start = performance.now();
  window.benchDecoder = await m.loadBrowserDecoder(undefined, {int8: int8});
  const loadMs = performance.now() - start;
  const files = performance.getEntriesByType('resource').filter((e) => /\\/(onnx|ort|js)\\//.test(e.name))
    .map((e) => [new URL(e.name).pathname, e.encodedBodySize]);
  done({loadMs, files});
}).catch((err) => done({error: String(err.stack || err)}));
"""
_DECODE = """
const [swipe, done] = arguments;
const start = performance.now();
window.benchDecoder.decode(swipe)
  .then((row) => done({ms: performance.now() - start, words: row.map((c) => c.word)}))
  .catch((err) => done({error: String(err.stack || err)}));
"""


class Page:
    """The demo page in headless Chromium with the model loaded in it (load time and files fetched
    in :attr:`loaded`); :meth:`decode` decodes one swipe there, timed by the page."""

    def __init__(self, onnx: Path, int8: bool) -> None:
        from test_demo_browser import missing_browser, open_page, start_chromium

        from swipe.demo import DemoServer, Engine
        from swipe.demo.ondevice import BrowserFiles

        reason = missing_browser() or BrowserFiles(onnx).missing()
        if reason is not None:
            sys.exit(f"bench_browser: {reason}")
        self.server = DemoServer(("127.0.0.1", 0), Engine("en_hws"), quiet=True, browser=BrowserFiles(onnx))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.profile = tempfile.TemporaryDirectory(prefix="swipe-chromium-")
        self.driver = start_chromium(Path(self.profile.name))
        self.driver.set_script_timeout(110)  # under selenium's 120 s for any call
        open_page(self.driver, self.server)
        self.loaded = self._run(_LOAD, int8)

    def _run(self, script: str, *args: Any) -> dict[str, Any]:
        out = self.driver.execute_async_script(script, *args)
        if "error" in out:
            sys.exit(f"bench_browser: the page failed: {out['error']}")
        return out

    def decode(self, s: Any) -> tuple[float, list[str]]:
        out = self._run(_DECODE, {"x": list(map(float, s.x)), "y": list(map(float, s.y)),
                                  "t": list(map(float, s.t)), "layout": s.layout})
        return out["ms"], out["words"]

    def close(self) -> None:
        self.driver.quit()
        self.server.shutdown()
        self.server.server_close()
        self.profile.cleanup()


def side_by_side(onnx: Path, swipes: list[Any], int8: bool) -> tuple[dict[str, Any], np.ndarray,
                                                                       list[list[str]], np.ndarray,
                                                                       list[list[str]]]:
    """Each swipe decoded by swipe.runtime, then in the page, one at a time, alternating (so that
    both see the same load of a shared machine): the page's load figures, and per runtime the
    milliseconds per swipe and the candidates' words."""
    from swipe.runtime import OnnxDecoder

    decoder = OnnxDecoder(onnx, int8=int8, threads=1)
    page = Page(onnx, int8)
    try:
        for s in swipes[:WARM_UP]:
            decoder.decode_one(s.x, s.y, s.t, s.layout)
            page.decode(s)
        py_ms, py_words, js_ms, js_words = [], [], [], []
        for s in swipes:
            start = time.perf_counter()
            row = decoder.decode_one(s.x, s.y, s.t, s.layout)
            py_ms.append((time.perf_counter() - start) * 1000)
            py_words.append([w for _, w in row])
            ms, words = page.decode(s)
            js_ms.append(ms)
            js_words.append(words)
    finally:
        page.close()
    return page.loaded, np.array(py_ms), py_words, np.array(js_ms), js_words


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="example: nice python bench/bench_browser.py --limit 48")
    parser.add_argument("--model", default="en_hws", help="shipped model name or model file (default en_hws)")
    parser.add_argument("--onnx", type=Path, help="the model's ONNX folder (default: exported into a "
                        "temporary one)")
    parser.add_argument("--limit", type=int, default=100, help="decode the first N dev swipes (default 100)")
    parser.add_argument("--int8", action="store_true", help="the int8 graphs (default fp32)")
    args = parser.parse_args(argv)
    from swipe.demo.ondevice import BrowserFiles
    from swipe.runtime import read_swipes

    swipes = [s for s, _ in read_swipes(REAL_EN_SWIPES)][:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        onnx = args.onnx
        if onnx is None:
            onnx = Path(tmp) / "onnx"
            subprocess.run([sys.executable, "-m", "swipe.export", args.model, "--format", "onnx",
                            "--out", str(onnx)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        page, py_ms, py_words, js_ms, js_words = side_by_side(onnx, swipes, args.int8)
        import onnxruntime

        files = BrowserFiles(onnx)
        graphs = "int8" if args.int8 else "fp32"
        print(f"{args.model} ({graphs} graphs), {len(swipes)} real English swipes "
              f"(swipe/resources/swipes/hws_real_en_dev.jsonl), one at a time after {WARM_UP}, the two "
              "runtimes alternating, one thread each")
        print("| runtime | p50 ms | p95 ms | max ms |\n| --- | ---: | ---: | ---: |")
        for name, ms in ((f"swipe.runtime, onnxruntime {onnxruntime.__version__} (native)", py_ms),
                         ("headless Chromium, onnxruntime-web (WebAssembly)", js_ms)):
            print(f"| {name} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} | {ms.max():.0f} |")
        same = sum(a == b for a, b in zip(js_words, py_words, strict=True))
        top = sum(a[:1] == b[:1] for a, b in zip(js_words, py_words, strict=True))
        print(f"\nsame candidate list: {same}/{len(swipes)}; same first word: {top}/{len(swipes)}")
        # A swipe's two times lie seconds apart: their ratio is the least touched by other work.
        print(f"page's time / Python's, median over swipes: {np.median(js_ms / py_ms):.2f}")
        print(f"\npage load (fetch + compile + sessions): {page['loadMs'] / 1000:.1f} s\n")
        groups = {"onnx": f"the model: {onnx.name}/ ({graphs})", "ort": "onnxruntime-web (WebAssembly)",
                  "js": "the decoder module (js/src)"}
        sizes = {group: [0, 0, 0] for group in groups}  # files, bytes, gzip bytes
        for path, size in page["files"]:
            group = sizes[path.split("/")[1]]
            local = files.file(path)
            group[0] += 1
            group[1] += size
            group[2] += gzip_size(local) if local is not None else 0
        print("| downloaded by the page | files | bytes | gzip -6 bytes |\n| --- | ---: | ---: | ---: |")
        for group, (count, size, gz) in sizes.items():
            print(f"| {groups[group]} | {count} | {size:,} | {gz:,} |")
        print(f"| all | {sum(v[0] for v in sizes.values())} | {sum(v[1] for v in sizes.values()):,} | "
              f"{sum(v[2] for v in sizes.values()):,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
