"""The decoding pipeline: swipes in, ranked candidate words out, written once over numpy.

Every decoder runs it: :func:`swipe.load_decoder` and ``predict.py`` with a PyTorch model
(:mod:`swipe.decoding.torch_backend`), :mod:`swipe.runtime` with ONNX graphs. Only the network
differs, behind a :class:`Backend`; so with the same model and settings they give the same
candidates. This module imports numpy and numpy-only modules of this package (keyboard layouts,
templates, SHARK2), never torch, and is written to be ported by hand. For a batch of swipes:

1. :func:`preprocess`: each swipe's points as the model was trained on them (resampled, thinned),
   once per keyboard-width view (x scaled about the layout's left edge);
2. ``backend.encode`` once for every view of every swipe;
3. :meth:`Pipeline.search`: a lexicon-constrained beam search, one ``backend.step`` per output
   character for all hypotheses at once, the word-frequency prior spread over the steps
   (:func:`prior_increments`), the length penalty at the end;
4. each view's words re-ranked by their key templates (:class:`swipe.templates.TemplateRescorer`),
   the views merged (:func:`merge_views`: each word keeps its best score);
5. stages for the swipes that need them: more width views where the best score is below
   ``views_below`` and the best two are closer than ``views_margin``, wide views for swipes that
   reach past their keyboard, and, where the best score is then below ``templates_below``, the
   words the SHARK2 template matcher proposes, scored by the model as the search would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Sequence

import numpy as np

from swipe.data.resample import resample_curve, thin_index
from swipe.keyboard import Layout
from swipe.lexicon import Lexicon
from swipe.shark2 import NoTemplatesError, Shark2Config, Shark2Decoder
from swipe.templates import TemplateRescorer

Candidate = tuple[float, str]  # (score, word); higher scores are better
Row = list[Candidate]  # one swipe's candidates, best first

# Longest output (tokens, <eos> included) when there is no lexicon to bound it.
DEFAULT_MAX_LENGTH = 40


class Swipe(NamedTuple):
    """A swipe as a touch screen logs it: pixels of its layout, milliseconds, the layout's name."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    layout: str


# ---- preprocessing: the points the model was trained on ---------------------------------------


class Resample(NamedTuple):
    """One point every ``step`` ms (``time``) or ``step`` key widths along the path (``path``);
    ``keep_time``: path points keep their interpolated time (else 10 ms apart)."""

    mode: str
    step: float
    keep_time: bool = False


def resample(x: np.ndarray, y: np.ndarray, t: np.ndarray, key_width: float, config: Resample,
             max_points: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points the model was trained on: :func:`swipe.data.resample.resample_curve` (at most
    ``max_points`` of them, computing no others), with the runtime's :class:`Resample`."""
    return resample_curve(x, y, t, key_width, config, max_points)  # reads mode, step, keep_time


def thin(points: np.ndarray, max_points: int | None) -> np.ndarray:
    """At most ``max_points`` of ``points`` ``(n, 3)``, evenly spaced by index, ends kept."""
    if max_points is None or len(points) <= max_points:
        return points
    return points[thin_index(len(points), max_points)]


class Preprocessing(NamedTuple):
    """How the model's training data was prepared (``data.resample``, ``data.max_points``)."""

    resample: Resample | None
    max_points: int | None


def preprocess(swipe: Swipe, layout: Layout, prep: Preprocessing, x_scale: float = 1.0) -> np.ndarray:
    """``(n, 3)`` float32 x, y (pixels), t (ms) of ``swipe`` as the encoder reads it, drawn on a
    keyboard ``x_scale`` times as wide."""
    x, y, t = np.asarray(swipe.x, np.float64) * x_scale, swipe.y, swipe.t
    if prep.resample is not None:
        x, y, t = resample(x, y, t, layout.key_width, prep.resample, prep.max_points)
    points = np.stack([x, np.asarray(y, np.float64), np.asarray(t, np.float64) - t[0]], axis=1)
    return thin(points.astype(np.float32), prep.max_points)


# ---- the lexicon trie --------------------------------------------------------------------------


class Trie:
    """The lexicon as flat arrays (``lexicon.npz`` of an ONNX folder).

    ``children[node, token]``: the child node (-1: none; the ``<eos>`` column of a node that ends
    a word points at the node itself); ``lookahead[node]``: the best word log-probability below
    the node; ``end_log_prob[node]``: that of the word ending there (-inf where none does);
    ``word_ids[node]``: its index into ``words`` (-1 where none).
    """

    def __init__(self, children: np.ndarray, lookahead: np.ndarray, end_log_prob: np.ndarray,
                 word_ids: np.ndarray, words: Sequence[str]) -> None:
        self.children = children
        self.lookahead = lookahead
        self.end_log_prob = end_log_prob
        self.word_ids = word_ids
        self.words = [str(word) for word in words]
        self.word_log_probs = np.zeros(len(self.words), np.float32)
        ends = word_ids >= 0
        self.word_log_probs[word_ids[ends]] = end_log_prob[ends]
        self.max_word_length = max((len(word) for word in self.words), default=0)
        self._index: dict[str, int] | None = None

    @classmethod
    def read(cls, path: str | Path) -> Trie:
        """The trie of a ``lexicon.npz``."""
        with np.load(path) as arrays:
            return cls(arrays["children"], arrays["lookahead"], arrays["end_log_prob"],
                       arrays["word_ids"], arrays["words"].tolist())

    def word_index(self) -> dict[str, int]:
        """Each word the trie outputs -> its index into ``words`` (user words edit it in place:
        :mod:`swipe.decoding.user_words`)."""
        if self._index is None:
            self._index = {word: i for i, word in enumerate(self.words)}
        return self._index

    def log_probs_of(self, words: Sequence[str]) -> np.ndarray:
        """``(len(words),)`` float64 log relative frequencies of words of the trie."""
        index = self.word_index()
        return self.word_log_probs[[index[word] for word in words]].astype(np.float64)

    def __contains__(self, word: str) -> bool:
        return word in self.word_index()


def prior_increments(trie: Trie, nodes: np.ndarray) -> np.ndarray:
    """``(N, V)`` float32: how much each next token changes the best word log-probability still
    reachable from each node. Summed along a word (``<eos>`` included) they add up to the word's
    log-probability, so the prior can be added step by step; a token leaving the trie gets -inf."""
    child = trie.children[nodes]
    # The root counts as 0 (not its lookahead), so the first token adds its word's whole look-ahead.
    here = np.where(nodes == 0, np.float32(0.0), trie.lookahead[nodes])
    target = trie.lookahead[np.maximum(child, 0)]
    target[:, 0] = trie.end_log_prob[nodes]
    target[child < 0] = -np.inf
    return target - here[:, None]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of logits along the last axis (the maximum shifted out first)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# ---- the network -------------------------------------------------------------------------------


class Vocabulary(NamedTuple):
    """The model's output tokens: ``<eos>`` (0), then ``alphabet`` (1 ..); ``<sos>`` starts."""

    alphabet: str
    eos_id: int
    sos_id: int


class Backend(Protocol):
    """The network, for ``C`` curves of ``K`` hypotheses (slots) each.

    ``encode`` reads zero-padded points ``(B, T, 3)`` float32 (x, y in pixels, t in ms),
    ``lengths`` ``(B,)`` and ``layout_ids`` ``(B,)`` int64; its memory is opaque to the pipeline.
    ``step`` reads each hypothesis' last token ``(C, K)`` (``<sos>`` first, with ``state`` None)
    and returns next-token log-probabilities ``(C, K, V)`` float32 and the new state. ``take``
    keeps the memory rows of curves ``curves``; ``reorder`` keeps curves ``curves`` of a state
    (None: all) and makes hypothesis ``j`` of kept curve ``i`` continue hypothesis
    ``parents[i, j]`` (-1: an empty slot, whose next log-probabilities are never read).

    ``score`` reads teacher-forced decoder inputs ``(C, W, L)`` int64 of ``W`` words per curve
    (``<sos>`` then the word's tokens, padded), curve ``c`` reading row ``c`` of ``memory``, and
    returns next-token log-probabilities ``(C, W, L, V)`` float32 from one network call, or None
    where the backend cannot (then :meth:`Pipeline.score_words` steps along the words).
    """

    def encode(self, points: np.ndarray, lengths: np.ndarray, layout_ids: np.ndarray) -> Any: ...

    def take(self, memory: Any, curves: np.ndarray) -> Any: ...

    def step(self, tokens: np.ndarray, memory: Any, state: Any) -> tuple[np.ndarray, Any]: ...

    def reorder(self, state: Any, curves: np.ndarray | None, parents: np.ndarray) -> Any: ...

    def score(self, tokens: np.ndarray, memory: Any) -> np.ndarray | None: ...


# ---- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What the pipeline does (a model's ``decoding.json``).

    Attributes
    ----------
    beam_size : int
        Hypotheses kept per swipe; a hypothesis that ends a word leaves the beam.
    num_candidates : int or None
        Candidates per swipe (None: ``beam_size``).
    prior_weight : float
        Weight of the word-frequency prior (needs a lexicon).
    length_penalty : float
        A word scores ``total / length ** length_penalty`` (length in tokens, ``<eos>`` included).
    max_length : int or None
        Most tokens, ``<eos>`` included; None: the longest lexicon word + 1 (40 without one).
    template_weight, template_prior_weight : float
        Template rescoring (:class:`swipe.templates.TemplateRescorer`); weight 0: none.
    x_scales : tuple of float
        Keyboard-width views: each word keeps its best score over them.
    views_below : float or None
        Decode as drawn first, the other ``x_scales`` only where the best score is below this;
        None: every view of every swipe.
    views_margin : float or None
        With ``views_below``: the other ``x_scales`` only where also the best two scores are less
        than this apart (a clear winner rarely changes); None: whatever the margin.
    views_beam_size : int or None
        Beam of the views decoded after the first search (the other ``x_scales`` with
        ``views_below``, and the wide views); None: ``beam_size``.
    wide_x_scales : tuple of float
        Views of the swipes that reach past their keyboard's right edge.
    template_candidates : int
        Words the SHARK2 template matcher proposes for the swipes whose best score (after the
        views) is below ``templates_below``; needs a lexicon.
    templates_below : float or None
        Where template candidates are added; None: ``views_below`` (every swipe where that is
        None too).
    """

    beam_size: int = 8
    num_candidates: int | None = None
    prior_weight: float = 0.0
    length_penalty: float = 0.5
    max_length: int | None = None
    template_weight: float = 0.0
    template_prior_weight: float = 1.0
    x_scales: tuple[float, ...] = (1.0,)
    views_below: float | None = None
    views_margin: float | None = None
    views_beam_size: int | None = None
    wide_x_scales: tuple[float, ...] = ()
    template_candidates: int = 0
    templates_below: float | None = None


def merge_views(rows: Sequence[Row]) -> Row:
    """One swipe's candidates from several views of it: each word with its best score over the
    views, best first (ties: the order first listed), at most as many as the longest view's list."""
    best: dict[str, float] = {}
    for row in rows:
        for score, word in row:
            if word not in best or score > best[word]:
                best[word] = score
    ranked = sorted(best.items(), key=lambda item: -item[1])  # a stable sort keeps first-listed order
    return [(score, word) for word, score in ranked[: max(map(len, rows), default=0)]]


def scoring_below(rows: Sequence[Row], threshold: float, margin: float | None = None) -> list[int]:
    """Indices of the rows whose best score is below ``threshold`` (or that have no candidate)
    and, if ``margin`` is given, whose best two scores are less than ``margin`` apart (a row of
    one candidate: any margin)."""
    return [j for j, row in enumerate(rows) if not row or row[0][0] < threshold and (
        margin is None or len(row) < 2 or row[0][0] - row[1][0] < margin)]


def reaches_past_keyboard(layout: Layout, x: np.ndarray) -> bool:
    """Whether points ``x`` reach more than a key width past the keyboard's right edge, where no
    key lies: the swipe was logged on a wider keyboard (a phone held sideways, other pixels)."""
    return bool(len(x) and np.max(x) > layout.width + layout.key_width)


# ---- the pipeline ------------------------------------------------------------------------------


class Pipeline:
    """Decodes swipes with a backend, as :class:`Settings` say.

    Parameters
    ----------
    backend : Backend
        The network.
    vocabulary : Vocabulary
        Its output tokens.
    layouts : sequence of Layout
        The model's layouts, in layout-id order.
    prep : Preprocessing
        How its training points were prepared.
    settings : Settings
        What to do.
    trie : Trie or None
        The lexicon the words come from; None: any string of the alphabet.
    """

    def __init__(self, backend: Backend, vocabulary: Vocabulary, layouts: Sequence[Layout],
                 prep: Preprocessing, settings: Settings, trie: Trie | None) -> None:
        if trie is None and (settings.prior_weight or settings.template_candidates):
            raise ValueError("a word-frequency prior and template candidates need a lexicon")
        self.backend = backend
        self.vocabulary = vocabulary
        self.layouts = list(layouts)
        self.layout_ids = {layout.name: i for i, layout in enumerate(self.layouts)}
        self.prep = prep
        self.settings = settings
        self.trie = trie
        self.num_candidates = settings.num_candidates or settings.beam_size
        self.rescorer = (TemplateRescorer(settings.template_weight, settings.template_prior_weight)
                         if settings.template_weight else None)
        self._ids = {c: i + 1 for i, c in enumerate(vocabulary.alphabet)}
        self._matchers: dict[str, Shark2Decoder | None] = {}  # per layout, built at first use

    @property
    def max_length(self) -> int:
        """Most output tokens, ``<eos>`` included (read at each search: user words may be longer)."""
        return self.settings.max_length or (
            self.trie.max_word_length + 1 if self.trie is not None else DEFAULT_MAX_LENGTH)

    def layout(self, swipe: Swipe) -> Layout:
        """The layout ``swipe`` was drawn on (``KeyError`` if the model has no such layout)."""
        return self.layouts[self.layout_ids[swipe.layout]]

    # -- the stages --------------------------------------------------------------------------------

    def decode(self, swipes: Sequence[Swipe]) -> list[Row]:
        """Each swipe's candidates, best first."""
        s = self.settings
        if not swipes:
            return []
        first = s.x_scales if s.views_below is None else (1.0,)
        rows, memory = self.views(swipes, first)
        if first != (1.0,):
            memory = None  # not the swipes as drawn, which the template candidates read
        if s.views_below is not None:
            others = tuple(scale for scale in s.x_scales if scale != 1.0)
            self.add_views(swipes, rows, scoring_below(rows, s.views_below, s.views_margin), others)
        if s.wide_x_scales:
            wide = [j for j, swipe in enumerate(swipes) if reaches_past_keyboard(self.layout(swipe), swipe.x)]
            self.add_views(swipes, rows, wide, s.wide_x_scales)
        if s.template_candidates:
            below = s.templates_below if s.templates_below is not None else (
                math.inf if s.views_below is None else s.views_below)
            # Also the swipes drawn through key centres: a beam that missed such a word is rare but
            # the templates know it.
            precise = {j for j, swipe in enumerate(swipes) if self.rescorer is not None
                       and self.rescorer.may_be_precise(self.layout(swipe), swipe.x, swipe.y)}
            which = sorted(set(scoring_below(rows, below)) | precise)
            self.add_template_candidates(swipes, rows, which, memory)
        return rows

    def views(self, swipes: Sequence[Swipe], x_scales: Sequence[float],
              beam_size: int | None = None) -> tuple[list[Row], Any]:
        """Candidates of ``swipes``, each word with its best score over the views ``x_scales``
        (every view of every swipe in one encoder call and one search of ``beam_size``, None: the
        settings'), and the views' memory."""
        views = [(swipe, scale) for scale in x_scales for swipe in swipes]
        memory = self.encode(views)
        found = self.search(memory, len(views), beam_size)
        if self.rescorer is not None:
            found = self.rescore_rows(found, views)
        n = len(swipes)
        return [merge_views(found[j::n]) if len(x_scales) > 1 else found[j] for j in range(n)], memory

    def add_views(self, swipes: Sequence[Swipe], rows: list[Row], which: Sequence[int],
                  x_scales: Sequence[float]) -> None:
        """Merge views ``x_scales`` of swipes ``which`` into their rows."""
        if not which or not x_scales:
            return
        extra, _ = self.views([swipes[j] for j in which], x_scales, self.settings.views_beam_size)
        for j, row in zip(which, extra, strict=True):
            rows[j] = merge_views([rows[j], row])

    def add_template_candidates(self, swipes: Sequence[Swipe], rows: list[Row], which: Sequence[int],
                                memory: Any = None) -> None:
        """For swipes ``which``, the words the template matcher proposes that the search did not
        find, scored by the model as the search would have (as drawn), re-ranked by the templates
        and merged in (as many as the search returns). ``memory``: that of every swipe as drawn,
        if already encoded."""
        proposals = []
        for j in which:
            matcher = self.matcher(self.layout(swipes[j]))
            found = {word for _, word in rows[j]}
            words = [] if matcher is None else [word for _, word in matcher.decode(swipes[j].x, swipes[j].y)]
            proposals.append([word for word in words if word not in found])
        busy = [k for k, words in enumerate(proposals) if words]
        if not busy:
            return
        if memory is not None:
            memory = self.backend.take(memory, np.array([which[k] for k in busy], np.int64))
        else:
            memory = self.encode([(swipes[which[k]], 1.0) for k in busy])
        scored = self.score_words(memory, [proposals[k] for k in busy])
        if self.rescorer is not None:
            scored = self.rescore_rows(scored, [(swipes[which[k]], 1.0) for k in busy])
        for k, extra in zip(busy, scored, strict=True):
            j = which[k]
            rows[j] = merge_views([rows[j], extra])[: self.num_candidates]

    def matcher(self, layout: Layout) -> Shark2Decoder | None:
        """The template matcher of ``layout``; None where it can type no lexicon word."""
        if layout.name not in self._matchers:
            assert self.trie is not None
            lexicon = Lexicon(self.trie.words, np.exp(self.trie.word_log_probs.astype(np.float64)))
            top_k = Shark2Config(top_k=self.settings.template_candidates)
            try:
                self._matchers[layout.name] = Shark2Decoder(layout, lexicon, top_k)
            except NoTemplatesError:
                self._matchers[layout.name] = None
        return self._matchers[layout.name]

    def rescore_rows(self, rows: Sequence[Row], views: Sequence[tuple[Swipe, float]]) -> list[Row]:
        """Each row of ``rows`` re-ranked by how well its view (a swipe drawn ``x_scale`` times as
        wide) matches each word's key template; the views of a layout are matched in one pass."""
        assert self.rescorer is not None
        out: list[Row] = [[] for _ in rows]
        by_layout: dict[str, list[int]] = {}
        for i, (swipe, _) in enumerate(views):
            by_layout.setdefault(swipe.layout, []).append(i)
        for name, members in by_layout.items():
            drawn = [(np.asarray(swipe.x, np.float64) * scale, np.asarray(swipe.y, np.float64))
                     for swipe, scale in (views[i] for i in members)]
            priors = [None if self.trie is None else self.trie.log_probs_of([word for _, word in rows[i]])
                      for i in members]
            layout = self.layouts[self.layout_ids[name]]
            for i, row in zip(members, self.rescorer.rescore_many([rows[i] for i in members], layout,
                                                                  drawn, priors), strict=True):
                out[i] = row
        return out

    # -- the network -------------------------------------------------------------------------------

    def encode(self, views: Sequence[tuple[Swipe, float]]) -> Any:
        """The backend's memory of each (swipe, x scale) view."""
        curves = [preprocess(swipe, self.layout(swipe), self.prep, scale) for swipe, scale in views]
        lengths = np.array([len(c) for c in curves], np.int64)
        points = np.zeros((len(curves), int(lengths.max()), 3), np.float32)
        for i, c in enumerate(curves):
            points[i, : len(c)] = c
        layout_ids = np.array([self.layout_ids[swipe.layout] for swipe, _ in views], np.int64)
        return self.backend.encode(points, lengths, layout_ids)

    def next_scores(self, log_probs: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """``(N, V)`` float32 scores of each next token: the model's log-probability, ``-inf``
        where no lexicon word continues, plus the prior's increment."""
        if self.trie is None:
            return log_probs
        log_probs = np.where(self.trie.children[nodes] >= 0, log_probs, np.float32(-np.inf))
        if self.settings.prior_weight:
            weight = np.float32(self.settings.prior_weight)
            log_probs = log_probs + weight * prior_increments(self.trie, nodes)
        return log_probs

    def normalise(self, total: float, num_tokens: int) -> float:
        """A finished word's score: ``total / num_tokens ** length_penalty``."""
        penalty = self.settings.length_penalty
        return total / num_tokens**penalty if penalty else total

    def search(self, memory: Any, num_curves: int, beam_size: int | None = None) -> list[Row]:
        """Beam search over all curves at once: per curve up to ``num_candidates`` words, best first.

        The hypotheses of the curves still searched sit in a ``(curves, width)`` grid of slots:
        each curve's in rank order, then empty slots (score -inf) up to the most any curve has.
        A hypothesis' score is the float64 sum of its tokens' scores (:meth:`next_scores`). Each
        step every curve keeps its ``budget`` best one-token extensions (``beam_size`` minus the
        words it has finished; ties to the lower slot, then token); an extension by ``<eos>``
        finishes a word, scored by :meth:`normalise`.
        """
        alphabet, eos = self.vocabulary.alphabet, self.vocabulary.eos_id
        v = len(alphabet) + 1
        active = np.arange(num_curves)  # the curves still searched
        tokens = np.zeros((num_curves, 1, 0), np.int64)  # each slot's tokens so far
        scores = np.zeros((num_curves, 1))  # float64
        nodes = np.zeros((num_curves, 1), np.int64)  # trie nodes; the root for empty slots
        last = np.full((num_curves, 1), self.vocabulary.sos_id, np.int64)
        budget = [beam_size or self.settings.beam_size] * num_curves
        finished: list[list[tuple[float, int, str]]] = [[] for _ in range(num_curves)]
        order = 0  # between equal scores, the word finished first ranks first
        state = None
        for position in range(self.max_length):
            log_probs, state = self.backend.step(last, memory, state)
            width = nodes.shape[1]
            next_scores = self.next_scores(log_probs.reshape(-1, v), nodes.ravel())
            # A curve's choices are indexed slot * V + token.
            expanded = (scores.reshape(-1, 1) + next_scores).reshape(len(active), width * v)
            num_tokens = position + 1
            live: list[list[tuple[int, int, float]]] = []  # per active curve: (slot, token, score)
            for a, c in enumerate(active.tolist()):
                row = []
                for index in np.argsort(-expanded[a], kind="stable")[: budget[c]].tolist():
                    score = float(expanded[a, index])
                    if not math.isfinite(score):
                        continue
                    slot, token = divmod(index, v)
                    if token == eos:
                        word = "".join(alphabet[i - 1] for i in tokens[a, slot])
                        finished[c].append((self.normalise(score, num_tokens), order, word))
                        order += 1
                        budget[c] -= 1
                    else:
                        row.append((slot, token, score))
                live.append(row)
            keep = [a for a, row in enumerate(live) if row]
            if not keep or num_tokens >= self.max_length:
                break
            # The next grid: each kept curve's live hypotheses, then empty slots (parent -1).
            width = max(len(live[a]) for a in keep)
            parents = np.full((len(keep), width), -1, np.int64)
            last = np.full((len(keep), width), eos, np.int64)
            scores = np.full((len(keep), width), -np.inf)
            for i, a in enumerate(keep):
                for j, (slot, token, score) in enumerate(live[a]):
                    parents[i, j], last[i, j], scores[i, j] = slot, token, score
            rows = np.array(keep)
            from_slot = np.maximum(parents, 0)
            tokens = np.concatenate([tokens[rows[:, None], from_slot], last[..., None]], axis=2)
            if self.trie is not None:
                children = self.trie.children[nodes[rows[:, None], from_slot], last]
                nodes = np.where(parents >= 0, children, 0).astype(np.int64)
            else:
                nodes = np.zeros(parents.shape, np.int64)
            dropped = rows if len(keep) < len(active) else None
            if dropped is not None:
                memory = self.backend.take(memory, dropped)
                active = active[dropped]
            state = self.backend.reorder(state, dropped, parents)
        out = []
        for words in finished:
            words.sort(key=lambda item: (-item[0], item[1]))
            out.append([(score, word) for score, _, word in words[: self.num_candidates]])
        return out

    def spelling(self, word: str) -> list[int]:
        """``word``'s token ids; empty where the alphabet cannot spell it."""
        ids = [self._ids.get(c, -1) for c in word]
        return ids if ids and min(ids) > 0 else []

    def score_words(self, memory: Any, words: Sequence[Sequence[str]]) -> list[Row]:
        """The scores the search gives words ``words[c]`` of curve ``c`` (whose memory is row
        ``c`` of ``memory``), best first: every word a hypothesis, stepped along its spelling
        with the search's own arithmetic (its log-probabilities from one ``backend.score`` call
        where the backend has one). Words the search cannot output (outside the lexicon or the
        alphabet, longer than ``max_length`` tokens) are left out."""
        spelled = []
        for curve_words in words:
            ok = [(word, ids) for word in dict.fromkeys(curve_words) if (ids := self.spelling(word))
                  and len(ids) + 1 <= self.max_length and (self.trie is None or word in self.trie)]
            spelled.append(ok)
        keep = np.array([c for c, ok in enumerate(spelled) if ok], np.int64)
        out: list[Row] = [[] for _ in words]
        if not len(keep):
            return out
        if len(keep) < len(words):
            memory = self.backend.take(memory, keep)
        width = max(len(spelled[c]) for c in keep)
        length = max(len(ids) for c in keep for _, ids in spelled[c]) + 1
        eos = self.vocabulary.eos_id
        targets = np.full((len(keep), width, length), eos, np.int64)  # each word, then <eos>
        word_lengths = np.full((len(keep), width), -1, np.int64)  # tokens before <eos>; -1: no word
        for i, c in enumerate(keep.tolist()):
            for j, (_, ids) in enumerate(spelled[c]):
                targets[i, j, : len(ids)] = ids
                word_lengths[i, j] = len(ids)
        sos, v = self.vocabulary.sos_id, len(self.vocabulary.alphabet) + 1
        inputs = np.concatenate([np.full((len(keep), width, 1), sos, np.int64), targets[:, :, :-1]], axis=2)
        # Every token's log-probabilities (C, W, L, V): one call where the backend can, else one
        # decoder step a token (at the first, one hypothesis per curve, which every word continues).
        log_probs = self.backend.score(inputs, memory)
        if log_probs is None:
            steps, state = [], None
            for position in range(length):
                last = inputs[:, :1, 0] if position == 0 else inputs[:, :, position]
                step, state = self.backend.step(last, memory, state)
                steps.append(np.repeat(step, width, axis=1) if position == 0 else step)
                if position + 1 < length:  # each slot continues its own word
                    parents = np.arange(width) if position else np.zeros(width, np.int64)
                    state = self.backend.reorder(state, None, np.tile(parents, (len(keep), 1)))
            log_probs = np.stack(steps, axis=2)
        # The trie node before each token, then every token's score as the search gives it.
        nodes = np.zeros(targets.shape, np.int64)
        if self.trie is not None:
            for position in range(1, length):
                before = nodes[:, :, position - 1], targets[:, :, position - 1]
                nodes[:, :, position] = np.maximum(self.trie.children[before], 0)
        scores = self.next_scores(log_probs.reshape(-1, v), nodes.ravel())
        terms = np.take_along_axis(scores, targets.reshape(-1, 1), axis=1).reshape(targets.shape)
        totals = np.zeros((len(keep), width))  # float64, summed token by token as the search's scores
        for position in range(length):
            totals = np.where(position <= word_lengths, totals + terms[:, :, position], totals)
        for i, c in enumerate(keep.tolist()):
            row = [(self.normalise(float(totals[i, j]), len(ids) + 1), word)
                   for j, (word, ids) in enumerate(spelled[c])]
            out[c] = sorted(row, key=lambda candidate: -candidate[0])
        return out
