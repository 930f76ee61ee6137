"""Word lists with frequencies: the vocabulary of decoders and of the synthetic generator.

A lexicon file is UTF-8 text, one ``word<TAB>frequency`` a line; lines starting with ``#`` and
blank lines are ignored. Frequencies are non-negative numbers in any unit (the bundled lists use
occurrences per billion words). Words are normalised with :func:`swipe.keyboard.normalize_label`.

Bundled lists (``swipe/resources/lexicons/``, made by ``python -m swipe.make_lexicon`` from
wordfreq, CC BY-SA 4.0): ``en`` and ``ru``, 50,000 words each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from swipe.keyboard import normalize_label

BUNDLED_LEXICONS = ("en", "ru")


class LexiconError(ValueError):
    """A lexicon file is malformed or cannot be found."""


@dataclass(frozen=True, eq=False)
class Lexicon:
    """Words and their frequencies, most frequent first in the bundled lists.

    Parameters
    ----------
    words : sequence of str
        Distinct, non-empty, normalised words.
    frequencies : array-like of float
        One non-negative finite frequency per word; stored as a read-only ``float64`` array.
    name : str
        Where the lexicon came from (a bundled name or a file path), for messages.
    """

    words: list[str]
    frequencies: np.ndarray
    name: str = ""
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        words = list(self.words)
        freqs = np.array(self.frequencies, dtype=np.float64).reshape(-1)
        if len(words) != len(freqs):
            raise LexiconError(f"lexicon {self.name!r}: {len(words)} words but {len(freqs)} frequencies")
        if not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
            raise LexiconError(f"lexicon {self.name!r}: frequencies must be finite and non-negative")
        index: dict[str, int] = {}
        for i, word in enumerate(words):
            if not isinstance(word, str) or not word:
                raise LexiconError(f"lexicon {self.name!r}: word {i} is empty or not a string")
            if word in index:
                raise LexiconError(f"lexicon {self.name!r}: duplicate word {word!r}")
            index[word] = i
        freqs.flags.writeable = False
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "frequencies", freqs)
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __repr__(self) -> str:
        return f"Lexicon({self.name!r}, {len(self)} words)"

    def index(self, word: str) -> int:
        """Position of ``word``; ``KeyError`` if it is not in the lexicon."""
        return self._index[word]

    @cached_property
    def probabilities(self) -> np.ndarray:
        """Frequencies normalised to sum to 1 (uniform if they are all zero)."""
        total = float(self.frequencies.sum())
        if total <= 0:
            probs = np.full(len(self), 1.0 / max(1, len(self)))
        else:
            probs = self.frequencies / total
        probs.flags.writeable = False
        return probs

    def log_probabilities(self) -> np.ndarray:
        """Natural log of :attr:`probabilities` (``-inf`` for zero frequencies)."""
        with np.errstate(divide="ignore"):
            return np.log(self.probabilities)

    def filter(self, keep: Sequence[bool] | np.ndarray) -> Lexicon:
        """A new lexicon with the words where ``keep`` is true, in the same order."""
        mask = np.asarray(keep, dtype=bool)
        if mask.shape != (len(self),):
            raise ValueError(f"keep has shape {mask.shape}, expected ({len(self)},)")
        words = [w for w, k in zip(self.words, mask, strict=True) if k]
        return Lexicon(words, self.frequencies[mask], self.name)


def parse_lexicon(text: str, source: str) -> Lexicon:
    """Parse lexicon file contents; errors name ``source`` and the line.

    Repeated words (also after normalisation) are an error.
    """
    words: list[str] = []
    freqs: list[float] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise LexiconError(f"{source}:{lineno}: expected 'word<TAB>frequency', got {line!r}")
        raw_word, raw_freq = parts[0].strip(), parts[1].strip()
        word = normalize_label(raw_word)
        if not word or any(ch.isspace() for ch in word):
            raise LexiconError(f"{source}:{lineno}: invalid word {raw_word!r}")
        try:
            freq = float(raw_freq)
        except ValueError:
            raise LexiconError(f"{source}:{lineno}: frequency {raw_freq!r} is not a number") from None
        if not math.isfinite(freq) or freq < 0:
            raise LexiconError(f"{source}:{lineno}: frequency {raw_freq!r} must be finite and >= 0")
        if word in seen:
            raise LexiconError(f"{source}:{lineno}: word {word!r} repeats line {seen[word]}")
        seen[word] = lineno
        words.append(word)
        freqs.append(freq)
    if not words:
        raise LexiconError(f"{source}: no words")
    return Lexicon(words, np.array(freqs, dtype=np.float64), source)


_bundled_cache: dict[str, Lexicon] = {}


def load_lexicon(name_or_path: str | Path) -> Lexicon:
    """Load a bundled lexicon (``"en"``, ``"ru"``) or a lexicon file.

    Parameters
    ----------
    name_or_path : str or Path
        A bundled name, or the path of a ``word<TAB>frequency`` file.

    Raises
    ------
    LexiconError
        The file is missing or malformed (the message names the file and line).
    """
    if isinstance(name_or_path, str) and name_or_path in BUNDLED_LEXICONS:
        if name_or_path not in _bundled_cache:
            resource = resources.files("swipe.resources").joinpath(f"lexicons/{name_or_path}.tsv")
            _bundled_cache[name_or_path] = parse_lexicon(resource.read_text("utf-8"), name_or_path)
        return _bundled_cache[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        bundled = ", ".join(BUNDLED_LEXICONS)
        raise LexiconError(f"no lexicon {str(name_or_path)!r}: not a file and not a bundled name ({bundled})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LexiconError(f"{path}: cannot read lexicon: {err}") from None
    return parse_lexicon(text, str(path))
