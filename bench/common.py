"""Pieces the benchmark scripts share (importing this module does not import ``swipe``:
``bench/bench_versions.py`` times other revisions of it)."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_EN_SWIPES = ROOT / "swipe" / "resources" / "swipes" / "hws_real_en_dev.jsonl"
"""The 800 real English swipes the speed and accuracy benchmarks decode by default."""


def dataset_dir(data: Path, workdir: Path) -> Path:
    """A built dataset directory for ``data``: itself if it is one, else the raw file ``data``
    built into ``workdir / "data"``."""
    from swipe.data import build_dataset

    if data.is_dir():
        return data
    build_dataset([data], workdir / "data")
    return workdir / "data"


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that decodes curves with one trained model's beam search:
    ``--checkpoint`` (required), ``--data``, ``--lexicon``, ``--beam-size`` and ``--batch-size``."""
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint file, run directory or exported model")
    parser.add_argument("--data", default=str(REAL_EN_SWIPES),
                        help="raw data file or built dataset directory")
    parser.add_argument("--lexicon", default="en")
    parser.add_argument("--beam-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
