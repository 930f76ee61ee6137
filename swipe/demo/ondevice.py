"""The files a demo page needs to decode swipes in the browser, served by the demo server by exact name.

Routes (all GET)::

    /onnx/<file>   the exported ONNX folder's files (python -m swipe.export NAME --format onnx)
    /ort/<file>    onnxruntime-web's WebAssembly build (js/node_modules/onnxruntime-web/dist)
    /js/<file>     the JavaScript decoder module (js/src/*.mjs)

The page (static/ondevice.mjs) fetches these and decodes each swipe itself: the server never sees
its points.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

JS_DIR = Path(__file__).resolve().parents[2] / "js"
JS_INSTALL = "npm ci --prefix js"
# onnxruntime-web's WebAssembly-only build: the module and the runtime it loads (one build for
# one or more threads; the page asks for one thread, so no cross-origin isolation is needed).
ORT_MODULE = "ort.wasm.min.mjs"
ORT_FILES = (ORT_MODULE, "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
DECODER_MODULE = "index.mjs"


@dataclass(frozen=True)
class BrowserFiles:
    """Where the files of in-browser decoding are.

    Parameters
    ----------
    onnx_dir : Path
        An exported ONNX folder (``model.json``, the graphs, ``lexicon.npz``, ...).
    js_dir : Path
        The JavaScript package: its ``src`` holds the decoder module, its ``node_modules`` the
        installed onnxruntime-web (``npm ci --prefix js``).
    """

    onnx_dir: Path
    js_dir: Path = JS_DIR

    @property
    def ort_dir(self) -> Path:
        return self.js_dir / "node_modules" / "onnxruntime-web" / "dist"

    def missing(self) -> str | None:
        """Why a page cannot decode in the browser (one line saying what to run), or None."""
        if not (self.js_dir / "src" / DECODER_MODULE).is_file():
            return f"the JavaScript decoder is missing: {self.js_dir / 'src' / DECODER_MODULE}"
        if not all((self.ort_dir / name).is_file() for name in ORT_FILES):
            return f"onnxruntime-web is not installed: run {JS_INSTALL} and restart the demo"
        return None

    def info(self) -> dict[str, object]:
        """What ``/api/info`` tells the page under ``ondevice``: where each part is, or why it is
        missing (then the page says so and offers only the server's decoding)."""
        return {"missing": self.missing(), "model": "/onnx/", "module": f"/js/{DECODER_MODULE}",
                "ort": f"/ort/{ORT_MODULE}", "wasm": "/ort/"}

    def file(self, path: str) -> Path | None:
        """The file served at URL path ``path`` (``/onnx/model.json``), or None: a path of none of
        the three routes, or a name that is not exactly one of the route's files."""
        route, _, name = path.lstrip("/").partition("/")
        if route == "onnx":
            folder, names = self.onnx_dir, None
        elif route == "ort":
            folder, names = self.ort_dir, set(ORT_FILES)
        elif route == "js":
            folder, names = self.js_dir / "src", None
        else:
            return None
        if not name or name.startswith(".") or not folder.is_dir():
            return None
        if names is None:
            names = {p.name for p in folder.iterdir() if p.is_file()}
            if route == "js":
                names = {n for n in names if n.endswith(".mjs")}
        return folder / name if name in names else None


def prepare_onnx_folder(model: str, folder: str | Path) -> int:
    """Make sure ``folder`` is an ONNX folder: one that does not exist is exported from ``model``
    (as ``python -m swipe.export MODEL --format onnx --out FOLDER`` does, its messages included).

    Returns
    -------
    int
        0, or the exit status 2 after a one-line error (``folder`` is something else, or the
        export failed).
    """
    folder = Path(folder)
    if (folder / "model.json").is_file():
        return 0
    if folder.exists():
        print(f"python -m swipe.demo: error: {folder}: not an ONNX folder (no model.json); pass a folder "
              "written by python -m swipe.export NAME --format onnx --out DIR, or a new folder's name",
              file=sys.stderr)
        return 2
    from swipe.export import main as export

    return export([model, "--format", "onnx", "--out", str(folder)])
