"""Logits processors: functions of the next-token log-probabilities of a set of hypotheses.

A processor is called once per decoding step with

- ``log_probs``: ``(N, V)`` float next-token log-probabilities of ``N`` hypotheses,
- ``tokens``: ``(N, t)`` int64 tokens generated so far (no ``<sos>``),
- ``nodes``: ``(N,)`` int64 lexicon-trie node of each hypothesis (-1 without a lexicon),

and returns the adjusted ``(N, V)`` scores (``-inf`` forbids a token). Processors are applied
after ``log_softmax``, so a hypothesis' score is its model log-probability plus whatever the
processors add.
"""

from __future__ import annotations

from typing import Iterable, Protocol

import torch
from torch import Tensor

from swipe.decoding.trie import LexiconTrie

# -inf as a 0-dim tensor: `torch.where` then need not wrap a Python float at every step.
_NEG_INF = torch.tensor(float("-inf"))


class LogitsProcessor(Protocol):
    """Adjusts the next-token scores of a batch of hypotheses."""

    def __call__(self, log_probs: Tensor, tokens: Tensor, nodes: Tensor) -> Tensor: ...


class IdentityProcessor:
    """Leaves the scores unchanged (decoding without a lexicon)."""

    def __call__(self, log_probs: Tensor, tokens: Tensor, nodes: Tensor) -> Tensor:
        return log_probs


class VocabularyMaskProcessor:
    """Forbids every token that does not continue a hypothesis towards a lexicon word.

    ``<eos>`` is allowed exactly where the hypothesis spells a whole word.

    Parameters
    ----------
    trie : LexiconTrie
        The lexicon.
    """

    def __init__(self, trie: LexiconTrie) -> None:
        self.trie = trie

    def __call__(self, log_probs: Tensor, tokens: Tensor, nodes: Tensor) -> Tensor:
        allowed = self.trie.allowed_tokens(nodes).to(log_probs.device)
        return torch.where(allowed, log_probs, _NEG_INF)


class WordFrequencyPrior:
    """Adds ``weight`` times the log relative frequency of the word a hypothesis is heading for.

    The prior is spread over the steps with a look-ahead: each token adds the change of the best
    word log-frequency reachable below the hypothesis' trie node, so a finished word has received
    exactly ``weight * log(frequency / total)``. Tokens leaving the lexicon get ``-inf``.

    Parameters
    ----------
    trie : LexiconTrie
        The lexicon with its frequencies.
    weight : float
        Scale of the prior; 0 leaves scores unchanged.
    """

    def __init__(self, trie: LexiconTrie, weight: float) -> None:
        if not weight >= 0.0:
            raise ValueError(f"prior weight must be >= 0, got {weight}")
        self.trie = trie
        self.weight = float(weight)

    def __call__(self, log_probs: Tensor, tokens: Tensor, nodes: Tensor) -> Tensor:
        if self.weight == 0.0:
            return log_probs
        increments = self.trie.prior_increments(nodes).to(log_probs.device, log_probs.dtype)
        return log_probs + self.weight * increments


class LogitsProcessorList(list):
    """Applies its processors in order."""

    def __init__(self, processors: Iterable[LogitsProcessor] = ()) -> None:
        super().__init__(processors)

    def __call__(self, log_probs: Tensor, tokens: Tensor, nodes: Tensor) -> Tensor:
        for processor in self:
            log_probs = processor(log_probs, tokens, nodes)
        return log_probs


def check_prior_has_lexicon(trie: LexiconTrie | None, prior_weight: float) -> None:
    """Refuse a word-frequency prior without a lexicon to take the frequencies from."""
    if trie is None and prior_weight != 0.0:
        raise ValueError("a word-frequency prior (prior_weight > 0) needs a lexicon")


def lexicon_processors(trie: LexiconTrie | None, prior_weight: float) -> LogitsProcessorList:
    """The standard processors: vocabulary masking and the frequency prior where a lexicon is
    given, the identity otherwise (a positive prior weight then is an error)."""
    check_prior_has_lexicon(trie, prior_weight)
    if trie is None:
        return LogitsProcessorList([IdentityProcessor()])
    processors: list[LogitsProcessor] = [VocabularyMaskProcessor(trie)]
    if prior_weight != 0.0:
        processors.append(WordFrequencyPrior(trie, prior_weight))
    return LogitsProcessorList(processors)


__all__ = [
    "IdentityProcessor",
    "LogitsProcessor",
    "LogitsProcessorList",
    "VocabularyMaskProcessor",
    "WordFrequencyPrior",
    "check_prior_has_lexicon",
    "lexicon_processors",
]
