"""Do perfectly drawn words read first? Key-centre swipes of the most frequent words, decoded.

    nice -n 10 python bench/perfect_swipes.py                      # en_hws, 2,000 words
    nice -n 10 python bench/perfect_swipes.py --model en_hws_transformer --words 500

For each of the ``--words`` most frequent words of the model's lexicon that its keyboard can type,
a "perfect" swipe is drawn: straight through the centres of the word's keys (a run of one key,
as in "hello", is one stop with a dwell), each key-to-key movement a minimum-jerk stroke lasting
a Fitts-like ``58 + 130 log2(1 + distance in key widths)`` ms, sampled at 60 Hz (the pace and rate
of the real English swipes, about 5 points per key width); a one-key word is a 60 ms tap.
The swipes are decoded with the model's shipped settings (its ``decoding.json``), as ``predict.py``
and the demo decode them.

A word is *geometrically distinct* when no more frequent lexicon word has a key-centre template
within ``--distinct-within`` key widths of its own all along (the largest distance between
corresponding points of the two polylines, each resampled to 32 equidistant points): ``to`` and
``too``, ``top`` and ``tip`` (all on the top row, in order) have the same template, so only
frequency can separate them and the less frequent one is not counted. The table gives the share
of distinct words read first, and of all words; the distinct words not read first follow, with
what was read instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from swipe.decoder import load_decoder, make_curve  # noqa: E402
from swipe.formats import Curve  # noqa: E402
from swipe.keyboard import Layout  # noqa: E402
from swipe.templates import pad_polylines, resample_many, word_polyline  # noqa: E402

RATE_HZ = 60.0
FITTS_A_MS, FITTS_B_MS = 58.0, 130.0
REPEAT_DWELL_MS = 130.0
TAP_MS = 60.0
TEMPLATE_POINTS = 32


def stops(word: str) -> str:
    """``word`` with each run of one letter as one letter: the keys a swipe of it stops at."""
    return "".join(c for i, c in enumerate(word) if i == 0 or c != word[i - 1])


def key_centre_swipe(word: str, layout: Layout) -> Curve:
    """The perfect swipe of ``word``: straight through its key centres at a real swipe's pace."""
    keys = word_polyline(layout, word)
    centres = keys[[i for i in range(len(word)) if i == 0 or word[i] != word[i - 1]]]
    held = [i > 0 and word[i] == word[i - 1] for i in range(len(word))]
    dwell_after = np.zeros(len(centres))  # a repeated letter: the finger rests on its key
    stop = -1
    for i in range(len(word)):
        stop += 0 if held[i] else 1
        if held[i]:
            dwell_after[stop] += REPEAT_DWELL_MS
    if len(centres) == 1:
        points, times = np.repeat(centres, 2, axis=0), np.array([0.0, TAP_MS])
    else:
        points_list, times_list, clock = [centres[:1]], [np.zeros(1)], dwell_after[0]
        for a, b, rest in zip(centres[:-1], centres[1:], dwell_after[1:], strict=True):
            duration = FITTS_A_MS + FITTS_B_MS * np.log2(1.0 + np.linalg.norm(b - a))
            ticks = np.arange(1, int(np.ceil(duration * RATE_HZ / 1000.0)) + 1) * (1000.0 / RATE_HZ)
            tau = np.minimum(ticks / duration, 1.0)[:, None]
            progress = tau ** 3 * (10.0 + tau * (6.0 * tau - 15.0))  # minimum jerk
            points_list.append(a + (b - a) * progress)
            times_list.append(clock + np.minimum(ticks, duration))
            clock += duration + rest
        points, times = np.concatenate(points_list), np.concatenate(times_list)
    scale = np.array([layout.key_width, layout.key_height])
    pixels = points * scale
    return make_curve(pixels[:, 0], pixels[:, 1], times, layout.name, word)


def templates(layout: Layout, words: Sequence[str]) -> np.ndarray:
    """``(len(words), TEMPLATE_POINTS, 2)`` key-centre templates in key units, equidistant points."""
    return resample_many(pad_polylines([word_polyline(layout, w) for w in words]), TEMPLATE_POINTS)


def nearest_more_frequent(layout: Layout, lexicon: Sequence[str], count: int) -> list[tuple[float, str]]:
    """For each of the first ``count`` words of ``lexicon`` (most frequent first), the distance to
    the nearest template of a more frequent word (the largest distance between corresponding
    points), and that word (``(inf, "")`` for the first)."""
    words = list(lexicon[:count])
    shapes = templates(layout, words).reshape(len(words), -1)
    nearest = [(float("inf"), "")]
    for i in range(1, len(words)):
        gap = np.linalg.norm((shapes[:i] - shapes[i]).reshape(i, TEMPLATE_POINTS, 2), axis=2).max(axis=1)
        j = int(gap.argmin())
        nearest.append((float(gap[j]), words[j]))
    return nearest


class Outcome(NamedTuple):
    word: str
    distinct: bool
    rival: str
    read: list[str]
    rank: int | None  # 1-based rank of the word among the candidates; None: not among them


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Share of the most frequent words whose key-centre swipe reads first. "
        "Example: nice -n 10 python bench/perfect_swipes.py --words 2000")
    parser.add_argument("--model", default="en_hws", help="shipped model name or model file / folder")
    parser.add_argument("--words", type=int, default=2000, help="most frequent words swiped (default 2000)")
    parser.add_argument("--distinct-within", type=float, default=0.25, metavar="KEYS",
                        help="a word whose template lies within this many key widths of a more "
                        "frequent word's all along is not geometrically distinct (default 0.25)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    decoder = load_decoder(args.model, batch_size=args.batch_size)
    if decoder.lexicon is None:
        parser.error(f"{args.model} decodes without a lexicon: there is no list of frequent words")
    layout = decoder.layouts[0]
    lexicon = [w for w in decoder.lexicon if all(map(layout.can_type, w))]
    nearest = nearest_more_frequent(layout, lexicon, args.words)
    words = lexicon[: args.words]
    curves = [key_centre_swipe(word, layout) for word in words]
    start = time.perf_counter()
    rows = decoder.decode(curves)
    seconds = time.perf_counter() - start
    outcomes = []
    for word, (gap, rival), row in zip(words, nearest, rows, strict=True):
        read = [c.word for c in row]
        rank = read.index(word) + 1 if word in read else None
        outcomes.append(Outcome(word, gap >= args.distinct_within, rival, read[:3], rank))

    distinct = [o for o in outcomes if o.distinct]
    first = [o for o in outcomes if o.read[:1] == [o.word]]
    first_distinct = [o for o in distinct if o.read[:1] == [o.word]]
    print(f"model {args.model}, layout {layout.name}, {len(words)} most frequent words, key-centre swipes, "
          f"its decoding.json; distinct: no more frequent template within {args.distinct_within} keys; "
          f"{seconds:.0f} s")
    print(f"{'words':<34} {'count':>6} {'read first':>11} {'share':>7}")
    print(f"{'geometrically distinct':<34} {len(distinct):>6} {len(first_distinct):>11} "
          f"{len(first_distinct) / max(len(distinct), 1):>7.4f}")
    print(f"{'all':<34} {len(outcomes):>6} {len(first):>11} {len(first) / max(len(outcomes), 1):>7.4f}")
    missed = [o for o in distinct if o.read[:1] != [o.word]]
    if missed:
        unfound = sum(o.rank is None for o in missed)
        print(f"\ndistinct words not read first ({len(missed)}, {unfound} of them not among the "
              f"candidates at all): word (its rank) -> top 3")
        for o in missed:
            print(f"  {o.word} ({o.rank or '-'}) -> {', '.join(o.read) or '(nothing)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
