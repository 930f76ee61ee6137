"""Decode swipes with a trained model: ``python predict.py --help``."""

import sys

from swipe.predict import main

if __name__ == "__main__":
    sys.exit(main())
