"""Decode swipes with a trained model: ``python predict.py --help`` (the same command as
``python -m swipe.predict``)."""

import sys

from swipe.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("swipe.predict", "predict.py"))
