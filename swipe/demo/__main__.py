"""python -m swipe.demo: swipe words in the browser and watch a model read them; record swipes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

_EXAMPLES = """\
examples:
  python -m swipe.demo                                  # en_hws at http://127.0.0.1:8000
  python -m swipe.demo --model ru_yandex --port 8001    # the Russian model
  python -m swipe.demo --record-to my_swipes.jsonl      # record: prompts words, appends your swipes
  python -m swipe.demo --user-data my_words.json        # keep the words you add and pick in a file
  python -m swipe.demo --onnx en_onnx                   # also decode in the browser (npm ci --prefix js)
  python -m swipe.demo --model swipe/resources/models/en_hws_transformer --host 0.0.0.0   # seen from a phone
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m swipe.demo``."""
    parser = argparse.ArgumentParser(
        prog="python -m swipe.demo",
        description="Serve a page where you swipe words on the model's keyboard and see its candidates, "
        "the key-centre templates and where the model looked; optionally record your swipes.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    arg = parser.add_argument
    arg("--model", default="en_hws", help="shipped model name (en_hws, en_hws_transformer, ru_yandex) or a "
        "model file / run directory (default en_hws)")
    arg("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    arg("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    arg("--device", default="cpu", help="cpu or cuda (default cpu)")
    arg("--user-data", metavar="FILE", help="keep the words you add and the candidates you pick in this "
        "file (read if it exists, rewritten atomically at each change; default: in memory until the "
        "server stops)")
    rec = parser.add_argument_group("recording")
    rec.add_argument("--record-to", metavar="FILE", help="record mode: prompt words and append each swipe "
                     "with its word to this jsonl file (Yandex-style, the keyboard inline)")
    rec.add_argument("--words", metavar="FILE", help="words to prompt, one a line (default: the model's "
                     "lexicon, most frequent first)")
    arg("--onnx", metavar="DIR", help="offer decoding in this browser: the page loads the ONNX folder DIR "
        "(python -m swipe.export NAME --format onnx --out DIR; a DIR that does not exist is exported from "
        "--model first, which needs requirements-export.txt) and onnxruntime-web from js/ "
        "(npm ci --prefix js)")
    arg("--quiet", action="store_true", help="log no requests")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m swipe.demo``: load the model and serve the page until interrupted; 2 on a user error."""
    args = build_parser().parse_args(argv)
    from swipe.demo.engine import Engine, RequestError  # loads PyTorch, so not for --help
    from swipe.demo.recorder import (
        PromptList,
        Recorder,
        read_word_list,
        recorded_words,
        words_worth_recording,
    )
    from swipe.demo.server import DemoServer, serve

    if args.words is not None and args.record_to is None:
        print("python -m swipe.demo: error: --words needs --record-to", file=sys.stderr)
        return 2
    browser = None
    if args.onnx is not None:
        from swipe.demo.ondevice import BrowserFiles, prepare_onnx_folder

        if (code := prepare_onnx_folder(args.model, args.onnx)) != 0:
            return code
        browser = BrowserFiles(Path(args.onnx))
        if (missing := browser.missing()) is not None:
            print(f"decoding in the browser is off: {missing}", file=sys.stderr)
    try:
        words = read_word_list(args.words) if args.words is not None else None
        print(f"loading model {args.model}", file=sys.stderr)
        engine = Engine(args.model, args.device, user_data=args.user_data)
    except (OSError, ValueError, RequestError) as err:
        print(f"python -m swipe.demo: error: {err}", file=sys.stderr)
        return 2
    recorder = prompts = None
    if args.record_to is not None:
        if words is None:
            words = words_worth_recording(engine.decoder.lexicon or [])
        try:
            recorder = Recorder(args.record_to)
        except OSError as err:
            print(f"python -m swipe.demo: error: {args.record_to}: {err.strerror}", file=sys.stderr)
            return 2
        prompts = PromptList(words, recorded_words(args.record_to))
        print(f"recording to {args.record_to} ({recorder.count} swipes there already)", file=sys.stderr)
    try:
        server = DemoServer((args.host, args.port), engine, recorder, prompts, args.quiet, browser=browser)
    except OSError as err:
        print(f"python -m swipe.demo: error: cannot listen on {args.host}:{args.port}: {err.strerror}",
              file=sys.stderr)
        return 2
    serve(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
