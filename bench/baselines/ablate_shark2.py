"""Switch off one part of the SHARK2 matcher at a time and score it on one half of a swipe file.

    python bench/baselines/ablate_shark2.py [--data FILE] [--lexicon en] [--half odd]

A channel is switched off by setting its width to 1e9 (the prior by ``prior_weight`` 0, the tap
rule by ``tap_length`` 0); the other settings stay at their defaults, not re-tuned. Prints a
markdown table of accuracy@1 and Swipe MRR.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.baselines.common import DEFAULT_DATA, DEFAULT_LAYOUT, HALVES, read_labelled_curves, select_half
from bench.baselines.tune_shark2 import evaluate, prepare
from swipe.keyboard import bundled_layout
from swipe.lexicon import load_lexicon
from swipe.shark2 import Shark2Config, Shark2Decoder

OFF = 1e9
BASE = Shark2Config()
VARIANTS: tuple[tuple[str, Shark2Config], ...] = (
    ("all channels (defaults)", BASE),
    ("without elastic shape", dataclasses.replace(BASE, sigma_elastic_shape=OFF)),
    ("without elastic location", dataclasses.replace(BASE, sigma_elastic_location=OFF)),
    ("without both elastic channels",
     dataclasses.replace(BASE, sigma_elastic_shape=OFF, sigma_elastic_location=OFF)),
    ("without both elastic channels, `sigma_location` 0.5",
     dataclasses.replace(BASE, sigma_elastic_shape=OFF, sigma_elastic_location=OFF, sigma_location=0.5)),
    ("without ends channel", dataclasses.replace(BASE, sigma_ends=OFF)),
    ("without shape channel", dataclasses.replace(BASE, sigma_shape=OFF)),
    ("without prior", dataclasses.replace(BASE, prior_weight=0.0)),
    ("taps scored like swipes", dataclasses.replace(BASE, tap_length=0.0)),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="jsonl swipes with target words")
    parser.add_argument("--lexicon", default="en", help="bundled lexicon name or word<TAB>frequency file")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, help="bundled layout name")
    parser.add_argument("--half", choices=HALVES, default="odd", help="lines of --data to score")
    args = parser.parse_args(argv)

    layout = bundled_layout(args.layout)
    curves = select_half(read_labelled_curves(args.data, layout), args.half)
    lexicon = load_lexicon(args.lexicon)
    print("| matcher | accuracy@1 | swipe_mrr |\n| --- | --- | --- |")
    prepared: dict[float, tuple[Shark2Decoder, list]] = {}  # by tap_length: taps are found in prepare
    for name, config in VARIANTS:
        if config.tap_length not in prepared:
            decoder = Shark2Decoder(layout, lexicon, config)
            prepared[config.tap_length] = (decoder, prepare(decoder, curves))
        decoder, swipes = prepared[config.tap_length]
        result = evaluate(decoder, swipes, config)
        print(f"| {name} | {result.accuracy:.4f} | {result.swipe_mrr:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
