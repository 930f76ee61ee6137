"""swipe: train, decode and evaluate neural gesture-typing (swipe keyboard) decoders."""

__version__ = "0.1.0"
