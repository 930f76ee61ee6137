"""A built dataset, memory-mapped: DataLoader workers share its pages instead of copying them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
from torch.utils.data import Dataset

from swipe.data.build import ARRAY_DTYPES, DatasetError, Manifest, read_manifest, sha256_of
from swipe.data.resample import ResampleConfig, resampled_lengths
from swipe.keyboard import Layout
from swipe.tokenizers import CharTokenizer


class SwipeItem(NamedTuple):
    """One curve of a :class:`SwipeDataset`, as views into the mapped arrays.

    Attributes
    ----------
    index : int
        Row in the dataset.
    x, y : numpy.ndarray
        ``int16`` coordinates in ``1 / coord_scale`` px.
    t : numpy.ndarray
        ``float32`` milliseconds since the first point.
    nearest_keys : numpy.ndarray
        ``uint8`` nearest key of each point within the curve's layout.
    chars : numpy.ndarray
        ``uint8`` character ids of the target word in ``alphabet`` (empty without a target).
    layout_id : int
        Index of the curve's layout in the dataset's ``layouts``.
    layout_name : str
        That layout's name (the collator checks it against its own layout list).
    coord_scale : float
        Stored coordinate units per pixel.
    alphabet : str
        The alphabet of ``chars`` (the collator checks it against its tokenizer).
    """

    index: int
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    nearest_keys: np.ndarray
    chars: np.ndarray
    layout_id: int
    layout_name: str
    coord_scale: float
    alphabet: str


def with_x_scaled(item: SwipeItem, factor: float, layout: Layout) -> SwipeItem:
    """``item`` as drawn on a keyboard ``factor`` times as wide: x scaled about the layout's left
    edge (x = 0), nearest keys recomputed on ``layout`` (the item's own).

    The coordinates become floating point (still in ``1 / coord_scale`` px); ``factor`` 1 returns
    ``item`` itself.
    """
    if factor == 1.0:
        return item
    x = item.x * np.float64(factor)
    scale = 1.0 / item.coord_scale
    return item._replace(x=x, nearest_keys=layout.nearest_keys(x * scale, item.y * scale))


def _rebuild_hint(path: Path) -> str:
    return f"rebuild it with: python -m swipe.data build SOURCES... --out {path} --overwrite"


class SwipeDataset(Dataset):
    """A dataset built by :func:`swipe.data.build_dataset`, memory-mapped read-only.

    Loading refuses a partial dataset (missing manifest, array sizes or checksums that do not
    match) and a stale one (a source file changed since the build, another format version).

    Parameters
    ----------
    path : path
        The dataset directory.
    layout_names : sequence of str, optional
        The model's layouts in order: item layout ids index this list. Every layout of the
        dataset must be in it. Default: the dataset's own layouts, in stored order.
    tokenizer : CharTokenizer, optional
        Item character ids are remapped to this tokenizer's ids (vectorised, by table); every
        character that occurs in the dataset must be in its alphabet. Default: the dataset's own.
    verify : bool
        Check the arrays' SHA-256 checksums (reads every byte once).
    check_sources : bool
        Refuse the dataset if a source file that still exists changed since the build.

    Attributes
    ----------
    manifest : Manifest
    layouts : list of Layout or None
        Indexed by item layout ids; with ``layout_names``, names the dataset does not use are None.
    tokenizer : CharTokenizer
        The tokenizer of item character ids.
    num_points : numpy.ndarray
        ``int64`` points per curve.
    """

    def __init__(
        self,
        path: str | Path,
        layout_names: Sequence[str] | None = None,
        tokenizer: CharTokenizer | None = None,
        verify: bool = True,
        check_sources: bool = True,
    ) -> None:
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path)
        self._layout_names = list(layout_names) if layout_names is not None else None
        self._requested_tokenizer = tokenizer
        self._check(verify, check_sources)
        self._open()

    # ---- checks ------------------------------------------------------------------------------

    def _check(self, verify: bool, check_sources: bool) -> None:
        m, hint = self.manifest, _rebuild_hint(self.path)
        if set(m.arrays) != set(ARRAY_DTYPES):
            raise DatasetError(f"{self.path}: manifest lists arrays {sorted(m.arrays)}; {hint}")
        expected = {
            "x": m.num_points, "y": m.num_points, "t": m.num_points, "keys": m.num_points,
            "point_offsets": m.num_curves + 1, "chars": m.num_chars,
            "char_offsets": m.num_curves + 1, "layout_ids": m.num_curves,
        }  # fmt: skip
        for name, info in m.arrays.items():
            if (
                info.file != f"{name}.bin"
                or info.dtype != ARRAY_DTYPES[name]
                or info.length != expected[name]
            ):
                raise DatasetError(f"{self.path}: manifest entry for {name!r} is inconsistent; {hint}")
            file = self.path / info.file
            size = info.length * np.dtype(info.dtype).itemsize
            if not file.is_file():
                raise DatasetError(f"{file}: missing; the dataset is partial or damaged; {hint}")
            if file.stat().st_size != size:
                raise DatasetError(
                    f"{file}: {file.stat().st_size} bytes, expected {size}; the dataset is partial or "
                    f"damaged; {hint}"
                )
            if verify and sha256_of(file) != info.sha256:
                raise DatasetError(f"{file}: checksum mismatch; the dataset is damaged; {hint}")
        if check_sources:
            for source in m.sources:
                src = Path(source.path)
                if not src.exists():
                    continue  # a dataset may outlive or travel without its sources
                st = src.stat()
                if st.st_size != source.size or st.st_mtime_ns != source.mtime_ns:
                    raise DatasetError(
                        f"{self.path}: source {src} changed since the dataset was built (stale); {hint}"
                    )

    # ---- mapping -----------------------------------------------------------------------------

    def _open(self) -> None:
        m = self.manifest
        self._arrays: dict[str, np.ndarray] = {}
        for name, info in m.arrays.items():
            if info.length == 0:
                self._arrays[name] = np.zeros(0, ARRAY_DTYPES[name])
            else:
                mapped = np.memmap(self.path / info.file, dtype=np.dtype(info.dtype).newbyteorder("<"),
                                   mode="r", shape=(info.length,))  # fmt: skip
                # A plain ndarray over the mapping slices faster than np.memmap does.
                self._arrays[name] = mapped.view(np.ndarray)
        self.stored_layouts = [Layout.from_grid(grid) for grid in m.layouts]
        self.stored_tokenizer = CharTokenizer(m.alphabet)
        self._layout_map, self.layouts = self._map_layouts(self._layout_names)
        self._char_map, self.tokenizer = self._map_chars(self._requested_tokenizer)
        offsets = self._arrays["point_offsets"]
        self.num_points = np.diff(offsets).astype(np.int64)
        self._resampled_num_points: dict[ResampleConfig, np.ndarray] = {}  # by config, once computed
        # Per-curve lookups stay numpy arrays: Python lists of ints would have their pages
        # copied into every worker as reference counts change (copy-on-read).
        self._item_layouts = self._layout_map[self._arrays["layout_ids"]]
        self._layout_names_out = [lay.name if lay is not None else "" for lay in self.layouts]

    def _map_layouts(self, names: list[str] | None) -> tuple[np.ndarray, list[Layout | None]]:
        stored = self.stored_layouts
        if names is None:
            return np.arange(len(stored), dtype=np.int64), list(stored)
        table = np.zeros(max(len(stored), 1), np.int64)
        for i, layout in enumerate(stored):
            if layout.name not in names:
                raise DatasetError(
                    f"{self.path}: layout {layout.name!r} of the dataset is not among the model's "
                    f"layouts {names}"
                )
            table[i] = names.index(layout.name)
        by_name = {layout.name: layout for layout in stored}
        return table, [by_name.get(name) for name in names]

    def _map_chars(self, tokenizer: CharTokenizer | None) -> tuple[np.ndarray | None, CharTokenizer]:
        own = self.stored_tokenizer
        if tokenizer is None or tokenizer == own:
            return None, own
        table = np.zeros(256, np.uint8)
        for i, (char, count) in enumerate(zip(own.alphabet, self.manifest.char_counts, strict=True)):
            if tokenizer.can_encode(char):
                table[i + 1] = tokenizer.encode(char)[0]
            elif count:
                raise DatasetError(
                    f"{self.path}: character {char!r} ({count} occurrences) is not in the tokenizer's "
                    f"alphabet {tokenizer.alphabet!r}"
                )
        return table, tokenizer

    # ---- access ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.manifest.num_curves

    def __getitem__(self, index: int) -> SwipeItem:
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} curves")
        arrays = self._arrays
        a, b = int(arrays["point_offsets"][i]), int(arrays["point_offsets"][i + 1])
        c, d = int(arrays["char_offsets"][i]), int(arrays["char_offsets"][i + 1])
        chars = arrays["chars"][c:d]
        if self._char_map is not None:
            chars = self._char_map[chars]
        layout_id = int(self._item_layouts[i])
        return SwipeItem(
            i,
            arrays["x"][a:b],
            arrays["y"][a:b],
            arrays["t"][a:b],
            arrays["keys"][a:b],
            chars,
            layout_id,
            self._layout_names_out[layout_id],
            self.manifest.coord_scale,
            self.tokenizer.alphabet,
        )

    def resampled_num_points(self, config: ResampleConfig | None, chunk_points: int = 1 << 22) -> np.ndarray:
        """Points per curve once resampled with ``config`` as :class:`~swipe.data.SwipeCollator`
        resamples (``num_points`` where ``config`` is None): the lengths a model reads, to batch
        curves of similar length. Computed from durations or path lengths (``chunk_points`` points
        at a time), without resampling anything, once per config.
        """
        if config is None:
            return self.num_points
        if config not in self._resampled_num_points:
            self._resampled_num_points[config] = self._count_resampled(config, chunk_points)
        return self._resampled_num_points[config]

    def _count_resampled(self, config: ResampleConfig, chunk_points: int) -> np.ndarray:
        offsets = self._arrays["point_offsets"].astype(np.int64)
        first, last = offsets[:-1], np.maximum(offsets[1:] - 1, offsets[:-1])  # each curve's ends
        if config.mode == "time":
            t = self._arrays["t"]
            return resampled_lengths(self.num_points, t[last].astype(np.float64) - t[first], config.step)
        length = np.zeros(len(self))
        scale = 1.0 / self.manifest.coord_scale
        begin = 0  # curves begin.. stop, whole curves of about chunk_points points
        while begin < len(self):
            stop = int(np.searchsorted(offsets, offsets[begin] + chunk_points, "right")) - 1
            stop = min(max(stop, begin + 1), len(self))
            a, b = offsets[begin], offsets[stop]
            x, y = self._arrays["x"][a:b] * scale, self._arrays["y"][a:b] * scale
            along = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
            length[begin:stop] = along[last[begin:stop] - a] - along[first[begin:stop] - a]
            begin = stop
        key_widths = np.array([lay.key_width if lay is not None else np.nan for lay in self.layouts])
        return resampled_lengths(self.num_points, length, config.step * key_widths[self._item_layouts])

    @property
    def has_targets(self) -> bool:
        """Whether every curve has a target word."""
        return self.manifest.num_targets == self.manifest.num_curves

    def word(self, index: int) -> str | None:
        """The target word of curve ``index`` (``None`` if it has none)."""
        offsets = self._arrays["char_offsets"]
        c, d = int(offsets[index]), int(offsets[index + 1])
        if c == d:
            return None
        return self.stored_tokenizer.decode(self._arrays["chars"][c:d].tolist())

    def coords(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``float32`` pixel coordinates of curve ``index``."""
        item = self[index]
        scale = np.float32(1.0 / item.coord_scale)
        return item.x * scale, item.y * scale

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"SwipeDataset({str(self.path)!r}, {m.num_curves} curves, {m.num_points} points, "
            f"layouts {[grid['grid_name'] for grid in m.layouts]})"
        )

    # Under the spawn start method the dataset is pickled to each worker: send the path and
    # options, not the mapped arrays, and map them again there.
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "manifest": self.manifest,
            "layout_names": self._layout_names,
            "tokenizer": self._requested_tokenizer,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.manifest = state["manifest"]
        self._layout_names = state["layout_names"]
        self._requested_tokenizer = state["tokenizer"]
        self._open()
