"""Decode swipes with a trained model: ``python predict.py --help`` (the same command as
``python -m swipe.predict``)."""

import sys

from swipe.predict import main

if __name__ == "__main__":
    sys.exit(main())
