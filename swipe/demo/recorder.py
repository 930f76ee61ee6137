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
    """The words to prompt, in order, each once, passing over those recorded already.

    Parameters
    ----------
    words : sequence of str
        Words to prompt, most wanted first (:func:`words_worth_recording` of a lexicon, or the
        user's list).
    done : sequence of str
        Words recorded already (in an earlier session into the same file): not prompted.
    """

    def __init__(self, words: Sequence[str], done: Sequence[str] = ()) -> None:
        recorded = set(done)
        self.words = [word for word in words if word not in recorded]
        self._typeable: dict[str, list[str]] = {}  # per layout name: the words it can type
        self._prompted: dict[str, int] = {}  # per layout name: how many of those were prompted
        self._lock = threading.Lock()

    def next(self, layout: Layout) -> str | None:
        """The next word ``layout`` can type, or None once every word was prompted (done)."""
        with self._lock:
            words = self._words_for(layout)
            i = self._prompted.get(layout.name, 0)
            self._prompted[layout.name] = min(i + 1, len(words))
            return words[i] if i < len(words) else None

    def left(self, layout: Layout) -> int:
        """How many words ``layout`` can type are still to be prompted."""
        with self._lock:
            return len(self._words_for(layout)) - self._prompted.get(layout.name, 0)

    def _words_for(self, layout: Layout) -> list[str]:
        if layout.name not in self._typeable:
            self._typeable[layout.name] = [w for w in self.words if all(map(layout.can_type, w))]
        return self._typeable[layout.name]


# Pieces of contractions written without the apostrophe ("don" of "don't"): not words to swipe.
_FRAGMENTS = frozenset("didn doesn isn wasn aren weren couldn wouldn shouldn hasn haven hadn ain mustn "
                       "needn mightn shan don".split())


def words_worth_recording(words: Sequence[str]) -> list[str]:
    """The words of a lexicon worth prompting, in order: at least three letters, a vowel and two
    different letters, and not a piece of a contraction ("of", "tv", "iii" and "didn" are left out)."""
    return [word for word in words
            if len(word) >= 3 and word.isalpha() and any(c in "aeiouy" for c in word)
            and len(set(word)) >= 2 and word not in _FRAGMENTS]


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
        self._appended: list[tuple[int, int, str]] = []  # this session's lines: (start, end, word)

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
            end = os.fstat(self._fd).st_size
            self._appended.append((end - len(line), end, word))
            self.count += 1
            return self.count

    def undo(self) -> str:
        """Remove the last line this recorder appended (a bad swipe); returns its word.

        Raises
        ------
        RequestError
            Nothing was recorded in this session, or the file has changed since the last line was
            appended (it is left as it is).
        """
        with self._lock:
            if not self._appended:
                raise RequestError("nothing recorded in this session to undo")
            start, end, word = self._appended[-1]
            if os.fstat(self._fd).st_size != end:
                raise RequestError(f"{self.path} changed since the last swipe was recorded: not undone")
            os.ftruncate(self._fd, start)
            os.fsync(self._fd)
            self._appended.pop()
            self.count -= 1
            return word


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
