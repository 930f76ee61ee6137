"""A user's own words and learned choices on top of a decoder's lexicon (numpy only, never torch).

- **User words**: :meth:`UserWords.add` and :meth:`UserWords.remove` change the words the decoder
  can output at once. The lexicon trie (:class:`swipe.decoding.pipeline.Trie`) is edited in
  place: a new word's nodes go into spare rows of its flat arrays and the look-ahead prior is
  repaired along the word's path only; a removed word loses its ``<eos>`` edge (and the branch
  that led only to it). The lexicon file is never touched.
- **Learning**: :meth:`UserWords.learn` records that the user chose or typed a word. The decoder's
  prior becomes a mixture of the lexicon and the user's recent choices (a cache model)::

      p(w) = p_lexicon(w) + weight * (1 - decay) * count(w)

  where ``count(w)`` adds 1 each time ``w`` is learned and shrinks by ``decay`` at every learn
  event, so at most ``weight`` of probability goes to the user's words in all. A word the user
  keeps choosing gains most where the lexicon thinks it rare, while a common word (``the``) hardly
  moves: choices help the rare words a typist actually uses without drowning their neighbours.
  At most ``max_learned`` words are remembered (the least recently learned is forgotten).
- **User data file**: :func:`read_user_data` and :func:`write_user_data` keep all of it in one
  small JSON file (see :class:`UserData`), written atomically.
- **Verbatim candidate**: :func:`offer_verbatim` adds the network's best string without the
  lexicon (:func:`verbatim`) to a swipe's candidates, second, where no lexicon word scores well and
  the network is sure of its string (:class:`VerbatimSettings`): a word the lexicon lacks can
  still be typed, picked, and learned.

Frequencies are in occurrences per billion words, the unit of the bundled lexicon files
(``swipe/resources/lexicons/*.tsv``). A user word added without one gets the frequency of the
lexicon word at :data:`DEFAULT_RANK` (the word 10 % down the list: rank 5,000 of the 50,000 English
words, about 16,000 per billion): a word the user took the trouble to add is one they type, yet
rarer than the common words near it. Measured on real swipes (``bench/user_words.py held-out``):
93 dev words taken out of the lexicon and added back this way decode as well as with their own
frequencies, nearly (0.71 vs 0.74 accuracy@1; 0.58 at the median word's frequency), and the other
swipes do not change.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from swipe.atomic import atomic_output
from swipe.decoding.pipeline import Pipeline, Row, Settings, Swipe, Trie
from swipe.keyboard import Layout

# A word added without a frequency gets that of the lexicon word this far down the list, most
# frequent first (0.1: rank 5,000 of 50,000).
DEFAULT_RANK = 0.1
# Most characters of a user word.
MAX_WORD_LENGTH = 40
# Most user words (added) and removed words a user data file may hold.
MAX_USER_WORDS = 20_000
# Largest user data file read.
MAX_FILE_BYTES = 4 << 20
# Spare trie nodes reserved when the trie is first edited (more are made by doubling).
SPARE_NODES = 4096
# Hypotheses of the verbatim search.
VERBATIM_BEAM = 4
FORMAT = "swipe-user-data"
VERSION = 1


class UserWordError(ValueError):
    """A word cannot be added (a character the model or its keyboards cannot type, too long, ...)."""


class UserDataError(ValueError):
    """A user data file cannot be read (one line naming the file and what is wrong)."""


@dataclass(frozen=True)
class LearnSettings:
    """How :meth:`UserWords.learn` boosts chosen words.

    Attributes
    ----------
    weight : float
        Share of probability the user's recent choices take in all (0: learning off). 0.2 was
        the best of 0.01, 0.05, 0.2 and 0.5 for a typist along the 800 real dev swipes
        (``bench/user_words.py learning``: 2 swipes won, none lost; 0.5 loses as many as it wins).
    decay : float
        Each learn event multiplies every count by this (0.99: a choice fades over ~100 words).
    max_learned : int
        Most words remembered; the least recently learned is forgotten.
    """

    weight: float = 0.2
    decay: float = 0.99
    max_learned: int = 1000

    def __post_init__(self) -> None:
        if not (0.0 <= self.weight < 1.0):
            raise ValueError(f"learn weight must be in [0, 1), got {self.weight}")
        if not (0.0 < self.decay < 1.0):
            raise ValueError(f"learn decay must be in (0, 1), got {self.decay}")
        if self.max_learned < 1:
            raise ValueError(f"max_learned must be at least 1, got {self.max_learned}")


class UserData(NamedTuple):
    """What a user data file holds (JSON, UTF-8)::

        {"format": "swipe-user-data", "version": 1,
         "added": {"zorblax": null, "swipeable": 2000.0},
         "removed": ["damn"],
         "learned": [["its", 1.71], ["zorblax", 0.99]]}

    ``added``: user words and their frequency per billion words (null: the default);
    ``removed``: lexicon words the decoder must not output; ``learned``: each learned word's
    count, least recently learned first.
    """

    added: dict[str, float | None]
    removed: list[str]
    learned: list[tuple[str, float]]


def check_spelling(word: object, alphabet: str, layouts: Sequence[Layout]) -> str:
    """``word`` if the model writes each of its characters and one of ``layouts`` has a key for it.

    Raises
    ------
    UserWordError
        Naming the word and the first character that cannot be typed.
    """
    if not isinstance(word, str) or not word:
        raise UserWordError(f"a word must be non-empty text, got {word!r}")
    if len(word) > MAX_WORD_LENGTH:
        raise UserWordError(f"word {word[:20]!r}...: longer than {MAX_WORD_LENGTH} characters")
    for c in word:
        if c not in alphabet:
            raise UserWordError(f"word {word!r}: the model cannot write {c!r} "
                                f"(its characters: {alphabet})")
        if layouts and not any(layout.can_type(c) for layout in layouts):
            names = ", ".join(layout.name for layout in layouts)
            raise UserWordError(f"word {word!r}: no key for {c!r} on the model's keyboards ({names})")
    return word


class TrieEditor:
    """Edits a :class:`~swipe.decoding.pipeline.Trie` in place; a decoder using the trie sees
    each change at once.

    Every word the trie ever held keeps its index into ``trie.words``; a word not output (removed)
    is out of ``trie.word_index()`` and its log-probability is -inf.
    """

    def __init__(self, trie: Trie, alphabet: str) -> None:
        self.trie = trie
        self.ids = {c: i + 1 for i, c in enumerate(alphabet)}
        self.num_nodes = len(trie.children)
        self.all_ids = dict(trie.word_index())  # every word ever held -> its index
        self._own = False  # whether the arrays are this editor's copies
        self._paths: dict[str, np.ndarray] = {}  # reweigh()'s words' nodes, root first
        self._reserve(SPARE_NODES)

    def _reserve(self, count: int) -> None:
        """Room for ``count`` more nodes (rows of -1 / -inf); arrays are copied, never shared."""
        t = self.trie
        have = len(t.children)
        if self.num_nodes + count <= have and self._own:
            return
        self._own = True
        size = max(self.num_nodes + count, have + SPARE_NODES)
        n = self.num_nodes

        def grown(array: np.ndarray, fill: float, dtype: type) -> np.ndarray:
            out = np.full((size, *array.shape[1:]), fill, dtype)
            out[:n] = array[:n]
            return out

        t.children = grown(t.children, -1, np.int32)
        t.lookahead = grown(t.lookahead, -np.inf, np.float32)
        t.end_log_prob = grown(t.end_log_prob, -np.inf, np.float32)
        t.word_ids = grown(t.word_ids, -1, np.int32)

    def path(self, word: str, create: bool) -> list[int]:
        """The nodes from the root to ``word``'s end (made where missing if ``create``; else
        cut short where the trie has no node)."""
        children = self.trie.children
        nodes = [0]
        for c in word:
            token = self.ids[c]
            child = int(children[nodes[-1], token])
            if child < 0:
                if not create:
                    return nodes
                if self.num_nodes >= len(children):
                    self._reserve(len(word))
                    children = self.trie.children
                child = self.num_nodes
                self.num_nodes += 1
                children[nodes[-1], token] = child
            nodes.append(child)
        return nodes

    def set_words(self, words: Sequence[str], log_probs: Sequence[float]) -> None:
        """Make each word output with its log-probability (-inf: not output), then repair the
        look-ahead along every path touched."""
        t = self.trie
        index = t.word_index()
        touched: dict[int, int] = {}  # node -> depth
        for word, log_prob in zip(words, log_probs, strict=True):
            live = log_prob > -math.inf
            self._paths.pop(word, None)
            nodes = self.path(word, create=live)
            if len(nodes) != len(word) + 1:  # not in the trie, nothing to remove
                continue
            end = nodes[-1]
            if word not in self.all_ids:
                self.all_ids[word] = len(t.words)
                t.words.append(word)
                t.word_log_probs = np.append(t.word_log_probs, np.float32(-np.inf))
            word_id = self.all_ids[word]
            t.word_log_probs[word_id] = log_prob
            t.end_log_prob[end] = log_prob
            t.children[end, 0] = end if live else -1
            t.word_ids[end] = word_id if live else -1
            if live:
                index[word] = word_id
                t.max_word_length = max(t.max_word_length, len(word))
            else:
                index.pop(word, None)
            touched.update((node, depth) for depth, node in enumerate(nodes))
        self._repair(np.fromiter(touched, np.int64, len(touched)),
                     np.fromiter(touched.values(), np.int64, len(touched)))
        if any(log_prob == -math.inf for log_prob in log_probs):
            self._prune(words)

    def reweigh(self, words: Sequence[str], log_probs: np.ndarray) -> None:
        """New finite log-probabilities for words the trie outputs: :meth:`set_words` in a few
        array operations (each word's path is looked up once and kept)."""
        if not words:
            return
        t = self.trie
        paths = []
        for word in words:
            if word not in self._paths:
                self._paths[word] = np.asarray(self.path(word, create=False), np.int64)
            paths.append(self._paths[word])
        log_probs = np.asarray(log_probs, np.float32)
        t.end_log_prob[[path[-1] for path in paths]] = log_probs
        t.word_log_probs[[self.all_ids[word] for word in words]] = log_probs
        nodes = np.concatenate(paths)
        depths = np.concatenate([np.arange(len(path)) for path in paths])
        nodes, first = np.unique(nodes, return_index=True)
        self._repair(nodes, depths[first])

    def _repair(self, nodes: np.ndarray, depths: np.ndarray) -> None:
        """Recompute the look-ahead (best word log-probability below) of ``nodes`` at ``depths``,
        deepest first: each from its own word and its children's look-ahead."""
        if not len(nodes):
            return
        t = self.trie
        for depth in range(int(depths.max()), -1, -1):
            at = nodes[depths == depth]
            child = t.children[at, 1:]
            below = np.where(child >= 0, t.lookahead[np.maximum(child, 0)], -np.inf).max(axis=1)
            t.lookahead[at] = np.maximum(t.end_log_prob[at], below)

    def _prune(self, words: Sequence[str]) -> None:
        """Cut the edges into branches that end no word any more, so the search never enters them."""
        t = self.trie
        for word in words:
            nodes = self.path(word, create=False)
            for depth in range(len(nodes) - 1, 0, -1):
                node = nodes[depth]
                if t.lookahead[node] > -np.inf:
                    break
                t.children[nodes[depth - 1], self.ids[word[depth - 1]]] = -1


class UserWords:
    """A user's words, removed words and learned choices, applied to a decoder's trie.

    Parameters
    ----------
    trie : Trie
        The decoder's lexicon trie (edited in place).
    alphabet : str
        The characters the model writes (token ``i + 1`` is ``alphabet[i]``).
    layouts : sequence of Layout
        The model's keyboards: a user word must be typeable on one of them.
    learn : LearnSettings
        How learning boosts chosen words.
    path : path, optional
        The user data file: read now if it exists (:class:`UserDataError` naming it if it cannot
        be), written again (atomically) after each change.
    """

    def __init__(self, trie: Trie, alphabet: str, layouts: Sequence[Layout],
                 learn: LearnSettings = LearnSettings(), path: str | Path | None = None) -> None:
        self.alphabet = alphabet
        self.layouts = list(layouts)
        self.learn_settings = learn
        self.editor = TrieEditor(trie, alphabet)
        index = trie.word_index()
        self.lexicon_log_probs = {word: float(trie.word_log_probs[i]) for word, i in index.items()}
        values = np.sort(np.fromiter(self.lexicon_log_probs.values(), np.float64))[::-1]
        self.default_log_prob = float(values[int(DEFAULT_RANK * (len(values) - 1))]) if len(values) else -10.0
        self.added: dict[str, float | None] = {}
        self.removed: set[str] = set()
        self.counts: OrderedDict[str, tuple[float, int]] = OrderedDict()  # word -> (count, at event)
        self.events = 0
        self._synced = 0  # the learn event the trie's boosts are of
        self.path = None
        if path is not None and Path(path).exists():
            load_user_data(self, path)
        self.path = None if path is None else Path(path)

    @property
    def trie(self) -> Trie:
        return self.editor.trie

    # -- what the user asks for --------------------------------------------------------------------

    def add(self, words: Iterable[str], frequency: float | None = None) -> None:
        """Let the decoder output ``words`` (checked first: none is added if one is refused).

        ``frequency``: occurrences per billion words; None: a word of the lexicon keeps its own,
        another gets that of the lexicon word at :data:`DEFAULT_RANK`."""
        if frequency is not None and not (math.isfinite(frequency) and frequency > 0):
            raise UserWordError(f"frequency must be a positive number (per billion words), got {frequency}")
        words = [check_spelling(word, self.alphabet, self.layouts) for word in _as_list(words)]
        new = [w for w in dict.fromkeys(words) if w not in self.added and w not in self.lexicon_log_probs]
        if len(self.added) + len(new) > MAX_USER_WORDS:
            raise UserWordError(f"at most {MAX_USER_WORDS} user words; remove some first")
        for word in words:
            self.removed.discard(word)
            if word not in self.lexicon_log_probs or frequency is not None:
                self.added[word] = frequency
        self._apply(words)
        self.save()

    def remove(self, words: Iterable[str]) -> None:
        """Never output ``words`` (words the decoder does not know are ignored)."""
        words = [w for w in _as_list(words) if isinstance(w, str)]
        known = [w for w in words if w in self.added or w in self.lexicon_log_probs]
        if len(self.removed) + len(known) > MAX_USER_WORDS:
            raise UserWordError(f"at most {MAX_USER_WORDS} removed words")
        for word in known:
            self.added.pop(word, None)
            self.counts.pop(word, None)
            if word in self.lexicon_log_probs:
                self.removed.add(word)
        self._apply(known)
        self.save()

    def learn(self, word: str) -> None:
        """Record that the user chose or typed ``word``: it ranks higher from now on (a word the
        decoder does not know is added first, one the user removed is output again)."""
        word = check_spelling(word, self.alphabet, self.layouts)
        if word in self.removed or (word not in self.lexicon_log_probs and word not in self.added):
            self.add([word])
        s = self.learn_settings
        self.events += 1
        count = self.count(word)
        self.counts[word] = (count + 1.0, self.events)
        self.counts.move_to_end(word)
        forgotten = []
        while len(self.counts) > s.max_learned:
            forgotten.append(self.counts.popitem(last=False)[0])
        self._apply([word, *forgotten])  # the others' decay waits for sync()
        self.save()

    # -- the trie ------------------------------------------------------------------------------------

    def count(self, word: str) -> float:
        """``word``'s learned count now (decayed since it was last learned)."""
        if word not in self.counts:
            return 0.0
        count, at = self.counts[word]
        return count * self.learn_settings.decay ** (self.events - at)

    def base_log_prob(self, word: str) -> float:
        """``word``'s log-probability before learning (-inf: not output)."""
        if word in self.removed:
            return -math.inf
        if word in self.added and self.added[word] is not None:
            return math.log(float(self.added[word]) / 1e9)
        return self.lexicon_log_probs.get(word, self.default_log_prob if word in self.added else -math.inf)

    def log_prob(self, word: str) -> float:
        """``word``'s log-probability with its learned boost."""
        base = self.base_log_prob(word)
        s = self.learn_settings
        boost = s.weight * (1.0 - s.decay) * self.count(word)
        if base == -math.inf or boost <= 0:
            return base
        return float(np.logaddexp(base, math.log(boost)))

    def _apply(self, words: Sequence[str]) -> None:
        self.editor.set_words(list(words), [self.log_prob(w) for w in words])

    def sync(self) -> None:
        """Bring every learned word's decayed boost into the trie (called before each decode)."""
        if self._synced == self.events:
            return
        words = list(self.counts)
        s = self.learn_settings
        base = np.array([self.base_log_prob(word) for word in words])
        count, at = np.array([self.counts[word] for word in words]).reshape(-1, 2).T
        boost = s.weight * (1.0 - s.decay) * count * s.decay ** (self.events - at)
        with np.errstate(divide="ignore"):
            self.editor.reweigh(words, np.logaddexp(base, np.log(boost)))
        self._synced = self.events

    # -- the file ------------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the user data file (where there is one)."""
        if self.path is not None:
            write_user_data(self.path, self.data())

    def data(self) -> UserData:
        """What to save."""
        learned = [(word, round(self.count(word), 6)) for word in self.counts]
        return UserData(dict(self.added), sorted(self.removed), learned)

    def load(self, data: UserData) -> None:
        """Apply a saved :class:`UserData` (words this model cannot type are refused)."""
        by_frequency: dict[float | None, list[str]] = {}
        for word, frequency in data.added.items():
            by_frequency.setdefault(frequency, []).append(word)
        for frequency, words in by_frequency.items():
            self.add(words, frequency)
        self.remove(data.removed)
        for word, count in data.learned[-self.learn_settings.max_learned:]:
            if word not in self.removed and (word in self.added or word in self.lexicon_log_probs):
                self.counts[word] = (float(count), self.events)
        self._synced = -1  # the loaded boosts are not in the trie yet
        self.sync()


class Candidate(NamedTuple):
    """A decoded word and its score (a log-probability; higher is better); ``in_lexicon`` is
    True: a word of the lexicon or the user's words (:class:`VerbatimCandidate`: False)."""

    score: float
    word: str
    in_lexicon = True


class VerbatimCandidate(Candidate):
    """The network's best string without the lexicon, offered as typed (``in_lexicon`` False)."""

    __slots__ = ()
    in_lexicon = False


@dataclass(frozen=True)
class VerbatimSettings:
    """When and where :func:`offer_verbatim` offers the verbatim candidate.

    Chosen for ``en_hws`` (``bench/user_words.py verbatim``): the best Swipe MRR for a typist of
    whom 3 % of swipes are of words outside the lexicon (the 800 real dev swipes, and the swipes of
    93 dev words held out of the lexicon), on each half of the swipes; both halves chose -7 for
    ``lexicon_below``, -0.4 and -0.25 for ``verbatim_above``.

    Attributes
    ----------
    lexicon_below : float
        Offered only where the best lexicon candidate scores below this (or there is none).
    verbatim_above : float
        ... and the verbatim string scores above this (the network is sure of it).
    position : int
        Its place among the candidates (1: second; the best lexicon word stays first, so
        accuracy@1 never changes).
    """

    lexicon_below: float = -7.0
    verbatim_above: float = -0.3
    position: int = 1

    def __post_init__(self) -> None:
        if math.isnan(self.lexicon_below) or math.isnan(self.verbatim_above):
            raise ValueError("verbatim thresholds must be numbers (inf: always, -inf: never)")
        if self.position < 0:
            raise ValueError(f"verbatim position must be 0 or more, got {self.position}")


def verbatim_rows(pipeline: Pipeline, swipes: Sequence[Swipe]) -> list[Row]:
    """Each swipe's best string by the network alone, without the lexicon, its prior or
    templates, and its score: ``[(score, string)]``, or ``[]`` where the search ends none."""
    settings = Settings(beam_size=VERBATIM_BEAM, num_candidates=1,
                        length_penalty=pipeline.settings.length_penalty)
    free = Pipeline(pipeline.backend, pipeline.vocabulary, pipeline.layouts, pipeline.prep, settings, None)
    return free.decode(swipes)


def verbatim(pipeline: Pipeline, swipes: Sequence[Swipe]) -> list[str]:
    """Each swipe's best string by the network alone (:func:`verbatim_rows`; "" where none): the
    word as typed verbatim, which a keyboard may offer apart from the lexicon's candidates (and
    add with :meth:`UserWords.add` when the user picks it)."""
    return [row[0][1] if row else "" for row in verbatim_rows(pipeline, swipes)]


def offer_verbatim(pipeline: Pipeline, swipes: Sequence[Swipe], rows: Sequence[Row],
                   settings: VerbatimSettings | None) -> list[list[Candidate]]:
    """``rows`` (the pipeline's candidates of ``swipes``) as :class:`Candidate` rows, with the
    verbatim candidate of each swipe that :class:`VerbatimSettings` say needs one.

    A swipe gets one where its best candidate scores below ``settings.lexicon_below`` (or it has
    none): there the network's best string without the lexicon (:func:`verbatim_rows`, searched
    for those swipes only) is inserted at ``settings.position`` (no candidate is dropped) if it
    scores above ``settings.verbatim_above`` and the decoder does not output it as a word.
    ``settings`` None: none is offered.
    """
    out = [[Candidate(float(score), word) for score, word in row] for row in rows]
    if settings is None or pipeline.trie is None:
        return out
    which = [j for j, row in enumerate(rows) if not row or row[0][0] < settings.lexicon_below]
    if not which:
        return out
    words = pipeline.trie.word_index()
    for j, found in zip(which, verbatim_rows(pipeline, [swipes[j] for j in which]), strict=True):
        if found and found[0][1] and found[0][0] > settings.verbatim_above and found[0][1] not in words:
            score, word = found[0]
            out[j].insert(min(settings.position, len(out[j])), VerbatimCandidate(float(score), word))
    return out


def _as_list(words: Iterable[str]) -> list[str]:
    return [words] if isinstance(words, str) else list(words)


# ---- the user data file ----------------------------------------------------------------------------


def read_user_data(path: str | Path) -> UserData:
    """The user data of ``path`` (see :class:`UserData`).

    Raises
    ------
    UserDataError
        One line naming the file: too big, not JSON, or a field of the wrong type or range.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise UserDataError(f"{path}: cannot read the user data file ({err.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise UserDataError(f"{path}: user data file over {MAX_FILE_BYTES >> 20} MiB; not read")
    try:
        values = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise UserDataError(f"{path}: not a user data file (not JSON: {str(err)[:80]})") from None

    def bad(what: str) -> UserDataError:
        return UserDataError(f"{path}: {what}; fix or remove the file")

    if not isinstance(values, dict) or values.get("format") != FORMAT:
        raise bad(f'not a user data file (no "format": "{FORMAT}")')
    if values.get("version") != VERSION:
        raise bad(f"version {values.get('version')!r} is not {VERSION}")
    added, removed, learned = values.get("added", {}), values.get("removed", []), values.get("learned", [])
    if not isinstance(added, dict) or len(added) > MAX_USER_WORDS:
        raise bad(f'"added" must be an object of at most {MAX_USER_WORDS} words')
    for word, frequency in added.items():
        if frequency is not None and (isinstance(frequency, bool) or not isinstance(frequency, (int, float))
                                      or not (math.isfinite(frequency) and frequency > 0)):
            raise bad(f'"added": word {word[:40]!r} has frequency {frequency!r} (a positive number or null)')
    if not isinstance(removed, list) or len(removed) > MAX_USER_WORDS or not all(
            isinstance(w, str) for w in removed):
        raise bad(f'"removed" must be a list of at most {MAX_USER_WORDS} words')
    if not isinstance(learned, list) or len(learned) > MAX_USER_WORDS:
        raise bad(f'"learned" must be a list of at most {MAX_USER_WORDS} [word, count] pairs')
    pairs = []
    for item in learned:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], (int, float)) and not isinstance(item[1], bool)
                and math.isfinite(item[1]) and 0 <= item[1] <= 1e6):
            raise bad(f'"learned": {str(item)[:60]} is not a [word, count] pair (count 0 to 1e6)')
        pairs.append((item[0], float(item[1])))
    frequencies = {str(w): (None if f is None else float(f)) for w, f in added.items()}
    return UserData(frequencies, list(removed), pairs)


def load_user_data(user_words: UserWords, path: str | Path) -> None:
    """Read ``path`` into ``user_words``: a :class:`UserDataError` naming the file if it cannot be
    read or holds a word this model cannot type (the file is left as it is)."""
    data = read_user_data(path)
    try:
        user_words.load(data)
    except UserWordError as err:
        raise UserDataError(f"{path}: {err}; fix or remove the file") from None


def write_user_data(path: str | Path, data: UserData) -> None:
    """Write ``data`` to ``path`` atomically: the file is the old one or the whole new one."""
    text = json.dumps({"format": FORMAT, "version": VERSION, "added": data.added,
                       "removed": data.removed, "learned": [list(pair) for pair in data.learned]},
                      ensure_ascii=False, indent=1)
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
