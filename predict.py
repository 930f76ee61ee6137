"""Decode swipes with a trained model: ``python predict.py --help`` (the same command as
``python -m swipe.predict``)."""

import importlib
import sys
from typing import Any

from swipe.cli import run_command


def __getattr__(name: str) -> Any:
    # ``import predict; predict.main(...)`` as before: the names of swipe.predict, loaded on first use.
    return getattr(importlib.import_module("swipe.predict"), name)


if __name__ == "__main__":
    sys.exit(run_command("swipe.predict", "predict.py"))
