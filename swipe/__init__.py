"""swipe: train, decode and evaluate neural gesture-typing (swipe keyboard) decoders.

``swipe.load_decoder("en_hws")`` loads a model to decode swipes from Python (:mod:`swipe.decoder`);
``swipe.make_curve(x, y, t, layout)`` makes a swipe to decode. Both are imported on first use, so
``import swipe`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from swipe.decoder import Candidate, Decoder, load_decoder, make_curve

_LAZY = {"load_decoder", "make_curve", "Decoder", "Candidate"}

__all__ = ["Candidate", "Decoder", "__version__", "load_decoder", "make_curve"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from swipe import decoder

        return getattr(decoder, name)
    raise AttributeError(f"module 'swipe' has no attribute {name!r}")
