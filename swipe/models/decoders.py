"""Decoders: a transformer decoder with an explicit key/value cache, and an additive-attention RNN
decoder. Both decode a whole teacher-forced sequence (``forward``) or one token at a time
(``step``), and the two paths compute the same logits.

Decoder states are named tuples with ``select(batch_indices)``, which beam search uses to reorder
and expand hypotheses.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from swipe.models.attention import FeedForward, MultiHeadAttention, key_padding_to_attention_mask
from swipe.models.config import RNNLikeConfig, TransformerLikeConfig
from swipe.models.embedders import sinusoidal_positions


class LayerCache(NamedTuple):
    """Keys and values of one decoder layer, each ``(B, H, S, D / H)``: self-attention over the
    tokens decoded so far and cross-attention over the memory."""

    self_key: Tensor
    self_value: Tensor
    memory_key: Tensor
    memory_value: Tensor


class TransformerDecoderState(NamedTuple):
    """The transformer decoder's key/value cache, one :class:`LayerCache` per layer."""

    layers: tuple[LayerCache, ...]

    @property
    def length(self) -> int:
        """Number of tokens decoded so far."""
        return self.layers[0].self_key.shape[2]

    def select(self, batch_indices: Tensor) -> TransformerDecoderState:
        """The cache of rows ``batch_indices`` (reordered and / or repeated)."""
        return TransformerDecoderState(
            tuple(LayerCache(*(t.index_select(0, batch_indices) for t in layer)) for layer in self.layers)
        )


class RNNDecoderState(NamedTuple):
    """The RNN decoder's state.

    Attributes
    ----------
    hidden : Tensor
        ``(B, decoder_hidden_size)`` hidden state.
    cell : Tensor or None
        ``(B, decoder_hidden_size)`` LSTM cell state; ``None`` for a GRU.
    memory_keys : Tensor
        ``(B, T, attention_size)`` the memory projected for attention, computed once.
    """

    hidden: Tensor
    cell: Tensor | None
    memory_keys: Tensor

    def select(self, batch_indices: Tensor) -> RNNDecoderState:
        """The state of rows ``batch_indices`` (reordered and / or repeated)."""
        cell = None if self.cell is None else self.cell.index_select(0, batch_indices)
        return RNNDecoderState(
            self.hidden.index_select(0, batch_indices), cell, self.memory_keys.index_select(0, batch_indices)
        )


DecoderState = TransformerDecoderState | RNNDecoderState


class DecoderStep(NamedTuple):
    """One incremental decoding step: ``logits`` ``(B, V)`` for the next token and the new state."""

    logits: Tensor
    state: DecoderState


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
        self, x: Tensor, cache: LayerCache, self_mask: Tensor | None, memory_mask: Tensor
    ) -> tuple[Tensor, LayerCache]:
        """Decode the new positions ``x`` ``(B, L, D)`` after those in ``cache``.

        ``self_mask`` (attend-allowed, over cached + new positions) may be ``None`` when every
        new position may see every cached one and itself, as for a single step.
        """
        h = self.norm1(x) if self.norm_first else x
        key, value = self.self_attn.keys_values(h)
        key, value = _extend(cache.self_key, key), _extend(cache.self_value, value)
        cache = LayerCache(key, value, cache.memory_key, cache.memory_value)
        attended = self.self_attn.attend(h, key, value, self_mask)
        if self.norm_first:
            x = x + self.dropout(attended)
            h = self.norm2(x)
            x = x + self.dropout(self.cross_attn.attend(h, cache.memory_key, cache.memory_value, memory_mask))
            return x + self.dropout(self.feed_forward(self.norm3(x))), cache
        x = self.norm1(x + self.dropout(attended))
        x = self.norm2(
            x + self.dropout(self.cross_attn.attend(x, cache.memory_key, cache.memory_value, memory_mask))
        )
        return self.norm3(x + self.dropout(self.feed_forward(x))), cache


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
        self.token_embedding = nn.Embedding(vocab_size, config.d_model, padding_idx=pad_id)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(TransformerDecoderLayer(config) for _ in range(config.num_decoder_layers))
        self.norm = nn.LayerNorm(config.d_model) if config.norm_first else nn.Identity()
        self.output = nn.Linear(config.d_model, num_output_tokens)

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        x = self.token_embedding(tokens)
        return self.dropout(
            x + sinusoidal_positions(tokens.shape[1], self.d_model, offset, x.device, x.dtype)
        )

    def _run(
        self, x: Tensor, state: TransformerDecoderState, self_mask: Tensor | None, memory_mask: Tensor
    ) -> tuple[Tensor, TransformerDecoderState]:
        caches = []
        for layer, cache in zip(self.layers, state.layers, strict=True):
            x, cache = layer(x, cache, self_mask, memory_mask)
            caches.append(cache)
        return self.output(self.norm(x)), TransformerDecoderState(tuple(caches))

    def empty_state(self, memory: Tensor) -> TransformerDecoderState:
        """The state before the first token: the memory's keys/values, no tokens."""
        return TransformerDecoderState(tuple(layer.empty_cache(memory) for layer in self.layers))

    def forward(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        """Teacher-forced logits ``(B, L, V)`` for ``tokens`` ``(B, L)``."""
        length = tokens.shape[1]
        self_mask = torch.ones(length, length, dtype=torch.bool, device=tokens.device).tril()[None, None]
        if tokens_pad_mask is not None:
            self_mask = self_mask & key_padding_to_attention_mask(tokens_pad_mask)
        memory_mask = key_padding_to_attention_mask(memory_pad_mask)
        logits, _ = self._run(self._embed(tokens, 0), self.empty_state(memory), self_mask, memory_mask)
        return logits

    def step(
        self,
        last_tokens: Tensor,
        memory: Tensor,
        memory_pad_mask: Tensor,
        state: TransformerDecoderState | None,
    ) -> DecoderStep:
        """Logits ``(B, V)`` for the token after ``last_tokens`` ``(B,)``, reusing ``state``."""
        if state is None:
            state = self.empty_state(memory)
        x = self._embed(last_tokens[:, None], state.length)
        logits, state = self._run(x, state, None, key_padding_to_attention_mask(memory_pad_mask))
        return DecoderStep(logits[:, 0], state)


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

    def initial_state(self, memory: Tensor, memory_pad_mask: Tensor) -> RNNDecoderState:
        """The state before the first token."""
        valid = (~memory_pad_mask)[..., None].to(memory.dtype)
        mean = (memory * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)
        cell = torch.tanh(self.init_cell(mean)) if self.init_cell is not None else None
        return RNNDecoderState(torch.tanh(self.init_hidden(mean)), cell, self.memory_proj(memory))

    def _context(
        self, hidden: Tensor, memory: Tensor, memory_pad_mask: Tensor, memory_keys: Tensor
    ) -> Tensor:
        scores = self.score(torch.tanh(memory_keys + self.query_proj(hidden)[:, None])).squeeze(-1)
        scores = scores.masked_fill(memory_pad_mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights[:, None], memory).squeeze(1)

    def _step(
        self, embedded: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: RNNDecoderState
    ) -> DecoderStep:
        context = self._context(state.hidden, memory, memory_pad_mask, state.memory_keys)
        cell_input = torch.cat((embedded, context), dim=-1)
        if self.is_lstm:
            hidden, cell = self.cell(cell_input, (state.hidden, state.cell))
        else:
            hidden, cell = self.cell(cell_input, state.hidden), None
        logits = self.output(self.dropout(torch.cat((hidden, context), dim=-1)))
        return DecoderStep(logits, RNNDecoderState(hidden, cell, state.memory_keys))

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
        """Logits ``(B, V)`` for the token after ``last_tokens`` ``(B,)``."""
        if state is None:
            state = self.initial_state(memory, memory_pad_mask)
        return self._step(self.dropout(self.token_embedding(last_tokens)), memory, memory_pad_mask, state)
