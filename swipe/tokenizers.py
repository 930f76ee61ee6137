"""Character tokenizer for target words.

Token ids are laid out so that the model's output layer covers exactly the tokens it may emit::

    0            <eos>
    1 .. n       the alphabet's characters
    n + 1        <sos>   (decoder input only, never emitted)
    n + 2        <pad>   (never emitted, ignored by the loss)

so an output logit index equals the token id, and ``num_output_tokens = n + 1``.
Character ids ``1 .. n`` fit in ``uint8`` for alphabets of up to 253 characters.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from swipe.keyboard import Layout, normalize_label


class TokenizerError(ValueError):
    """A word holds a character the tokenizer does not know."""


class CharTokenizer:
    """Maps normalised words to token ids and back.

    Parameters
    ----------
    alphabet : str
        The characters words may contain, each once; normalised with
        :func:`swipe.keyboard.normalize_label`.
    """

    eos_id = 0

    def __init__(self, alphabet: str) -> None:
        chars = [normalize_label(c) for c in alphabet]
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise TokenizerError(f"alphabet {alphabet!r} must hold distinct single characters")
        if not 0 < len(chars) <= 253:
            raise TokenizerError(f"alphabet must hold 1 to 253 characters, got {len(chars)}")
        self.alphabet = "".join(chars)
        self._ids = {c: i + 1 for i, c in enumerate(chars)}
        self.sos_id = len(chars) + 1
        self.pad_id = len(chars) + 2

    @classmethod
    def from_layouts(cls, layouts: Iterable[Layout]) -> CharTokenizer:
        """The union of the letters typed by ``layouts``, in order of first appearance."""
        seen: dict[str, None] = {}
        for layout in layouts:
            for ch in layout.letters:
                if ch.isalpha() or ch in "'-":
                    seen.setdefault(ch, None)
        return cls("".join(seen))

    @property
    def num_output_tokens(self) -> int:
        """Size of the model's output layer: ``<eos>`` and the characters."""
        return len(self.alphabet) + 1

    @property
    def vocab_size(self) -> int:
        """Size of the decoder's input embedding: all ids including ``<sos>`` and ``<pad>``."""
        return len(self.alphabet) + 3

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.alphabet == other.alphabet

    def __repr__(self) -> str:
        return f"CharTokenizer({self.alphabet!r})"

    def can_encode(self, word: str) -> bool:
        return all(c in self._ids for c in normalize_label(word))

    def encode(self, word: str) -> list[int]:
        """Character ids of ``word`` (normalised), without ``<sos>``/``<eos>``."""
        try:
            return [self._ids[c] for c in normalize_label(word)]
        except KeyError as err:
            raise TokenizerError(f"word {word!r} has character {err.args[0]!r} not in the alphabet") from None

    def decode(self, ids: Sequence[int]) -> str:
        """The word spelled by ``ids``, stopping at ``<eos>`` and skipping ``<sos>``/``<pad>``."""
        chars = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if 1 <= i <= len(self.alphabet):
                chars.append(self.alphabet[i - 1])
        return "".join(chars)

    def to_dict(self) -> dict[str, Any]:
        return {"alphabet": self.alphabet}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        return cls(data["alphabet"])
