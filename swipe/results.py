"""The results table: one CSV row per predictor, keyed by everything that makes its predictions.

A predictor's identity is its predictions' metadata (model config, weights hash, generator and all
its options, layouts, data file and split, and any further keys the predictor recorded) without
the weights' file path: the same weights moved elsewhere are the same predictor. The row key is a
hash of the identity's canonical JSON, so evaluating the same predictor again updates its row in
place, and two predictors that differ in any option never share a row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, NamedTuple

from swipe.metrics import Scores
from swipe.predictions import atomic_write_bytes

# Metadata keys that do not change what a predictor predicts.
NOT_IDENTITY = ("weights",)

# Metadata keys that have a readable column of their own; others go to "other" as JSON.
_DESCRIBED = (
    "model",
    "weights_sha256",
    "generator",
    "generator_options",
    "layout_names",
    "data_file",
    "split",
)

COLUMNS = (
    "key",
    "evaluated_at",
    "predictions",
    "split",
    "data_file",
    "layouts",
    "generator",
    "generator_options",
    "model",
    "weights_sha256",
    "other",
    "num_curves",
    "num_scored",
    "swipe_mrr",
    "accuracy",
    "recall_at_4",
)


class ResultsError(ValueError):
    """The results table cannot be read or does not have this version's columns."""


class Recorded(NamedTuple):
    """What :func:`record_result` did: the row key and whether the row was added or updated."""

    key: str
    action: Literal["added", "updated"]


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values always give the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def predictor_identity(metadata: Mapping[str, Any], without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The metadata that determines a predictor's predictions: all of it but the weights' path
    (and the keys in ``without``)."""
    return {k: v for k, v in metadata.items() if k not in NOT_IDENTITY and k not in without}


def predictor_key(metadata: Mapping[str, Any], without: tuple[str, ...] = ()) -> str:
    """A stable 16-hex-digit key of :func:`predictor_identity`."""
    identity = predictor_identity(metadata, without)
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()[:16]


def read_results(path: str | Path) -> list[dict[str, str]]:
    """The rows of a results table (an empty list if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path}: cannot read results table: {err}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        return []
    if tuple(reader.fieldnames) != COLUMNS:
        raise ResultsError(
            f"{path}:1: the header is not this version's columns ({', '.join(COLUMNS)}); "
            "choose another file with --results"
        )
    rows, seen = [], {}
    for row in reader:
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            raise ResultsError(f"{path}:{line}: expected {len(COLUMNS)} fields")
        if row["key"] in seen:
            raise ResultsError(f"{path}:{line}: key {row['key']} already on line {seen[row['key']]}")
        seen[row["key"]] = line
        rows.append(row)
    return rows


def record_result(
    path: str | Path,
    predictions_path: str | Path,
    metadata: Mapping[str, Any],
    scores: Scores,
    evaluated_at: datetime | None = None,
) -> Recorded:
    """Add or update the predictor's row in the results table at ``path`` (written atomically).

    Parameters
    ----------
    path : str or Path
        The CSV file; created if missing.
    predictions_path : str or Path
        The predictions file that was scored (a readable column, not part of the key).
    metadata : mapping
        The predictions' metadata: the predictor's identity.
    scores : Scores
        Its overall scores; must have at least one scored curve.
    evaluated_at : datetime, optional
        When; now by default.
    """
    if scores.num_scored == 0:
        raise ValueError("no curve has a target: nothing to record")
    path = Path(path)
    key = predictor_key(metadata)
    when = (evaluated_at or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    other = {k: v for k, v in predictor_identity(metadata).items() if k not in _DESCRIBED}
    row = {
        "key": key,
        "evaluated_at": when,
        "predictions": str(predictions_path),
        "split": str(metadata.get("split", "")),
        "data_file": str(metadata.get("data_file", "")),
        "layouts": "+".join(metadata.get("layout_names", [])),
        "generator": str(metadata.get("generator", "")),
        "generator_options": canonical_json(metadata.get("generator_options", {})),
        "model": canonical_json(metadata.get("model", {})),
        "weights_sha256": str(metadata.get("weights_sha256", "")),
        "other": canonical_json(other) if other else "",
        "num_curves": str(scores.num_curves),
        "num_scored": str(scores.num_scored),
        "swipe_mrr": f"{scores.swipe_mrr:.6f}",
        "accuracy": f"{scores.accuracy:.6f}",
        "recall_at_4": f"{scores.recall_at_4:.6f}",
    }
    with _locked(path):  # two evaluations at once must not lose each other's rows
        rows = read_results(path)
        action: Literal["added", "updated"] = "added"
        for i, old in enumerate(rows):
            if old["key"] == key:
                rows[i], action = row, "updated"
                break
        else:
            rows.append(row)
        _write_rows(path, rows)
    return Recorded(key, action)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock for updating the table at ``path`` (POSIX only).

    The lock is taken on the table's folder: the table itself is replaced on every write, and a
    lock file would be left lying next to it.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no locking
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, out.getvalue().encode("utf-8"))
