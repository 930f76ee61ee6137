"""A deliberately naive beam search: one curve at a time, re-running the decoder over the whole
prefix at every step.

It implements the same search as :class:`~swipe.decoding.generators.BeamSearchGenerator` (same
processors, same shrinking beam, same scores) without a cache or batching across curves. By
default it also runs the decoder once per hypothesis, as the reference project's beam search did;
``batch_beams=True`` decodes the hypotheses of a curve together instead. It is the reference for
equivalence tests and the baseline of ``bench/bench_decoding.py``; do not use it for real
decoding.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from swipe.batch import SwipeBatch
from swipe.decoding.generators import BeamOptions, Candidate, _normalise, _setup, top_k
from swipe.decoding.trie import LexiconTrie
from swipe.tokenizers import CharTokenizer


class FullDecodingModel(Protocol):
    def encode(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> Tensor: ...

    def decode(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor: ...


class NaiveBeamSearch:
    """Per-curve, uncached beam search (see the module docstring).

    Parameters
    ----------
    model : FullDecodingModel
        An encoder-decoder with ``encode`` and full-prefix ``decode``.
    tokenizer : CharTokenizer
        The model's tokenizer.
    options : BeamOptions
        Search options, as for the batched beam search.
    trie : LexiconTrie, optional
        Restricts outputs to its words.
    batch_beams : bool
        Decode the hypotheses of a curve in one call instead of one call each.
    """

    def __init__(
        self,
        model: FullDecodingModel,
        tokenizer: CharTokenizer,
        options: BeamOptions,
        trie: LexiconTrie | None = None,
        batch_beams: bool = False,
    ) -> None:
        self.model = model
        self.batch_beams = batch_beams
        self.tokenizer = tokenizer
        self.options = options
        self.trie = trie
        self.processors, self.stopping = _setup(trie, options.prior_weight, options.max_length)
        self.num_candidates = options.num_candidates or options.beam_size

    @torch.inference_mode()
    def generate(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> list[list[Candidate]]:
        """Decode each curve of the batch on its own."""
        results = []
        for i in range(swipe.coords.size(0)):
            length = int(swipe.lengths[i])
            one = SwipeBatch(*(t[i : i + 1, :length] if t.dim() > 1 else t[i : i + 1] for t in swipe))
            results.append(self._generate_one(one, swipe_pad_mask[i : i + 1, :length]))
        return results

    def _generate_one(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> list[Candidate]:
        memory = self.model.encode(swipe, swipe_pad_mask)
        eos, k = self.tokenizer.eos_id, self.options.beam_size
        # Live hypotheses as (tokens, score, trie node), best first.
        root = 0 if self.trie is not None else -1
        beams: list[tuple[list[int], float, int]] = [([], 0.0, root)]
        finished: list[tuple[float, int, str]] = []
        budget, num_tokens = k, 0
        while beams:
            n = len(beams)
            prefix = torch.tensor([[self.tokenizer.sos_id] + b[0] for b in beams], device=memory.device)
            if self.batch_beams:
                memories = memory.expand(n, -1, -1), swipe_pad_mask.expand(n, -1)
                logits = self.model.decode(prefix, *memories, None)
            else:
                logits = torch.cat([self.model.decode(p[None], memory, swipe_pad_mask, None) for p in prefix])
            logits = logits[:, -1]
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            tokens = torch.tensor([b[0] for b in beams], dtype=torch.int64).reshape(n, num_tokens)
            nodes = torch.tensor([b[2] for b in beams], dtype=torch.int64)
            log_probs = self.processors(log_probs, tokens, nodes).cpu()
            v = log_probs.size(1)
            scores = np.array([b[1] for b in beams])
            expanded = scores[:, None] + log_probs.double().numpy()
            flat = np.full((1, k * v), -math.inf)
            flat[0, : n * v] = expanded.reshape(-1)
            top_scores, top_index = (row[0] for row in top_k(flat, k))
            num_tokens += 1
            growing, ended = [], 0
            for rank in range(budget):
                total = float(top_scores[rank])
                if not math.isfinite(total):
                    break
                parent, token = divmod(int(top_index[rank]), v)
                prefix_tokens, _, node = beams[parent]
                if token == eos:
                    score = _normalise(total, num_tokens, self.options.length_penalty)
                    finished.append((score, len(finished), self.tokenizer.decode(prefix_tokens)))
                    ended += 1
                else:
                    if self.trie is not None:
                        node = int(self.trie.step(torch.tensor([node]), torch.tensor([token]))[0])
                    growing.append((prefix_tokens + [token], total, node))
            budget -= ended
            if bool(self.stopping(num_tokens, np.array([len(growing)]))[0]):
                growing = []
            beams = growing
        finished.sort(key=lambda item: (-item[0], item[1]))
        return [(score, word) for score, _, word in finished[: self.num_candidates]]
