#!/usr/bin/env python
"""Train a swipe decoder: ``python train.py --help`` (the same command as ``python -m swipe.train``)."""

import importlib
import sys
from typing import Any

from swipe.cli import run_command


def __getattr__(name: str) -> Any:
    # ``import train; train.main(...)`` as before: the names of swipe.train, loaded on first use.
    return getattr(importlib.import_module("swipe.train"), name)


if __name__ == "__main__":
    sys.exit(run_command("swipe.train", "train.py"))
