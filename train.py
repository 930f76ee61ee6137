#!/usr/bin/env python
"""Train a swipe decoder: ``python train.py --help`` (the same command as ``python -m swipe.train``)."""

import sys

from swipe.train import main

if __name__ == "__main__":
    sys.exit(main())
