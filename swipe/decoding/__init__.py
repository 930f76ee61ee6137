"""Vocabulary-constrained decoding: the lexicon trie, logits processors, stopping criteria and the
greedy and beam-search generators."""

from swipe.decoding.generators import (
    GENERATORS,
    BeamOptions,
    BeamSearchGenerator,
    Candidate,
    GeneratorError,
    GreedyGenerator,
    GreedyOptions,
    build_generator,
    generator_options,
    score_words,
)
from swipe.decoding.processors import (
    IdentityProcessor,
    LogitsProcessor,
    LogitsProcessorList,
    VocabularyMaskProcessor,
    WordFrequencyPrior,
)
from swipe.decoding.stopping import (
    AllBeamsFinishedCriteria,
    MaxLengthCriteria,
    StoppingCriteria,
    StoppingCriteriaList,
)
from swipe.decoding.trie import LexiconTrie

__all__ = [
    "GENERATORS",
    "AllBeamsFinishedCriteria",
    "BeamOptions",
    "BeamSearchGenerator",
    "Candidate",
    "GeneratorError",
    "GreedyGenerator",
    "GreedyOptions",
    "IdentityProcessor",
    "LexiconTrie",
    "LogitsProcessor",
    "LogitsProcessorList",
    "MaxLengthCriteria",
    "StoppingCriteria",
    "StoppingCriteriaList",
    "VocabularyMaskProcessor",
    "WordFrequencyPrior",
    "build_generator",
    "generator_options",
    "score_words",
]
