#!/usr/bin/env python
"""Train a swipe decoder: ``python train.py --help`` (the same command as ``python -m swipe.train``)."""

import sys

from swipe.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("swipe.train", "train.py"))
