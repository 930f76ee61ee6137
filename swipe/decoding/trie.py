"""A lexicon as a character trie stored in flat numpy arrays.

Nodes are numbered breadth first (the root is node 0). The trie is kept in a parent-pointer
form (``parent``, ``token`` per node) plus per-node word ids and log-priors, which pickles as a
handful of arrays; the dense ``(num_nodes, V)`` children table used for fast stepping is rebuilt
from them in a few milliseconds wherever the trie is unpickled (for example in a worker process).

In the children table the ``<eos>`` column of a node that ends a word points back at the node
itself, so ``children[nodes] >= 0`` is exactly the set of tokens allowed after ``nodes``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from swipe.tokenizers import CharTokenizer, TokenizerError

if TYPE_CHECKING:
    from swipe.decoding.pipeline import Trie

ROOT = 0


class LexiconLike(Protocol):
    """What the trie reads from a lexicon: words and their (positive) frequencies."""

    words: Sequence[str]
    frequencies: Sequence[float]


class LexiconTrie:
    """A character trie over a lexicon's words, in numpy arrays.

    Parameters
    ----------
    parent : numpy.ndarray
        ``(N,)`` int32 parent of each node (-1 for the root).
    token : numpy.ndarray
        ``(N,)`` int32 token id leading from the parent to each node (-1 for the root).
    word_ids : numpy.ndarray
        ``(N,)`` int32 index into ``words`` of the word ending at each node, -1 where none does.
    word_log_probs : numpy.ndarray
        ``(len(words),)`` float32 log of each word's relative frequency.
    words : sequence of str
        The words, indexed by word id.
    num_tokens : int
        ``V``, the number of output tokens (``<eos>`` plus characters).
    num_skipped : int
        Lexicon words left out because the tokenizer cannot spell them.
    """

    def __init__(
        self,
        parent: np.ndarray,
        token: np.ndarray,
        word_ids: np.ndarray,
        word_log_probs: np.ndarray,
        words: Sequence[str],
        num_tokens: int,
        num_skipped: int = 0,
    ) -> None:
        n = len(parent)
        if n == 0 or len(token) != n or len(word_ids) != n:
            raise ValueError("parent, token and word_ids must be non-empty and of equal length")
        if len(word_log_probs) != len(words):
            raise ValueError("word_log_probs must have one entry per word")
        self.parent = np.ascontiguousarray(parent, dtype=np.int32)
        self.token = np.ascontiguousarray(token, dtype=np.int32)
        self.word_ids = np.ascontiguousarray(word_ids, dtype=np.int32)
        self.word_log_probs = np.ascontiguousarray(word_log_probs, dtype=np.float32)
        self.words = list(words)
        self.num_tokens = int(num_tokens)
        self.num_skipped = int(num_skipped)
        self._word_index: dict[str, int] | None = None  # word -> id, built on first use
        self._build_tables()

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def from_lexicon(cls, lexicon: LexiconLike, tokenizer: CharTokenizer) -> LexiconTrie:
        """Build the trie of ``lexicon``'s words as spelled by ``tokenizer``.

        Words the tokenizer cannot spell are left out and counted in ``num_skipped``; of
        duplicate words the most frequent is kept; a frequency of 0 counts as half the smallest
        positive one.
        """
        return cls.from_words(lexicon.words, lexicon.frequencies, tokenizer)

    @classmethod
    def from_words(
        cls, words: Sequence[str], frequencies: Sequence[float] | None, tokenizer: CharTokenizer
    ) -> LexiconTrie:
        """Build the trie of ``words`` (uniform frequencies when ``frequencies`` is None)."""
        if frequencies is None:
            frequencies = [1.0] * len(words)
        if len(frequencies) != len(words):
            raise ValueError(f"got {len(words)} words but {len(frequencies)} frequencies")
        encoded, kept_words, kept_freqs = [], [], []
        for word, freq in zip(words, frequencies, strict=True):
            try:
                ids = tokenizer.encode(word)
            except TokenizerError:
                continue
            if not ids:
                continue
            encoded.append(ids)
            kept_words.append(word)
            kept_freqs.append(float(freq))
        num_skipped = len(words) - len(kept_words)
        if not encoded:
            raise ValueError("no lexicon word can be spelled with the tokenizer's alphabet")
        freqs = np.asarray(kept_freqs, dtype=np.float64)
        if not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
            raise ValueError("word frequencies must be finite and non-negative")
        # Words of frequency 0 are rarer than any counted word, but still words.
        positive = freqs[freqs > 0]
        freqs = np.where(freqs > 0, freqs, 0.5 * positive.min() if positive.size else 1.0)
        log_probs = np.log(freqs) - math.log(freqs.sum())

        lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        max_len = int(lengths.max())
        # Pad with <eos> (0): it sorts before every character, so a word sorts before its extensions.
        table = np.zeros((len(encoded), max_len), dtype=np.int64)
        for i, ids in enumerate(encoded):
            table[i, : len(ids)] = ids
        order = np.lexsort(table.T[::-1])
        table, lengths = table[order], lengths[order]
        word_index = order  # row -> index into kept_words

        # Longest common prefix of each row with the previous row.
        lcp = np.zeros(len(table), dtype=np.int64)
        if len(table) > 1:
            differ = table[1:] != table[:-1]
            first_diff = np.where(differ.any(axis=1), differ.argmax(axis=1), max_len)
            lcp[1:] = np.minimum(first_diff, np.minimum(lengths[1:], lengths[:-1]))

        parents, tokens = [np.array([-1])], [np.array([-1])]
        node_at = np.zeros(len(table), dtype=np.int64)  # node of each row's prefix at the previous depth
        end_nodes: list[np.ndarray] = []
        end_rows: list[np.ndarray] = []
        num_nodes = 1
        for depth in range(1, max_len + 1):
            reaches = lengths >= depth
            is_new = reaches & (lcp < depth)
            new_rows = np.flatnonzero(is_new)
            ids = np.full(len(table), -1, dtype=np.int64)
            ids[new_rows] = num_nodes + np.arange(len(new_rows))
            parents.append(node_at[new_rows])
            tokens.append(table[new_rows, depth - 1])
            num_nodes += len(new_rows)
            # Rows sharing this prefix are contiguous and follow the row that created it.
            node_at = np.where(reaches, np.maximum.accumulate(ids), -1)
            ends = np.flatnonzero(lengths == depth)
            end_nodes.append(node_at[ends])
            end_rows.append(ends)
        parent = np.concatenate(parents)
        token = np.concatenate(tokens)
        end_node = np.concatenate(end_nodes)
        end_word = word_index[np.concatenate(end_rows)]
        # Duplicates end at the same node: keep the most frequent (assigned last wins).
        by_prob = np.argsort(log_probs[end_word], kind="stable")
        word_ids = np.full(num_nodes, -1, dtype=np.int64)
        word_ids[end_node[by_prob]] = end_word[by_prob]
        return cls(
            parent, token, word_ids, log_probs, kept_words, tokenizer.num_output_tokens, num_skipped
        )

    def _build_tables(self) -> None:
        n, v = len(self.parent), self.num_tokens
        if self.token[1:].size and (self.token[1:].min() < 1 or self.token[1:].max() >= v):
            raise ValueError(f"trie tokens must be character ids 1..{v - 1}")
        # One extra last row, of no children: node -1 (outside the trie) indexes it, so the
        # per-step lookups need no special case for it.
        children = np.full((n + 1, v), -1, dtype=np.int32)
        nodes = np.arange(1, n, dtype=np.int32)
        children[self.parent[1:], self.token[1:]] = nodes
        terminal = np.flatnonzero(self.word_ids >= 0)
        children[terminal, 0] = terminal
        depth = _depths(self.parent)
        # Look-ahead prior: the best word log-probability below each node.
        lookahead = np.full(n, -np.inf, dtype=np.float64)
        lookahead[terminal] = self.word_log_probs[self.word_ids[terminal]]
        for d in range(int(depth.max()), 0, -1):
            at = np.flatnonzero(depth == d)
            np.maximum.at(lookahead, self.parent[at], lookahead[at])
        self.depth = depth.astype(np.int32)
        self.lookahead = lookahead.astype(np.float32)
        self.children = torch.from_numpy(children[:-1])
        self._children_np = children
        self._allowed_np = children >= 0  # allowed_tokens' table
        self._lookahead_t = torch.from_numpy(self.lookahead)
        end_log_prob = np.full(n, -np.inf, dtype=np.float32)
        end_log_prob[terminal] = self.word_log_probs[self.word_ids[terminal]]
        self._end_log_prob_t = torch.from_numpy(end_log_prob)

    # ---- pickling: arrays only ---------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "token": self.token,
            "word_ids": self.word_ids,
            "word_log_probs": self.word_log_probs,
            "words": "\n".join(self.words),
            "num_tokens": self.num_tokens,
            "num_skipped": self.num_skipped,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(
            state["parent"],
            state["token"],
            state["word_ids"],
            state["word_log_probs"],
            state["words"].split("\n") if state["words"] else [],
            state["num_tokens"],
            state["num_skipped"],
        )

    # ---- queries -----------------------------------------------------------------------------

    @property
    def num_nodes(self) -> int:
        return len(self.parent)

    @property
    def num_words(self) -> int:
        """Number of distinct words in the trie."""
        return int((self.word_ids >= 0).sum())

    @property
    def max_word_length(self) -> int:
        """Length in characters of the longest word."""
        return int(self.depth.max())

    def __repr__(self) -> str:
        return f"LexiconTrie({self.num_words} words, {self.num_nodes} nodes, {self.num_tokens} tokens)"

    def step(self, nodes: Tensor | np.ndarray, tokens: Tensor | np.ndarray) -> Tensor:
        """Child of each node along each token; -1 where there is none or ``nodes`` is -1.

        ``<eos>`` from a node that ends a word returns the node itself.
        """
        nodes, tokens = _as_array(nodes), _as_array(tokens)
        valid = (nodes >= -1) & (tokens >= 0) & (tokens < self.num_tokens)
        children = self.step_array(np.where(valid, nodes, -1), np.where(valid, tokens, 0))
        return torch.from_numpy(np.where(valid, children, -1))

    def step_array(self, nodes: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """:meth:`step` of trie nodes or -1 along token ids ``0 .. V - 1`` as int64 numpy arrays,
        without its checks: the generators' per-step lookup."""
        return self._children_np[nodes, tokens].astype(np.int64)

    def allowed_tokens(self, nodes: Tensor | np.ndarray) -> Tensor:
        """``(N, V)`` bool: the tokens that continue each node towards a word (``<eos>`` where the
        node ends a word). Rows of nodes outside the trie (-1) are all False."""
        return torch.from_numpy(self._allowed_np[_as_array(nodes)])

    def prior_increments(self, nodes: Tensor) -> Tensor:
        """``(N, V)`` float32 change of the look-ahead prior along each token.

        Summed along a word's tokens (``<eos>`` included) the increments telescope to the word's
        log relative frequency, so a prior can be added step by step and still rank finished
        words exactly by frequency; disallowed tokens get ``-inf``.
        """
        nodes = torch.as_tensor(nodes, dtype=torch.int64).clamp(min=0)
        child = self.children[nodes].long()
        here = torch.where(nodes == ROOT, torch.zeros(()), self._lookahead_t[nodes])
        target = self._lookahead_t[child.clamp(min=0)]
        target[:, 0] = self._end_log_prob_t[nodes]
        target = target.masked_fill(child < 0, float("-inf"))
        return target - here.unsqueeze(-1)

    def teacher_forcing_mask(self, decoder_input: Tensor) -> Tensor:
        """Allowed next tokens along given prefixes, for loss masking.

        Parameters
        ----------
        decoder_input : Tensor
            ``(B, L)`` int64 ``<sos> c1 .. cn`` padded (with anything outside ``1..V-1``).

        Returns
        -------
        Tensor
            ``(B, L, V)`` bool: row ``j`` holds the tokens allowed after ``c1 .. cj``; rows after
            the prefix has left the trie are all True.
        """
        decoder_input = torch.as_tensor(decoder_input, dtype=torch.int64)
        b, length = decoder_input.shape
        nodes = torch.zeros(b, dtype=torch.int64)
        out = torch.ones(b, length, self.num_tokens, dtype=torch.bool)
        for j in range(length):
            inside = nodes >= 0
            out[:, j] = self.allowed_tokens(nodes) | ~inside.unsqueeze(-1)
            if j + 1 < length:
                nxt = decoder_input[:, j + 1]
                is_char = (nxt >= 1) & (nxt < self.num_tokens)
                nodes = torch.where(is_char, self.step(nodes, nxt), torch.full_like(nodes, -1))
        return out

    def flat(self) -> Trie:
        """The trie as the decoding pipeline's flat arrays (an ONNX folder's ``lexicon.npz``)."""
        from swipe.decoding.pipeline import Trie

        end = np.full(self.num_nodes, -np.inf, np.float32)
        ends = self.word_ids >= 0
        end[ends] = self.word_log_probs[self.word_ids[ends]]
        children = self.children.numpy().astype(np.int32)
        lookahead = self.lookahead.astype(np.float32)
        return Trie(children, lookahead, end, self.word_ids.astype(np.int32), self.words)

    def word_id(self, node: int) -> int:
        """Index into ``words`` of the word ending at ``node``, -1 if none does."""
        if not 0 <= node < self.num_nodes:
            return -1
        return int(self.word_ids[node])

    def word_log_probs_of(self, words: Sequence[str]) -> np.ndarray:
        """``(len(words),)`` float64 log-probabilities of words of the trie (``KeyError`` for any
        other)."""
        index = self._words_index()
        return self.word_log_probs[[index[word] for word in words]].astype(np.float64)

    def __contains__(self, word: object) -> bool:
        """Whether ``word`` is one of the trie's words."""
        return word in self._words_index()

    def _words_index(self) -> dict[str, int]:
        # Built at the first call, in the process that makes it: it is not pickled with the trie.
        if self._word_index is None:
            self._word_index = {word: i for i, word in enumerate(self.words)}
        return self._word_index

    def find(self, token_ids: Sequence[int]) -> int:
        """Node reached by spelling ``token_ids`` from the root, -1 if it leaves the trie."""
        node = ROOT
        for t in token_ids:
            if not 1 <= t < self.num_tokens:
                return -1
            node = int(self._children_np[node, t])
            if node < 0:
                return -1
        return node


def _as_array(values: Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(values, Tensor):
        if values.dtype == torch.int64 and values.is_cpu:
            return values.numpy()
        return values.detach().to("cpu", torch.int64).numpy()
    return np.asarray(values, dtype=np.int64)


def _depths(parent: np.ndarray) -> np.ndarray:
    """Depth of every node of a breadth-first numbered tree (parents precede children)."""
    depth = np.zeros(len(parent), dtype=np.int64)
    # Children of the nodes at depth d form one contiguous block in BFS numbering.
    frontier_end, d, start = 1, 0, 1
    while start < len(parent):
        end = start + int(np.searchsorted(parent[start:], frontier_end, side="left"))
        depth[start:end] = d + 1
        frontier_end, start, d = end, end, d + 1
    return depth
