"""Typed model configurations and presets.

A model is fully described by a :class:`ModelConfig` (plus the layouts and the tokenizer it was
built with). Configs are frozen dataclasses read strictly with :func:`swipe.config.from_dict`::

    {"embedder": {"name": "weighted"},
     "transformer": {"d_model": 128, "encoder": "transformer", "num_encoder_layers": 4,
                     "num_decoder_layers": 4, "num_heads": 4, "dim_feedforward": 128,
                     "dropout": 0.1}}

Exactly one of ``transformer`` and ``rnn`` is given; it picks the model family.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

EmbedderName = Literal[
    "phrase_swipe", "google_2015", "indiswipe", "nearest", "weighted", "trainable_gaussian"
]
EMBEDDER_NAMES: tuple[str, ...] = (
    "phrase_swipe",
    "google_2015",
    "indiswipe",
    "nearest",
    "weighted",
    "trainable_gaussian",
)


@dataclass(frozen=True)
class EmbedderConfig:
    """How a swipe point becomes an encoder input vector.

    Attributes
    ----------
    name : str
        One of :data:`EMBEDDER_NAMES` (see ``docs/models.md`` for what each reads).
    weight_function : {"sigmoid", "threshold"}
        ``weighted`` only: ``sigmoid`` is ``1 / (1 + exp(sigmoid_slope * (d - sigmoid_center)))``,
        ``threshold`` is ``1`` where ``d < threshold`` and ``0`` elsewhere; ``d`` is the distance
        to a key centre in key half-diagonals.
    sigmoid_slope, sigmoid_center : float
        Parameters of the sigmoid weight function.
    threshold : float
        Cut-off of the threshold weight function, in key half-diagonals.
    gaussian_sigma : float
        ``trainable_gaussian`` only: initial standard deviation of each key's Gaussian, in key
        half-diagonals.
    """

    name: EmbedderName
    weight_function: Literal["sigmoid", "threshold"] = "sigmoid"
    sigmoid_slope: float = 1.8
    sigmoid_center: float = 2.2
    threshold: float = 1.0
    gaussian_sigma: float = 1.0

    def __post_init__(self) -> None:
        if self.threshold <= 0 or self.gaussian_sigma <= 0:
            raise ValueError("threshold and gaussian_sigma must be positive")


@dataclass(frozen=True)
class TransformerLikeConfig:
    """A transformer or conformer encoder with a transformer decoder.

    Attributes
    ----------
    d_model : int
        Width of every layer; even and divisible by ``num_heads``.
    encoder : {"transformer", "conformer"}
        The encoder stack.
    num_encoder_layers, num_decoder_layers : int
        Depths.
    num_heads : int
        Attention heads.
    dim_feedforward : int
        Hidden width of the feed-forward blocks.
    dropout : float
        Dropout everywhere (embeddings, attention weights, residual branches).
    activation : {"relu", "gelu"}
        Feed-forward activation (the conformer always uses SiLU, as published).
    norm_first : bool
        Pre-norm (``True``) or post-norm (``False``, as in "Attention is all you need") layers.
        The conformer is always pre-norm.
    conv_kernel_size : int
        Conformer only: odd kernel size of the depthwise convolution over time.
    """

    d_model: int
    encoder: Literal["transformer", "conformer"]
    num_encoder_layers: int
    num_decoder_layers: int
    num_heads: int
    dim_feedforward: int
    dropout: float
    activation: Literal["relu", "gelu"] = "relu"
    norm_first: bool = False
    conv_kernel_size: int = 15

    def __post_init__(self) -> None:
        if self.d_model <= 0 or self.d_model % 2:
            raise ValueError(f"d_model must be positive and even, got {self.d_model}")
        if self.num_heads <= 0 or self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if self.num_encoder_layers < 1 or self.num_decoder_layers < 1 or self.dim_feedforward < 1:
            raise ValueError("layer counts and dim_feedforward must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.conv_kernel_size < 1 or self.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be odd, got {self.conv_kernel_size}")


@dataclass(frozen=True)
class RNNLikeConfig:
    """A bidirectional recurrent encoder with an additive-attention (Bahdanau) decoder.

    Attributes
    ----------
    d_model : int
        Width of the point embeddings and of the decoder's token embeddings; even.
    cell : {"lstm", "gru"}
        Recurrent cell of the encoder and the decoder.
    encoder_hidden_size : int
        Hidden size per direction of the encoder (memory width is twice this).
    num_encoder_layers : int
        Stacked bidirectional encoder layers.
    decoder_hidden_size : int
        Hidden size of the decoder cell.
    attention_size : int
        Width of the additive attention.
    dropout : float
        Dropout on embeddings, between encoder layers and before the output layer.
    """

    d_model: int
    cell: Literal["lstm", "gru"]
    encoder_hidden_size: int
    num_encoder_layers: int
    decoder_hidden_size: int
    attention_size: int
    dropout: float

    def __post_init__(self) -> None:
        sizes = (self.d_model, self.encoder_hidden_size, self.decoder_hidden_size, self.attention_size)
        if min(sizes) < 1 or self.num_encoder_layers < 1:
            raise ValueError("sizes and num_encoder_layers must be positive")
        if self.d_model % 2:
            raise ValueError(f"d_model must be even, got {self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class ModelConfig:
    """A whole encoder-decoder: the point embedder and exactly one of ``transformer`` / ``rnn``."""

    embedder: EmbedderConfig
    transformer: TransformerLikeConfig | None = None
    rnn: RNNLikeConfig | None = None

    def __post_init__(self) -> None:
        if (self.transformer is None) == (self.rnn is None):
            raise ValueError("give exactly one of 'transformer' and 'rnn'")

    @property
    def family(self) -> Literal["transformer", "rnn"]:
        return "transformer" if self.transformer is not None else "rnn"

    @property
    def d_model(self) -> int:
        arch = self.transformer if self.transformer is not None else self.rnn
        assert arch is not None
        return arch.d_model


PRESETS: dict[str, ModelConfig] = {
    # The reference research model.
    "base": ModelConfig(
        embedder=EmbedderConfig("weighted"),
        transformer=TransformerLikeConfig(
            d_model=128,
            encoder="transformer",
            num_encoder_layers=4,
            num_decoder_layers=4,
            num_heads=4,
            dim_feedforward=128,
            dropout=0.1,
        ),
    ),
    # For phones: a shallow decoder keeps per-character beam steps cheap.
    "small": ModelConfig(
        embedder=EmbedderConfig("weighted"),
        transformer=TransformerLikeConfig(
            d_model=96,
            encoder="transformer",
            num_encoder_layers=3,
            num_decoder_layers=2,
            num_heads=4,
            dim_feedforward=192,
            dropout=0.1,
            norm_first=True,
        ),
    ),
    # For GPUs and large data sets.
    "large": ModelConfig(
        embedder=EmbedderConfig("weighted"),
        transformer=TransformerLikeConfig(
            d_model=256,
            encoder="conformer",
            num_encoder_layers=6,
            num_decoder_layers=4,
            num_heads=8,
            dim_feedforward=1024,
            dropout=0.1,
            activation="gelu",
            norm_first=True,
            conv_kernel_size=15,
        ),
    ),
    # Yandex Cup 2023 winner-like: bidirectional LSTM encoder, attention LSTM decoder.
    "rnn": ModelConfig(
        embedder=EmbedderConfig("weighted"),
        rnn=RNNLikeConfig(
            d_model=128,
            cell="lstm",
            encoder_hidden_size=256,
            num_encoder_layers=2,
            decoder_hidden_size=256,
            attention_size=256,
            dropout=0.1,
        ),
    ),
}


def preset(name: str, embedder: str | None = None) -> ModelConfig:
    """A preset model config, optionally with another embedder.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`: ``base``, ``small``, ``large`` or ``rnn``.
    embedder : str, optional
        One of :data:`EMBEDDER_NAMES`, replacing the preset's embedder.
    """
    if name not in PRESETS:
        raise KeyError(f"no model preset {name!r}; presets: {', '.join(PRESETS)}")
    config = PRESETS[name]
    if embedder is not None:
        if embedder not in EMBEDDER_NAMES:
            raise ValueError(f"no embedder {embedder!r}; embedders: {', '.join(EMBEDDER_NAMES)}")
        config = dataclasses.replace(config, embedder=EmbedderConfig(embedder))  # type: ignore[arg-type]
    return config
