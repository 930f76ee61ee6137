"""Command line: ``python -m swipe.data build SOURCES... --out DIR`` and ``python -m swipe.data info DIR``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from swipe.cli import command_line
from swipe.data.build import DatasetError, build_dataset
from swipe.data.dataset import SwipeDataset
from swipe.formats import BadRowError
from swipe.keyboard import LayoutError
from swipe.tokenizers import TokenizerError


def _build(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    manifest = build_dataset(
        args.sources,
        args.out,
        layouts=args.layouts,
        alphabet=args.alphabet,
        skip_bad_rows=args.skip_bad_rows,
        overwrite=args.overwrite,
        hws_layout=args.hws_layout,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    m = manifest
    print(
        f"built {args.out}: {m.num_curves} curves, {m.num_points} points, {m.num_targets} with targets, "
        f"layouts {[g['grid_name'] for g in m.layouts]}, alphabet {m.alphabet!r}; "
        f"{m.num_bytes / 1e6:.1f} MB; {m.num_curves / seconds:,.0f} curves/s"
    )
    if m.skipped:
        print(f"skipped bad rows: {m.skipped}")
    if m.excluded:
        print(f"excluded: {m.excluded}")
    return 0


def _info(args: argparse.Namespace) -> int:
    ds = SwipeDataset(args.path, verify=not args.no_verify)
    m = ds.manifest
    print(repr(ds))
    print(f"  targets: {m.num_targets} of {m.num_curves}; alphabet {m.alphabet!r}")
    print(f"  points per curve: mean {ds.num_points.mean():.1f}, max {ds.num_points.max()}")
    per_curve = (m.num_bytes - 9 * m.num_points) / m.num_curves
    print(f"  bytes on disk: 9 per point plus {per_curve:.1f} per curve (offsets, layout id, word)")
    for source in m.sources:
        print(f"  source: {source.path} ({source.size} bytes)")
    if m.skipped:
        print(f"  skipped bad rows: {m.skipped}")
    return 0


@command_line("python -m swipe.data")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swipe.data", description="swipe datasets")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser(
        "build", help="build a memory-mapped dataset from swipe files",
        description="Build a memory-mapped dataset from swipe files (jsonl, How-We-Swipe .log).",
        epilog="examples:\n"
        "  python -m swipe.data build swipe/resources/swipes/hws_real_en_dev.jsonl --out data/real_en\n"
        "  python -m swipe.data build train.jsonl --out data/train --skip-bad-rows\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("sources", nargs="+", help="jsonl (Yandex format) and How-We-Swipe .log files")
    build.add_argument("--out", required=True, help="dataset directory to create")
    build.add_argument("--layouts", help="grids file for rows that name their grid (bundled ones are known)")
    build.add_argument("--alphabet", help="characters of the target words (default: from the layouts)")
    build.add_argument("--skip-bad-rows", action="store_true", help="skip and count bad rows")
    build.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    build.add_argument("--hws-layout", default="hws_fitted", help="layout for How-We-Swipe coordinates")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=_build)
    info = sub.add_parser(
        "info", help="check a dataset and print its summary",
        description="Check a dataset (its checksums too) and print its summary.",
        epilog="example:\n  python -m swipe.data info data/real_en\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("path")
    info.add_argument("--no-verify", action="store_true", help="skip the checksum check")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output into a closed pipe: see swipe.cli
        raise
    except (BadRowError, DatasetError, LayoutError, TokenizerError, FileExistsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
