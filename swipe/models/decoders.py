"""Decoders: a transformer decoder with an explicit key/value cache, and an additive-attention RNN
decoder. Both decode a whole teacher-forced sequence (``forward``) or one token at a time
(``step``), and the two paths compute the same logits.

Decoder states are named tuples with ``select(batch_indices)``, which beam search uses to reorder
and expand hypotheses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swipe.models.attention import (
    FeedForward,
    MultiHeadAttention,
    inference_weights,
    key_padding_to_attention_mask,
    layer_norm_weights,
    linear_weights,
    optional_attention_mask,
    transposed,
)
from swipe.models.config import RNNLikeConfig, TransformerLikeConfig
from swipe.models.embedders import PositionTable


class LayerCache(NamedTuple):
    """Keys and values of one decoder layer, each ``(rows, H, S, D / H)``: self-attention over the
    tokens decoded so far (a row per hypothesis) and cross-attention over the memory (a row per
    curve). The teacher-forced (and training-mode) path passes these between layers."""

    self_key: Tensor
    self_value: Tensor
    memory_key: Tensor
    memory_value: Tensor


class StepWeights(NamedTuple):
    """One decoder layer's weights as its incremental step uses them: a step is a few dozen tiny
    ops, and reading each weight through its module costs about as much as one of them.

    Each projection is kept as ``(W^T, b)`` with ``W^T`` contiguous, the form ``torch.addmm``
    reads fastest: on 8 rows, with the weights out of cache as they are at every step, it takes
    about two thirds of the time of ``F.linear``. The self-attention's query and key/value
    projections are fused; ``memory_key_value`` projects the memory once per search. The three
    residual branches' output projections (``self_out``, ``cross_out``, ``feed_forward_out``)
    have a bias of None where it has been folded into the residual stream
    (:func:`fold_residual_biases`, post-norm decoders).
    """

    self_qkv: tuple[Tensor, Tensor]
    self_out: tuple[Tensor, Tensor | None]
    memory_key_value: tuple[Tensor, Tensor]
    cross_query: tuple[Tensor, Tensor]
    cross_out: tuple[Tensor, Tensor | None]
    feed_forward_in: tuple[Tensor, Tensor]
    feed_forward_out: tuple[Tensor, Tensor | None]
    activation: Callable[[Tensor], Tensor]
    norms: tuple[tuple[Tensor, Tensor, float], ...]
    norm_first: bool
    num_heads: int


def fold_residual_biases(
    layers: Sequence[StepWeights], embedding: Tensor
) -> tuple[tuple[StepWeights, ...], Tensor]:
    """Post-norm layers' step weights with the residual branches' output biases folded away.

    In a post-norm layer each residual branch adds ``f W^T + b`` to a stream ``x`` that is the
    output of a layer norm (or, for the first layer's self-attention, the token embedding plus
    positions). Adding ``b`` there instead (to that layer norm's bias, or to every embedding row)
    and subtracting ``W' b`` from the bias of each projection ``W'`` that reads ``x`` computes the
    same values up to float rounding, and turns each branch's product, bias and addition into one
    ``addmm(x, f, W^T)``: three ops fewer per layer and step.

    Returns
    -------
    tuple
        The layers' weights and the token embedding, folded.
    """
    layers = list(layers)
    for i, w in enumerate(layers):
        self_bias, cross_bias, ff_bias = w.self_out[1], w.cross_out[1], w.feed_forward_out[1]
        if i == 0:
            embedding = embedding + self_bias
        else:
            before = layers[i - 1]
            (nw, nb, eps) = before.norms[2]
            layers[i - 1] = before._replace(norms=(*before.norms[:2], (nw, nb + self_bias, eps)))
        (n1w, n1b, e1), (n2w, n2b, e2), n3 = w.norms
        layers[i] = w._replace(
            self_qkv=_bias_minus(w.self_qkv, self_bias),
            self_out=(w.self_out[0], None),
            cross_query=_bias_minus(w.cross_query, cross_bias),
            cross_out=(w.cross_out[0], None),
            feed_forward_in=_bias_minus(w.feed_forward_in, ff_bias),
            feed_forward_out=(w.feed_forward_out[0], None),
            norms=((n1w, n1b + cross_bias, e1), (n2w, n2b + ff_bias, e2), n3),
        )
    return tuple(layers), embedding


def _bias_minus(projection: tuple[Tensor, Tensor], shift: Tensor) -> tuple[Tensor, Tensor]:
    """``(W^T, b - W shift)``: the projection of ``x - shift`` written as one of ``x``."""
    weight_t, bias = projection
    return weight_t, bias - shift @ weight_t


class DecoderWeights(NamedTuple):
    """The whole decoder's weights for the eval-mode step (:meth:`TransformerDecoder.step_weights`).

    Attributes
    ----------
    embedding : Tensor
        ``(vocab_size, D)`` token embedding.
    layers : tuple of StepWeights
        Per layer.
    final_norm : tuple or None
        ``(weight, bias, eps)`` of the final layer norm (pre-norm), None (post-norm).
    output : tuple of Tensor
        The output layer's ``W^T`` and bias.
    """

    embedding: Tensor
    layers: tuple[StepWeights, ...]
    final_norm: tuple[Tensor, Tensor, float] | None
    output: tuple[Tensor, Tensor]


def _beam_rows(beam_indices: Tensor, beams_per_curve: int) -> Tensor:
    """Flat hypothesis rows of ``(C, K')`` per-curve beam indices (curves in blocks of
    ``beams_per_curve`` rows)."""
    if beam_indices.dim() != 2:
        raise ValueError(f"beam_indices must be (num_curves, beams), got shape {tuple(beam_indices.shape)}")
    if beam_indices.size(0) == 1:
        return beam_indices[0]
    offsets = torch.arange(beam_indices.size(0), device=beam_indices.device) * beams_per_curve
    return (beam_indices + offsets[:, None]).reshape(-1)


def _curve_rows(curve_indices: Tensor, beams_per_curve: int) -> Tensor:
    """Flat hypothesis rows of all the beams of curves ``curve_indices``."""
    if beams_per_curve == 1:
        return curve_indices
    beams = torch.arange(beams_per_curve, device=curve_indices.device)
    return (curve_indices[:, None] * beams_per_curve + beams).reshape(-1)


class TransformerDecoderState(NamedTuple):
    """The transformer decoder's key/value cache, each layer's keys and values in one tensor with
    the positions first, so that a step appends a position by writing one block and reorders the
    hypotheses by gathering rows: one copy per layer.

    Hypotheses are grouped by curve in ``beams_per_curve`` slots each: slots
    ``c * beams_per_curve .. (c + 1) * beams_per_curve - 1`` are those of curve ``c``, and they
    all read the curve's one copy of the memory's keys/values. Where beam search leaves slots
    empty (:meth:`select` with ``-1``), only the filled slots have hypotheses (``slots``), and a
    step computes nothing for the empty ones but the cross-attention, which reads the memory per
    curve. :meth:`select` and :meth:`select_curves` copy nothing: they record which cache row each
    hypothesis continues (``rows``), and the next step gathers those rows while it appends.

    Attributes
    ----------
    self_caches : tuple of Tensor
        Per layer, ``(S, R, 2, H, D / H)``: for each of the ``S`` tokens decoded so far and each
        cache row, the keys (index 0) and values (index 1).
    memory_caches : tuple of Tensor
        Per layer, ``(C, 2, H, T, D / H)``: per curve, the memory's keys and values.
    memory_mask : Tensor or None
        ``(C, 1, 1, T)`` bool, ``True`` at real (attendable) memory positions; None where no
        curve has padding (a single swipe), which spares the masking.
    beams_per_curve : int
        Slots per curve.
    weights : DecoderWeights
        The decoder's weights for the eval-mode step, gathered at the first step.
    slots : Tensor or None
        ``(N,)`` int64, ascending: the slot of each of the ``N`` hypotheses, where some slots are
        empty; None where every slot holds a hypothesis (hypothesis ``i`` is slot ``i``).
    rows : Tensor or None
        ``(N,)`` int64: the cache row each hypothesis continues; None: hypothesis ``i`` continues
        row ``i``.
    """

    self_caches: tuple[Tensor, ...]
    memory_caches: tuple[Tensor, ...]
    memory_mask: Tensor | None
    beams_per_curve: int
    weights: DecoderWeights
    slots: Tensor | None = None
    rows: Tensor | None = None

    @property
    def length(self) -> int:
        """Number of tokens decoded so far."""
        return self.self_caches[0].shape[0]

    @property
    def num_curves(self) -> int:
        return self.memory_caches[0].shape[0]

    @property
    def num_slots(self) -> int:
        return self.num_curves * self.beams_per_curve

    def layer_caches(self) -> tuple[LayerCache, ...]:
        """Per layer, its keys/values as :class:`LayerCache` views (every slot a row)."""
        caches = (c.permute(1, 2, 3, 0, 4) for c in self.unpacked().self_caches)  # (R, 2, H, S, D / H)
        return tuple(
            LayerCache(own[:, 0], own[:, 1], memory[:, 0], memory[:, 1])
            for own, memory in zip(caches, self.memory_caches, strict=True)
        )

    def unpacked(self) -> TransformerDecoderState:
        """The same state with cache row ``i`` for slot ``i`` (zeros for the empty slots)."""
        if self.slots is None and self.rows is None:
            return self
        caches = self.self_caches
        if self.rows is not None:
            caches = tuple(c.index_select(1, self.rows) for c in caches)
        if self.slots is not None:
            caches = tuple(
                c.new_zeros((c.shape[0], self.num_slots, *c.shape[2:])).index_copy_(1, self.slots, c)
                for c in caches
            )
        return self._replace(self_caches=caches, slots=None, rows=None)

    def _hypotheses_of_slots(self, slots: Tensor) -> Tensor:
        """The hypothesis in each of ``slots`` (-1 where a slot is empty)."""
        if self.slots is None:
            return slots
        of_slot = self.slots.new_full((self.num_slots,), -1)
        of_slot[self.slots] = torch.arange(len(self.slots), device=self.slots.device)
        return of_slot[slots]

    def _continued(self, hypotheses: Tensor, filled: Tensor) -> tuple[Tensor, Tensor | None]:
        """``rows`` and ``slots`` of a new state whose slot ``i`` continues hypothesis
        ``hypotheses[i]`` where ``filled[i]``, and is empty elsewhere."""
        slots = None if bool(filled.all()) else filled.nonzero().squeeze(1)
        if slots is not None:
            hypotheses = hypotheses.index_select(0, slots)
        if len(hypotheses) and int(hypotheses.min()) < 0:
            raise ValueError("a hypothesis continues an empty slot: select only filled slots")
        rows = hypotheses if self.rows is None else self.rows.index_select(0, hypotheses)
        return rows, slots

    def select(self, beam_indices: Tensor) -> TransformerDecoderState:
        """Reorder / expand the hypotheses of every curve, keeping the curves.

        Parameters
        ----------
        beam_indices : Tensor
            ``(C, K')`` int64: new hypothesis ``j`` of curve ``c`` continues hypothesis
            ``beam_indices[c, j]`` (in ``0 .. beams_per_curve - 1``) of the same curve, or is an
            empty slot where it is ``-1``: the next step's logits for it are meaningless.
        """
        parents = _beam_rows(beam_indices.clamp(min=0), self.beams_per_curve)
        rows, slots = self._continued(self._hypotheses_of_slots(parents), (beam_indices >= 0).reshape(-1))
        return self._replace(rows=rows, slots=slots, beams_per_curve=beam_indices.size(1))

    def select_curves(self, curve_indices: Tensor) -> TransformerDecoderState:
        """Keep only curves ``curve_indices`` ``(C',)`` (all their hypotheses), in that order."""
        hypotheses = self._hypotheses_of_slots(_curve_rows(curve_indices, self.beams_per_curve))
        rows, slots = self._continued(hypotheses, hypotheses >= 0)
        mask = None if self.memory_mask is None else self.memory_mask.index_select(0, curve_indices)
        return self._replace(
            memory_caches=tuple(c.index_select(0, curve_indices) for c in self.memory_caches),
            memory_mask=mask,
            slots=slots,
            rows=rows,
        )


class RNNDecoderState(NamedTuple):
    """The RNN decoder's state, hypotheses grouped by curve as in :class:`TransformerDecoderState`.

    Attributes
    ----------
    hidden : Tensor
        ``(C * beams_per_curve, decoder_hidden_size)`` hidden state.
    cell : Tensor or None
        ``(C * beams_per_curve, decoder_hidden_size)`` LSTM cell state; ``None`` for a GRU.
    memory_keys : Tensor
        ``(C, T, attention_size)`` the memory projected for attention, computed once per curve.
    beams_per_curve : int
        Hypotheses per curve.
    """

    hidden: Tensor
    cell: Tensor | None
    memory_keys: Tensor
    beams_per_curve: int

    @property
    def num_curves(self) -> int:
        return self.memory_keys.shape[0]

    def select(self, beam_indices: Tensor) -> RNNDecoderState:
        """Reorder / expand the hypotheses of every curve (see
        :meth:`TransformerDecoderState.select`)."""
        # An empty slot (-1) continues the curve's first hypothesis: its logits are never read.
        rows = _beam_rows(beam_indices.clamp(min=0), self.beams_per_curve)
        cell = None if self.cell is None else self.cell.index_select(0, rows)
        return RNNDecoderState(
            self.hidden.index_select(0, rows), cell, self.memory_keys, beam_indices.size(1)
        )

    def select_curves(self, curve_indices: Tensor) -> RNNDecoderState:
        """Keep only curves ``curve_indices`` ``(C',)`` (all their hypotheses), in that order."""
        rows = _curve_rows(curve_indices, self.beams_per_curve)
        cell = None if self.cell is None else self.cell.index_select(0, rows)
        return RNNDecoderState(
            self.hidden.index_select(0, rows),
            cell,
            self.memory_keys.index_select(0, curve_indices),
            self.beams_per_curve,
        )


DecoderState = TransformerDecoderState | RNNDecoderState


class DecoderStep(NamedTuple):
    """One incremental decoding step: ``logits`` ``(C * beams_per_curve, V)`` for the next token
    and the new state."""

    logits: Tensor
    state: DecoderState


def beams_per_curve(num_rows: int, memory: Tensor, state: DecoderState | None) -> int:
    """The hypotheses per curve of a step on ``num_rows`` tokens over ``memory`` ``(C, T, D)``:
    ``state.beams_per_curve``, or at the first step ``num_rows / C``; a mismatch is an error."""
    num_curves = memory.shape[0]
    k = state.beams_per_curve if state is not None else max(num_rows // max(num_curves, 1), 1)
    if num_rows != num_curves * k:
        raise ValueError(
            f"decode_step got {num_rows} tokens for {num_curves} memory rows and {k} hypotheses per "
            "curve: the memory has one row per curve, the tokens one per hypothesis"
        )
    return k


def _identity(x: Tensor) -> Tensor:
    return x


def _extend(cached: Tensor, new: Tensor) -> Tensor:
    return new if cached.shape[2] == 0 else torch.cat((cached, new), dim=2)


class TransformerDecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over the memory and feed-forward, pre- or
    post-norm, with the keys/values it attends to passed in and returned."""

    def __init__(self, config: TransformerLikeConfig) -> None:
        super().__init__()
        d = config.d_model
        self.norm_first = config.norm_first
        self.self_attn = MultiHeadAttention(d, config.num_heads, config.dropout)
        self.cross_attn = MultiHeadAttention(d, config.num_heads, config.dropout)
        self.feed_forward = FeedForward(d, config.dim_feedforward, config.dropout, config.activation)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def empty_cache(self, memory: Tensor) -> LayerCache:
        """A cache with no decoded tokens and the memory's keys/values."""
        memory_key, memory_value = self.cross_attn.keys_values(memory)
        empty = memory_key[:, :, :0]
        return LayerCache(empty, empty, memory_key, memory_value)

    def forward(
        self,
        x: Tensor,
        cache: LayerCache,
        self_mask: Tensor | None,
        memory_mask: Tensor | None,
        beams_per_curve: int,
    ) -> tuple[Tensor, LayerCache]:
        """Decode the new positions ``x`` ``(C * beams_per_curve, L, D)`` after those in ``cache``.

        ``self_mask`` (attend-allowed, over cached + new positions) may be ``None`` when every
        new position may see every cached one and itself, as for a single step; ``memory_mask``
        is ``(C, 1, 1, T)`` or None.
        """
        k = beams_per_curve
        # Dropout is skipped outright in eval mode: an incremental step is a few dozen small ops,
        # and a no-op call costs as much as one of them.
        drop = self.dropout if self.training else _identity
        h = self.norm1(x) if self.norm_first else x
        key, value = self.self_attn.keys_values(h)
        key, value = _extend(cache.self_key, key), _extend(cache.self_value, value)
        cache = LayerCache(key, value, cache.memory_key, cache.memory_value)
        attended = self.self_attn.attend(h, key, value, self_mask)
        if self.norm_first:
            x = x + drop(attended)
            h = self.norm2(x)
            x = x + drop(self.cross_attn.attend(h, cache.memory_key, cache.memory_value, memory_mask, k))
            return x + drop(self.feed_forward(self.norm3(x))), cache
        x = self.norm1(x + drop(attended))
        cross = self.cross_attn.attend(x, cache.memory_key, cache.memory_value, memory_mask, k)
        x = self.norm2(x + drop(cross))
        return self.norm3(x + drop(self.feed_forward(x))), cache

    def cross_attention(self, x: Tensor, cache: LayerCache, self_mask: Tensor | None,
                        memory_mask: Tensor | None) -> Tensor:
        """The weights ``(B, H, L, T)`` with which positions ``x`` ``(B, L, D)`` (one hypothesis
        per curve) attend to the memory in :meth:`forward` (eval mode)."""
        h = self.norm1(x) if self.norm_first else x
        key, value = self.self_attn.keys_values(h)
        key, value = _extend(cache.self_key, key), _extend(cache.self_value, value)
        attended = self.self_attn.attend(h, key, value, self_mask)
        query = self.norm2(x + attended) if self.norm_first else self.norm1(x + attended)
        return self.cross_attn.weights(query, cache.memory_key, memory_mask)

    def step_weights(self) -> StepWeights:
        """This layer's weights for :func:`decoder_layer_step`."""
        sa, ca, ff = self.self_attn, self.cross_attn, self.feed_forward
        qkv_weight, qkv_bias = sa.fused_projection()
        return StepWeights(
            self_qkv=(transposed(qkv_weight), qkv_bias),
            self_out=linear_weights(sa.out),
            memory_key_value=linear_weights(ca.key_value),
            cross_query=linear_weights(ca.query),
            cross_out=linear_weights(ca.out),
            feed_forward_in=linear_weights(ff.linear1),
            feed_forward_out=linear_weights(ff.linear2),
            activation=ff.activation_function(),
            norms=tuple(layer_norm_weights(n) for n in (self.norm1, self.norm2, self.norm3)),
            norm_first=self.norm_first,
            num_heads=sa.num_heads,
        )


def decoder_layer_step(
    w: StepWeights, x: Tensor, self_cache: Tensor, memory_cache: Tensor, memory_mask: Tensor | None,
    beams_per_curve: int, slots: Tensor | None = None, rows: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """:meth:`TransformerDecoderLayer.forward` of one new position per row, in eval mode, written
    with functional ops on the layer's :class:`StepWeights`.

    Parameters
    ----------
    w : StepWeights
        The layer's weights.
    x : Tensor
        ``(rows, D)`` the new position of every hypothesis: one row per slot (``C * K``), or per
        filled slot where ``slots`` is given.
    self_cache : Tensor
        ``(S, R, 2, H, D / H)`` keys (index 0) and values (index 1) of the positions before.
    memory_cache : Tensor
        ``(C, 2, H, T, D / H)`` the memory's keys and values.
    memory_mask : Tensor or None
        ``(C, 1, 1, T)`` attend-allowed memory positions, or None.
    beams_per_curve : int
        ``K``.
    slots : Tensor, optional
        ``(rows,)`` the slot of each row, where some slots are empty (see
        :class:`TransformerDecoderState`).
    rows : Tensor, optional
        ``(rows,)`` the row of ``self_cache`` each row continues; None: row ``i`` continues row ``i``.

    Returns
    -------
    tuple of Tensor
        The layer's output ``(rows, D)`` and its cache ``(S + 1, rows, 2, H, D / H)``: the rows
        of ``self_cache`` that the rows continue, with the new position appended.
    """
    n, d = x.shape
    heads, k = w.num_heads, beams_per_curve
    (w1, b1, e1), (w2, b2, e2), (w3, b3, e3) = w.norms
    h = torch.layer_norm(x, (d,), w1, b1, e1) if w.norm_first else x
    qkv = _project(h, *w.self_qkv).view(n, 3, heads, d // heads)
    cache = _appended(self_cache, rows, qkv[:, 1:])
    keys, values = cache.permute(1, 2, 3, 0, 4).unbind(1)  # (rows, H, S + 1, D / H) views
    attended = F.scaled_dot_product_attention(qkv[:, 0, :, None], keys, values)
    x = _add_projection(x, attended.reshape(n, d), *w.self_out)
    if w.norm_first:
        h = torch.layer_norm(x, (d,), w2, b2, e2)
    else:
        x = h = torch.layer_norm(x, (d,), w1, b1, e1)
    # The K slots of a curve are the queries of one attention over the curve's memory.
    c = memory_cache.shape[0]
    query = _project(h, *w.cross_query)
    if slots is not None:  # empty slots query with zeros, and their results are dropped
        query = query.new_zeros(c * k, d).index_copy_(0, slots, query)
    query = query.view(c, k, heads, d // heads).transpose(1, 2)
    cross = F.scaled_dot_product_attention(query, *memory_cache.unbind(1), attn_mask=memory_mask)
    cross = cross.transpose(1, 2).reshape(c * k, d)
    if slots is not None:
        cross = cross.index_select(0, slots)
    x = _add_projection(x, cross, *w.cross_out)
    if w.norm_first:
        h = torch.layer_norm(x, (d,), w3, b3, e3)
    else:
        x = h = torch.layer_norm(x, (d,), w2, b2, e2)
    x = _add_projection(x, w.activation(_project(h, *w.feed_forward_in)), *w.feed_forward_out)
    return (x if w.norm_first else torch.layer_norm(x, (d,), w3, b3, e3)), cache


def _appended(cache: Tensor, rows: Tensor | None, new: Tensor) -> Tensor:
    """Rows ``rows`` of ``cache`` ``(S, R, ...)`` (all where None) followed by position ``new``
    ``(N, ...)``: ``(S + 1, N, ...)``, in one copy (two where gradients are tracked, which
    ``index_select`` into a given buffer does not support)."""
    length = cache.shape[0]
    if cache.requires_grad or new.requires_grad:
        kept = cache if rows is None else cache.index_select(1, rows)
        return torch.cat((kept, new[None]))
    out = cache.new_empty((length + 1, *new.shape))
    if length and rows is None:
        out[:length] = cache
    elif length:
        torch.index_select(cache, 1, rows, out=out[:length])
    out[length] = new
    return out


def _project(x: Tensor, weight_t: Tensor, bias: Tensor) -> Tensor:
    """``F.linear(x, W, b)`` of ``(rows, in)`` ``x`` from ``W^T``."""
    return torch.addmm(bias, x, weight_t)


def _add_projection(x: Tensor, a: Tensor, weight_t: Tensor, bias: Tensor | None) -> Tensor:
    """``x + F.linear(a, W, b)`` from ``W^T``: one op where the bias has been folded away."""
    if bias is None:
        return torch.addmm(x, a, weight_t)
    return x + torch.addmm(bias, a, weight_t)


class TransformerDecoder(nn.Module):
    """Token embedding + sinusoidal positions, decoder layers, output layer.

    Parameters
    ----------
    config : TransformerLikeConfig
        Uses ``d_model``, ``num_decoder_layers``, ``num_heads``, ``dim_feedforward``, ``dropout``,
        ``activation`` and ``norm_first``.
    vocab_size : int
        Rows of the input token embedding (all token ids).
    num_output_tokens : int
        Width of the output layer (the tokens the model may emit).
    pad_id : int
        The padding token (a zero, untrained embedding row).
    """

    def __init__(
        self, config: TransformerLikeConfig, vocab_size: int, num_output_tokens: int, pad_id: int
    ) -> None:
        super().__init__()
        self.d_model = config.d_model
        self.num_heads = config.num_heads
        self.norm_first = config.norm_first
        self.token_embedding = nn.Embedding(vocab_size, config.d_model, padding_idx=pad_id)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(TransformerDecoderLayer(config) for _ in range(config.num_decoder_layers))
        self.norm = nn.LayerNorm(config.d_model) if config.norm_first else nn.Identity()
        self.output = nn.Linear(config.d_model, num_output_tokens)
        self.positions = PositionTable(config.d_model)

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        x = self.token_embedding(tokens)
        x = x + self.positions.rows(offset, tokens.shape[1], x)
        return self.dropout(x) if self.training else x

    def _build_step_weights(self) -> DecoderWeights:
        norm = self.norm
        final_norm = layer_norm_weights(norm) if isinstance(norm, nn.LayerNorm) else None
        layers = tuple(layer.step_weights() for layer in self.layers)
        embedding = self.token_embedding.weight
        if not self.norm_first:
            layers, embedding = fold_residual_biases(layers, embedding)
        return DecoderWeights(
            embedding=embedding,
            layers=layers,
            final_norm=final_norm,
            output=linear_weights(self.output),
        )

    def step_weights(self) -> DecoderWeights:
        """The weights of the eval-mode step (see :func:`~swipe.models.attention.inference_weights`)."""
        return inference_weights(self, self._build_step_weights)

    def empty_state(
        self, memory: Tensor, memory_pad_mask: Tensor, beams_per_curve: int = 1
    ) -> TransformerDecoderState:
        """The state before the first token: the memory's keys/values (once per curve), no tokens.

        Parameters
        ----------
        memory, memory_pad_mask : Tensor
            ``(C, T, D)`` and ``(C, T)``: one row per curve.
        beams_per_curve : int
            Hypotheses per curve.
        """
        c, t, d = memory.shape
        heads = self.num_heads
        weights = self.step_weights()
        rows = memory.reshape(c * t, d)
        memory_caches = tuple(  # (C, 2, H, T, D / H) views of each layer's projection
            _project(rows, *w.memory_key_value).view(c, t, 2, heads, d // heads).permute(0, 2, 3, 1, 4)
            for w in weights.layers
        )
        empty = memory_caches[0].new_zeros(0, c * beams_per_curve, 2, heads, d // heads)
        self_caches = (empty,) * len(self.layers)
        mask = optional_attention_mask(memory_pad_mask)
        return TransformerDecoderState(self_caches, memory_caches, mask, beams_per_curve, weights)

    def _run(
        self, x: Tensor, caches: tuple[LayerCache, ...], self_mask: Tensor | None,
        memory_mask: Tensor | None, beams_per_curve: int,
    ) -> tuple[Tensor, tuple[LayerCache, ...]]:
        new_caches = []
        for layer, cache in zip(self.layers, caches, strict=True):
            x, cache = layer(x, cache, self_mask, memory_mask, beams_per_curve)
            new_caches.append(cache)
        return self.output(self.norm(x)), tuple(new_caches)

    def forward(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        """Teacher-forced logits ``(B, L, V)`` for ``tokens`` ``(B, L)``."""
        length = tokens.shape[1]
        self_mask = torch.ones(length, length, dtype=torch.bool, device=tokens.device).tril()[None, None]
        if tokens_pad_mask is not None:
            self_mask = self_mask & key_padding_to_attention_mask(tokens_pad_mask)
        caches = tuple(layer.empty_cache(memory) for layer in self.layers)
        memory_mask = optional_attention_mask(memory_pad_mask)
        logits, _ = self._run(self._embed(tokens, 0), caches, self_mask, memory_mask, 1)
        return logits

    def cross_attention(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        """Cross-attention weights ``(B, layers, H, L, T)`` of teacher-forced ``tokens`` ``(B, L)``
        over the memory: row ``i`` is what the decoder reads to predict the token after
        ``tokens[:, i]``. Call it in eval mode."""
        length = tokens.shape[1]
        self_mask = torch.ones(length, length, dtype=torch.bool, device=tokens.device).tril()[None, None]
        if tokens_pad_mask is not None:
            self_mask = self_mask & key_padding_to_attention_mask(tokens_pad_mask)
        memory_mask = optional_attention_mask(memory_pad_mask)
        x = self._embed(tokens, 0)
        maps = []
        for layer in self.layers:
            cache = layer.empty_cache(memory)
            maps.append(layer.cross_attention(x, cache, self_mask, memory_mask))
            x, _ = layer(x, cache, self_mask, memory_mask, 1)
        return torch.stack(maps, dim=1)

    def step(
        self,
        last_tokens: Tensor,
        memory: Tensor,
        memory_pad_mask: Tensor,
        state: TransformerDecoderState | None,
    ) -> DecoderStep:
        """Logits ``(C * K, V)`` for the token after ``last_tokens`` ``(C * K,)``, reusing ``state``.

        ``memory`` ``(C, T, D)`` has one row per curve and ``K`` hypotheses per curve
        (``state.beams_per_curve``, or at the first step ``len(last_tokens) / C``); the memory's
        keys/values are computed at the first step and kept in the state.
        """
        k = beams_per_curve(last_tokens.shape[0], memory, state)
        if state is None:
            state = self.empty_state(memory, memory_pad_mask, k)
        if self.training:
            x = self._embed(last_tokens[:, None], state.length)
            logits, caches = self._run(x, state.layer_caches(), None, state.memory_mask, k)
            self_caches = tuple(  # (S, R, 2, H, D / H)
                torch.stack((c.self_key, c.self_value), 1).permute(3, 0, 1, 2, 4) for c in caches
            )
            return DecoderStep(logits[:, 0], state._replace(self_caches=self_caches, slots=None, rows=None))
        weights, slots = state.weights, state.slots
        if slots is not None:  # only the filled slots are decoded
            last_tokens = last_tokens.index_select(0, slots)
        x = F.embedding(last_tokens, weights.embedding)
        x = x + self.positions.rows(state.length, 1, x)
        self_caches = []
        caches = zip(weights.layers, state.self_caches, state.memory_caches, strict=True)
        for layer_weights, self_cache, memory_cache in caches:
            x, self_cache = decoder_layer_step(
                layer_weights, x, self_cache, memory_cache, state.memory_mask, k, slots, state.rows
            )
            self_caches.append(self_cache)
        if weights.final_norm is not None:
            x = torch.layer_norm(x, (x.shape[1],), *weights.final_norm)
        logits = _project(x, *weights.output)
        if slots is not None:
            logits = logits.new_zeros(state.num_slots, logits.shape[1]).index_copy_(0, slots, logits)
        return DecoderStep(logits, state._replace(self_caches=tuple(self_caches), rows=None))


class AttentionRNNDecoder(nn.Module):
    """An LSTM / GRU decoder with additive (Bahdanau) attention over the memory.

    At step ``i`` the previous hidden state queries the memory for a context ``c_i``; the cell
    reads ``[embedding(y_{i-1}); c_i]``; the logits come from ``[s_i; c_i]``. The first hidden
    state is ``tanh(W mean(memory))``.

    Parameters
    ----------
    config : RNNLikeConfig
        Uses ``d_model``, ``cell``, ``decoder_hidden_size``, ``attention_size``, ``dropout``.
    memory_size : int
        Width of the encoder's memory.
    vocab_size, num_output_tokens, pad_id : int
        As for :class:`TransformerDecoder`.
    """

    def __init__(
        self, config: RNNLikeConfig, memory_size: int, vocab_size: int, num_output_tokens: int, pad_id: int
    ) -> None:
        super().__init__()
        hidden = config.decoder_hidden_size
        self.is_lstm = config.cell == "lstm"
        self.token_embedding = nn.Embedding(vocab_size, config.d_model, padding_idx=pad_id)
        self.memory_proj = nn.Linear(memory_size, config.attention_size, bias=False)
        self.query_proj = nn.Linear(hidden, config.attention_size)
        self.score = nn.Linear(config.attention_size, 1, bias=False)
        self.init_hidden = nn.Linear(memory_size, hidden)
        self.init_cell = nn.Linear(memory_size, hidden) if self.is_lstm else None
        cell_class = nn.LSTMCell if self.is_lstm else nn.GRUCell
        self.cell = cell_class(config.d_model + memory_size, hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(hidden + memory_size, num_output_tokens)

    def initial_state(
        self, memory: Tensor, memory_pad_mask: Tensor, beams_per_curve: int = 1
    ) -> RNNDecoderState:
        """The state before the first token, for ``beams_per_curve`` hypotheses per curve of
        ``memory`` ``(C, T, D)``."""
        valid = (~memory_pad_mask)[..., None].to(memory.dtype)
        mean = (memory * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)
        if beams_per_curve != 1:
            mean = mean.repeat_interleave(beams_per_curve, dim=0)
        cell = torch.tanh(self.init_cell(mean)) if self.init_cell is not None else None
        return RNNDecoderState(
            torch.tanh(self.init_hidden(mean)), cell, self.memory_proj(memory), beams_per_curve
        )

    def _attention(self, hidden: Tensor, memory_pad_mask: Tensor, state: RNNDecoderState) -> Tensor:
        """``(C, K, T)`` attention weights of the K hypotheses of each curve over its memory."""
        c, k = memory_pad_mask.shape[0], state.beams_per_curve
        query = self.query_proj(hidden).view(c, k, 1, -1)
        scores = self.score(torch.tanh(state.memory_keys[:, None] + query)).squeeze(-1)
        scores = scores.masked_fill(memory_pad_mask[:, None], torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1)

    def _context(
        self, hidden: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: RNNDecoderState
    ) -> Tensor:
        # The K hypotheses of a curve query its memory together.
        weights = self._attention(hidden, memory_pad_mask, state)
        return torch.bmm(weights, memory).view(weights.shape[0] * weights.shape[1], -1)

    def cross_attention(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        """Attention weights ``(B, 1, 1, L, T)`` (one layer, one head) of teacher-forced ``tokens``
        ``(B, L)`` over the memory, as for :meth:`TransformerDecoder.cross_attention`."""
        embedded = self.token_embedding(tokens)
        state = self.initial_state(memory, memory_pad_mask)
        maps = []
        for i in range(tokens.shape[1]):
            maps.append(self._attention(state.hidden, memory_pad_mask, state)[:, 0])
            _, state = self._step(embedded[:, i], memory, memory_pad_mask, state)
        return torch.stack(maps, dim=1)[:, None, None]

    def _step(
        self, embedded: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: RNNDecoderState
    ) -> DecoderStep:
        context = self._context(state.hidden, memory, memory_pad_mask, state)
        cell_input = torch.cat((embedded, context), dim=-1)
        if self.is_lstm:
            hidden, cell = self.cell(cell_input, (state.hidden, state.cell))
        else:
            hidden, cell = self.cell(cell_input, state.hidden), None
        logits = self.output(self.dropout(torch.cat((hidden, context), dim=-1)))
        return DecoderStep(logits, state._replace(hidden=hidden, cell=cell))

    def forward(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        """Teacher-forced logits ``(B, L, V)`` for ``tokens`` ``(B, L)``.

        The recurrence is causal, so trailing padding (``tokens_pad_mask``) cannot affect the
        positions before it; the mask is accepted for a uniform interface.
        """
        embedded = self.dropout(self.token_embedding(tokens))
        state = self.initial_state(memory, memory_pad_mask)
        logits = []
        for i in range(tokens.shape[1]):
            step_logits, state = self._step(embedded[:, i], memory, memory_pad_mask, state)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)

    def step(
        self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: RNNDecoderState | None
    ) -> DecoderStep:
        """Logits ``(C * K, V)`` for the token after ``last_tokens`` ``(C * K,)``; ``memory``
        ``(C, T, D)`` has one row per curve (see :meth:`TransformerDecoder.step`)."""
        k = beams_per_curve(last_tokens.shape[0], memory, state)
        if state is None:
            state = self.initial_state(memory, memory_pad_mask, k)
        return self._step(self.dropout(self.token_embedding(last_tokens)), memory, memory_pad_mask, state)
