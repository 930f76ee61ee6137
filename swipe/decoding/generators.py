"""Generators: turn encoded swipes into ranked candidate words.

Both generators decode many curves at once and call the model's incremental
``decode_step`` (a key/value cache or recurrent state carried in a ``DecoderState``), so no step
ever re-runs the decoder over the whole prefix. Next-token log-probabilities go through
:mod:`~swipe.decoding.processors` (lexicon masking, frequency prior) and the search ends by
:mod:`~swipe.decoding.stopping` criteria.

A finished candidate's score is ``total / length ** length_penalty``, where ``total`` is the sum of
its processed token scores (model log-probability plus ``prior_weight`` times the word's log
relative frequency) and ``length`` counts its tokens including ``<eos>``.

Generators are built by name with typed, strictly checked options::

    generator = build_generator("beam", {"beam_size": 8}, model, tokenizer, trie)
    candidates = generator.generate(swipe, swipe_pad_mask)   # [[(score, word), ...], ...]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, NamedTuple, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from swipe.batch import SwipeBatch
from swipe.config import ConfigError, from_dict
from swipe.decoding.processors import LogitsProcessorList, check_prior_has_lexicon, lexicon_processors
from swipe.decoding.stopping import AllBeamsFinishedCriteria, MaxLengthCriteria, StoppingCriteriaList
from swipe.decoding.trie import LexiconTrie
from swipe.tokenizers import CharTokenizer, TokenizerError

# Longest output (tokens, <eos> included) when there is no lexicon to bound it.
DEFAULT_MAX_LENGTH = 40

Candidate = tuple[float, str]
"""A scored word: ``(score, word)``; higher scores are better."""


class DecoderStepLike(Protocol):
    logits: Tensor
    state: Any


class IncrementalModel(Protocol):
    """What generators need from a model (see ``swipe.models.EncoderDecoder.decode_step``): the
    memory has one row per curve, the tokens one per hypothesis, grouped by curve, and the state
    has ``select(beam_indices)`` (``-1`` for an empty slot, whose next logits are never read)
    and ``select_curves(curve_indices)``; :func:`score_words` also uses the teacher-forced
    ``decode``."""

    def encode(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> Tensor: ...

    def decode_step(
        self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: Any
    ) -> DecoderStepLike: ...

    def decode(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor: ...


class GeneratorError(ValueError):
    """Unknown generator, or invalid options for one."""


# ---- options -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GreedyOptions:
    """Options of the ``greedy`` generator.

    Attributes
    ----------
    prior_weight : float
        Weight of the word-frequency prior (needs a lexicon); 0 disables it.
    length_penalty : float
        Exponent of the length normalisation of the final score.
    max_length : int or None
        Most tokens to generate, ``<eos>`` included; None: the longest lexicon word + 1, or
        40 without a lexicon.
    """

    prior_weight: float = 0.0
    length_penalty: float = 0.5
    max_length: int | None = None

    def __post_init__(self) -> None:
        _check_common(self.prior_weight, self.length_penalty, self.max_length)


@dataclass(frozen=True)
class BeamOptions:
    """Options of the ``beam`` generator.

    Attributes
    ----------
    beam_size : int
        Hypotheses kept per curve; a hypothesis that ends a word leaves the beam, which shrinks.
    num_candidates : int or None
        Candidates returned per curve (at most ``beam_size``); None: ``beam_size``.
    prior_weight, length_penalty, max_length
        As for :class:`GreedyOptions`.
    """

    beam_size: int = 8
    num_candidates: int | None = None
    prior_weight: float = 0.0
    length_penalty: float = 0.5
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.num_candidates is not None and not 1 <= self.num_candidates <= self.beam_size:
            raise ValueError(
                f"num_candidates must be between 1 and beam_size ({self.beam_size}), "
                f"got {self.num_candidates}"
            )
        _check_common(self.prior_weight, self.length_penalty, self.max_length)


def _check_common(prior_weight: float, length_penalty: float, max_length: int | None) -> None:
    if not (math.isfinite(prior_weight) and prior_weight >= 0.0):
        raise ValueError(f"prior_weight must be finite and >= 0, got {prior_weight}")
    if not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be finite, got {length_penalty}")
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")


# ---- generators ----------------------------------------------------------------------------------


class _Search(NamedTuple):
    """What both generators set up from their options."""

    processors: LogitsProcessorList
    stopping: StoppingCriteriaList


def _setup(
    trie: LexiconTrie | None, prior_weight: float, max_length: int | None
) -> _Search:
    return _Search(
        lexicon_processors(trie, prior_weight),
        StoppingCriteriaList([MaxLengthCriteria(_max_length(trie, max_length)), AllBeamsFinishedCriteria()]),
    )


def _max_length(trie: LexiconTrie | None, max_length: int | None) -> int:
    """The search's longest output in tokens: ``max_length``, else the lexicon's longest word + 1."""
    if max_length is not None:
        return max_length
    return trie.max_word_length + 1 if trie is not None else DEFAULT_MAX_LENGTH


@torch.inference_mode()
def score_words(
    model: IncrementalModel,
    tokenizer: CharTokenizer,
    trie: LexiconTrie | None,
    options: GreedyOptions | BeamOptions,
    swipe: SwipeBatch,
    swipe_pad_mask: Tensor,
    words: Sequence[Sequence[str]],
) -> list[list[Candidate]]:
    """The scores a search with ``options`` gives words ``words[c]`` of curve ``c``, best first.

    Each word is scored as if a search had found it: the model's log-probabilities of its tokens
    and ``<eos>`` (one teacher-forced pass for all words), plus ``prior_weight`` times its log
    relative frequency, normalised by its length as the generators normalise; equal to a search's
    score up to float rounding (about 1e-5: the search adds its terms step by step). Words no
    search with these settings can output are left out: outside the lexicon or the tokenizer's
    alphabet, or longer than the search's ``max_length`` tokens.
    """
    check_prior_has_lexicon(trie, options.prior_weight)
    max_length = _max_length(trie, options.max_length)
    pairs = []  # (curve, word, token ids) of every word a search could output
    for c, curve_words in enumerate(words):
        for word in dict.fromkeys(curve_words):
            ids = _spelling(tokenizer, word)
            if ids and len(ids) + 1 <= max_length and (trie is None or word in trie):
                pairs.append((c, word, ids))
    results: list[list[Candidate]] = [[] for _ in words]
    if not pairs:
        return results
    memory = model.encode(swipe, swipe_pad_mask)
    length = max(len(ids) for _, _, ids in pairs) + 1
    inputs = torch.full((len(pairs), length), tokenizer.pad_id, dtype=torch.int64)
    targets = torch.full((len(pairs), length), tokenizer.eos_id, dtype=torch.int64)
    for p, (_, _, ids) in enumerate(pairs):
        inputs[p, : len(ids) + 1] = torch.tensor([tokenizer.sos_id, *ids])
        targets[p, : len(ids)] = torch.tensor(ids)
    rows = torch.tensor([c for c, _, _ in pairs], device=memory.device)
    inputs = inputs.to(memory.device)
    logits = model.decode(
        inputs, memory.index_select(0, rows), swipe_pad_mask.index_select(0, rows), inputs == tokenizer.pad_id
    )
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    token_log_probs = log_probs.gather(2, targets.to(logits.device)[:, :, None])[:, :, 0].double().cpu()
    prior = np.zeros(len(pairs))
    if trie is not None and options.prior_weight:
        prior = options.prior_weight * trie.word_log_probs_of([word for _, word, _ in pairs])
    for p, (c, word, ids) in enumerate(pairs):
        total = float(token_log_probs[p, : len(ids) + 1].sum()) + float(prior[p])
        results[c].append((_normalise(total, len(ids) + 1, options.length_penalty), word))
    for row in results:
        row.sort(key=lambda candidate: -candidate[0])
    return results


def _spelling(tokenizer: CharTokenizer, word: str) -> list[int]:
    """``word``'s token ids, empty where the tokenizer cannot spell it."""
    try:
        return tokenizer.encode(word)
    except TokenizerError:
        return []


def _normalise(score: float, length: int, length_penalty: float) -> float:
    return score / (length**length_penalty) if length_penalty else score


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest values of each row and their column indices, best first; ties go to the
    lower index (a stable sort), and rows narrower than ``k`` are padded with ``-inf`` at index 0."""
    index = np.argsort(-values, axis=1, kind="stable")[:, :k]
    top = values[np.arange(len(values))[:, None], index]
    if index.shape[1] < k:
        missing = k - index.shape[1]
        top = np.concatenate([top, np.full((len(values), missing), -math.inf)], axis=1)
        index = np.concatenate([index, np.zeros((len(values), missing), dtype=index.dtype)], axis=1)
    return top, index


class GreedyGenerator:
    """Picks the best-scoring token at every step: one candidate per curve.

    Parameters
    ----------
    model : IncrementalModel
        An encoder-decoder with ``encode`` and ``decode_step``.
    tokenizer : CharTokenizer
        The model's tokenizer.
    options : GreedyOptions
        Search options.
    trie : LexiconTrie, optional
        Restricts outputs to its words.
    """

    name = "greedy"
    num_candidates = 1  # candidates per curve, as BeamSearchGenerator.num_candidates

    def __init__(
        self,
        model: IncrementalModel,
        tokenizer: CharTokenizer,
        options: GreedyOptions,
        trie: LexiconTrie | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.trie = trie
        self.processors, self.stopping = _setup(trie, options.prior_weight, options.max_length)

    @torch.inference_mode()
    def generate(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> list[list[Candidate]]:
        """Decode a batch of curves.

        Returns
        -------
        list of list of (float, str)
            Per curve, its candidate (none if the search hit ``max_length`` first).
        """
        memory = self.model.encode(swipe, swipe_pad_mask)
        device = memory.device
        b = memory.size(0)
        eos = self.tokenizer.eos_id
        results: list[list[Candidate]] = [[] for _ in range(b)]
        rows = torch.arange(b)  # curve of each live hypothesis
        nodes = torch.zeros(b, dtype=torch.int64) if self.trie is not None else torch.full((b,), -1)
        tokens = torch.zeros(b, 0, dtype=torch.int64)
        scores = torch.zeros(b, dtype=torch.float64)
        last = torch.full((b,), self.tokenizer.sos_id, dtype=torch.int64, device=device)
        mem, mem_mask, state = memory, swipe_pad_mask, None
        num_tokens = 0
        while len(rows):
            step = self.model.decode_step(last, mem, mem_mask, state)
            log_probs = torch.log_softmax(step.logits.float(), dim=-1)
            log_probs = self.processors(log_probs, tokens, nodes).cpu()
            best, token = log_probs.max(dim=-1)
            scores = scores + best.double()
            num_tokens += 1
            tokens = torch.cat([tokens, token.unsqueeze(1)], dim=1)
            ended = (token == eos) & torch.isfinite(best)
            for i in ended.nonzero().flatten().tolist():
                total = float(scores[i])
                score = _normalise(total, num_tokens, self.options.length_penalty)
                results[int(rows[i])] = [(score, self.tokenizer.decode(tokens[i].tolist()))]
            alive = torch.isfinite(best) & ~ended
            done = torch.from_numpy(self.stopping(num_tokens, alive.numpy().astype(np.int64)))
            keep = (alive & ~done).nonzero().flatten()
            if len(keep) == 0:
                break
            rows, tokens, scores, token = rows[keep], tokens[keep], scores[keep], token[keep]
            if self.trie is not None:
                nodes = self.trie.step(nodes[keep], token)
            else:
                nodes = nodes[keep]
            keep_d = keep.to(device)
            state = step.state.select_curves(keep_d)
            mem, mem_mask = mem.index_select(0, keep_d), mem_mask.index_select(0, keep_d)
            last = token.to(device)
        return results


class BeamSearchGenerator:
    """Beam search over many curves at once, with unique candidate words per curve.

    Every step expands each live hypothesis by every token, keeps per curve the
    ``beam_size - finished`` best expansions (by total score), and moves those ending in
    ``<eos>`` to the curve's finished words, so the beam shrinks as words are found. A curve's
    search ends when all its beams have finished (or ``max_length`` is reached); its finished
    words are then ranked by their length-normalised score.

    Parameters
    ----------
    model : IncrementalModel
        An encoder-decoder with ``encode`` and ``decode_step``.
    tokenizer : CharTokenizer
        The model's tokenizer.
    options : BeamOptions
        Search options.
    trie : LexiconTrie, optional
        Restricts outputs to its words.
    """

    name = "beam"

    def __init__(
        self,
        model: IncrementalModel,
        tokenizer: CharTokenizer,
        options: BeamOptions,
        trie: LexiconTrie | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.trie = trie
        self.processors, self.stopping = _setup(trie, options.prior_weight, options.max_length)
        self.num_candidates = options.num_candidates or options.beam_size

    @torch.inference_mode()
    def generate(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> list[list[Candidate]]:
        """Decode a batch of curves.

        Returns
        -------
        list of list of (float, str)
            Per curve, up to ``num_candidates`` unique words, best first.
        """
        memory = self.model.encode(swipe, swipe_pad_mask)
        device = memory.device
        b, k = memory.size(0), self.options.beam_size
        eos, length_penalty = self.tokenizer.eos_id, self.options.length_penalty
        finished: list[list[tuple[float, int, str]]] = [[] for _ in range(b)]
        # Hypotheses live in slots: `width` rows per active curve (1 at the first step, then at
        # most beam_size), which is how decode_step groups them: the memory (one row per curve)
        # only changes when finished curves are dropped. Empty slots score -inf and are never
        # chosen.
        curves = np.arange(b)  # the active curves
        budget = [k] * b  # per active curve, the beam slots not used by finished words
        width = 1
        nodes = np.full(b, 0 if self.trie is not None else -1, dtype=np.int64)
        tokens = np.zeros((b, 0), dtype=np.int64)
        scores = np.zeros(b)
        last = torch.full((b,), self.tokenizer.sos_id, dtype=torch.int64, device=device)
        mem, mem_mask, state = memory, swipe_pad_mask, None
        num_tokens, order = 0, 0
        while True:
            step = self.model.decode_step(last, mem, mem_mask, state)
            log_probs = torch.log_softmax(step.logits.float(), dim=-1)
            log_probs = self.processors(log_probs, torch.from_numpy(tokens), torch.from_numpy(nodes))
            log_probs_np = log_probs.cpu().numpy()
            a, v = len(curves), log_probs_np.shape[1]
            expanded = (scores[:, None] + log_probs_np).reshape(a, width * v)  # float64, as `scores`
            top_scores, top_index = top_k(expanded, k)  # (A, K), best first
            num_tokens += 1
            # Each curve takes its best choices while it has beam slots left, skipping invalid
            # ones: a choice ending in <eos> finishes a word, the others live on. A few choices per
            # curve: plain Python costs less here than numpy calls would.
            live: list[list[tuple[int, int, float]]] = []  # per curve: (parent beam, token, score)
            choices = zip(top_scores.tolist(), top_index.tolist(), strict=True)
            for r, (row_scores, row_index) in enumerate(choices):
                row = []
                for score, index in zip(row_scores[: budget[r]], row_index, strict=False):
                    if not math.isfinite(score):
                        continue
                    beam, token = divmod(index, v)
                    if token == eos:
                        word = self.tokenizer.decode(tokens[r * width + beam].tolist())
                        score = _normalise(score, num_tokens, length_penalty)
                        finished[curves[r]].append((score, order, word))
                        order += 1
                        budget[r] -= 1
                    else:
                        row.append((beam, token, score))
                live.append(row)
            done = self.stopping(num_tokens, np.array([len(row) for row in live]))
            if done.any():
                live = [[] if stop else row for row, stop in zip(live, done.tolist(), strict=True)]
            new_width = max(len(row) for row in live)
            if new_width == 0:
                break
            rows = range(a)
            # Drop finished curves once they are a quarter of the batch (each drop copies memory).
            dropping = sum(1 for row in live if row) <= 0.75 * a
            if dropping:
                rows = [r for r in rows if live[r]]
                keep = np.array(rows)
                curves = curves[keep]
            # Each curve's slots: its live hypotheses in rank order, then empty ones (parent -1)
            # up to `new_width` (the most any curve has), which the decoder skips.
            slots: list[tuple[int, int, float]] = []
            empty = (-1, eos, -math.inf)
            for r in rows:
                row = live[r]
                slots += row + [empty] * (new_width - len(row))
            beam, token, scores = (np.array(column) for column in zip(*slots, strict=True))
            beam = beam.reshape(len(rows), new_width)
            parent = (np.maximum(beam, 0) + np.array(rows)[:, None] * width).ravel()  # the parents' rows
            budget = [budget[r] for r in rows]
            width = new_width
            tokens = np.concatenate([tokens[parent], token[:, None]], axis=1)
            if self.trie is not None:
                nodes = self.trie.step_array(nodes[parent], token)
                nodes[np.isinf(scores)] = -1  # empty slots
            else:
                nodes = nodes[parent]
            state = step.state
            if dropping:
                state = state.select_curves(torch.from_numpy(keep).to(device))
                kept = torch.from_numpy(curves).to(device)
                mem, mem_mask = memory.index_select(0, kept), swipe_pad_mask.index_select(0, kept)
            state = state.select(torch.from_numpy(beam).to(device))
            last = torch.from_numpy(token).to(device)
        results = []
        for words in finished:
            words.sort(key=lambda item: (-item[0], item[1]))
            results.append([(score, word) for score, _, word in words[: self.num_candidates]])
        return results


# ---- registry ------------------------------------------------------------------------------------


class GeneratorSpec(NamedTuple):
    """A registered generator: its class and its options dataclass."""

    cls: type
    options: type


GENERATORS: dict[str, GeneratorSpec] = {
    "greedy": GeneratorSpec(GreedyGenerator, GreedyOptions),
    "beam": GeneratorSpec(BeamSearchGenerator, BeamOptions),
}


def generator_options(name: str, options: Mapping[str, Any]) -> GreedyOptions | BeamOptions:
    """Check ``options`` against generator ``name``'s options dataclass.

    Raises
    ------
    GeneratorError
        Unknown generator, or an option the generator does not take, or an invalid value.
    """
    if name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}")
    cls = GENERATORS[name].options
    try:
        return from_dict(cls, dict(options))
    except ConfigError as err:
        message = str(err).removeprefix(f"{cls.__name__}: ")
        raise GeneratorError(f"generator {name!r}: {message}") from None


def build_generator(
    name: str,
    options: Mapping[str, Any] | GreedyOptions | BeamOptions,
    model: IncrementalModel,
    tokenizer: CharTokenizer,
    trie: LexiconTrie | None = None,
) -> GreedyGenerator | BeamSearchGenerator:
    """Build generator ``name`` with checked ``options`` (a mapping or its options dataclass)."""
    if name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}")
    spec = GENERATORS[name]
    if not isinstance(options, spec.options):
        if not isinstance(options, Mapping):
            raise GeneratorError(f"generator {name!r}: expected {spec.options.__name__}, got {options!r}")
        options = generator_options(name, options)
    try:
        return spec.cls(model, tokenizer, options, trie)
    except ValueError as err:
        raise GeneratorError(f"generator {name!r}: {err}") from None


def options_dict(options: GreedyOptions | BeamOptions) -> dict[str, Any]:
    """Plain-dict form of generator options (for metadata)."""
    return asdict(options)
