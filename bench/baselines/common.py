"""Shared pieces of the baseline decoders: data, and the lexicon-wide word templates of
:mod:`swipe.shark2`.

Coordinates are measured in key units (x in key widths, y in key heights of the layout), so one
unit of error costs the same along both axes whatever the key aspect ratio. The geometry
(resampling, key units) is the package's own, in :mod:`swipe.templates`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bench.common import REAL_EN_SWIPES
from swipe.formats import BadRowError, Curve, read_curves
from swipe.keyboard import Layout
from swipe.shark2 import Candidates, WordTemplates, build_templates, top_candidates
from swipe.templates import key_units, pad_polylines, path_length, resample, resample_many

__all__ = [
    "Candidates", "WordTemplates", "build_templates", "key_units", "pad_polylines", "path_length",
    "read_labelled_curves", "resample", "resample_many", "select_half", "top_candidates",
]

# The bundled 800 real English swipes (How We Swipe, CC BY 4.0) on their fitted layout.
DEFAULT_DATA = REAL_EN_SWIPES
DEFAULT_LAYOUT = "hws_fitted"

# ---- data ----------------------------------------------------------------------------------

HALVES = ("all", "odd", "even")


def read_labelled_curves(path: str | Path, layout: Layout) -> list[Curve]:
    """All curves of a jsonl file, each of which must be drawn on ``layout``.

    Raises
    ------
    swipe.formats.BadRowError
        A malformed row (the message names the file and line) or a curve on another layout.
    """
    curves = list(read_curves(path, layouts={layout.name: layout}))
    for c in curves:
        if c.grid_name != layout.name:
            raise BadRowError(
                f"{path}:{c.line}: curve is on layout {c.grid_name!r}, expected {layout.name!r}"
            )
    return curves


def select_half(curves: Sequence[Curve], half: str) -> list[Curve]:
    """The curves on odd or even source lines (``"all"``: every curve)."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, got {half!r}")
    if half == "all":
        return list(curves)
    parity = 1 if half == "odd" else 0
    return [c for c in curves if c.line % 2 == parity]
