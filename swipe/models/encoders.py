"""Encoders over embedded swipe points: transformer, conformer and bidirectional RNN.

All map ``(x: (B, T, D_in), pad_mask: (B, T) bool, True = padding)`` to a memory ``(B, T, D_mem)``
in which no non-padded position depends on padded ones. :class:`TransformerEncoder` and
:class:`ConformerEncoder` share their constructor and ``forward`` signature, so either can be used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from swipe.models.attention import (
    FeedForward,
    MultiHeadAttention,
    inference_weights,
    layer_norm_weights,
    linear_weights,
    optional_attention_mask,
    transposed,
)
from swipe.models.config import RNNLikeConfig, TransformerLikeConfig


class EncoderLayerWeights(NamedTuple):
    """One transformer encoder layer's weights for :func:`encoder_layer_eval`: each projection
    as ``(W^T, b)`` with ``W^T`` contiguous, the form ``torch.addmm`` reads fastest, the
    self-attention's query, key and value projections fused into one."""

    qkv: tuple[Tensor, Tensor]
    out: tuple[Tensor, Tensor]
    feed_forward_in: tuple[Tensor, Tensor]
    feed_forward_out: tuple[Tensor, Tensor]
    activation: Callable[[Tensor], Tensor]
    norms: tuple[tuple[Tensor, Tensor, float], tuple[Tensor, Tensor, float]]
    norm_first: bool
    num_heads: int


class TransformerEncoderLayer(nn.Module):
    """Self-attention and feed-forward blocks, pre- or post-norm."""

    def __init__(self, config: TransformerLikeConfig) -> None:
        super().__init__()
        d = config.d_model
        self.norm_first = config.norm_first
        self.self_attn = MultiHeadAttention(d, config.num_heads, config.dropout)
        self.feed_forward = FeedForward(d, config.dim_feedforward, config.dropout, config.activation)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout(self.self_attn(h, h, attn_mask))
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.self_attn(x, x, attn_mask)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))

    def eval_weights(self) -> EncoderLayerWeights:
        """This layer's weights for :func:`encoder_layer_eval`."""
        sa, ff = self.self_attn, self.feed_forward
        qkv_weight, qkv_bias = sa.fused_projection()
        return EncoderLayerWeights(
            qkv=(transposed(qkv_weight), qkv_bias),
            out=linear_weights(sa.out),
            feed_forward_in=linear_weights(ff.linear1),
            feed_forward_out=linear_weights(ff.linear2),
            activation=ff.activation_function(),
            norms=(layer_norm_weights(self.norm1), layer_norm_weights(self.norm2)),
            norm_first=self.norm_first,
            num_heads=sa.num_heads,
        )


def encoder_layer_eval(w: EncoderLayerWeights, x: Tensor, attn_mask: Tensor | None) -> Tensor:
    """:meth:`TransformerEncoderLayer.forward` in eval mode, with functional ops on the layer's
    :class:`EncoderLayerWeights`: one projection for queries, keys and values, and no module
    calls (each costs about as much as a small op)."""
    b, t, d = x.shape
    heads = w.num_heads
    (w1, b1, e1), (w2, b2, e2) = w.norms
    x = x.reshape(b * t, d)  # the products take (rows, D)
    h = torch.layer_norm(x, (d,), w1, b1, e1) if w.norm_first else x
    x = x + _self_attention(w.qkv, w.out, heads, h.view(b, t, d), attn_mask)
    if w.norm_first:
        h = torch.layer_norm(x, (d,), w2, b2, e2)
    else:
        x = h = torch.layer_norm(x, (d,), w1, b1, e1)
    h = w.activation(torch.addmm(w.feed_forward_in[1], h, w.feed_forward_in[0]))
    x = x + torch.addmm(w.feed_forward_out[1], h, w.feed_forward_out[0])
    if not w.norm_first:
        x = torch.layer_norm(x, (d,), w2, b2, e2)
    return x.view(b, t, d)


def _self_attention(
    qkv: tuple[Tensor, Tensor], out: tuple[Tensor, Tensor], heads: int, h: Tensor, attn_mask: Tensor | None
) -> Tensor:
    """Multi-head self-attention of ``h`` ``(B, T, D)`` with the fused query/key/value projection
    ``qkv`` and the output projection ``out`` (each ``(W^T, b)``), as rows ``(B * T, D)``."""
    b, t, d = h.shape
    projected = torch.addmm(qkv[1], h.reshape(b * t, d), qkv[0]).view(b, t, 3, heads, d // heads)
    query, key, value = projected.permute(2, 0, 3, 1, 4)
    attended = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
    return torch.addmm(out[1], attended.transpose(1, 2).reshape(b * t, d), out[0])


class TransformerEncoder(nn.Module):
    """A stack of transformer encoder layers (with a final norm when pre-norm).

    Parameters
    ----------
    config : TransformerLikeConfig
        Uses ``d_model``, ``num_encoder_layers``, ``num_heads``, ``dim_feedforward``, ``dropout``,
        ``activation`` and ``norm_first``.
    """

    def __init__(self, config: TransformerLikeConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerEncoderLayer(config) for _ in range(config.num_encoder_layers))
        self.norm = nn.LayerNorm(config.d_model) if config.norm_first else nn.Identity()

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        """Encode ``x`` ``(B, T, D)``; ``pad_mask`` ``(B, T)`` is ``True`` at padding."""
        attn_mask = optional_attention_mask(pad_mask)
        if self.training:
            for layer in self.layers:
                x = layer(x, attn_mask)
            return self.norm(x)
        for weights in inference_weights(self, self._eval_weights):
            x = encoder_layer_eval(weights, x, attn_mask)
        return self.norm(x)

    def _eval_weights(self) -> tuple[EncoderLayerWeights, ...]:
        return tuple(layer.eval_weights() for layer in self.layers)


class ConvolutionModule(nn.Module):
    """The conformer convolution module: pointwise conv + GLU, depthwise conv over time, norm,
    SiLU, pointwise conv.

    LayerNorm replaces the paper's BatchNorm so that padding never enters the statistics.
    """

    def __init__(self, d_model: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        x = F.glu(self.pointwise_in(x), dim=-1)
        # Zeroing padded points makes them look exactly like the convolution's own zero padding.
        x = x.masked_fill(pad_mask[..., None], 0.0)
        x = depthwise_over_time(x, self.depthwise.weight[:, :, None, :], self.depthwise.bias)
        x = F.silu(self.norm(x))
        return self.dropout(self.pointwise_out(x))


def depthwise_over_time(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The depthwise convolution over time of :class:`ConvolutionModule` (odd kernel, zero
    padding that keeps the length) of ``x`` ``(B, T, D)``, with its ``Conv1d`` weight as a
    height-1 ``Conv2d`` weight ``(D, 1, 1, K)``.

    Run as a 2-D convolution of height 1, which gives the same numbers: on CPU, torch's 1-D
    depthwise convolution is several times slower (forty times for a batch of 64 curves).
    """
    d, k = weight.shape[0], weight.shape[-1]
    out = F.conv2d(x.transpose(1, 2)[:, :, None, :], weight, bias, padding=(0, k // 2), groups=d)
    return out[:, :, 0].transpose(1, 2)


class ConformerLayer(nn.Module):
    """A conformer block: half feed-forward, self-attention, convolution, half feed-forward."""

    def __init__(self, config: TransformerLikeConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ff1 = FeedForward(d, config.dim_feedforward, config.dropout, "silu")
        self.self_attn = MultiHeadAttention(d, config.num_heads, config.dropout)
        self.conv = ConvolutionModule(d, config.conv_kernel_size, config.dropout)
        self.ff2 = FeedForward(d, config.dim_feedforward, config.dropout, "silu")
        self.norm_ff1 = nn.LayerNorm(d)
        self.norm_attn = nn.LayerNorm(d)
        self.norm_conv = nn.LayerNorm(d)
        self.norm_ff2 = nn.LayerNorm(d)
        self.norm_out = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None, pad_mask: Tensor) -> Tensor:
        x = x + 0.5 * self.dropout(self.ff1(self.norm_ff1(x)))
        h = self.norm_attn(x)
        x = x + self.dropout(self.self_attn(h, h, attn_mask))
        x = x + self.conv(self.norm_conv(x), pad_mask)
        x = x + 0.5 * self.dropout(self.ff2(self.norm_ff2(x)))
        return self.norm_out(x)

    def eval_weights(self) -> ConformerLayerWeights:
        """This layer's weights for :func:`conformer_layer_eval`."""
        sa, conv = self.self_attn, self.conv
        qkv_weight, qkv_bias = sa.fused_projection()

        def half_step(ff: FeedForward) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
            # The block's residual adds half its output: the halving is folded into the
            # second projection (exact: a power of two).
            return (linear_weights(ff.linear1),
                    (transposed(0.5 * ff.linear2.weight), 0.5 * ff.linear2.bias))

        return ConformerLayerWeights(
            feed_forward_1=half_step(self.ff1),
            qkv=(transposed(qkv_weight), qkv_bias),
            out=linear_weights(sa.out),
            conv_in=linear_weights(conv.pointwise_in),
            depthwise=(conv.depthwise.weight[:, :, None, :].contiguous(), conv.depthwise.bias),
            conv_out=linear_weights(conv.pointwise_out),
            feed_forward_2=half_step(self.ff2),
            norms=tuple(layer_norm_weights(n) for n in (self.norm_ff1, self.norm_attn, self.norm_conv,
                                                         conv.norm, self.norm_ff2, self.norm_out)),
            num_heads=sa.num_heads,
        )


class ConformerLayerWeights(NamedTuple):
    """One conformer layer's weights for :func:`conformer_layer_eval`: projections as ``(W^T, b)``
    (as :class:`EncoderLayerWeights`), the depthwise convolution as a height-1 ``Conv2d`` weight
    ``(D, 1, 1, K)`` and its bias, and the layer norms in the order the layer applies them (the
    feed-forward, attention and convolution blocks', the convolution module's inner one, the
    second feed-forward block's, the output's)."""

    feed_forward_1: tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]
    qkv: tuple[Tensor, Tensor]
    out: tuple[Tensor, Tensor]
    conv_in: tuple[Tensor, Tensor]
    depthwise: tuple[Tensor, Tensor]
    conv_out: tuple[Tensor, Tensor]
    feed_forward_2: tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]
    norms: tuple[tuple[Tensor, Tensor, float], ...]
    num_heads: int


def conformer_layer_eval(
    w: ConformerLayerWeights, x: Tensor, attn_mask: Tensor | None, pad_mask: Tensor | None
) -> Tensor:
    """:meth:`ConformerLayer.forward` in eval mode, with functional ops on the layer's
    :class:`ConformerLayerWeights` (no module calls); ``pad_mask`` may be None where nothing is
    padded."""
    b, t, d = x.shape
    heads = w.num_heads
    n_ff1, n_attn, n_conv, n_inner, n_ff2, n_out = w.norms
    x = x.reshape(b * t, d)  # the products take (rows, D)
    x = _feed_forward_step(w.feed_forward_1, n_ff1, x)
    h = torch.layer_norm(x, (d,), *n_attn)
    x = x + _self_attention(w.qkv, w.out, heads, h.view(b, t, d), attn_mask)
    h = F.glu(torch.addmm(w.conv_in[1], torch.layer_norm(x, (d,), *n_conv), w.conv_in[0]), dim=-1)
    if pad_mask is not None:
        h = h.masked_fill(pad_mask.reshape(b * t, 1), 0.0)
    h = depthwise_over_time(h.view(b, t, d), *w.depthwise).reshape(b * t, d)
    h = F.silu(torch.layer_norm(h, (d,), *n_inner))
    x = x + torch.addmm(w.conv_out[1], h, w.conv_out[0])
    x = _feed_forward_step(w.feed_forward_2, n_ff2, x)
    return torch.layer_norm(x, (d,), *n_out).view(b, t, d)


def _feed_forward_step(
    projections: tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]],
    norm: tuple[Tensor, Tensor, float],
    x: Tensor,
) -> Tensor:
    """``x`` plus the conformer's pre-norm SiLU feed-forward block (its halving folded in)."""
    (w_in, b_in), (w_out, b_out) = projections
    h = F.silu(torch.addmm(b_in, torch.layer_norm(x, (x.shape[1],), *norm), w_in))
    return x + torch.addmm(b_out, h, w_out)


class ConformerEncoder(nn.Module):
    """A stack of conformer layers (Gulati et al., 2020) with absolute positions added before it.

    Parameters
    ----------
    config : TransformerLikeConfig
        Uses ``d_model``, ``num_encoder_layers``, ``num_heads``, ``dim_feedforward``, ``dropout``
        and ``conv_kernel_size``.
    """

    def __init__(self, config: TransformerLikeConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ConformerLayer(config) for _ in range(config.num_encoder_layers))

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        """Encode ``x`` ``(B, T, D)``; ``pad_mask`` ``(B, T)`` is ``True`` at padding."""
        attn_mask = optional_attention_mask(pad_mask)
        if self.training:
            for layer in self.layers:
                x = layer(x, attn_mask, pad_mask)
            return x
        points_mask = pad_mask if attn_mask is not None else None
        for weights in inference_weights(self, self._eval_weights):
            x = conformer_layer_eval(weights, x, attn_mask, points_mask)
        return x

    def _eval_weights(self) -> tuple[ConformerLayerWeights, ...]:
        return tuple(layer.eval_weights() for layer in self.layers)


class RNNEncoder(nn.Module):
    """A bidirectional LSTM or GRU over packed sequences.

    Parameters
    ----------
    config : RNNLikeConfig
        Uses ``d_model`` (input width), ``cell``, ``encoder_hidden_size``, ``num_encoder_layers``
        and ``dropout`` (between layers).
    """

    def __init__(self, config: RNNLikeConfig) -> None:
        super().__init__()
        rnn_class = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            config.d_model,
            config.encoder_hidden_size,
            num_layers=config.num_encoder_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_encoder_layers > 1 else 0.0,
        )
        self.output_size = 2 * config.encoder_hidden_size

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        """Encode ``x`` ``(B, T, D)`` -> ``(B, T, 2 * encoder_hidden_size)``, zero at padding."""
        lengths = (~pad_mask).sum(dim=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


def encoder_for(config: TransformerLikeConfig) -> TransformerEncoder | ConformerEncoder:
    """The encoder named by ``config.encoder``."""
    encoder_class = {"transformer": TransformerEncoder, "conformer": ConformerEncoder}[config.encoder]
    return encoder_class(config)
