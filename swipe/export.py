"""``python -m swipe.export``: write a compact inference file from a training checkpoint, or the
ONNX folder of a model.

The writers are :mod:`swipe.pt_export` (the ``.pt`` file) and :mod:`swipe.onnx_export` (the ONNX
folder); this module imports them only when it runs, so ``--help`` answers at once. Their names
are still importable from here for one release (``from swipe.export import export_checkpoint``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

from swipe.cli import command_line

# Kept for one release: import these from swipe.pt_export (writing) or swipe.model_files (reading).
_MOVED = {
    **dict.fromkeys(("ExportResult", "compress_state_dict", "export_checkpoint", "exported_model",
                     "quantize_int8"), "swipe.pt_export"),
    **dict.fromkeys(("DTYPES", "EXPORT_FORMAT", "EXPORT_VERSION", "Dtype", "ExportError", "ModelInfo",
                     "check_exported", "read_model_info", "restore_state_dict"), "swipe.model_files"),
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'swipe.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_MOVED[name]), name)



def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


_EXAMPLES = """\
examples:
  python -m swipe.export runs/quickstart_en --out quickstart.pt               # the run's best.pt, fp16
  python -m swipe.export runs/quickstart_en --out quickstart_int8.pt --dtype int8
  python -m swipe.export swipe/resources/models/en_hws_transformer --format onnx --out en_onnx
"""


@command_line("python -m swipe.export")
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m swipe.export``: write a compact inference file from a training checkpoint, or
    the ONNX folder of a checkpoint or exported model (``--format onnx``)."""
    parser = argparse.ArgumentParser(
        prog="python -m swipe.export",
        description="Write a compact inference file (weights, config, tokenizer, layouts, lexicon name, "
        "provenance) from a training checkpoint; load it with swipe.load_decoder or "
        "predict.py --checkpoint. With --format onnx, write a folder of ONNX graphs (fp32 and int8), "
        "layouts, tokenizer, lexicon trie and decoding settings for apps without PyTorch "
        "(docs/onnx.md; needs the packages of requirements-export.txt).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", help="training checkpoint, or a run directory (its best.pt); "
                        "with --format onnx also an exported model.pt or its folder")
    parser.add_argument("--out", required=True, help="the file to write (the folder, with --format onnx)")
    parser.add_argument("--format", default="pt", choices=("pt", "onnx"),
                        help="pt: one compact .pt file (default); onnx: a folder of ONNX graphs")
    parser.add_argument("--dtype", help="weight precision of a .pt file: fp16 (default), fp32 or int8")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    if args.format == "onnx":
        return _main_onnx(args)
    from swipe.model_files import DTYPES, CheckpointError, ExportError
    from swipe.pt_export import export_checkpoint

    if args.dtype is not None and args.dtype not in DTYPES:
        parser.error(f"argument --dtype: invalid choice: {args.dtype!r} (choose from {', '.join(DTYPES)})")
    try:
        result = export_checkpoint(args.checkpoint, args.out, args.dtype or "fp16", args.overwrite)
    except FileExistsError:
        print(f"swipe.export: error: {args.out}: already exists (pass --overwrite to replace it)",
              file=sys.stderr)
        return 2
    except (ExportError, CheckpointError, FileNotFoundError) as err:
        print(f"swipe.export: error: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {result.path}: {result.dtype}, {_megabytes(result.num_bytes)} "
        f"(checkpoint {_megabytes(result.source_bytes)}), run {result.run}, step {result.step}",
        file=sys.stderr,
    )
    return 0


def _main_onnx(args: argparse.Namespace) -> int:
    if args.dtype is not None:
        print("swipe.export: error: --dtype is for .pt files; an ONNX folder holds fp32 and int8 graphs",
              file=sys.stderr)
        return 2
    from swipe.model_files import CheckpointError, ExportError

    try:
        from swipe.onnx_export import OnnxExportError, export_onnx
    except ImportError as err:
        print(f"swipe.export: error: --format onnx needs {err.name}: "
              "pip install -r requirements-export.txt", file=sys.stderr)
        return 2
    print(f"exporting {args.checkpoint} as ONNX graphs into {args.out}/", file=sys.stderr)
    try:
        result = export_onnx(args.checkpoint, args.out, args.overwrite)
    except FileExistsError:
        print(f"swipe.export: error: {args.out}: already holds files (pass --overwrite to replace them)",
              file=sys.stderr)
        return 2
    except (OnnxExportError, ExportError, CheckpointError, FileNotFoundError) as err:
        print(f"swipe.export: error: {err}", file=sys.stderr)
        return 2
    graphs = {name: size for name, size in result.files.items() if name.endswith(".onnx")}
    sizes = ", ".join(f"{name} {_megabytes(size)}" for name, size in graphs.items())
    print(f"wrote {result.out}/: {sizes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
