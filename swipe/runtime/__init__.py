"""Decode swipes with an exported ONNX folder, without PyTorch: numpy and onnxruntime only.

    from swipe.runtime import OnnxDecoder
    decoder = OnnxDecoder("en_onnx")
    decoder.decode_one(x, y, t, "hws_fitted")   # [(score, word), ...], best first

See :mod:`swipe.runtime.decoder` (the reference an app ports) and ``docs/onnx.md``.
"""

from swipe.runtime.decoder import OnnxDecoder, OnnxFolderError, Swipe, read_swipes

__all__ = ["OnnxDecoder", "OnnxFolderError", "Swipe", "read_swipes"]
