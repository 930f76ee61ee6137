"""User words and learning, measured: how fast a word is added, whether learning helps a typist,
and whether words added back as user words decode from their real swipes.

    nice -n 10 python bench/user_words.py latency
    nice -n 10 python bench/user_words.py learning --limit 200 > /tmp/learning.log 2>&1 &
    nice -n 10 python bench/user_words.py held-out
    nice -n 10 python bench/user_words.py verbatim > /tmp/verbatim.log 2>&1 &

``latency``: milliseconds to add one new word to the shipped model's lexicon (median and worst of
200 words), to remove one, and to learn one and bring the boosts into the trie (``sync``).

``learning``: a typist swiping the real English dev swipes in their order: each swipe is decoded,
then its word is learned (:meth:`swipe.Decoder.learn`, as a keyboard does when the user keeps or
picks a word). One decoder per ``--weights`` value; weight 0 is no learning (all swipes decoded at
once, as ``predict.py`` does). The table gives accuracy@1 over all swipes and each half, and the
swipes learning won or lost against no learning.

``held-out``: the dev words of lexicon rank ``--from-rank`` or later (mid and low frequency, each
with real swipes) are taken out of the lexicon (a word list written without them), then added back
with :meth:`swipe.Decoder.add_words` at the default frequency (the lexicon's median word). The table
gives accuracy@1 on their swipes and on all other swipes, against the full lexicon.

``verbatim``: how often the network's string without the lexicon is the swiped word; then the
verbatim candidate's setting (:class:`VerbatimSettings`) chosen on each half of the dev swipes
and of the held-out words' swipes (those words out of the lexicon), checked on the other half; then
``load_decoder`` with it off and on, swipe by swipe: accuracy@1, Swipe MRR, p50 and p95 ms.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from swipe.decoder import Decoder, load_decoder  # noqa: E402
from swipe.decoding.user_words import LearnSettings, UserWords, VerbatimSettings  # noqa: E402
from swipe.formats import Curve, read_curves  # noqa: E402
from swipe.metrics import swipe_mrr_score  # noqa: E402

DEV = ROOT / "swipe" / "resources" / "swipes" / "hws_real_en_dev.jsonl"
LEXICON = ROOT / "swipe" / "resources" / "lexicons" / "en.tsv"


def dev_curves(limit: int | None) -> list[Curve]:
    curves = list(read_curves(DEV))
    return curves[:limit] if limit else curves


def latency(model: str) -> None:
    decoder = load_decoder(model)
    assert decoder.user_words is not None
    user = decoder.user_words
    rng = np.random.default_rng(0)
    letters = list("qwertyuiopasdfghjklzxcvbnm")
    words = ["".join(rng.choice(letters, int(rng.integers(4, 12)))) for _ in range(200)]
    rows = []
    for name, action in [("add one new word (Decoder.add_words)", lambda w: decoder.add_words([w])),
                         ("remove it again (Decoder.remove_words)", lambda w: decoder.remove_words([w])),
                         ("learn it (Decoder.learn)", lambda w: decoder.learn(w)),
                         ("learn, then sync 200 learned words", lambda w: (decoder.learn(w), user.sync()))]:
        times = []
        for word in words:
            start = time.perf_counter()
            action(word)
            times.append(1000 * (time.perf_counter() - start))
        rows.append((name, statistics.median(times), max(times)))
    print(f"model {model}: {len(user.trie.word_index())} words, trie rows {len(user.trie.children)}")
    print(f"| {'action':60} | median ms | worst ms |")
    print(f"| {'-' * 60} | --------: | -------: |")
    for name, median, worst in rows:
        print(f"| {name:60} | {median:9.3f} | {worst:8.3f} |")


def learning(model: str, limit: int | None, weights: Sequence[float], decay: float) -> None:
    curves = dev_curves(limit)
    decoders: list[Decoder] = []
    for weight in weights:
        decoder = load_decoder(model)
        assert decoder.user_words is not None
        decoder.user_words.learn_settings = LearnSettings(weight=weight, decay=decay)
        decoders.append(decoder)
    right = np.zeros((len(weights), len(curves)), bool)
    start = time.time()
    for k, weight in enumerate(weights):
        if weight == 0:  # no learning: every swipe decodes alone, as predict.py decodes them
            right[k] = [bool(c) and c[0].word == curve.word for c, curve in zip(
                decoders[k].decode(curves), curves, strict=True)]
    print(f"no learning: {time.time() - start:.0f} s", flush=True)
    for i, curve in enumerate(curves):
        for k, decoder in enumerate(decoders):
            if weights[k] == 0:
                continue
            (candidates,) = decoder.decode([curve])
            right[k, i] = bool(candidates) and candidates[0].word == curve.word
            decoder.learn(curve.word)
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(curves)} swipes, {time.time() - start:.0f} s: "
                  + ", ".join(f"w={w}: {right[k, : i + 1].mean():.4f}" for k, w in enumerate(weights)),
                  flush=True)
    half = len(curves) // 2
    base = right[weights.index(0.0)] if 0.0 in weights else None
    print(f"\n{len(curves)} real swipes of {DEV.name} in order, decode then learn; "
          f"decay {decay} per learn event")
    print("| learn weight | acc@1 | first half | second half | won | lost |")
    print("| -----------: | ----: | ---------: | ----------: | --: | ---: |")
    for k, weight in enumerate(weights):
        won = lost = "-"
        if base is not None:
            won, lost = str(int((right[k] & ~base).sum())), str(int((~right[k] & base).sum()))
        print(f"| {weight:12g} | {right[k].mean():.4f} | {right[k, :half].mean():10.4f} | "
              f"{right[k, half:].mean():11.4f} | {won:>3} | {lost:>4} |")


def lexicon_rows() -> list[tuple[str, str]]:
    rows = []
    for line in LEXICON.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            word, frequency = line.split("\t")[:2]
            rows.append((word, frequency))
    return rows


def held_out(model: str, from_rank: int, limit: int | None, frequency: float | None) -> None:
    curves = dev_curves(limit)
    rows = lexicon_rows()
    rank = {word: r for r, (word, _) in enumerate(rows)}
    chosen = sorted({c.word for c in curves if c.word in rank and rank[c.word] >= from_rank})
    held = [i for i, c in enumerate(curves) if c.word in chosen]
    others = [i for i in range(len(curves)) if i not in set(held)]
    full = load_decoder(model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "en_without.tsv"
        path.write_text("".join(f"{w}\t{f}\n" for w, f in rows if w not in set(chosen)), encoding="utf-8")
        reduced = load_decoder(model, lexicon=str(path))
        before = [c[0].word if c else "" for c in reduced.decode([curves[i] for i in held])]
        start = time.perf_counter()
        reduced.add_words(chosen, frequency)
        added_ms = 1000 * (time.perf_counter() - start)
        assert isinstance(reduced.user_words, UserWords)
        default = np.exp(reduced.user_words.default_log_prob) * 1e9 if frequency is None else frequency
    top = {name: [c[0].word if c else "" for c in decoder.decode(curves)]
           for name, decoder in [("full lexicon", full), ("held out, added back as user words", reduced)]}
    print(f"{len(chosen)} dev words of lexicon rank >= {from_rank} held out ({len(held)} of {len(curves)} "
          f"real swipes); added back in {added_ms:.1f} ms at frequency "
          f"({default:.0f} per billion)")
    not_back = np.mean([before[k] == curves[i].word for k, i in enumerate(held)])
    print(f"held out, not added back: {not_back:.4f} acc@1 on their swipes")
    print("| lexicon | acc@1 held-out words' swipes | acc@1 other swipes |")
    print("| ------- | ---------------------------: | -----------------: |")
    for name, words in top.items():
        on_held = np.mean([words[i] == curves[i].word for i in held])
        on_others = np.mean([words[i] == curves[i].word for i in others])
        print(f"| {name} | {on_held:.4f} | {on_others:.4f} |")
    print("words:", " ".join(chosen))


OUTSIDE_SHARE = 0.03  # of real English swipes, words outside the bundled lexicon


def verbatim(model: str, from_rank: int, limit: int | None) -> None:
    curves = dev_curves(limit)
    rows = lexicon_rows()
    rank = {word: r for r, (word, _) in enumerate(rows)}
    typed = load_decoder(model).verbatim(curves)
    rare = [i for i, c in enumerate(curves) if c.word not in rank or rank[c.word] >= from_rank]
    right = np.array([t == c.word for t, c in zip(typed, curves, strict=True)])
    print(f"the verbatim string (Decoder.verbatim, no lexicon) is the swiped word on {right.mean():.4f} "
          f"of {len(curves)} dev swipes, {right[rare].mean():.4f} of the {len(rare)} swipes of words "
          f"of lexicon rank >= {from_rank} or outside it\n")
    # The verbatim candidate: dev swipes with the full lexicon; the swipes of the dev words of rank
    # >= from_rank with those words held out of the lexicon (so only the verbatim string can be right).
    chosen = {c.word for c in curves if c.word in rank and rank[c.word] >= from_rank}
    held = [i for i, c in enumerate(curves) if c.word in chosen]
    always = VerbatimSettings(lexicon_below=math.inf, verbatim_above=-math.inf)
    full = load_decoder(model, verbatim=always)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "en_without.tsv"
        path.write_text("".join(f"{w}\t{f}\n" for w, f in rows if w not in chosen), encoding="utf-8")
        reduced = load_decoder(model, lexicon=str(path), verbatim=always)
    on_dev = full.decode(curves)
    on_held = reduced.decode([curves[i] for i in held])
    targets = [c.word for c in curves]

    def parts(row: list) -> tuple[float, list[str], tuple[float, str] | None]:
        lexicon = [c for c in row if c.in_lexicon]
        offered = next(((c.score, c.word) for c in row if not c.in_lexicon), None)
        return (lexicon[0].score if lexicon else -math.inf), [c.word for c in lexicon], offered

    dev, out = [parts(r) for r in on_dev], [parts(r) for r in on_held]

    def shown(best: float, words: list[str], offered: tuple[float, str] | None,
              s: VerbatimSettings) -> list[str]:
        if offered is None or best >= s.lexicon_below or offered[0] <= s.verbatim_above:
            return words
        return words[: s.position] + [offered[1]] + words[s.position:]

    def measure(s: VerbatimSettings, dev_i: Sequence[int], held_k: Sequence[int]) -> dict[str, float]:
        d = [shown(*dev[i], s) for i in dev_i]
        h = [shown(*out[k], s) for k in held_k]
        d_targets, h_targets = [targets[i] for i in dev_i], [targets[held[k]] for k in held_k]
        return {"dev acc@1": np.mean([w[:1] == [t] for w, t in zip(d, d_targets, strict=True)]),
                "dev MRR": np.mean([swipe_mrr_score(w, t) for w, t in zip(d, d_targets, strict=True)]),
                "dev offered": np.mean([len(w) > len(dev[i][1]) for w, i in zip(d, dev_i, strict=True)]),
                "held offered": np.mean([len(w) > len(out[k][1]) for w, k in zip(h, held_k, strict=True)]),
                "held right": np.mean([t in w for w, t in zip(h, h_targets, strict=True)]),
                "held MRR": np.mean([swipe_mrr_score(w, t) for w, t in zip(h, h_targets, strict=True)])}

    def value(m: dict[str, float]) -> tuple[float, float]:
        # Swipe MRR of a typist of whom OUTSIDE_SHARE of swipes are words outside the lexicon;
        # between equals, the fewest dev swipes with a verbatim candidate.
        return round((1 - OUTSIDE_SHARE) * m["dev MRR"] + OUTSIDE_SHARE * m["held MRR"], 5), -m["dev offered"]

    grid = [VerbatimSettings(lexicon_below=b, verbatim_above=a)
            for b in (-6.0, -7.0, -8.0, -9.0, -10.0, -11.0, -12.0)
            for a in (-math.inf, -0.5, -0.4, -0.3, -0.25, -0.2, -0.15)]
    off = VerbatimSettings(lexicon_below=-math.inf)
    header = " | ".join(measure(off, [0], [0]))
    print(f"{len(chosen)} dev words of lexicon rank >= {from_rank} held out ({len(held)} swipes); "
          "the verbatim candidate second; each half's best setting checked on the other half")
    print(f"| chosen on | lexicon_below | verbatim_above | on | {header} |")
    print("| --- | ---: | ---: | --- | " + " | ".join("---:" for _ in header.split(" | ")) + " |")
    for name, parity in (("even", 0), ("odd", 1)):
        dev_i = [i for i in range(len(curves)) if i % 2 == parity]
        held_k = [k for k, i in enumerate(held) if i % 2 == parity]
        best = max(grid, key=lambda s: value(measure(s, dev_i, held_k)))
        other_i = [i for i in range(len(curves)) if i % 2 != parity]
        other_k = [k for k, i in enumerate(held) if i % 2 != parity]
        for label, s in (("off", off), ("chosen", best)):
            m = measure(s, other_i, other_k)
            print(f"| {name} half | {best.lexicon_below:g} | {best.verbatim_above:g} | other half, {label} | "
                  + " | ".join(f"{v:.4f}" for v in m.values()) + " |")
    for label, s in (("off", off), ("default", VerbatimSettings())):
        m = measure(s, range(len(curves)), range(len(held)))
        print(f"| all | {VerbatimSettings().lexicon_below:g} | {VerbatimSettings().verbatim_above:g} | "
              f"all, {label} | " + " | ".join(f"{v:.4f}" for v in m.values()) + " |")
    # The decoder itself with the default settings, one swipe at a time (as a keyboard decodes),
    # off and on in turn: accuracy and what the verbatim search costs.
    decoders = {"off": load_decoder(model), "on": load_decoder(model, verbatim=VerbatimSettings())}
    found: dict[str, list] = {"off": [], "on": []}
    ms: dict[str, list[float]] = {"off": [], "on": []}
    for curve in curves:
        for name, decoder in decoders.items():
            start = time.perf_counter()
            found[name] += decoder.decode([curve])
            ms[name].append(1000 * (time.perf_counter() - start))
    print("\n| load_decoder, swipe by swipe | acc@1 | Swipe MRR | verbatim candidates | p50 ms | p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, rows_found in found.items():
        pairs = list(zip([[c.word for c in row] for row in rows_found], targets, strict=True))
        print(f"| verbatim {name} | {np.mean([w[:1] == [t] for w, t in pairs]):.4f} | "
              f"{np.mean([swipe_mrr_score(w, t) for w, t in pairs]):.4f} | "
              f"{sum(not c.in_lexicon for row in rows_found for c in row)} | "
              f"{np.percentile(ms[name], 50):.0f} | {np.percentile(ms[name], 95):.0f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python bench/user_words.py learning --limit 200",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["latency", "learning", "held-out", "verbatim"])
    parser.add_argument("--model", default="en_hws")
    parser.add_argument("--limit", type=int, default=None, help="the first N dev swipes only")
    parser.add_argument("--weights", default="0,0.05", help="learning: learn weights, 0 = no learning")
    parser.add_argument("--decay", type=float, default=LearnSettings().decay)
    parser.add_argument("--from-rank", type=int, default=5000, help="held-out: lowest lexicon rank held out")
    parser.add_argument("--frequency", type=float, default=None,
                        help="held-out: add the words back at this frequency per billion")
    args = parser.parse_args(argv)
    if args.what == "latency":
        latency(args.model)
    elif args.what == "learning":
        learning(args.model, args.limit, [float(w) for w in args.weights.split(",")], args.decay)
    elif args.what == "verbatim":
        verbatim(args.model, args.from_rank, args.limit)
    else:
        held_out(args.model, args.from_rank, args.limit, args.frequency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
