"""What the demo's server asks of a model: decode a swipe, show where the model looked, draw a word's
template, learn a chosen word, add a word, prompt words to record. Every request is checked here; a bad
one is a :class:`RequestError`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from swipe.decoder import DecodeError, load_decoder, make_curve
from swipe.decoding.user_words import Candidate, UserWordError, VerbatimSettings
from swipe.formats import MAX_SWIPE_POINTS, Curve, SwipeError, check_swipe
from swipe.keyboard import Layout, LayoutError, normalize_label
from swipe.model_files import DecodingSettings
from swipe.templates import word_polyline

# Most points of one swipe the server accepts: as many as any reader of swipes.
MAX_POINTS = MAX_SWIPE_POINTS


class RequestError(ValueError):
    """A request the demo cannot serve (bad field, too many points); the message is one line."""


class Swipe(NamedTuple):
    """A swipe as the page sends it: layout coordinates (pixels of the layout) and milliseconds."""

    layout: Layout
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray


class Decoded(NamedTuple):
    """A swipe's candidates, best first (the verbatim candidate among them, ``in_lexicon`` False,
    where no lexicon word scores well), and the decoding time in seconds."""

    candidates: list[Candidate]
    seconds: float


class AttentionView(NamedTuple):
    """Where the model looked while reading ``word``.

    Attributes
    ----------
    word : str
        The word read.
    points : list of (float, float)
        The points the model read (resampled), in layout pixels.
    layers : list of list of list of float
        Per decoder layer, per character of ``word`` and then the end of the word, the weight of
        each point (averaged over the heads; each row sums to 1).
    """

    word: str
    points: list[tuple[float, float]]
    layers: list[list[list[float]]]


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in body:
        raise RequestError(f"missing field '{name}'")
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RequestError(f"'{name}' must be a {expected}")
    return value


class Engine:
    """A model loaded for the demo: decoding, attention maps and templates; requests may come from
    several threads at once.

    Parameters
    ----------
    model : str or Path
        A shipped model's name (``en_hws``, ``ru_yandex``) or a model file / run directory.
    device : str
        Where the model runs.
    settings : DecodingSettings, optional
        How to decode; default: the model's ``decoding.json`` (see :func:`swipe.load_decoder`).
    user_data : str or Path, optional
        The file that keeps the words added and learned (:mod:`swipe.decoding.user_words`); None:
        they are kept in memory only, until the server stops.
    """

    def __init__(
        self, model: str | Path, device: str = "cpu", settings: DecodingSettings | None = None,
        user_data: str | Path | None = None,
    ) -> None:
        self.decoder = load_decoder(model, settings=settings, device=device, user_data=user_data,
                                    verbatim=VerbatimSettings())
        self.name = str(model)
        self.layouts: list[Layout] = list(self.decoder.layouts)
        self.model = self.decoder.model

    # ---- reading requests --------------------------------------------------------------------

    def layout(self, value: object) -> Layout:
        """The model's layout named by ``value`` (its index or its name)."""
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < len(self.layouts):
                return self.layouts[value]
        elif isinstance(value, str):
            for layout in self.layouts:
                if layout.name == value:
                    return layout
        else:
            raise RequestError("'layout' must be a layout's index or name")
        names = ", ".join(layout.name for layout in self.layouts)
        raise RequestError(f"unknown layout {value!r}; the model's layouts: {names}")

    def swipe(self, body: dict[str, Any]) -> Swipe:
        """The swipe of a request body ``{"layout", "x", "y", "t"}``, checked."""
        layout = self.layout(body.get("layout", 0))
        try:
            x, y, t = check_swipe(*(_field(body, name, list) for name in ("x", "y", "t")))
        except SwipeError as err:
            raise RequestError(str(err)) from None
        if len(x) < 2:
            raise RequestError("a swipe needs at least 2 points")
        return Swipe(layout, x.astype(np.float32), y.astype(np.float32), t - t[0])

    def word(self, body: dict[str, Any], layout: Layout, writable: bool = True) -> str:
        """The ``word`` of a request body: one ``layout`` can type and, if ``writable``, the model
        can write (a word to record need not be)."""
        word = normalize_label(_field(body, "word", str))
        if not word or len(word) > 64:
            raise RequestError("'word' must have 1 to 64 characters")
        if writable and not self.model.tokenizer.can_encode(word):
            raise RequestError(f"the model cannot write {word!r}")
        if not all(layout.can_type(char) for char in word):
            raise RequestError(f"layout {layout.name!r} cannot type {word!r}")
        return word

    # ---- answers -----------------------------------------------------------------------------

    def decode(self, swipe: Swipe) -> Decoded:
        """The candidates for ``swipe``, as ``predict.py`` with the engine's settings gives them."""
        start = time.perf_counter()
        try:
            (row,) = self.decoder.decode([self._curve(swipe)])
        except DecodeError as err:
            raise RequestError(str(err)) from None
        return Decoded(row, time.perf_counter() - start)

    def learn(self, body: dict[str, Any]) -> str:
        """Learn the ``word`` of a request body (the user picked it; a new word is added)."""
        return self._user_word(body, self.decoder.learn)

    def add_word(self, body: dict[str, Any]) -> str:
        """Add the ``word`` of a request body to the words the decoder outputs."""
        return self._user_word(body, self.decoder.add_words)

    def _user_word(self, body: dict[str, Any], change: Any) -> str:
        word = normalize_label(_field(body, "word", str))
        try:
            change(word)
        except (UserWordError, DecodeError) as err:
            raise RequestError(str(err)) from None
        return word

    def attention(self, swipe: Swipe, word: str) -> AttentionView:
        """Where the model looked, point by point, while reading ``word`` from ``swipe``."""
        try:
            batch, pad = self.decoder.curves([self._curve(swipe)]).batch([0])
        except DecodeError as err:
            raise RequestError(str(err)) from None
        device = self.decoder.device
        maps = self.model.attention_maps(batch.to(device), pad.to(device), [word])
        n = int(maps.lengths[0])
        weights = maps.weights[0, :, :, : len(word) + 1, :n].mean(dim=1).cpu()  # (layers, L, n)
        points = [(round(px, 1), round(py, 1)) for px, py in maps.points[0, :n].tolist()]
        layers = [[[round(w, 5) for w in row] for row in layer] for layer in weights.tolist()]
        return AttentionView(word, points, layers)

    def _curve(self, swipe: Swipe) -> Curve:
        return make_curve(swipe.x, swipe.y, swipe.t, swipe.layout.name)

    def template(self, layout: Layout, word: str) -> list[tuple[float, float]]:
        """The key centres of ``word``'s letters on ``layout``, in layout pixels (its template)."""
        try:
            units = word_polyline(layout, word)
        except LayoutError as err:
            raise RequestError(str(err)) from None
        scale = np.array([layout.key_width, layout.key_height])
        return [(round(float(px), 1), round(float(py), 1)) for px, py in units * scale]
