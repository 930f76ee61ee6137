"""Swipe decoders: point embedders, encoders, decoders and the encoder-decoder models.

Build one with :func:`build_model` from a :class:`ModelConfig` (see :data:`PRESETS`), the layouts
it reads and the tokenizer it writes.
"""

from swipe.models.config import (
    EMBEDDER_NAMES,
    PRESETS,
    EmbedderConfig,
    ModelConfig,
    RNNLikeConfig,
    TransformerLikeConfig,
    preset,
)
from swipe.models.decoders import DecoderState, DecoderStep, RNNDecoderState, TransformerDecoderState
from swipe.models.embedders import SwipePointEmbedder
from swipe.models.encoder_decoder import (
    AttentionMaps,
    EncoderDecoder,
    RNNLikeEncoderDecoder,
    TransformerLikeEncoderDecoder,
    build_model,
)

__all__ = [
    "AttentionMaps",
    "EMBEDDER_NAMES",
    "PRESETS",
    "DecoderState",
    "DecoderStep",
    "EmbedderConfig",
    "EncoderDecoder",
    "ModelConfig",
    "RNNDecoderState",
    "RNNLikeConfig",
    "RNNLikeEncoderDecoder",
    "SwipePointEmbedder",
    "TransformerDecoderState",
    "TransformerLikeConfig",
    "TransformerLikeEncoderDecoder",
    "build_model",
    "preset",
]
