"""Build the bundled word lists from the ``wordfreq`` package (a data-preparation tool).

Regenerate the committed lexicons with::

    pip install wordfreq==3.1.1
    python -m swipe.make_lexicon --overwrite            # en and ru, 50,000 words each
    python -m swipe.make_lexicon --language en --size 80000 --out my_en.tsv
    python -m swipe.make_lexicon --language de --layouts-file de_grids.json --out de.tsv   # a new language

For each language the ``size`` most frequent words are kept, normalised with
:func:`swipe.keyboard.normalize_label` (lower case, look-alikes folded) and restricted to words
typeable on the language's layouts (English: ``a``-``z`` of ``hws_fitted`` / ``qwerty_en``; Russian:
the letters of the Yandex ``default`` / ``extra`` layouts, ``ё`` and ``ъ`` included; another
language, given by its wordfreq code: the letters of the layouts in ``--layouts-file``). English
apostrophes are dropped (``don't`` -> ``dont``, as swipe keyboards type it); words that become equal
have their frequencies summed. A language built with ``--layouts-file`` drops apostrophes as
English does. Each output line is ``word<TAB>frequency`` with the frequency in
occurrences per billion words, most frequent first.

Only this tool imports ``wordfreq``; nothing in the package needs it at run time. wordfreq is
Apache-2.0 code; its word frequency data is CC BY-SA 4.0 (see the header of each output file).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from swipe.cli import command_line
from swipe.keyboard import Layout, LayoutError, bundled_layout, load_layouts_file, normalize_label


class LanguageSpec(NamedTuple):
    """How to build one language's lexicon."""

    wordfreq_code: str
    layouts: tuple[Layout, ...]
    extra_letters: str  # letters typed on another key of some layout (``ъ`` on ``ь``)
    drop_chars: str  # characters removed from words before filtering


def _bundled(*names: str) -> tuple[Layout, ...]:
    return tuple(bundled_layout(name) for name in names)


LANGUAGES = {
    "en": LanguageSpec("en", _bundled("hws_fitted", "qwerty_en"), "", "'\u2019"),
    "ru": LanguageSpec("ru", _bundled("default", "extra"), "\u0451\u044a", ""),
}


def language_spec(language: str, layouts_file: Path | None = None) -> LanguageSpec:
    """The spec of a bundled language (``en``, ``ru``), or of any other wordfreq language typed on
    the layouts of ``layouts_file`` (a grids file, as ``Layout.from_rows`` makes them); for a
    bundled language ``layouts_file`` replaces its layouts and keeps its other rules."""
    if layouts_file is not None:
        layouts = tuple(load_layouts_file(layouts_file).values())
        if not layouts:
            raise LayoutError(f"{layouts_file}: no layouts")
        bundled = LANGUAGES.get(language)
        if bundled is not None:
            return bundled._replace(layouts=layouts)
        return LanguageSpec(language, layouts, "", "'\u2019")
    if language not in LANGUAGES:
        raise LayoutError(
            f"language {language!r} has no bundled layouts ({', '.join(sorted(LANGUAGES))} have): "
            "pass --layouts-file with the layouts it is typed on"
        )
    return LANGUAGES[language]

DEFAULT_SIZE = 50_000
RESOURCE_DIR = Path(__file__).resolve().parent / "resources" / "lexicons"

HEADER = """\
# {language} word list: {count} words, most frequent first; columns: word<TAB>occurrences per billion words.
# Made by `python -m swipe.make_lexicon --language {language} --size {size}` from wordfreq {version}
# (top_n_list / word_frequency, wordlist "best"). wordfreq code: Apache-2.0; its word frequency data:
# CC BY-SA 4.0, (c) Robyn Speer and contributors, https://github.com/rspeer/wordfreq. This list is a
# derived work under the same CC BY-SA 4.0 licence.
"""


def alphabet(spec: LanguageSpec) -> set[str]:
    """The letters (not punctuation keys) a lexicon of this language may use."""
    letters = set(spec.extra_letters)
    for layout in spec.layouts:
        letters.update(layout.letters)
    return {ch for ch in letters if ch.isalpha()}


def clean_words(
    ranked: Iterable[tuple[str, float]], letters: set[str], drop_chars: str, size: int
) -> list[tuple[str, float]]:
    """Normalise, filter and merge ``(word, frequency)`` pairs given most frequent first.

    Returns at most ``size`` pairs sorted by decreasing frequency (ties alphabetically).
    """
    merged: dict[str, float] = {}
    for raw, freq in ranked:
        word = normalize_label(raw)
        for ch in drop_chars:
            word = word.replace(ch, "")
        if word and all(ch in letters for ch in word):
            merged[word] = merged.get(word, 0.0) + freq
    return sorted(merged.items(), key=lambda item: (-item[1], item[0]))[:size]


def build_lexicon_file(language: str, size: int, out: Path, overwrite: bool,
                       layouts_file: Path | None = None) -> int:
    """Write one language's list to ``out``; returns the number of words written."""
    spec = language_spec(language, layouts_file)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    try:
        import wordfreq  # data-preparation dependency only
    except ModuleNotFoundError:
        raise ModuleNotFoundError("making lexicons needs wordfreq: pip install wordfreq==3.1.1") from None
    # Ask for more words than needed: numbers, punctuation and foreign letters are dropped.
    candidates = wordfreq.top_n_list(spec.wordfreq_code, size * 2, wordlist="best")
    ranked = ((w, wordfreq.word_frequency(w, spec.wordfreq_code, wordlist="best")) for w in candidates)
    words = clean_words(ranked, alphabet(spec), spec.drop_chars, size)
    version = importlib.metadata.version("wordfreq")
    lines = [HEADER.format(language=language, count=len(words), size=size, version=version)]
    lines += [f"{w}\t{max(1, round(f * 1e9))}\n" for w, f in words]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(out)
    return len(words)


@command_line("python -m swipe.make_lexicon")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swipe.make_lexicon",
        description="Build the bundled word lists from the wordfreq package (a data-preparation tool).",
        epilog="examples (after pip install wordfreq==3.1.1):\n"
        "  python -m swipe.make_lexicon --overwrite            # en and ru, 50,000 words each\n"
        "  python -m swipe.make_lexicon --language en --size 80000 --out my_en.tsv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", action="append",
                        help="language to build, a wordfreq code (repeatable; default: the bundled "
                        f"{', '.join(sorted(LANGUAGES))})")
    parser.add_argument("--layouts-file", type=Path,
                        help="grids file of the layouts the language is typed on: its lexicon keeps the "
                        "words typeable on them (needed for a language other than the bundled ones)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="words per lexicon")
    parser.add_argument("--out", type=Path,
                        help="output file (one language only; default: swipe/resources/lexicons/<lang>.tsv)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    languages = args.language or sorted(LANGUAGES)
    if args.out is not None and len(languages) != 1:
        parser.error("--out needs exactly one --language")
    if args.layouts_file is not None and len(languages) != 1:
        parser.error("--layouts-file needs exactly one --language")
    for language in languages:
        out = args.out or RESOURCE_DIR / f"{language}.tsv"
        try:
            count = build_lexicon_file(language, args.size, out, args.overwrite, args.layouts_file)
        except (FileExistsError, ModuleNotFoundError, LayoutError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{language}: {count} words -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
