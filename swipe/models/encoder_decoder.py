"""Encoder-decoder models: one typed interface for the transformer and RNN families."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from swipe.batch import SwipeBatch
from swipe.keyboard import Layout
from swipe.models.config import ModelConfig, RNNLikeConfig, TransformerLikeConfig
from swipe.models.decoders import (
    AttentionRNNDecoder,
    DecoderState,
    DecoderStep,
    RNNDecoderState,
    TransformerDecoder,
    TransformerDecoderState,
)
from swipe.models.embedders import PositionTable, SwipePointEmbedder
from swipe.models.encoders import RNNEncoder, encoder_for
from swipe.tokenizers import CharTokenizer


class AttentionMaps(NamedTuple):
    """Where the decoder looked while reading given words (:meth:`EncoderDecoder.attention_maps`).

    Attributes
    ----------
    weights : Tensor
        ``(B, layers, heads, L, T)`` float: row ``i`` is the decoder's cross-attention over the
        swipe's points while it predicts character ``i`` of the word (row ``len(word)``: the end
        of the word); rows past the word and points past the swipe are zero. The RNN decoder has
        one layer and one head.
    points : Tensor
        ``(B, T, 2)`` the points the model read (after resampling and thinning), in pixels of
        the swipe's layout: ``weights[b, ..., t]`` is the weight of ``points[b, t]``.
    lengths : Tensor
        ``(B,)`` real points per swipe.
    word_lengths : Tensor
        ``(B,)`` characters per word.
    """

    weights: Tensor
    points: Tensor
    lengths: Tensor
    word_lengths: Tensor


class EncoderDecoder(nn.Module):
    """Base class of swipe decoders: swipe points in, next-character logits out.

    Logit index ``i`` is token id ``i`` of :attr:`tokenizer`; there are
    :attr:`num_output_tokens` of them (``<eos>`` and the characters).

    Attributes
    ----------
    config : ModelConfig
        The config the model was built from.
    tokenizer : CharTokenizer
        Its alphabet.
    layout_names : tuple of str
        Its layouts; ``SwipeBatch.layout_ids`` index this tuple.
    num_output_tokens : int
        Width of the logits.
    """

    def __init__(self, config: ModelConfig, layouts: Sequence[Layout], tokenizer: CharTokenizer) -> None:
        super().__init__()
        names = tuple(layout.name for layout in layouts)
        if len(set(names)) != len(names):
            raise ValueError(f"layout names must be distinct, got {list(names)}")
        self.config = config
        self.tokenizer = tokenizer
        self.layout_names = names
        self.num_output_tokens = tokenizer.num_output_tokens
        self.embedder = SwipePointEmbedder(config.embedder, layouts, config.d_model)

    def encode(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> Tensor:
        """Encode a batch of curves into a memory ``(B, T, D)``.

        Parameters
        ----------
        swipe : SwipeBatch
            The padded curves.
        swipe_pad_mask : Tensor
            ``(B, T)`` bool, ``True`` at padded points.
        """
        raise NotImplementedError

    def decode(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        """Teacher-forced logits ``(B, L, V)`` for decoder inputs ``tokens`` ``(B, L)``
        (``<sos> c1 .. cn``), given the ``memory`` of :meth:`encode` and its padding mask."""
        raise NotImplementedError

    def decode_step(
        self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: DecoderState | None
    ) -> DecoderStep:
        """One incremental decoding step for ``K`` hypotheses of each of ``C`` curves.

        Parameters
        ----------
        last_tokens : Tensor
            ``(C * K,)`` the previous token of each hypothesis (``<sos>`` at the first step),
            grouped by curve: rows ``c * K .. c * K + K - 1`` belong to curve ``c``.
        memory, memory_pad_mask : Tensor
            ``(C, T, D)`` and ``(C, T)``: one row per curve, as returned by / given to
            :meth:`encode` (after dropping curves, the rows of the curves kept). The decoder reads
            each curve's memory once for all its hypotheses.
        state : DecoderState or None
            The state returned by the previous step (``K`` is ``state.beams_per_curve``);
            ``None`` at the first step, where ``K = len(last_tokens) / C``.

        Returns
        -------
        DecoderStep
            ``logits`` ``(C * K, V)`` and the new state. ``state.select(beam_indices)``
            (``(C, K')``, indices within each curve; ``-1`` leaves a slot empty, and its logits
            at the next step are meaningless) reorders / expands the hypotheses of every curve;
            ``state.select_curves(curve_indices)`` keeps some curves only.
        """
        raise NotImplementedError

    def attention_maps(
        self, swipe: SwipeBatch, swipe_pad_mask: Tensor, words: Sequence[str]
    ) -> AttentionMaps:
        """The decoder's cross-attention over each swipe's points while it reads ``words``.

        Parameters
        ----------
        swipe, swipe_pad_mask
            The padded curves, as for :meth:`encode`.
        words : sequence of str
            One word per curve, in the model's alphabet (e.g. its top candidate).

        Returns
        -------
        AttentionMaps

        Raises
        ------
        ValueError
            The model is in training mode, the counts differ, or a word has a character the model
            cannot write.
        """
        if self.training:
            raise ValueError("attention_maps reads the model in eval mode: call model.eval() first")
        if len(words) != swipe.lengths.shape[0]:
            raise ValueError(f"attention_maps got {len(words)} words for {swipe.lengths.shape[0]} swipes")
        for word in words:
            if not word or not self.tokenizer.can_encode(word):
                raise ValueError(f"the model cannot write {word!r}")
        tok = self.tokenizer
        ids = [tok.encode(word) for word in words]
        device = swipe.coords.device
        tokens = torch.full((len(ids), max(map(len, ids)) + 1), tok.pad_id, dtype=torch.int64, device=device)
        tokens[:, 0] = tok.sos_id
        for row, word_ids in enumerate(ids):
            tokens[row, 1 : len(word_ids) + 1] = torch.tensor(word_ids, dtype=torch.int64)
        word_lengths = torch.tensor([len(word_ids) for word_ids in ids], dtype=torch.int64)
        tokens_pad_mask = tokens == tok.pad_id
        with torch.no_grad():
            memory = self.encode(swipe, swipe_pad_mask)
            weights = self.decoder.cross_attention(tokens, memory, swipe_pad_mask, tokens_pad_mask)
        rows = torch.arange(tokens.shape[1], device=device)[None, :] > word_lengths.to(device)[:, None]
        weights = weights.masked_fill(rows[:, None, None, :, None], 0.0)
        weights = weights.masked_fill(swipe_pad_mask[:, None, None, None, :], 0.0)
        return AttentionMaps(weights, swipe.coords, swipe.lengths, word_lengths)

    def forward(
        self, tokens: Tensor, swipe: SwipeBatch, swipe_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        """``decode(tokens, encode(swipe, swipe_pad_mask), swipe_pad_mask, tokens_pad_mask)``."""
        memory = self.encode(swipe, swipe_pad_mask)
        return self.decode(tokens, memory, swipe_pad_mask, tokens_pad_mask)

    def _check_swipe(self, swipe: SwipeBatch) -> None:
        if swipe.layout_ids.numel() and int(swipe.layout_ids.max()) >= len(self.layout_names):
            raise ValueError(
                f"layout id {int(swipe.layout_ids.max())} out of range: the model knows "
                f"{len(self.layout_names)} layouts {list(self.layout_names)}"
            )


class TransformerLikeEncoderDecoder(EncoderDecoder):
    """A transformer or conformer encoder and a transformer decoder with a key/value cache."""

    def __init__(self, config: ModelConfig, layouts: Sequence[Layout], tokenizer: CharTokenizer) -> None:
        super().__init__(config, layouts, tokenizer)
        arch = config.transformer
        if not isinstance(arch, TransformerLikeConfig):
            raise ValueError("TransformerLikeEncoderDecoder needs config.transformer")
        self.d_model = arch.d_model
        self.embed_dropout = nn.Dropout(arch.dropout)
        self.positions = PositionTable(arch.d_model)
        self.encoder = encoder_for(arch)
        self.decoder = TransformerDecoder(
            arch, tokenizer.vocab_size, tokenizer.num_output_tokens, tokenizer.pad_id
        )

    def encode(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> Tensor:
        self._check_swipe(swipe)
        x = self.embedder(swipe)
        x = x + self.positions.rows(0, x.shape[1], x)
        return self.encoder(self.embed_dropout(x) if self.training else x, swipe_pad_mask)

    def decode(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        return self.decoder(tokens, memory, memory_pad_mask, tokens_pad_mask)

    def decode_step(
        self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: DecoderState | None
    ) -> DecoderStep:
        if state is not None and not isinstance(state, TransformerDecoderState):
            raise TypeError(f"expected a TransformerDecoderState, got {type(state).__name__}")
        return self.decoder.step(last_tokens, memory, memory_pad_mask, state)


class RNNLikeEncoderDecoder(EncoderDecoder):
    """A bidirectional LSTM / GRU encoder and an additive-attention LSTM / GRU decoder."""

    def __init__(self, config: ModelConfig, layouts: Sequence[Layout], tokenizer: CharTokenizer) -> None:
        super().__init__(config, layouts, tokenizer)
        arch = config.rnn
        if not isinstance(arch, RNNLikeConfig):
            raise ValueError("RNNLikeEncoderDecoder needs config.rnn")
        self.embed_dropout = nn.Dropout(arch.dropout)
        self.encoder = RNNEncoder(arch)
        self.decoder = AttentionRNNDecoder(
            arch,
            self.encoder.output_size,
            tokenizer.vocab_size,
            tokenizer.num_output_tokens,
            tokenizer.pad_id,
        )

    def encode(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> Tensor:
        self._check_swipe(swipe)
        return self.encoder(self.embed_dropout(self.embedder(swipe)), swipe_pad_mask)

    def decode(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        return self.decoder(tokens, memory, memory_pad_mask, tokens_pad_mask)

    def decode_step(
        self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: DecoderState | None
    ) -> DecoderStep:
        if state is not None and not isinstance(state, RNNDecoderState):
            raise TypeError(f"expected an RNNDecoderState, got {type(state).__name__}")
        return self.decoder.step(last_tokens, memory, memory_pad_mask, state)


def build_model(config: ModelConfig, layouts: Sequence[Layout], tokenizer: CharTokenizer) -> EncoderDecoder:
    """Build the model described by ``config`` for ``layouts`` (in this order; a curve's
    ``layout_id`` indexes it) and ``tokenizer``.

    Keys with the same name on several layouts share one key embedding. The model is fully
    determined by ``(config, layouts, tokenizer)`` plus its ``state_dict``.
    """
    model_class = TransformerLikeEncoderDecoder if config.family == "transformer" else RNNLikeEncoderDecoder
    return model_class(config, layouts, tokenizer)
