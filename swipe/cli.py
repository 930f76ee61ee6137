"""What every command line of the package does on Ctrl-C and on a closed pipe.

``@command_line("predict.py")`` on a ``main(argv) -> int``: Ctrl-C ends the command with one line
(``predict.py: interrupted``) and exit status 130, as shells report it; output into a pipe that
was closed early (``... | head``) ends it quietly with status 141 (128 + SIGPIPE). Files being
written are left as the writers leave them on any exception: whole or not at all.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from typing import Callable, Sequence

Main = Callable[[Sequence[str] | None], int]

INTERRUPTED = 128 + int(signal.SIGINT)
BROKEN_PIPE = 128 + int(signal.SIGPIPE)


def command_line(prog: str) -> Callable[[Main], Main]:
    """Decorate a command line's ``main``: see the module's docstring."""

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None) -> int:
            try:
                status = main(argv)
                sys.stdout.flush()  # a closed pipe shows here, not as a message at exit
                return status
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return INTERRUPTED
            except BrokenPipeError:
                # Python flushes stdout once more at exit: let that go nowhere.
                try:
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                except (OSError, ValueError):  # stdout is no file (captured)
                    pass
                return BROKEN_PIPE

        return run

    return decorate


def run_command(module: str, prog: str) -> int:
    """Import ``module`` and run its ``main()``: for the scripts at the top of the clone, so that
    Ctrl-C while the imports load (PyTorch takes seconds) ends as Ctrl-C in ``main`` does."""
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    return main(None)
