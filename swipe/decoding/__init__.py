"""Decoding: the one pipeline every decoder runs, and the lexicon trie, logits processors, stopping
criteria and PyTorch generators that training validation uses.

- :mod:`swipe.decoding.pipeline` (numpy only, never torch): preprocessing, the beam search, the
  keyboard-width views, template candidates and template rescoring, over a :class:`Backend`;
- :mod:`swipe.decoding.torch_backend`: that backend for a PyTorch model;
- :mod:`swipe.runtime`: that backend for an ONNX folder.

Names are imported on first use, so ``import swipe.decoding.pipeline`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "GENERATORS": "generators",
    "BeamOptions": "generators",
    "BeamSearchGenerator": "generators",
    "Candidate": "generators",
    "GeneratorError": "generators",
    "GreedyGenerator": "generators",
    "GreedyOptions": "generators",
    "build_generator": "generators",
    "generator_options": "generators",
    "score_words": "generators",
    "IdentityProcessor": "processors",
    "LogitsProcessor": "processors",
    "LogitsProcessorList": "processors",
    "VocabularyMaskProcessor": "processors",
    "WordFrequencyPrior": "processors",
    "AllBeamsFinishedCriteria": "stopping",
    "MaxLengthCriteria": "stopping",
    "StoppingCriteria": "stopping",
    "StoppingCriteriaList": "stopping",
    "LexiconTrie": "trie",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'swipe.decoding' has no attribute {name!r}")
    return getattr(importlib.import_module(f"swipe.decoding.{_WHERE[name]}"), name)
