"""Decode swipes with an exported ONNX folder, without PyTorch: numpy and onnxruntime only.

    from swipe.runtime import OnnxDecoder
    decoder = OnnxDecoder("en_onnx")
    decoder.decode_one(x, y, t, "hws_fitted")   # [(score, word), ...], best first

See :mod:`swipe.runtime.decoder` (the reference an app ports) and ``docs/onnx.md``. The names are
imported on first use, so ``python -m swipe.runtime --help`` runs without onnxruntime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swipe.runtime.decoder import OnnxDecoder, OnnxFolderError, Swipe, read_swipes

__all__ = ["OnnxDecoder", "OnnxFolderError", "Swipe", "read_swipes"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from swipe.runtime import decoder

        return getattr(decoder, name)
    raise AttributeError(f"module 'swipe.runtime' has no attribute {name!r}")
