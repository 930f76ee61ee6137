"""Pieces the benchmark scripts share."""

from __future__ import annotations

from pathlib import Path

from swipe.data import build_dataset


def dataset_dir(data: Path, workdir: Path) -> Path:
    """A built dataset directory for ``data``: itself if it is one, else the raw file ``data``
    built into ``workdir / "data"``."""
    if data.is_dir():
        return data
    build_dataset([data], workdir / "data")
    return workdir / "data"
