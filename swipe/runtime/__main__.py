"""python -m swipe.runtime FOLDER SWIPES.jsonl: decode swipes with an ONNX folder, no PyTorch.

Writes one JSON line per swipe to stdout ({"word": target or null, "candidates": [[score, word],
...]}; with --verbatim [score, word, in_lexicon]) and a summary to stderr: swipes decoded,
accuracy@1 where the file has words, time and the process's peak resident memory. Needs
onnxruntime: pip install -r requirements-export.txt.

examples:
  python -m swipe.export swipe/resources/models/en_hws_transformer --format onnx --out en_onnx
  python -m swipe.runtime en_onnx swipe/resources/swipes/hws_real_en_dev.jsonl --int8 > preds.jsonl
  python -m swipe.runtime en_onnx swipe/resources/swipes/hws_real_en_dev.jsonl --batch-size 1 > one.jsonl
  python -m swipe.runtime en_onnx swipe/resources/swipes/hws_real_en_dev.jsonl --verbatim > verbatim.jsonl
  python -m swipe.runtime en_onnx swipe/resources/swipes/hws_real_en_dev.jsonl --user-data my_words.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Sequence

from swipe.cli import command_line

INSTALL_HINT = "onnxruntime is not installed: pip install -r requirements-export.txt"


def peak_resident_mb() -> float:
    """This process's peak resident memory in MB: Linux's ``VmHWM``, which starts afresh at
    ``exec`` (``ru_maxrss`` keeps the peak of the process that forked it), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@command_line("python -m swipe.runtime")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swipe.runtime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="written by python -m swipe.export CHECKPOINT --format onnx")
    parser.add_argument("swipes", help="jsonl, one {'curve': {'x', 'y', 't', 'grid_name'}} per line")
    parser.add_argument("--int8", action="store_true", help="run the int8 graphs")
    parser.add_argument("--batch-size", type=int, default=32, help="swipes decoded together (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    parser.add_argument("--verbatim", action="store_true",
                        help="also offer the network's best string outside the lexicon, second, where no "
                             "lexicon word scores well (swipe.decoding.user_words.VerbatimSettings)")
    parser.add_argument("--user-data", metavar="FILE",
                        help="decode with the user's added, removed and learned words saved in FILE "
                             "(python -m swipe.demo --user-data writes one); only read")
    args = parser.parse_args(argv)
    try:
        from swipe.decoding.user_words import UserDataError, VerbatimSettings
        from swipe.runtime.decoder import OnnxDecoder, OnnxFolderError, read_swipes
    except ModuleNotFoundError as err:
        if err.name != "onnxruntime":
            raise
        print(f"swipe.runtime: error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        if args.user_data is not None and not Path(args.user_data).is_file():
            raise UserDataError(f"{args.user_data}: no such user data file")
        verbatim = VerbatimSettings() if args.verbatim else None
        decoder = OnnxDecoder(args.folder, int8=args.int8, threads=args.threads, verbatim=verbatim,
                              user_data=args.user_data)
        rows = read_swipes(args.swipes)
    except (OnnxFolderError, UserDataError, OSError) as err:
        print(f"swipe.runtime: error: {err}", file=sys.stderr)
        return 2
    start, correct, known = time.perf_counter(), 0, 0
    for i in range(0, len(rows), max(1, args.batch_size)):
        batch = rows[i : i + max(1, args.batch_size)]
        try:
            decoded = decoder.decode([swipe for swipe, _ in batch])
        except OnnxFolderError as err:
            where = f"{args.swipes}: swipes {i + 1} to {i + len(batch)}"
            print(f"swipe.runtime: error: {where}: {err}", file=sys.stderr)
            return 2
        for (_, word), candidates in zip(batch, decoded, strict=True):
            listed = [[round(c.score, 6), c.word, *([c.in_lexicon] if args.verbatim else [])]
                      for c in candidates]
            print(json.dumps({"word": word, "candidates": listed}))
            if word is not None:
                known += 1
                correct += bool(candidates) and candidates[0][1] == word
    seconds = time.perf_counter() - start
    peak_mb = peak_resident_mb()
    accuracy = f", accuracy@1 {correct / known:.3f}" if known else ""
    print(f"decoded {len(rows)} swipes in {seconds:.1f} s{accuracy}, peak memory {peak_mb:.0f} MB",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
