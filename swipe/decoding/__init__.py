"""Decoding: the one pipeline every decoder runs, and the lexicon trie, logits processors, stopping
criteria and PyTorch generators that training validation uses.

- :mod:`swipe.decoding.pipeline` (numpy only, never torch): preprocessing, the beam search, the
  keyboard-width views, template candidates and template rescoring, over a :class:`Backend`;
- :mod:`swipe.decoding.torch_backend`: that backend for a PyTorch model;
- :mod:`swipe.runtime`: that backend for an ONNX folder.

Names are imported on first use, so ``import swipe.decoding.pipeline`` never imports torch.
"""

from __future__ import annotations

from swipe.lazy import lazy_names

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


__getattr__ = lazy_names(__name__, _WHERE)
