"""Atomic outputs: write beside the target, rename into place, leave nothing behind.

Every file or folder the project writes (a dataset build, a checkpoint, synthetic data, a
predictions file) is written under a temporary name next to its target and renamed over it at the
end, so the target is either the old one or the complete new one. The temporary name carries the
writer's process id: ``.<target>.tmp-<pid>-<random>``.

- An exception (Ctrl-C included) removes the temporary file or folder at once.
- SIGTERM removes it at once too, where nothing else handles SIGTERM (the process then ends as
  SIGTERM would have ended it; a trainer handles SIGTERM itself and stops cleanly).
- SIGKILL leaves it, and the next writer in the same folder removes it, with a message, once the
  process of that id is gone (:func:`sweep_stale`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

_TEMP_NAME = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}$")

# Temporary paths alive in this process, with the id of the process that made them (a forked
# child inherits the dict but must not remove its parent's files).
_live: dict[Path, int] = {}
_previous_handler: Any = None
_lock = threading.Lock()


def temp_path(path: str | Path) -> Path:
    """A fresh temporary name next to ``path``, carrying this process's id."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale(directory: str | Path) -> list[Path]:
    """Remove the temporary files and folders in ``directory`` left by processes that are gone
    (killed while writing), saying so on stderr.

    Returns
    -------
    list of Path
        What was removed.
    """
    directory = Path(directory)
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        _remove(entry)
        removed.append(entry)
        print(f"removed {entry}, left by process {match.group(1)} which ended while writing it",
              file=sys.stderr)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Remove this process's temporary paths, then end as SIGTERM ends a process."""
    for path, pid in list(_live.items()):
        if pid == os.getpid():
            _remove(path)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _register(path: Path) -> None:
    global _previous_handler
    with _lock:
        if not any(pid == os.getpid() for pid in _live.values()):
            _previous_handler = None
            if threading.current_thread() is threading.main_thread():
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    _previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
        _live[path] = os.getpid()


def _unregister(path: Path) -> None:
    global _previous_handler
    with _lock:
        _live.pop(path, None)
        if _previous_handler is not None and not any(pid == os.getpid() for pid in _live.values()):
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, _previous_handler)
            _previous_handler = None


@contextlib.contextmanager
def temporary(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """A temporary file name (or a new empty folder) next to ``path``, removed on exit whatever
    happens; stale ones of dead processes in the same folder are swept first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)
    tmp = temp_path(path)
    _register(tmp)
    try:
        if directory:
            tmp.mkdir()
        yield tmp
    finally:
        _remove(tmp)
        _unregister(tmp)


@contextlib.contextmanager
def atomic_output(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Write ``path`` atomically: yields a temporary path (a new empty folder with
    ``directory``) to write; when the block ends without an exception it replaces ``path``.

    An existing folder at ``path`` is moved aside under a temporary name and deleted after the
    swap. Files are fsynced by the caller; the folder's entry is fsynced here.

    Examples
    --------
    >>> with atomic_output(out) as tmp:  # doctest: +SKIP
    ...     tmp.write_text("done")
    """
    path = Path(path)
    with temporary(path, directory) as tmp:
        yield tmp
        if directory and path.exists():
            with temporary(path) as old:
                os.replace(path, old)
                try:
                    os.replace(tmp, path)
                except BaseException:
                    os.replace(old, path)  # put the previous one back
                    raise
        else:
            os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in folder ``path`` durable (where the platform allows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
