"""Multi-head attention and feed-forward blocks shared by the encoders and the decoder, and the
weight gathering of their eval-mode fast paths."""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

W = TypeVar("W")

_ACTIVATIONS: dict[type, Callable[[Tensor], Tensor]] = {nn.ReLU: torch.relu, nn.GELU: F.gelu, nn.SiLU: F.silu}


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention, batch-first, with keys/values exposed so that a
    decoder can cache them.

    Parameters
    ----------
    d_model : int
        Model width (divisible by ``num_heads``).
    num_heads : int
        Number of heads.
    dropout : float
        Dropout on the attention weights (training only).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)

    def fused_projection(self) -> tuple[Tensor, Tensor]:
        """Weight ``(3 * D, D)`` and bias of the query and key/value projections in one (for
        self-attention: queries, keys and values in one product)."""
        return (
            torch.cat((self.query.weight, self.key_value.weight)),
            torch.cat((self.query.bias, self.key_value.bias)),
        )

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Project ``x`` ``(B, S, D)`` to per-head keys and values, each ``(B, H, S, D / H)``."""
        key, value = self.key_value(x).chunk(2, dim=-1)
        return self._heads(key), self._heads(value)

    def attend(
        self, x: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, queries_per_key: int = 1
    ) -> Tensor:
        """Attend from queries ``x`` ``(B, L, D)`` to per-head ``key``/``value``.

        ``key``/``value`` are ``(B / queries_per_key, H, S, D / H)``: with ``queries_per_key``
        ``k > 1``, rows ``c * k .. c * k + k - 1`` of ``x`` all attend to row ``c`` of the keys
        (the hypotheses of one curve reading the curve's memory), which is never copied.
        ``mask`` is boolean, broadcastable to ``(B / k, H, k * L, S)``, ``True`` where attending
        is allowed (the opposite of a padding mask).
        """
        b, n, d = x.shape
        query = self.query(x)
        if queries_per_key != 1:
            query = query.reshape(b // queries_per_key, queries_per_key * n, d)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(self._heads(query), key, value, attn_mask=mask, dropout_p=p)
        return self.out(out.transpose(1, 2).reshape(b, n, d))

    def weights(self, x: Tensor, key: Tensor, mask: Tensor | None) -> Tensor:
        """The attention weights ``(B, H, L, S)`` of queries ``x`` ``(B, L, D)`` over per-head
        ``key`` ``(B, H, S, D / H)`` (what :meth:`attend` averages the values with, no dropout);
        ``mask`` as for :meth:`attend`."""
        query = self._heads(self.query(x))
        scores = query @ key.transpose(-1, -2) / (query.shape[-1] ** 0.5)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None) -> Tensor:
        """Attend from ``x`` ``(B, L, D)`` to ``context`` ``(B, S, D)``."""
        key, value = self.keys_values(context)
        return self.attend(x, key, value, mask)


class FeedForward(nn.Module):
    """``Linear -> activation -> dropout -> Linear``."""

    def __init__(
        self, d_model: int, dim_feedforward: int, dropout: float, activation: Literal["relu", "gelu", "silu"]
    ) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.activation = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}[activation]()
        self.dropout = nn.Dropout(dropout)

    def activation_function(self) -> Callable[[Tensor], Tensor]:
        """The activation as a plain function (for functional fast paths)."""
        return _ACTIVATIONS[type(self.activation)]

    def forward(self, x: Tensor) -> Tensor:
        h = self.activation(self.linear1(x))
        return self.linear2(self.dropout(h) if self.training else h)


def key_padding_to_attention_mask(pad_mask: Tensor) -> Tensor:
    """``(B, S)`` padding mask (``True`` = padding) -> ``(B, 1, 1, S)`` attend-allowed mask."""
    return ~pad_mask[:, None, None, :]


def optional_attention_mask(pad_mask: Tensor) -> Tensor | None:
    """:func:`key_padding_to_attention_mask`, or None where nothing is padded (a single swipe):
    attention without a mask is the faster path."""
    return key_padding_to_attention_mask(pad_mask) if bool(pad_mask.any()) else None


def transposed(weight: Tensor) -> Tensor:
    """``W^T`` of a ``(out, in)`` weight, contiguous: the right operand of ``x W^T`` (the form
    ``torch.addmm`` reads fastest)."""
    return weight.t().contiguous()


def linear_weights(linear: nn.Linear) -> tuple[Tensor, Tensor]:
    """``(W^T, b)`` of ``linear``, ``W^T`` contiguous (see :func:`transposed`): the operands of
    ``torch.addmm(b, x, W^T)``."""
    return transposed(linear.weight), linear.bias


def layer_norm_weights(norm: nn.LayerNorm) -> tuple[Tensor, Tensor, float]:
    """``(weight, bias, eps)`` of ``norm``: the arguments ``torch.layer_norm`` takes after the shape."""
    return norm.weight, norm.bias, norm.eps


class _CachedWeights(NamedTuple):
    modules: list[nn.Module]
    key: tuple[tuple[int, int], ...]
    weights: Any


def inference_weights(module: nn.Module, build: Callable[[], W]) -> W:
    """``build()``: ``module``'s weights gathered for an eval-mode fast path (fused projections,
    plain tensors instead of module attribute lookups).

    Without gradients the result is kept on the module and rebuilt only when one of its
    parameters changes (in place, replaced, or moved to another device or dtype): gathering costs
    about as much as a decoding step. With gradients enabled it is built anew each time, so that
    gradients reach the parameters, and so it is for parameters created under
    ``torch.inference_mode``, whose in-place changes cannot be told.
    """
    if torch.is_grad_enabled():
        return build()
    cached: _CachedWeights | None = getattr(module, "_inference_weights", None)
    # The parameters are read from their modules at every call (a replaced parameter is seen);
    # `module.parameters()` would cost more than the rest of a decoding step's bookkeeping.
    modules = cached.modules if cached is not None else list(module.modules())
    try:
        key = tuple(
            (p.data_ptr(), p._version) for m in modules for p in m._parameters.values() if p is not None
        )
    except RuntimeError:  # inference tensors keep no version counter
        return build()
    if cached is None or cached.key != key:
        # Plain tensors even when first built under inference_mode, usable outside it.
        with torch.inference_mode(False), torch.no_grad():
            cached = _CachedWeights(modules, key, build())
        module._inference_weights = cached
    return cached.weights
