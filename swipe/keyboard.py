"""Keyboard layouts: key geometry, nearest-key lookup and key distances.

A layout is read from the Yandex Cup grid format::

    {"grid_name": "default", "width": 1080, "height": 667,
     "keys": [{"label": "й", "hitbox": {"x": 0, "y": 15, "w": 99, "h": 154}},
              {"action": "shift", "hitbox": {...}}, ...]}

Keys with a ``label`` type characters; keys with an ``action`` (shift, space, ...) are kept as
non-letter keys named ``<action>``. Labels are normalised with :func:`normalize_label`, the same
function that normalises words, so look-alike characters always land on one key.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

# Characters that users (and datasets) type for the same key. Both layout labels and target
# words go through this table, so e.g. a Latin "ë" typed in a Russian word finds the "ё" key.
_LOOKALIKES = {
    "\u00eb": "\u0451",  # Latin small e with diaeresis -> Cyrillic small io
    "\u0435\u0308": "\u0451",  # Cyrillic ie + combining diaeresis (when NFC leaves it decomposed)
    "e\u0308": "\u0451",  # Latin e + combining diaeresis
}

# Letters that some layouts type with another key (the Yandex Cup "default" layout has no "ъ" or
# "ё" key: they are typed on "ь" and "е").
_KEY_FALLBACKS = {"\u044a": "\u044c", "\u0451": "\u0435"}

BUNDLED_LAYOUT_NAMES = ("default", "extra", "qwerty_en", "hws_fitted")

# Nearest-key lookup tables are dense over the layout's pixel area; beyond this many cells the
# exact (brute-force) path is used instead.
_MAX_TABLE_CELLS = 16_000_000


class LayoutError(ValueError):
    """A keyboard layout is malformed or cannot be found."""


def normalize_label(text: str) -> str:
    """Normalise a key label or a word: NFC, lower case, look-alike characters folded.

    Parameters
    ----------
    text : str
        A key label or a whole word.

    Returns
    -------
    str
        The normalised text; ``"Ё"``, ``"ё"`` and Latin ``"ë"`` all become ``"ё"`` (U+0451).
    """
    text = unicodedata.normalize("NFC", text).lower()
    if text in _LOOKALIKES:
        return _LOOKALIKES[text]
    if any(ch in text for ch in ("\u00eb", "\u0308")):
        for src, dst in _LOOKALIKES.items():
            text = text.replace(src, dst)
    return text


@dataclass(frozen=True)
class Key:
    """One key: its name (a normalised label, or ``<action>``) and its hitbox in pixels."""

    name: str
    x: float
    y: float
    w: float
    h: float
    is_action: bool

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)


class Layout:
    """A keyboard layout with precomputed geometry.

    Parameters
    ----------
    name : str
        The layout's name (``grid_name``).
    width, height : float
        Size of the keyboard area in pixels.
    keys : sequence of Key
        At most 255 keys; key indices fit in ``uint8``.
    """

    def __init__(self, name: str, width: float, height: float, keys: Sequence[Key]) -> None:
        if not keys:
            raise LayoutError(f"layout {name!r} has no keys")
        if len(keys) > 255:
            raise LayoutError(f"layout {name!r} has {len(keys)} keys; at most 255 are supported")
        if width <= 0 or height <= 0:
            raise LayoutError(f"layout {name!r} has a non-positive size {width}x{height}")
        self.name = name
        self.width = float(width)
        self.height = float(height)
        self.keys: tuple[Key, ...] = tuple(keys)
        self._index = {}
        for i, key in enumerate(self.keys):
            self._index.setdefault(key.name, i)
        self.centers = np.array([k.center for k in self.keys], dtype=np.float32)
        self._boxes = np.array([(k.x, k.y, k.x + k.w, k.y + k.h) for k in self.keys], np.float64)
        letter_keys = [k for k in self.keys if not k.is_action] or list(self.keys)
        self.key_width = float(np.median([k.w for k in letter_keys]))
        self.key_height = float(np.median([k.h for k in letter_keys]))
        self.half_diagonal = 0.5 * float(np.hypot(self.key_width, self.key_height))

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, {self.width:g}x{self.height:g}, {len(self.keys)} keys)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.to_grid() == other.to_grid()

    def __hash__(self) -> int:
        return hash((self.name, self.keys))

    @property
    def num_keys(self) -> int:
        return len(self.keys)

    @property
    def letters(self) -> str:
        """The single characters typed by this layout's label keys, in key order."""
        return "".join(k.name for k in self.keys if not k.is_action and len(k.name) == 1)

    def key_index(self, label: str) -> int:
        """Index of the key typing ``label`` (normalised first); ``LayoutError`` if none does."""
        index = self._index.get(normalize_label(label))
        if index is None:
            raise LayoutError(f"layout {self.name!r} has no key {label!r}")
        return index

    def key_index_for_char(self, char: str) -> int:
        """Index of the key a user presses to type ``char``: its own key, or the key that types it
        on this layout (``ъ`` on ``ь``, ``ё`` on ``е`` where there is no own key)."""
        index = self._typing_key(char)
        if index is None:
            raise LayoutError(f"layout {self.name!r} has no key for {normalize_label(char)!r}")
        return index

    def can_type(self, char: str) -> bool:
        """Whether :meth:`key_index_for_char` has a key for ``char``."""
        return self._typing_key(char) is not None

    def _typing_key(self, char: str) -> int | None:
        char = normalize_label(char)
        index = self._index.get(char)
        if index is None and char in _KEY_FALLBACKS:
            index = self._index.get(_KEY_FALLBACKS[char])
        return index

    def has_key(self, label: str) -> bool:
        return normalize_label(label) in self._index

    # ---- nearest key -------------------------------------------------------------------------

    def nearest_keys_exact(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Brute-force nearest key of each point.

        The nearest key is the one whose hitbox is closest (distance 0 inside it); ties, such as
        the shared edge of two hitboxes, go to the key whose centre is closer, then to the lower
        index.

        Returns
        -------
        numpy.ndarray
            ``uint8`` key indices, shaped like ``x``.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        score = self._key_scores(x.reshape(-1, 1), y.reshape(-1, 1), np.arange(self.num_keys))
        return score.argmin(axis=1).astype(np.uint8).reshape(x.shape)

    def _key_scores(self, px: np.ndarray, py: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Nearest-key scores (lower wins) of points ``px, py`` of shape ``(n, 1)`` against the keys
        with indices ``keys``, shape ``(n, len(keys))``.

        Lexicographic (box distance, centre distance): box distances are compared to 1e-6 px.
        The arithmetic is elementwise, so a subset of keys scores exactly as in the full set.
        """
        x0, y0, x1, y1 = self._boxes[keys].T
        dx = np.maximum(np.maximum(x0 - px, px - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - py, py - y1), 0.0)
        box_dist = np.hypot(dx, dy)
        centers = self.centers[keys]
        center_dist = np.hypot(px - centers[:, 0], py - centers[:, 1])
        return np.round(box_dist, 6) * 1e6 + np.minimum(center_dist, 1e6 - 1)

    @cached_property
    def nearest_key_table(self) -> np.ndarray | None:
        """Dense ``uint8`` table of the nearest key at every integer pixel ``[y, x]``.

        Covers ``0 <= x <= ceil(width)``, ``0 <= y <= ceil(height)``; ``None`` for layouts too large
        for a table. Built once per layout, tile by tile: a key whose hitbox is farther from every
        pixel of a tile than another key's hitbox is from all of them cannot win there and is not
        scored, so each tile scores only a few keys (with the same result, pixel for pixel, as
        :meth:`nearest_keys_exact`).
        """
        nx, ny = int(np.ceil(self.width)) + 1, int(np.ceil(self.height)) + 1
        if nx * ny > _MAX_TABLE_CELLS:
            return None
        table = np.empty((ny, nx), dtype=np.uint8)
        x0, y0, x1, y1 = self._boxes.T
        tile = 32
        for ya in range(0, ny, tile):
            yb = min(ny, ya + tile) - 1
            # Smallest and largest vertical hitbox distance of each key over the tile's rows
            # (the distance is convex in y, so the largest is at an end of the range).
            dy_min = np.maximum(np.maximum(y0 - yb, ya - y1), 0.0)
            dy_max = np.maximum(np.maximum(y0 - ya, yb - y1), 0.0)
            ys = np.arange(ya, yb + 1, dtype=np.float64)
            for xa in range(0, nx, tile):
                xb = min(nx, xa + tile) - 1
                dx_min = np.maximum(np.maximum(x0 - xb, xa - x1), 0.0)
                dx_max = np.maximum(np.maximum(x0 - xa, xb - x1), 0.0)
                # A margin far above the 1e-6 px rounding of the score keeps every possible winner.
                upper = np.hypot(dx_max, dy_max).min()
                keys = np.flatnonzero(np.hypot(dx_min, dy_min) <= upper + 1e-3)
                gx, gy = np.meshgrid(np.arange(xa, xb + 1, dtype=np.float64), ys)
                score = self._key_scores(gx.reshape(-1, 1), gy.reshape(-1, 1), keys)
                table[ya : yb + 1, xa : xb + 1] = keys[score.argmin(axis=1)].reshape(gx.shape)
        return table

    def nearest_keys(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Nearest key of each point (rounded to the pixel grid), by table lookup.

        Points outside the table fall back to :meth:`nearest_keys_exact`.
        """
        x = np.asarray(x)
        y = np.asarray(y)
        table = self.nearest_key_table
        if table is None:
            return self.nearest_keys_exact(x, y)
        ix = np.rint(x).astype(np.int64)
        iy = np.rint(y).astype(np.int64)
        ny, nx = table.shape
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        if inside.all():
            return table[iy, ix]
        out = np.empty(x.shape, dtype=np.uint8)
        out[inside] = table[iy[inside], ix[inside]]
        out[~inside] = self.nearest_keys_exact(ix[~inside], iy[~inside])
        return out

    def key_distances(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance from each point to every key centre, in key half-diagonals.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of shape ``(*x.shape, num_keys)``.
        """
        x = np.asarray(x, dtype=np.float32)[..., None]
        y = np.asarray(y, dtype=np.float32)[..., None]
        d = np.hypot(x - self.centers[:, 0], y - self.centers[:, 1])
        return (d / np.float32(self.half_diagonal)).astype(np.float32)

    # ---- (de)serialisation -------------------------------------------------------------------

    @classmethod
    def from_grid(cls, grid: Mapping[str, Any], name: str | None = None) -> Layout:
        """Build a layout from a Yandex-format grid dictionary.

        Parameters
        ----------
        grid : mapping
            ``{grid_name?, width, height, keys: [{label | action, hitbox: {x, y, w, h}}]}``.
        name : str, optional
            Overrides ``grid["grid_name"]``.
        """
        name = name if name is not None else grid.get("grid_name")
        where = f"layout {name!r}" if name else "layout"
        if not isinstance(name, str) or not name:
            raise LayoutError(f"{where}: missing 'grid_name'")
        try:
            width, height, raw_keys = grid["width"], grid["height"], grid["keys"]
        except KeyError as err:
            raise LayoutError(f"{where}: missing {err.args[0]!r}") from None
        keys = []
        for i, raw in enumerate(raw_keys):
            if "label" in raw:
                key_name, is_action = normalize_label(str(raw["label"])), False
            elif "action" in raw:
                key_name, is_action = f"<{raw['action']}>", True
            else:
                raise LayoutError(f"{where}: key {i} has neither 'label' nor 'action'")
            try:
                box = raw["hitbox"]
                geometry = (float(box["x"]), float(box["y"]), float(box["w"]), float(box["h"]))
            except (KeyError, TypeError, ValueError):
                raise LayoutError(f"{where}: key {i} has no valid hitbox {{x, y, w, h}}") from None
            if geometry[2] <= 0 or geometry[3] <= 0:
                raise LayoutError(f"{where}: key {i} has an empty hitbox")
            keys.append(Key(key_name, *geometry, is_action=is_action))
        return cls(name, float(width), float(height), keys)

    def to_grid(self) -> dict[str, Any]:
        """The layout as a Yandex-format grid dictionary (JSON-serialisable)."""
        keys = []
        for k in self.keys:
            entry: dict[str, Any] = {"action": k.name[1:-1]} if k.is_action else {"label": k.name}
            entry["hitbox"] = {"x": k.x, "y": k.y, "w": k.w, "h": k.h}
            keys.append(entry)
        return {"grid_name": self.name, "width": self.width, "height": self.height, "keys": keys}

    @classmethod
    def from_rows(
        cls, name: str, rows: str | Sequence[str], width: float, height: float
    ) -> Layout:
        """Build a layout for any language from row strings.

        Keys are equally wide (the width divided by the longest row), rows equally tall and
        shorter rows centred, as on most phone keyboards.

        Parameters
        ----------
        name : str
            The layout's name.
        rows : str or sequence of str
            E.g. ``"qwertyuiop,asdfghjkl,zxcvbnm"`` or ``["qwertyuiop", "asdfghjkl", "zxcvbnm"]``.
        width, height : float
            Keyboard size in pixels.
        """
        row_list = rows.split(",") if isinstance(rows, str) else list(rows)
        row_list = [r for r in row_list if r]
        if not row_list:
            raise LayoutError(f"layout {name!r}: no rows given")
        key_w = width / max(len(r) for r in row_list)
        key_h = height / len(row_list)
        keys = []
        for r, row in enumerate(row_list):
            x0 = (width - key_w * len(row)) / 2.0
            for c, ch in enumerate(row):
                keys.append(Key(normalize_label(ch), x0 + c * key_w, r * key_h, key_w, key_h, False))
        return cls(name, width, height, keys)


def load_layouts_file(path: str | Path) -> dict[str, Layout]:
    """Read a grids file: a JSON object ``{name: grid}`` or a list of grids with ``grid_name``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # unreadable, not UTF-8, not JSON
        raise LayoutError(f"{path}: cannot read layouts: {err}") from None
    except RecursionError:
        raise LayoutError(f"{path}: cannot read layouts: JSON nested too deeply") from None
    grid_list = isinstance(data, list) and all(isinstance(g, dict) for g in data)
    if not (isinstance(data, dict) or grid_list):
        raise LayoutError(f"{path}: a layouts file is an object of grids by name or a list of grids")
    grids = data.items() if isinstance(data, dict) else ((g.get("grid_name"), g) for g in data)
    layouts = {}
    for name, grid in grids:
        try:
            if not isinstance(grid, dict):
                raise LayoutError(f"grid {name!r} is not an object")
            layouts[name] = Layout.from_grid(grid, name=name)
        except (LayoutError, TypeError, ValueError) as err:
            raise LayoutError(f"{path}: {err}") from None
    return layouts


_bundled_cache: dict[str, Layout] = {}


def bundled_layout(name: str) -> Layout:
    """One of the bundled layouts: ``default``, ``extra`` (Yandex Cup 2023), ``qwerty_en``
    (an English phone layout) or ``hws_fitted`` (fitted to the How-We-Swipe data)."""
    if not _bundled_cache:
        text = resources.files("swipe.resources").joinpath("layouts.json").read_text("utf-8")
        for grid_name, grid in json.loads(text).items():
            _bundled_cache[grid_name] = Layout.from_grid(grid, name=grid_name)
    if name not in _bundled_cache:
        raise LayoutError(f"no bundled layout {name!r}; bundled: {', '.join(_bundled_cache)}")
    return _bundled_cache[name]


def resolve_layout(name: str, extra: Mapping[str, Layout] | None = None) -> Layout:
    """Find a layout by name in ``extra`` first, then among the bundled ones."""
    if extra and name in extra:
        return extra[name]
    return bundled_layout(name)
