"""Recording swipes: words to prompt, and whole-line appends to a Yandex-style jsonl file."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

from swipe.demo.engine import RequestError, Swipe
from swipe.formats import _number_list, loads_json, numbered_lines
from swipe.keyboard import Layout, normalize_label

# Pointer types the browser reports (PointerEvent.pointerType).
POINTER_TYPES = ("mouse", "touch", "pen")


class PromptList:
    """The words to prompt, in order, skipping those recorded already.

    Parameters
    ----------
    words : sequence of str
        Candidate prompts, most wanted first (a lexicon by frequency, or the user's list).
    done : sequence of str
        Words recorded already (in an earlier session into the same file): prompted last.
    """

    def __init__(self, words: Sequence[str], done: Sequence[str] = ()) -> None:
        recorded = set(done)
        fresh = [word for word in words if word not in recorded]
        self.words = fresh + [word for word in words if word in recorded]
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, layout: Layout) -> str | None:
        """The next word ``layout`` can type (cycling), or None where it can type none."""
        with self._lock:
            start = self._next.get(layout.name, 0)
            for step in range(len(self.words)):
                i = (start + step) % len(self.words)
                if all(layout.can_type(char) for char in self.words[i]):
                    self._next[layout.name] = i + 1
                    return self.words[i]
            return None


def read_word_list(path: str | Path) -> list[str]:
    """The words of a file with one word a line (blank lines and ``#`` comments skipped).

    Raises
    ------
    RequestError
        The file has no word.
    """
    words = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            word = normalize_label(line.strip())
            if word and not word.startswith("#") and word not in words:
                words.append(word)
    if not words:
        raise RequestError(f"{path}: no words (one word a line)")
    return words


def recorded_words(path: str | Path) -> list[str]:
    """The words of the rows already in a recording file (rows that do not parse are passed over)."""
    words = []
    if not Path(path).is_file():
        return words
    with open(path, "rb") as f:
        for _, line in numbered_lines(f):  # a line too long to read is passed over like any other
            try:
                word = loads_json(line).get("word")  # type: ignore[union-attr]
            except (ValueError, AttributeError):
                continue
            if isinstance(word, str):
                words.append(word)
    return words


class Recorder:
    """Appends recorded swipes to a jsonl file, one whole line per swipe.

    Each append is one ``os.write`` of the full line to a file opened with ``O_APPEND``, under a
    lock, then ``fsync``: a server killed at any moment leaves whole lines only. A file whose last
    line lacks its newline (cut off by another program) gets one before the new line, so that
    neither row is lost.

    Parameters
    ----------
    path : path
        The file; created if missing, appended to if present.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self.count = len(recorded_words(self.path))

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def append(self, swipe: Swipe, word: str, device: dict[str, Any]) -> int:
        """Append ``swipe`` of ``word`` with the ``device`` it was drawn on; returns the rows written
        in this file so far."""
        row = {
            "word": word,
            "curve": {
                "x": _number_list(swipe.x, 2),
                "y": _number_list(swipe.y, 2),
                "t": _number_list(swipe.t, 1),
                "grid": swipe.layout.to_grid(),
            },
            "device": device,
        }
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # start on a fresh line
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"{self.path}: wrote {written} of {len(line)} bytes")
            os.fsync(self._fd)
            self.count += 1
            return self.count


def device_info(body: dict[str, Any]) -> dict[str, Any]:
    """The ``device`` of a record request, checked: screen size and pixel ratio (numbers), pointer
    type, and the scale of layout pixels to CSS pixels the keyboard was drawn at."""
    device = body.get("device")
    if not isinstance(device, dict):
        raise RequestError("'device' must be an object")
    info: dict[str, Any] = {}
    for name in ("screen_width", "screen_height", "pixel_ratio", "scale"):
        value = device.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1e6:
            raise RequestError(f"'device.{name}' must be a positive number")
        info[name] = value
    pointer = device.get("pointer_type")
    if pointer not in POINTER_TYPES:
        raise RequestError(f"'device.pointer_type' must be one of {', '.join(POINTER_TYPES)}")
    info["pointer_type"] = pointer
    return info
