"""Build a columnar, memory-mappable dataset from swipe files.

On-disk layout of a dataset directory (all arrays flat, little-endian, in curve order)::

    manifest.json        format version, counts, sources, layouts, alphabet, array checksums
    x.bin, y.bin         int16  coordinates in 1/coord_scale px (coord_scale = 4)
    t.bin                float32 milliseconds since the curve's first point
    keys.bin             uint8  nearest key of each point (index into its layout's keys)
    point_offsets.bin    int64  curve i holds points point_offsets[i]:point_offsets[i + 1]
    chars.bin            uint8  character ids of the target words (CharTokenizer ids)
    char_offsets.bin     int64  curve i's word is chars[char_offsets[i]:char_offsets[i + 1]]
    layout_ids.bin       uint8  index of each curve's layout in manifest.layouts

That is 9 bytes a point and 17 bytes plus the word's length a curve. A curve without a target
word (test data) has an empty character range.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

import numpy as np

from swipe.atomic import atomic_output
from swipe.config import from_dict, to_dict
from swipe.formats import (
    COORD_SCALE,
    DEFAULT_CHUNK_SIZE,
    BadRowError,
    CurveChunk,
    LayoutRegistry,
    ReadStats,
    iter_curve_chunks,
)
from swipe.hashing import sha256_of
from swipe.keyboard import Layout, LayoutError
from swipe.progress import progress_bar
from swipe.tokenizers import CharTokenizer

FORMAT_NAME = "swipe-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

# Stored coordinates are int16 in 1/COORD_SCALE px (swipe.formats): +-8191.75 px at 0.25 px resolution.

ARRAY_DTYPES = {
    "x": "int16",
    "y": "int16",
    "t": "float32",
    "keys": "uint8",
    "point_offsets": "int64",
    "chars": "uint8",
    "char_offsets": "int64",
    "layout_ids": "uint8",
}


class DatasetError(ValueError):
    """A dataset cannot be built or loaded (missing, partial, stale, or inconsistent)."""


@dataclass(frozen=True)
class SourceFile:
    """A file a dataset was built from, as it was at build time."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ArrayInfo:
    """One stored array: file name, element type, number of elements and SHA-256 of the bytes."""

    file: str
    dtype: str
    length: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a dataset directory holds (``manifest.json``).

    Attributes
    ----------
    format, version : str, int
        ``"swipe-dataset"`` and :data:`FORMAT_VERSION`.
    num_curves, num_points, num_chars, num_targets : int
        Counts; ``num_targets`` curves have a target word.
    coord_scale : float
        Stored coordinate units per pixel.
    alphabet : str
        The :class:`~swipe.tokenizers.CharTokenizer` alphabet of the stored character ids.
    char_counts : list of int
        Occurrences of each alphabet character in the target words.
    layouts : list of dict
        The layouts as Yandex grids, indexed by the stored layout ids.
    sources : list of SourceFile
        The input files, with size and modification time at build time.
    arrays : dict of str to ArrayInfo
        The stored arrays.
    skipped, excluded : dict of str to int
        Bad rows skipped and good rows left out on purpose, by reason.
    """

    format: str
    version: int
    num_curves: int
    num_points: int
    num_chars: int
    num_targets: int
    coord_scale: float
    alphabet: str
    char_counts: list[int]
    layouts: list[dict[str, Any]]
    sources: list[SourceFile]
    arrays: dict[str, ArrayInfo]
    skipped: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def num_bytes(self) -> int:
        """Bytes of the stored arrays."""
        return sum(info.length * np.dtype(info.dtype).itemsize for info in self.arrays.values())


def read_manifest(path: str | Path) -> Manifest:
    """Read a dataset directory's manifest; ``DatasetError`` with a rebuild hint if it is missing,
    from another format version, or malformed."""
    path = Path(path)
    file = path / MANIFEST
    hint = f"rebuild it with: python -m swipe.data build SOURCES... --out {path} --overwrite"
    if not path.is_dir():
        raise DatasetError(f"{path}: no such dataset directory")
    if not file.is_file():
        raise DatasetError(f"{path}: no {MANIFEST}; the dataset is partial or was not built; {hint}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"{file}: unreadable manifest ({err}); {hint}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DatasetError(f"{file}: not a swipe dataset manifest")
    if data.get("version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: dataset format version {data.get('version')} but this version of swipe reads "
            f"version {FORMAT_VERSION}; {hint}"
        )
    try:
        return from_dict(Manifest, data, f"{file}:")
    except ValueError as err:
        raise DatasetError(f"{err}; {hint}") from None


class _ArrayWriter:
    """Appends arrays of one dtype to a file, hashing as it goes."""

    def __init__(self, path: Path, dtype: str) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.file: BinaryIO = open(path, "wb")
        self.hash = hashlib.sha256()
        self.length = 0

    def write(self, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values, dtype=self.dtype.newbyteorder("<"))
        self.file.write(memoryview(data).cast("B"))
        self.hash.update(memoryview(data).cast("B"))
        self.length += len(data)

    def close(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


class _CharCoder:
    """Turns chunks of words into character ids, vectorised.

    With a fixed alphabet, ids are the tokenizer's. Without one, ids are provisional (order of first
    appearance) and a word must be typable on its curve's layout; :meth:`final_alphabet` then
    orders the alphabet as ``CharTokenizer.from_layouts`` does, with the characters that are typed
    on another key (``ё`` on ``е``) appended in Unicode order.
    """

    def __init__(self, tokenizer: CharTokenizer | None) -> None:
        self.tokenizer = tokenizer
        self.chars: list[str] = list(tokenizer.alphabet) if tokenizer else []
        self._codepoints = np.array([ord(c) for c in self.chars], np.int64)
        self._typable = np.zeros((0, 1), bool)  # [layout, provisional id]

    def encode(
        self, words: Sequence[str | None], layout_ids: np.ndarray, layouts: Sequence[Layout]
    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """Character ids of all words concatenated, word lengths, and a problem per word (or None)."""
        lengths = np.fromiter((len(w) if w else 0 for w in words), np.int64, len(words))
        text = "".join(w for w in words if w)
        codepoints = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
        problems: list[str | None] = [None] * len(words)
        if not len(codepoints):
            return np.zeros(0, np.uint8), lengths, problems
        order = np.argsort(self._codepoints, kind="stable")
        sorted_cps = self._codepoints[order]
        pos = np.searchsorted(sorted_cps, codepoints).clip(0, max(len(sorted_cps) - 1, 0))
        found = sorted_cps[pos] == codepoints if len(sorted_cps) else np.zeros(len(codepoints), bool)
        if not found.all() and self.tokenizer is None:
            new = [chr(c) for c in np.unique(codepoints[~found])]
            if len(self.chars) + len(new) > 253:
                raise DatasetError("the words hold more than 253 distinct characters; pass an alphabet")
            self.chars.extend(new)
            self._codepoints = np.array([ord(c) for c in self.chars], np.int64)
            return self.encode(words, layout_ids, layouts)
        ids = np.where(found, order[pos] + 1, 0)
        if self.tokenizer is not None:
            bad = ~found
            reason = "is not in the alphabet"
        else:
            bad = ~self._typable_table(layouts)[np.repeat(layout_ids, lengths), ids]
            reason = "cannot be typed on layout {layout!r}"
        if bad.any():
            starts = np.cumsum(lengths) - lengths
            word_of = np.repeat(np.arange(len(words)), lengths)
            for i in np.unique(word_of[bad]):
                char = words[i][int(np.flatnonzero(bad[starts[i] : starts[i] + lengths[i]])[0])]  # type: ignore[index]
                why = reason.format(layout=layouts[layout_ids[i]].name)
                problems[i] = f"word {words[i]!r}: character {char!r} {why}"
        return ids.astype(np.uint8), lengths, problems

    def _typable_table(self, layouts: Sequence[Layout]) -> np.ndarray:
        """``[layout, provisional id]``: whether the layout types the character."""
        shape = (len(layouts), len(self.chars) + 1)
        if self._typable.shape != shape:
            table = np.zeros(shape, bool)
            for li, layout in enumerate(layouts):
                for ci, char in enumerate(self.chars):
                    try:
                        layout.key_index_for_char(char)
                        table[li, ci + 1] = True
                    except LayoutError:
                        pass
            self._typable = table
        return self._typable

    def final_alphabet(self, layouts: Sequence[Layout], counts: np.ndarray) -> tuple[str, np.ndarray]:
        """The alphabet, and the lookup table from provisional ids to its ids.

        ``counts[i]`` is the number of stored characters with provisional id ``i``.
        """
        if self.tokenizer is not None:
            return self.tokenizer.alphabet, np.arange(256, dtype=np.uint8)
        base = CharTokenizer.from_layouts(layouts).alphabet if layouts else ""
        used = [c for i, c in enumerate(self.chars) if counts[i + 1]]
        alphabet = base + "".join(sorted(c for c in used if c not in base))
        table = np.zeros(256, np.uint8)
        for i, char in enumerate(self.chars):
            if char in alphabet:
                table[i + 1] = alphabet.index(char) + 1
        return alphabet, table


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; not replacing it")
    ours = {MANIFEST} | {f"{name}.bin" for name in ARRAY_DTYPES}
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if foreign:
        raise FileExistsError(
            f"{out} holds files that are not part of a swipe dataset ({', '.join(foreign[:5])}); "
            "not replacing it"
        )


def build_dataset(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    layouts: Mapping[str, Layout] | str | Path | None = None,
    alphabet: str | CharTokenizer | None = None,
    skip_bad_rows: bool = False,
    overwrite: bool = False,
    hws_layout: str = "hws_fitted",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
) -> Manifest:
    """Stream swipe files into a dataset directory (see the module docstring for the layout).

    Memory stays flat: curves are read, checked and written a chunk at a time. The dataset is
    written into a temporary directory next to ``out_dir`` and renamed into place at the end, so
    ``out_dir`` never holds a partial dataset; a failure or SIGTERM removes the temporary
    directory, and the next build removes one left by a killed build (:mod:`swipe.atomic`).

    Parameters
    ----------
    sources : sequence of path
        Yandex jsonl files (grid inline or by name) and How-We-Swipe ``.log`` files.
    out_dir : path
        The dataset directory to create.
    layouts : mapping of str to Layout, or path, optional
        Layouts (or a grids file) for rows that name their grid; bundled layouts are always known.
    alphabet : str or CharTokenizer, optional
        The characters of the target words. Default: ``CharTokenizer.from_layouts`` of the layouts
        used, then characters typed on another key (``ё`` on the ``default`` layout's ``е``) in
        Unicode order; a word with a character its layout cannot type is then a bad row.
    skip_bad_rows : bool
        Skip bad rows, counted by reason in the manifest, instead of raising ``BadRowError``.
    overwrite : bool
        Replace an existing dataset at ``out_dir``.
    hws_layout : str
        The layout How-We-Swipe coordinates are scaled onto.
    chunk_size : int
        Curves read and written at a time.
    progress : bool
        Show a progress bar (curves) on stderr.

    Returns
    -------
    Manifest
    """
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    paths = [Path(s) for s in sources]
    if not paths:
        raise DatasetError("no source files given")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such source file")
    if isinstance(layouts, (str, Path)):
        registry = LayoutRegistry(grids_file=layouts)
    else:
        registry = LayoutRegistry(layouts)
    tokenizer = CharTokenizer(alphabet) if isinstance(alphabet, str) else alphabet
    with atomic_output(out, directory=True) as tmp:
        manifest = _build(paths, tmp, registry, tokenizer, skip_bad_rows, hws_layout, chunk_size, progress)
    return manifest


def _build(
    paths: list[Path],
    tmp: Path,
    registry: LayoutRegistry,
    tokenizer: CharTokenizer | None,
    skip_bad_rows: bool,
    hws_layout: str,
    chunk_size: int,
    progress: bool,
) -> Manifest:
    writers = {name: _ArrayWriter(tmp / f"{name}.bin", dtype) for name, dtype in ARRAY_DTYPES.items()}
    sources = []
    for path in paths:
        st = path.stat()
        sources.append(SourceFile(str(path.resolve()), st.st_size, st.st_mtime_ns))
    stats = ReadStats()
    coder = _CharCoder(tokenizer)
    layout_ids: dict[str, int] = {}
    used_layouts: list[Layout] = []
    counts = {"points": 0, "chars": 0, "targets": 0}
    writers["point_offsets"].write(np.zeros(1, np.int64))
    writers["char_offsets"].write(np.zeros(1, np.int64))
    bar = progress_bar(None, "build", " curves", enabled=progress)
    try:
        for path in paths:
            for chunk in iter_curve_chunks(path, registry, skip_bad_rows, stats, chunk_size, hws_layout):
                ids = np.empty(len(chunk), np.uint8)
                for i, layout in enumerate(chunk.layouts):
                    lid = layout_ids.get(layout.name)
                    if lid is None:
                        if len(used_layouts) == 255:
                            raise DatasetError(f"{path}:{chunk.lines[i]}: more than 255 layouts")
                        lid = layout_ids[layout.name] = len(used_layouts)
                        used_layouts.append(layout)
                    ids[i] = lid
                _write_chunk(path, chunk, ids, used_layouts, coder, writers, counts, stats, skip_bad_rows)
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
        for writer in writers.values():
            writer.close()
    num_curves = writers["layout_ids"].length
    if num_curves == 0:
        raise DatasetError(f"no curves read from {', '.join(map(str, paths))} ({stats.summary()})")
    provisional_counts = _count_chars(tmp / "chars.bin")
    alphabet, table = coder.final_alphabet(used_layouts, provisional_counts)
    char_counts = _remap_chars(tmp / "chars.bin", table, len(alphabet))
    arrays = {}
    for name, writer in writers.items():
        digest = sha256_of(writer.path) if name == "chars" else writer.hash.hexdigest()
        arrays[name] = ArrayInfo(writer.path.name, ARRAY_DTYPES[name], writer.length, digest)
    manifest = Manifest(
        format=FORMAT_NAME,
        version=FORMAT_VERSION,
        num_curves=num_curves,
        num_points=counts["points"],
        num_chars=counts["chars"],
        num_targets=counts["targets"],
        coord_scale=COORD_SCALE,
        alphabet=alphabet,
        char_counts=char_counts,
        layouts=[layout.to_grid() for layout in used_layouts],
        sources=sources,
        arrays=arrays,
        skipped=dict(stats.skipped),
        excluded=dict(stats.excluded),
    )
    text = json.dumps(to_dict(manifest), indent=1, ensure_ascii=False) + "\n"
    with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return manifest


def _write_chunk(
    path: Path,
    chunk: CurveChunk,
    layout_ids: np.ndarray,
    layouts: Sequence[Layout],
    coder: _CharCoder,
    writers: dict[str, _ArrayWriter],
    counts: dict[str, int],
    stats: ReadStats,
    skip_bad_rows: bool,
) -> None:
    """Check what the readers cannot (the alphabet: the readers check the points, coordinate range
    included, with :func:`swipe.formats.swipe_problems`), then append a chunk."""
    offsets = chunk.offsets
    lengths = np.diff(offsets)
    xq = np.rint(chunk.x * COORD_SCALE)
    yq = np.rint(chunk.y * COORD_SCALE)
    chars, word_lengths, problems = coder.encode(chunk.words, layout_ids, layouts)
    bad = [i for i, problem in enumerate(problems) if problem]
    if bad:
        if not skip_bad_rows:
            raise BadRowError(f"{path}:{chunk.lines[bad[0]]}: {problems[bad[0]]}")
        stats.skipped["bad character"] += len(bad)
        stats.curves -= len(bad)
        keep = np.ones(len(chunk), bool)
        keep[bad] = False
        point_keep = np.repeat(keep, lengths)
        chars = chars[np.repeat(keep, word_lengths)]
        xq, yq, t = xq[point_keep], yq[point_keep], chunk.t[point_keep]
        lengths, word_lengths, layout_ids = lengths[keep], word_lengths[keep], layout_ids[keep]
        if not keep.any():
            return
        offsets = np.concatenate([[0], np.cumsum(lengths)])
    else:
        t = chunk.t
    point_layout = np.repeat(layout_ids, lengths)
    keys = np.empty(len(xq), np.uint8)
    # Nearest keys of the stored (quantised) coordinates, so they agree with what is loaded.
    xs, ys = xq / COORD_SCALE, yq / COORD_SCALE
    for lid in np.unique(layout_ids):
        mask = point_layout == lid
        keys[mask] = layouts[lid].nearest_keys(xs[mask], ys[mask])
    t_rel = t - np.repeat(t[offsets[:-1]], lengths)
    writers["x"].write(xq.astype(np.int16))
    writers["y"].write(yq.astype(np.int16))
    writers["t"].write(t_rel.astype(np.float32))
    writers["keys"].write(keys)
    writers["point_offsets"].write(counts["points"] + np.cumsum(lengths))
    writers["chars"].write(chars)
    writers["char_offsets"].write(counts["chars"] + np.cumsum(word_lengths))
    writers["layout_ids"].write(layout_ids)
    counts["points"] += int(lengths.sum())
    counts["chars"] += int(word_lengths.sum())
    counts["targets"] += int((word_lengths > 0).sum())


def _count_chars(path: Path) -> np.ndarray:
    """How often each character id occurs in a characters file (256 counts)."""
    counts = np.zeros(256, np.int64)
    if path.stat().st_size:
        chars = np.memmap(path, dtype=np.uint8, mode="r")
        for start in range(0, len(chars), 1 << 24):
            counts += np.bincount(chars[start : start + (1 << 24)], minlength=256)
        del chars
    return counts


def _remap_chars(path: Path, table: np.ndarray, alphabet_size: int) -> list[int]:
    """Map provisional character ids to final ones in place; the count of each character."""
    counts = np.zeros(alphabet_size + 1, np.int64)
    if path.stat().st_size == 0:
        return counts[1:].tolist()
    chars = np.memmap(path, dtype=np.uint8, mode="r+")
    block = 1 << 24
    for start in range(0, len(chars), block):
        part = table[chars[start : start + block]]
        chars[start : start + block] = part
        counts += np.bincount(part, minlength=alphabet_size + 1)[: alphabet_size + 1]
    chars.flush()
    del chars
    return counts[1:].tolist()
