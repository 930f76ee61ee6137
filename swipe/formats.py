"""Swipe data formats: readers for Yandex-style jsonl and How-We-Swipe ``.log`` files.

Yandex jsonl, one curve a line::

    {"word": "привет",
     "curve": {"x": [...], "y": [...], "t": [...], "grid": {grid_name, width, height, keys}}}

The grid may be given inline (``curve.grid``, parsed once per distinct grid) or by name
(``curve.grid_name``, looked up in the layouts passed in, a grids file, grids seen inline earlier,
then the bundled layouts). ``word`` is absent in test files. x and y are pixels, t milliseconds.

How-We-Swipe raw logs are space-separated, one touch event a line, with the header
``sentence timestamp keyb_width keyb_height event x_pos y_pos x_radius y_radius angle word is_err``;
a gesture runs from ``touchstart`` through ``touchmove`` events to ``touchend``. Coordinates are
scaled from each line's ``keyb_width x keyb_height`` onto the chosen layout, and times start at 0.

Bad rows raise :class:`BadRowError` naming the file and line; with ``skip_bad_rows=True`` they are
skipped and counted by reason in a :class:`ReadStats`. Duplicate timestamps are legal; decreasing
ones are not.

Command line::

    python -m swipe.formats convert-hws LOGS... --out hws.jsonl [--layout hws_fitted]
    python -m swipe.formats check FILES... [--layouts grids.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import gzip
import itertools
import json
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from swipe.atomic import atomic_output
from swipe.cli import command_line
from swipe.keyboard import Layout, LayoutError, bundled_layout, load_layouts_file, normalize_label

# Curves per chunk: numeric checks and conversions run over whole chunks, not per curve.
DEFAULT_CHUNK_SIZE = 4096

# At most this many distinct raw grid texts are remembered for the inline-grid fast path.
_MAX_RAW_GRIDS = 64

HWS_HEADER = (
    "sentence timestamp keyb_width keyb_height event x_pos y_pos x_radius y_radius angle word is_err"
).split()


# ---- limits: what one swipe may be, checked the same way by every reader --------------------------

# Points of one swipe (a long, slow swipe logs a few hundred).
MAX_SWIPE_POINTS = 5000
# Stored coordinate units per pixel: a built dataset keeps coordinates as int16 in 1/4 px.
COORD_SCALE = 4.0
# |x| and |y| in pixels after rounding to 1/COORD_SCALE px: what int16 can hold.
MAX_COORDINATE = np.iinfo(np.int16).max / COORD_SCALE
# Milliseconds from a swipe's first point to its last (times are stored relative to the first).
MAX_DURATION_MS = 3_600_000.0
# Bytes of one line of a data file (a swipe of MAX_SWIPE_POINTS points with an inline grid is
# well under this); a longer line is a bad row, read no further than the limit.
MAX_LINE_BYTES = 4 << 20

_BOM = b"\xef\xbb\xbf"


class BadRowError(ValueError):
    """A row of a data file is malformed; the message names the file and line."""


class SwipeError(ValueError):
    """A swipe's points are not usable (see :func:`check_swipe`); the message is one line."""


def loads_json(text: str | bytes) -> object:
    """``json.loads``, with JSON nested too deeply for the parser a ``ValueError`` like any other
    broken JSON (not a ``RecursionError``)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def swipe_problems(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, offsets: np.ndarray
) -> dict[int, tuple[str, str]]:
    """What is wrong with each of many swipes, vectorised: the one check of swipe values that the
    readers, ``data build``, ``predict.py``, :func:`swipe.make_curve`, the runtime and the demo share.

    Parameters
    ----------
    x, y, t : numpy.ndarray
        ``float64`` points of all swipes, swipe after swipe (pixels, milliseconds).
    offsets : numpy.ndarray
        ``int64``, ``n + 1`` of them: swipe ``i`` holds points ``offsets[i]:offsets[i + 1]``
        (at least one point each).

    Returns
    -------
    dict of int to (str, str)
        For each bad swipe, by index: ``(reason, detail)``, the reason a short category to count.
        Checked: at most :data:`MAX_SWIPE_POINTS` points; finite values; ``|x|, |y| <=``
        :data:`MAX_COORDINATE` once rounded to 1/4 px; ``t`` non-decreasing; at most
        :data:`MAX_DURATION_MS` from the first point to the last.
    """
    problems: dict[int, tuple[str, str]] = {}
    if len(offsets) < 2:
        return problems
    starts, lengths = offsets[:-1], np.diff(offsets)
    for i in np.flatnonzero(lengths > MAX_SWIPE_POINTS):
        detail = f"{lengths[i]} points; at most {MAX_SWIPE_POINTS} are accepted"
        problems[int(i)] = ("too many points", detail)
    with np.errstate(invalid="ignore", over="ignore"):
        not_finite = ~(np.isfinite(x) & np.isfinite(y) & np.isfinite(t))
        limit = MAX_COORDINATE * COORD_SCALE
        out_of_range = ~not_finite & (
            (np.abs(np.rint(x * COORD_SCALE)) > limit) | (np.abs(np.rint(y * COORD_SCALE)) > limit)
        )
        decreasing = np.zeros(len(t), bool)
        decreasing[1:] = t[1:] < t[:-1]
        decreasing[starts] = False
        duration = t[offsets[1:] - 1] - t[starts]
    range_detail = f"coordinate out of range (|x|, |y| <= {MAX_COORDINATE} px)"
    checks = (
        (not_finite, "NaN or infinite value", "NaN or infinite value"),
        (out_of_range, "coordinate out of range", range_detail),
        (decreasing, "time decreases", "time decreases"),
    )
    for mask, reason, detail in checks:
        if mask.any():
            for i in np.flatnonzero(np.logical_or.reduceat(mask, starts)):
                problems.setdefault(int(i), (reason, detail))
    for i in np.flatnonzero(~(duration <= MAX_DURATION_MS)):
        problems.setdefault(int(i), ("time out of range", f"the swipe lasts over {MAX_DURATION_MS:.0f} ms"))
    return problems


def _number_array(values: object, name: str) -> np.ndarray:
    """``float64`` of a list of JSON numbers (or a numeric array); anything else is a SwipeError."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "iuf":
            raise SwipeError(f"'{name}' must be a list of numbers")
        if len(values) > MAX_SWIPE_POINTS:
            raise SwipeError(f"'{name}' has {len(values)} points; at most {MAX_SWIPE_POINTS} are accepted")
        return values.astype(np.float64)
    if not isinstance(values, (list, tuple)):
        raise SwipeError(f"'{name}' must be a list of numbers")
    if len(values) > MAX_SWIPE_POINTS:
        raise SwipeError(f"'{name}' has {len(values)} points; at most {MAX_SWIPE_POINTS} are accepted")
    # numpy would take "12" and true as numbers: only numbers are.
    if not all(type(v) in _NUMBER_TYPES or isinstance(v, (np.floating, np.integer)) for v in values):
        raise SwipeError(f"x, y and t must be lists of numbers: '{name}' holds a string, boolean or null")
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:
        raise SwipeError(f"'{name}' holds a number out of range") from None


def check_swipe(x: object, y: object, t: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One swipe's points, checked as every reader checks them (:func:`swipe_problems`).

    Parameters
    ----------
    x, y, t : list of numbers or numpy.ndarray
        Pixel coordinates and milliseconds.

    Returns
    -------
    tuple of numpy.ndarray
        ``x, y, t`` as ``float64``.

    Raises
    ------
    SwipeError
        Not lists of numbers (strings, booleans, null), lengths that differ or are zero, or a
        problem found by :func:`swipe_problems`; the message is one line.
    """
    xs, ys, ts = _number_array(x, "x"), _number_array(y, "y"), _number_array(t, "t")
    if not len(xs) == len(ys) == len(ts) or len(ts) == 0:
        raise SwipeError(f"x, y and t must be lists of the same, non-zero length, got {len(xs)}, "
                         f"{len(ys)}, {len(ts)} values")
    problem = swipe_problems(xs, ys, ts, np.array([0, len(ts)], np.int64)).get(0)
    if problem is not None:
        raise SwipeError(problem[1])
    return xs, ys, ts


class Curve(NamedTuple):
    """One swipe.

    Attributes
    ----------
    x, y : numpy.ndarray
        ``float32`` pixel coordinates on the layout.
    t : numpy.ndarray
        ``float64`` milliseconds, non-decreasing (equal neighbours are legal).
    word : str or None
        The normalised target word; ``None`` for rows without one (test files).
    grid_name : str
        The layout's name.
    line : int
        1-based line number in the source file (the gesture number for ``.log`` files).
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    word: str | None
    grid_name: str
    line: int


class CurveChunk(NamedTuple):
    """Consecutive good curves of one file, with their points concatenated.

    Attributes
    ----------
    x, y, t : numpy.ndarray
        ``float64`` points of all curves, curve after curve.
    offsets : numpy.ndarray
        ``int64`` of length ``n + 1``: curve ``i`` holds points ``offsets[i]:offsets[i + 1]``.
    words : list of str or None
        Normalised target words.
    layouts : list of Layout
        Each curve's layout.
    lines : list of int
        Line numbers (gesture numbers for ``.log`` files).
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    offsets: np.ndarray
    words: list[str | None]
    layouts: list[Layout]
    lines: list[int]

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.words)

    def curve(self, i: int) -> Curve:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Curve(
            self.x[a:b].astype(np.float32),
            self.y[a:b].astype(np.float32),
            self.t[a:b].copy(),
            self.words[i],
            self.layouts[i].name,
            self.lines[i],
        )


@dataclass
class ReadStats:
    """Counts gathered while reading.

    Attributes
    ----------
    curves : int
        Curves read successfully.
    skipped : Counter
        Bad rows skipped, by reason (only with ``skip_bad_rows=True``).
    excluded : Counter
        Good rows left out on purpose, by reason (e.g. How-We-Swipe gestures marked as errors).
    """

    curves: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line: curves read, and what was skipped or excluded by reason."""
        text = f"{self.curves} curves"
        for label, counts in (("skipped", self.skipped), ("excluded", self.excluded)):
            if counts:
                detail = ", ".join(f"{reason}: {n}" for reason, n in counts.most_common())
                text += f"; {label} {sum(counts.values())} ({detail})"
        return text


class _BadRow(Exception):
    """A row problem: ``reason`` is the category counted in :class:`ReadStats`."""

    def __init__(self, reason: str, detail: str | None = None, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason
        self.line = line  # overrides the row's number in messages (How-We-Swipe: the event's line)


class LayoutRegistry:
    """The layouts of a read, by name; one grid per name.

    Lookup order for a ``grid_name``: layouts given explicitly (argument or grids file), grids
    seen inline earlier, bundled layouts. A grid that differs from an earlier one of the same name
    is an error.

    Parameters
    ----------
    layouts : mapping of str to Layout, optional
        Layouts by name.
    grids_file : path, optional
        A grids file (``{name: grid}`` or a list of grids), see
        :func:`swipe.keyboard.load_layouts_file`.
    """

    def __init__(
        self, layouts: Mapping[str, Layout] | None = None, grids_file: str | Path | None = None
    ) -> None:
        self._by_name: dict[str, Layout] = {}
        self._origin: dict[str, str] = {}
        self._raw: dict[bytes, Layout] = {}
        if grids_file is not None:
            for name, layout in load_layouts_file(grids_file).items():
                self._register(name, layout, str(grids_file))
        for name, layout in (layouts or {}).items():
            self._register(name, layout, "the layouts given")

    def _register(self, name: str, layout: Layout, origin: str) -> Layout:
        known = self._by_name.get(name)
        if known is None:
            if layout.name != name:
                raise LayoutError(f"layout {layout.name!r} is registered under another name {name!r}")
            self._by_name[name] = layout
            self._origin[name] = origin
            return layout
        if known != layout:
            raise LayoutError(f"grid {name!r} differs from the grid of that name in {self._origin[name]}")
        return known

    def get(self, name: str) -> Layout | None:
        """The layout called ``name``, or ``None`` if it is unknown."""
        layout = self._by_name.get(name)
        if layout is None:
            try:
                layout = self._register(name, bundled_layout(name), "the bundled layouts")
            except LayoutError:
                return None
        return layout

    def registered(self, name: str) -> Layout | None:
        """The layout called ``name`` if it is registered already (bundled ones are not looked up)."""
        return self._by_name.get(name)

    def from_grid(self, grid: object, raw: bytes | None, where: str) -> Layout:
        """The layout of an inline grid; ``raw`` (its JSON text) enables the fast path."""
        if not isinstance(grid, dict):
            raise _BadRow("bad grid", f"'grid' is not an object: {str(grid)[:40]}")
        try:
            layout = Layout.from_grid(grid)
        except (LayoutError, TypeError, ValueError) as err:
            raise _BadRow("bad grid", f"bad grid: {err}") from None
        try:
            layout = self._register(layout.name, layout, where)
        except LayoutError as err:
            raise _BadRow("conflicting grid", str(err)) from None
        if raw is not None and len(self._raw) < _MAX_RAW_GRIDS:
            self._raw[raw] = layout
        return layout

    def match_raw(self, text: bytes, start: int) -> tuple[bytes, Layout] | None:
        """A known raw grid text found at ``text[start:]``, with its layout."""
        for raw, layout in self._raw.items():
            if text.startswith(raw, start):
                return raw, layout
        return None


# ---- reading ------------------------------------------------------------------------------------

# Datasets repeat words a lot; normalising each distinct word once saves time on big files.
_normalize_word = functools.lru_cache(maxsize=1 << 16)(normalize_label)


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]


def _is_log(path: Path) -> bool:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return name.endswith(".log")


def iter_curve_chunks(
    path: str | Path,
    registry: LayoutRegistry,
    skip_bad_rows: bool = False,
    stats: ReadStats | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    hws_layout: str = "hws_fitted",
    hws_include_errors: bool = False,
) -> Iterator[CurveChunk]:
    """Read a data file in chunks of good curves (the fast path under :func:`read_curves`).

    Parameters
    ----------
    path : path
        A Yandex jsonl file, or a How-We-Swipe ``.log`` file (either optionally ``.gz``).
    registry : LayoutRegistry
        Resolves layouts; shared across the files of one dataset so that names stay consistent.
    skip_bad_rows : bool
        Skip bad rows (counted in ``stats.skipped``) instead of raising :class:`BadRowError`.
    stats : ReadStats, optional
        Updated with counts.
    chunk_size : int
        Curves per chunk.
    hws_layout : str
        Layout that ``.log`` coordinates are scaled onto.
    hws_include_errors : bool
        Keep ``.log`` gestures marked ``is_err = 1`` (excluded and counted by default).

    Yields
    ------
    CurveChunk
        In file order. In strict mode the curves before a bad row are yielded, then the error
        is raised.
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    if _is_log(path):
        layout = registry.get(hws_layout)
        if layout is None:
            raise LayoutError(f"{path}: unknown layout {hws_layout!r} for How-We-Swipe coordinates")
        rows: Iterator[tuple[int, object]] = _hws_rows(path, layout, hws_include_errors, stats)
    else:
        rows = _jsonl_rows(path, registry)
    while True:
        with _gc_paused():
            pending = list(itertools.islice(rows, chunk_size))
            if not pending:
                return
            chunk, error = _finish_chunk(path, pending, skip_bad_rows, stats)
        if chunk is not None:
            yield chunk
        if error is not None:
            raise error


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing allocates many short-lived containers that
    reference counting frees, and collector passes over them cost about a third of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_curves(
    path: str | Path,
    layouts: Mapping[str, Layout] | None = None,
    grids_file: str | Path | None = None,
    skip_bad_rows: bool = False,
    stats: ReadStats | None = None,
    hws_layout: str = "hws_fitted",
    hws_include_errors: bool = False,
) -> Iterator[Curve]:
    """Read the curves of a Yandex jsonl or How-We-Swipe ``.log`` file.

    Parameters
    ----------
    path : path
        The file; ``.log`` (or ``.log.gz``) is read as How-We-Swipe, anything else as jsonl.
    layouts : mapping of str to Layout, optional
        Layouts for rows that give a ``grid_name``.
    grids_file : path, optional
        A grids file for rows that give a ``grid_name``.
    skip_bad_rows : bool
        Skip bad rows, counting them by reason in ``stats.skipped``, instead of raising.
    stats : ReadStats, optional
        Updated with counts.
    hws_layout : str
        For ``.log`` files: the layout that coordinates are scaled onto.
    hws_include_errors : bool
        For ``.log`` files: keep gestures marked ``is_err = 1``.

    Yields
    ------
    Curve

    Raises
    ------
    BadRowError
        ``"<file>:<line>: <reason>"`` for the first bad row, unless ``skip_bad_rows``.
    """
    registry = LayoutRegistry(layouts, grids_file)
    for chunk in iter_curve_chunks(
        path, registry, skip_bad_rows, stats, hws_layout=hws_layout, hws_include_errors=hws_include_errors
    ):
        for i in range(len(chunk)):
            yield chunk.curve(i)


class _Row(NamedTuple):
    x: list
    y: list
    t: list
    word: str | None
    layout: Layout
    line: int | None = None  # where messages point, if not the row's own number
    prefix: str = ""  # for messages, e.g. "gesture 3: "

    def problem(self, reason: str, detail: str | None = None) -> _BadRow:
        return _BadRow(reason, self.prefix + (detail or reason), self.line)


class _TextRow(NamedTuple):
    """A jsonl row whose curve.x, .y and .t are still text (what stands between the brackets);
    :func:`_finish_chunk` parses the numbers of a whole chunk at once."""

    x: bytes
    y: bytes
    t: bytes
    word: str | None
    layout: Layout
    text: bytes  # the whole line: parsed with json instead where the numbers are not plain decimals
    registry: LayoutRegistry

    def problem(self, reason: str, detail: str | None = None) -> _BadRow:
        return _BadRow(reason, detail or reason)


def _jsonl_rows(path: Path, registry: LayoutRegistry) -> Iterator[tuple[int, object]]:
    """``(line, _Row | _TextRow | _BadRow)`` for each non-blank line of a jsonl file."""
    # Lines stay bytes until parsed: the inline grid, most of a line, is then never decoded.
    with _open_binary(path) as f:
        for lineno, text in numbered_lines(f):
            if isinstance(text, _BadRow):
                yield lineno, text
            elif text and not text.isspace():
                try:
                    yield lineno, _parse_json_row(text, registry, path, lineno)
                except _BadRow as bad:
                    yield lineno, bad


def numbered_lines(f: IO[bytes]) -> Iterator[tuple[int, bytes | _BadRow]]:
    """``(line number, line)``, a leading byte-order mark dropped; a line over
    :data:`MAX_LINE_BYTES` is a :class:`_BadRow` ("line too long", the rest of it skipped unread
    into memory); a file that cannot be read to its end (a truncated or corrupt ``.gz``) ends with
    one :class:`_BadRow` ("unreadable file") on the line after the last one read."""
    lineno = 0
    try:
        for lineno, text in enumerate(iter(functools.partial(f.readline, MAX_LINE_BYTES + 1), b""), 1):
            if lineno == 1 and text.startswith(_BOM):
                text = text[len(_BOM):]
            if len(text) > MAX_LINE_BYTES and not text.endswith(b"\n"):
                while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass
                yield lineno, _BadRow("line too long", f"line longer than {MAX_LINE_BYTES} bytes")
            else:
                yield lineno, text
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        detail = f"the file ends early or is corrupt ({err}); nothing after this line was read"
        yield lineno + 1, _BadRow("unreadable file", detail)


_scan_json = json.JSONDecoder().scan_once


def _loads_fast(text: bytes) -> object:
    """``json.loads`` of one line without its per-call overhead; any error means: use json.loads."""
    decoded = text.decode("utf-8")
    try:
        obj, end = _scan_json(decoded, 0)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if end != len(decoded) and decoded[end:].strip():
        raise ValueError("trailing data")
    return obj


def _parse_json_row(
    text: bytes, registry: LayoutRegistry, path: Path, lineno: int, lists_as_text: bool = True
) -> _Row | _TextRow:
    """One jsonl row; with ``lists_as_text`` a plain good row comes back as a :class:`_TextRow`."""
    obj = None
    layout = None
    grid_key = text.find(b'"grid"')
    start = -1
    if grid_key >= 0:
        start = grid_key + 6
        while text[start : start + 1] in (b" ", b"\t", b":"):
            start += 1
        # Fast path: a grid text seen before is cut out before parsing, so the (large) inline
        # grid is parsed only once per distinct text.
        match = registry.match_raw(text, start)
        if match is not None:
            raw, layout = match
            cut = text[:start] + b"0" + text[start + len(raw) :]
            text_row = _text_row(cut, text, registry, layout) if lists_as_text else None
            if text_row is not None:
                return text_row
            try:
                obj = _loads_fast(cut)
                if obj["curve"]["grid"] != 0:
                    obj = None
            except (ValueError, KeyError, TypeError, IndexError, StopIteration):
                obj = None
    elif lists_as_text:
        text_row = _text_row(text, text, registry)
        if text_row is not None:
            return text_row
    if obj is None:
        layout = None
        try:
            obj = loads_json(text)
        except ValueError as err:
            raise _BadRow("broken JSON", f"broken JSON: {err}") from None
    if not isinstance(obj, dict):
        raise _BadRow("broken JSON", "a row must be a JSON object")
    curve = obj.get("curve")
    if not isinstance(curve, dict):
        detail = "missing field 'curve'" if curve is None else "'curve' is not an object"
        raise _BadRow("missing field", detail)
    try:
        x, y, t = curve["x"], curve["y"], curve["t"]
    except KeyError as err:
        raise _BadRow("missing field", f"missing field 'curve.{err.args[0]}'") from None
    if not (isinstance(x, list) and isinstance(y, list) and isinstance(t, list)):
        raise _BadRow("non-numeric value", "curve.x, curve.y and curve.t must be lists of numbers")
    if layout is None:
        if "grid" in curve:
            raw = None
            if start >= 0:
                try:
                    decoded = text.decode("utf-8")
                    offset = len(text[:start].decode("utf-8"))
                    _, end = json.JSONDecoder().raw_decode(decoded, offset)
                    raw = decoded[offset:end].encode("utf-8")
                except (ValueError, RecursionError):
                    raw = None
            layout = registry.from_grid(curve["grid"], raw, f"{path}:{lineno}")
        elif "grid_name" in curve:
            name = curve["grid_name"]
            layout = registry.get(name) if isinstance(name, str) else None
            if layout is None:
                raise _BadRow("unknown layout", f"unknown layout {name!r}")
        else:
            raise _BadRow("missing field", "missing field 'curve.grid' or 'curve.grid_name'")
    word = obj.get("word")
    if word is not None:
        if not isinstance(word, str):
            raise _BadRow("bad word", f"'word' is not a string: {word!r}")
        word = _normalize_word(word)
        if not word:
            raise _BadRow("bad word", "empty word")
    return _Row(x, y, t, word, layout)


# How a curve list's key may stand before the list's "[" (compact, or json.dumps' default).
_LIST_KEYS = {f'"{key}"{sep}'.encode(): key for key in "xyt" for sep in (":", ": ")}


def _text_row(
    cut: bytes, text: bytes, registry: LayoutRegistry, layout: Layout | None = None
) -> _TextRow | None:
    """The row ``text`` with its curve lists left as text, or ``None`` unless it is a plain good
    row (the full parse then decides).

    ``cut`` is ``text`` with the inline grid of ``layout``, known already, replaced by ``0``;
    without a layout, the row names its grid and ``cut`` is ``text``. ``registry`` is only read,
    so that the full parse, should the numbers need it, still finds what it would have found.
    """
    # The row's only lists must be curve.x, .y and .t, flat: cut out what is inside them and
    # parse the small rest.
    parts = cut.split(b"[")
    if len(parts) != 4:
        return None
    pieces = [parts[0]]
    lists: dict[str, bytes] = {}
    for before, part in zip(parts, parts[1:], strict=False):  # before ends with the key of part
        key = _LIST_KEYS.get(before[-4:]) or _LIST_KEYS.get(before[-5:])
        body, close, rest = part.partition(b"]")
        if key is None or key in lists or not close:
            return None
        lists[key] = body
        pieces += (b"[]", rest)
    try:
        obj = _loads_fast(b"".join(pieces))
        curve = obj["curve"]
        # The three emptied lists are the only ones left, so these are they, each under its key.
        if curve["x"] != [] or curve["y"] != [] or curve["t"] != []:
            return None
        if layout is not None:
            if curve["grid"] != 0:
                return None
        else:
            name = curve.get("grid_name")
            layout = registry.registered(name) if isinstance(name, str) and "grid" not in curve else None
            if layout is None:
                return None
        word = obj.get("word")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, StopIteration):
        return None
    if word is not None:
        if not isinstance(word, str):
            return None
        word = _normalize_word(word)
        if not word:
            return None
    return _TextRow(lists["x"], lists["y"], lists["t"], word, layout, text, registry)


def _full_row(path: Path, lineno: int, item: object) -> object:
    """``item``, or for a :class:`_TextRow` what the full parse makes of its line."""
    if not isinstance(item, _TextRow):
        return item
    try:
        return _parse_json_row(item.text, item.registry, path, lineno, lists_as_text=False)
    except _BadRow as bad:
        return bad


_Points = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, y, t and curve offsets


def _concat(rows: list[_Row]) -> _Points:
    """Points of ``rows`` concatenated (``float64``), and the curve offsets."""
    lengths = np.fromiter((len(r.x) for r in rows), np.int64, len(rows))
    # One list and one conversion for all numbers (x, y, t of each row in turn) is the fastest
    # way from Python numbers to an array; then pick x, y and t out of it.
    values: list = []
    for r in rows:
        values += r.x
        values += r.y
        values += r.t
    # numpy would take "12" and true as numbers: only JSON numbers are.
    if not set(map(type, values)) <= _NUMBER_TYPES:
        raise TypeError("not a number")
    return _split_xyt(np.fromiter(values, np.float64, len(values)), lengths)


_NUMBER_TYPES = {int, float}


def _concat_text(rows: list[_TextRow]) -> _Points | None:
    """:func:`_concat` for text rows; ``None`` if some number is not a plain decimal or some
    curve's lists differ in length or are empty."""
    parsed = _parse_decimal_lists([body for r in rows for body in (r.x, r.y, r.t)])
    if parsed is None:
        return None
    values, counts = parsed
    counts = counts.reshape(-1, 3)
    lengths = counts[:, 0]
    if not ((counts == lengths[:, None]).all() and lengths.all()):
        return None
    return _split_xyt(values, lengths)


def _split_xyt(flat: np.ndarray, lengths: np.ndarray) -> _Points:
    """x, y and t out of ``flat`` (x, y, t of each curve in turn), and the curve offsets."""
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    x_index = np.arange(int(offsets[-1])) + np.repeat(2 * offsets[:-1], lengths)
    step = np.repeat(lengths, lengths)
    return flat[x_index], flat[x_index + step], flat[x_index + 2 * step], offsets


_POWERS_OF_TEN = 10.0 ** np.arange(16)  # exact in float64
_MAX_DIGITS = 15  # a mantissa of at most 15 digits is below 2**53, so exact in float64
_JSON_SPACE = b" \t\n\r"
_DECIMAL_CHARS = b"0123456789,-."
# Lists parsed together: their arrays stay in the CPU cache, which makes the passes several times faster.
_LISTS_PER_PASS = 384


def _parse_decimal_lists(lists: list[bytes]) -> tuple[np.ndarray, np.ndarray] | None:
    """The numbers of JSON lists given by their insides (``b"1,-2.5,3"``), vectorised.

    Parsing the curve numbers with json took most of the time of reading a file; here they are
    read by array operations over many lists at once. Only plain decimals are read: an optional
    minus, digits without a leading zero, an optional fraction, at most 15 digits in all,
    whitespace only next to commas. Such a number is an exact integer over an exact power of ten,
    and one division of exact numbers is correctly rounded, so every value equals json's bit for
    bit.

    Returns
    -------
    (values, counts) or None
        ``float64`` values of all lists in turn and ``int64`` numbers per list; ``None`` if any
        number is not a plain decimal or any list is empty (json decides those).
    """
    values = []
    for begin in range(0, len(lists), _LISTS_PER_PASS):
        text = b",".join(lists[begin : begin + _LISTS_PER_PASS]) + b","  # a comma after each number
        if text.translate(None, _DECIMAL_CHARS):  # whitespace, or something else
            compact = text.translate(None, _JSON_SPACE)
            if compact.translate(None, _DECIMAL_CHARS) or not _space_only_next_to_commas(text):
                return None  # exponents, NaN, true, null, ...
            text = compact
        part = _parse_decimals(text)
        if part is None:
            return None
        values.append(part)
    counts = np.fromiter(map(bytes.count, lists, itertools.repeat(b",")), np.int64, len(lists)) + 1
    return np.concatenate(values), counts


def _parse_decimals(text: bytes) -> np.ndarray | None:
    """The values of ``text``, numbers each followed by a comma, made of digits, minus signs and
    dots only; ``None`` unless all are plain decimals (see :func:`_parse_decimal_lists`)."""
    chars = np.frombuffer(text, np.uint8)
    ends = np.flatnonzero(chars == ord(","))
    starts = np.concatenate(([0], ends[:-1] + 1))
    minus = chars[starts] == ord("-")
    first = starts + minus  # where the digits start
    dots = np.flatnonzero(chars == ord(".")) if b"." in text else ends[:0]
    dotted = np.searchsorted(ends, dots)  # the number each dot is in
    fraction_digits = np.zeros(len(ends), np.int64)
    fraction_digits[dotted] = ends[dotted] - dots - 1
    num_digits = ends - first
    num_digits[dotted] -= 1
    int_digits = num_digits - fraction_digits
    if (
        text.count(b"-") != np.count_nonzero(minus)  # a minus only in front
        or (np.diff(dotted) == 0).any()  # one dot at most
        or (fraction_digits[dotted] == 0).any()  # a digit after the dot
        or (int_digits < 1).any()  # a digit before it, and no empty number
        or ((chars[first] == ord("0")) & (int_digits > 1)).any()  # no leading zero
        or (num_digits > _MAX_DIGITS).any()
    ):
        return None
    # The mantissa (all digits, without the dot), summed digit column by digit column from the
    # right: column k of a number is the k-th character before its comma in the dot-free text.
    if len(dots):
        chars = np.frombuffer(text.translate(None, b"."), np.uint8)
        ends = ends - np.cumsum(fraction_digits > 0)
    mantissas = np.zeros(len(ends))
    position = ends - 1
    for k in range(int(num_digits.max())):
        column = chars[position] - ord("0")
        column[num_digits <= k] = 0
        mantissas += column * _POWERS_OF_TEN[k]
        position -= 1
    values = mantissas / _POWERS_OF_TEN[fraction_digits]
    # json reads "-0" as the integer 0, which is +0.0; "-0.0" is -0.0.
    np.negative(values, out=values, where=minus & ((mantissas != 0) | (fraction_digits > 0)))
    return values


def _space_only_next_to_commas(text: bytes) -> bool:
    """Whether all JSON whitespace in ``text`` stands between numbers, not inside one."""
    chars = np.frombuffer(text, np.uint8)
    kept = np.flatnonzero(~np.isin(chars, np.frombuffer(_JSON_SPACE, np.uint8)))
    gaps = np.diff(kept) > 1
    return not (gaps & (chars[kept[:-1]] != ord(",")) & (chars[kept[1:]] != ord(","))).any()


_NON_NUMERIC = "curve.x, curve.y and curve.t must hold JSON numbers (not strings or booleans)"


def _is_numeric(row: _Row) -> bool:
    """Whether the row's lists hold JSON numbers only, each within float range."""
    try:
        _concat([row])
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _check_rows(items: list[tuple[int, object]], bad: dict[int, _BadRow]) -> tuple[list, _Points]:
    """The :class:`_Row` items with curves of matching, non-zero lengths and numbers only, by
    position, and their points; problems go into ``bad`` by position."""
    rows: list[tuple[int, _Row]] = []
    for pos, (_, item) in enumerate(items):
        if isinstance(item, _BadRow):
            bad[pos] = item
            continue
        if not isinstance(item, _Row):
            continue
        n = len(item.x)
        if n != len(item.y) or n != len(item.t):
            bad[pos] = item.problem(
                "length mismatch", f"x, y and t have different lengths ({n}, {len(item.y)}, {len(item.t)})"
            )
        elif n == 0:
            bad[pos] = item.problem("empty curve")
        else:
            rows.append((pos, item))
    try:
        return rows, _concat([r for _, r in rows])
    except (TypeError, ValueError, OverflowError):
        # Some row holds a non-number (rare): find and drop it, then convert the rest.
        for pos, r in rows:
            if not _is_numeric(r):
                bad[pos] = r.problem("non-numeric value", _NON_NUMERIC)
        rows = [(pos, r) for pos, r in rows if pos not in bad]
        return rows, _concat([r for _, r in rows])


def _merge(rows_a: list, points_a: _Points, rows_b: list, points_b: _Points) -> tuple[list, _Points]:
    """Two sets of a chunk's curves (rows by position, and their points) as one, in chunk order."""
    if not rows_b:
        return rows_a, points_a
    rows = rows_a + rows_b
    order = np.argsort([pos for pos, _ in rows])
    offsets_a, offsets_b = points_a[3], points_b[3]
    lengths = np.concatenate([np.diff(offsets_a), np.diff(offsets_b)])[order]
    sources = np.concatenate([offsets_a[:-1], offsets_b[:-1] + offsets_a[-1]])[order]
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    index = np.arange(int(offsets[-1])) + np.repeat(sources - offsets[:-1], lengths)
    x, y, t = (np.concatenate([a, b])[index] for a, b in zip(points_a[:3], points_b[:3], strict=True))
    return [rows[i] for i in order], (x, y, t, offsets)


def _finish_chunk(
    path: Path, items: list[tuple[int, object]], skip_bad_rows: bool, stats: ReadStats
) -> tuple[CurveChunk | None, BadRowError | None]:
    """Check a chunk's rows, vectorised: the good curves, and in strict mode the error of the
    first bad row (the good curves are then those before it)."""
    bad: dict[int, _BadRow] = {}  # position in items -> problem
    # The numbers of text rows are parsed all at once; where that fails, the rows are parsed with
    # json instead, for json's checks and messages.
    text_rows = [(pos, item) for pos, (_, item) in enumerate(items) if isinstance(item, _TextRow)]
    text_points = _concat_text([r for _, r in text_rows]) if text_rows else None
    if text_points is None and text_rows:
        items = [(line, _full_row(path, line, item)) for line, item in items]
        text_rows = []
    rows, points = _check_rows(items, bad)
    if text_points is not None and text_rows:
        rows, points = _merge(text_rows, text_points, rows, points)
    x, y, t, offsets = points
    for i, (reason, detail) in sorted(swipe_problems(x, y, t, offsets).items()):
        pos, r = rows[i]
        if reason.startswith("NaN") and not _is_numeric(r):  # null converts to NaN
            bad.setdefault(pos, r.problem("non-numeric value", _NON_NUMERIC))
        bad.setdefault(pos, r.problem(reason, detail))
    chunk = None
    first_bad = min(bad) if bad else len(items)
    if rows:
        # Strict mode keeps the curves before the first bad row.
        keep = np.array([pos not in bad and (skip_bad_rows or pos < first_bad) for pos, _ in rows])
        if not keep.all():
            x, y, t = (a[np.repeat(keep, np.diff(offsets))] for a in (x, y, t))
            offsets = np.concatenate([[0], np.cumsum(np.diff(offsets)[keep])]).astype(np.int64)
            rows = [row for row, k in zip(rows, keep, strict=True) if k]
        if rows:
            stats.curves += len(rows)
            words = [r.word for _, r in rows]
            layouts = [r.layout for _, r in rows]
            chunk = CurveChunk(x, y, t, offsets, words, layouts, [items[pos][0] for pos, _ in rows])
    if bad and not skip_bad_rows:
        problem = bad[first_bad]
        return chunk, BadRowError(f"{path}:{problem.line or items[first_bad][0]}: {problem.detail}")
    for problem in bad.values():
        stats.skipped[problem.reason] += 1
    return chunk, None


# ---- How-We-Swipe logs --------------------------------------------------------------------------


@dataclass
class _Gesture:
    number: int
    line: int
    word: str
    is_err: bool
    size: tuple[float, float] | None = None
    points: list[tuple[float, float, float]] = field(default_factory=list)
    problem: _BadRow | None = None

    def fail(self, reason: str, detail: str, line: int) -> None:
        if self.problem is None:
            self.problem = _BadRow(reason, f"gesture {self.number}: {detail}", line)

    def row(self, layout: Layout) -> _Row | _BadRow:
        if self.problem is not None:
            return self.problem
        word = normalize_label(self.word)
        if not word:
            return _BadRow("bad word", f"gesture {self.number}: empty word", self.line)
        assert self.size is not None
        # Each device logs its own keyboard size: scale its pixels onto the layout's.
        sx, sy = layout.width / self.size[0], layout.height / self.size[1]
        t0 = self.points[0][2]
        return _Row(
            [p[0] * sx for p in self.points],
            [p[1] * sy for p in self.points],
            [p[2] - t0 for p in self.points],
            word,
            layout,
            self.line,
            f"gesture {self.number}: ",
        )


def _hws_rows(
    path: Path, layout: Layout, include_errors: bool, stats: ReadStats
) -> Iterator[tuple[int, object]]:
    """``(gesture number, _Row | _BadRow)`` for each gesture of a How-We-Swipe log, in file order.

    Problems name the line of the offending event; a bad line outside any gesture is reported on
    its own (gesture number 0).
    """
    number = 0
    gesture: _Gesture | None = None
    lineno = 0
    with _open_binary(path) as f:
        for lineno, raw in numbered_lines(f):
            if isinstance(raw, _BadRow):
                if gesture is not None:
                    gesture.fail(raw.reason, raw.detail, lineno)
                    if raw.reason == "line too long":
                        continue
                    yield gesture.number, gesture.row(layout)
                    gesture = None
                else:
                    yield 0, _BadRow(raw.reason, raw.detail, lineno)
                if raw.reason == "line too long":
                    continue
                break
            try:
                cols = raw.decode("utf-8").split()
            except UnicodeDecodeError:
                cols = None
            if cols is not None and (not cols or cols[: len(HWS_HEADER)] == HWS_HEADER):
                continue
            problem = None
            event = cols[4] if cols is not None and len(cols) >= len(HWS_HEADER) else ""
            if cols is None:
                problem = ("bad log line", "not UTF-8 text")
            elif len(cols) < len(HWS_HEADER):
                problem = ("bad log line", f"{len(cols)} columns, expected {len(HWS_HEADER)}")
            elif event not in ("touchstart", "touchmove", "touchend"):
                problem = ("bad log line", f"unknown event {event!r}")
            elif event != "touchstart" and gesture is None:
                problem = ("incomplete gesture", f"{event} without touchstart")
            if problem is not None:
                if gesture is not None:
                    gesture.fail(problem[0], problem[1], lineno)
                else:
                    yield 0, _BadRow(problem[0], problem[1], lineno)
                continue
            if event == "touchstart":
                if gesture is not None:
                    gesture.fail("incomplete gesture", "touchstart before touchend", lineno)
                    yield gesture.number, gesture.row(layout)
                number += 1
                gesture = _Gesture(number, lineno, cols[10], cols[11] == "1")
            assert gesture is not None
            assert cols is not None
            try:
                kw, kh = _log_number(cols[2]), _log_number(cols[3])
                px, py, pt = _log_number(cols[5]), _log_number(cols[6]), _log_number(cols[1])
            except ValueError:
                gesture.fail("non-numeric value", "non-numeric value", lineno)
            else:
                if not (kw >= 1 and kh >= 1):  # pixels: a keyboard under one is a broken line
                    gesture.fail("bad log line", f"keyboard size {cols[2]}x{cols[3]}", lineno)
                elif gesture.size is not None and gesture.size != (kw, kh):
                    gesture.fail("bad log line", "keyboard size changes within the gesture", lineno)
                elif cols[10] != gesture.word:
                    gesture.fail("bad log line", "word changes within the gesture", lineno)
                gesture.size = (kw, kh)
                if len(gesture.points) < MAX_SWIPE_POINTS:
                    gesture.points.append((px, py, pt))
                else:  # memory stays bounded however long the gesture runs
                    detail = f"over {MAX_SWIPE_POINTS} points; at most {MAX_SWIPE_POINTS} are accepted"
                    gesture.fail("too many points", detail, lineno)
            if event == "touchend":
                if gesture.is_err and not include_errors and gesture.problem is None:
                    stats.excluded["marked as error (is_err=1)"] += 1
                else:
                    yield gesture.number, gesture.row(layout)
                gesture = None
        if gesture is not None:
            gesture.fail("incomplete gesture", "file ends before touchend", lineno)
            yield gesture.number, gesture.row(layout)


def _log_number(text: str) -> float:
    """A number of a log line; Python's own spellings beyond plain numbers (``1_000``) are not."""
    if "_" in text:
        raise ValueError(text)
    return float(text)


# ---- writing ------------------------------------------------------------------------------------


def _number_list(values: np.ndarray, decimals: int) -> list[float | int]:
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals)
    return [int(v) if v.is_integer() else v for v in rounded.tolist()]


def curve_to_json(curve: Curve, decimals: int = 2) -> str:
    """One jsonl line (without newline) for ``curve``, the layout given by ``grid_name``."""
    row: dict[str, object] = {}
    if curve.word is not None:
        row["word"] = curve.word
    row["curve"] = {
        "x": _number_list(curve.x, decimals),
        "y": _number_list(curve.y, decimals),
        "t": _number_list(curve.t, decimals),
        "grid_name": curve.grid_name,
    }
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def write_curves(curves: Iterable[Curve], path: str | Path, overwrite: bool = False) -> int:
    """Write curves as jsonl (``curve.grid_name`` form), atomically.

    Parameters
    ----------
    curves : iterable of Curve
    path : path
        The output file; an existing one is refused unless ``overwrite``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    int
        Curves written.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; curves are written to a file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    count = 0
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for curve in curves:
                f.write(curve_to_json(curve) + "\n")
                count += 1
    return count


# ---- command line -------------------------------------------------------------------------------


def _convert_hws(args: argparse.Namespace) -> int:
    registry_layouts = load_layouts_file(args.layouts) if args.layouts else None
    stats = ReadStats()

    def curves() -> Iterator[Curve]:
        for log in args.logs:
            yield from read_curves(
                log,
                layouts=registry_layouts,
                skip_bad_rows=args.skip_bad_rows,
                stats=stats,
                hws_layout=args.layout,
                hws_include_errors=args.include_errors,
            )

    count = write_curves(curves(), args.out, overwrite=args.overwrite)
    print(f"wrote {count} curves to {args.out} ({stats.summary()})")
    return 0


def _check(args: argparse.Namespace) -> int:
    registry = LayoutRegistry(grids_file=args.layouts)
    bad = 0
    for name in args.files:
        stats = ReadStats()
        layouts: Counter[str] = Counter()
        for chunk in iter_curve_chunks(name, registry, skip_bad_rows=True, stats=stats):
            layouts.update(layout.name for layout in chunk.layouts)
        print(f"{name}: {stats.summary()}; layouts: {dict(layouts)}")
        if stats.num_skipped:
            bad += stats.num_skipped
            try:  # read again, strictly, for the first bad row's line
                for _ in iter_curve_chunks(name, LayoutRegistry(grids_file=args.layouts)):
                    pass
            except BadRowError as err:
                print(f"  first bad row: {err}")
    if bad:
        print(f"error: {bad} bad rows", file=sys.stderr)
        return 1
    return 0


@command_line("python -m swipe.formats")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swipe.formats",
        description="Swipe data formats: check Yandex-style jsonl and How-We-Swipe .log files; convert "
        "How-We-Swipe logs to jsonl.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser(
        "convert-hws", help="convert How-We-Swipe .log files to jsonl",
        epilog="example (your logs):\n"
        "  python -m swipe.formats convert-hws s1.log s2.log --out hws.jsonl --skip-bad-rows\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("logs", nargs="+", help="How-We-Swipe .log files")
    conv.add_argument("--out", required=True, help="output jsonl file")
    conv.add_argument("--layout", default="hws_fitted", help="layout to scale coordinates onto")
    conv.add_argument("--layouts", help="grids file with more layouts")
    conv.add_argument("--include-errors", action="store_true", help="keep gestures marked is_err=1")
    conv.add_argument("--skip-bad-rows", action="store_true", help="skip and count bad gestures")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    conv.set_defaults(func=_convert_hws)
    check = sub.add_parser(
        "check", help="read files, count curves and bad rows by reason",
        epilog="example:\n  python -m swipe.formats check swipe/resources/swipes/hws_real_en_dev.jsonl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("files", nargs="+")
    check.add_argument("--layouts", help="grids file for rows that name their grid")
    check.set_defaults(func=_check)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output into a closed pipe: see swipe.cli
        raise
    except (BadRowError, LayoutError, FileExistsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
