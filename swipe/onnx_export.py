"""ONNX graphs of a trained decoder, for apps that run it without PyTorch (``docs/onnx.md``).

:func:`export_onnx` writes a folder that :mod:`swipe.runtime` (numpy and onnxruntime only) decodes
swipes with:

==========================  =====================================================================
``encoder.onnx``            raw touch points (pixels, ms) and layout ids -> the per-curve tensors
                            the decoder step reads, and the RNN decoder's first state
``decoder_step.onnx``       one token per hypothesis -> next-token logits and the new state
``decoder_score.onnx``      given words of each curve -> the logits of every position at once
                            (transformer decoders; the decoder step scores them otherwise)
``*.int8.onnx``             the same graphs with int8 weights (onnxruntime dynamic quantisation)
``model.json``              graph names, shapes, tokenizer, preprocessing, layout names
``layouts.json``            the model's keyboards (``swipe.keyboard.load_layouts_file`` format)
``lexicon.npz``             the lexicon trie as flat arrays
``decoding.json``           the decoding settings the reference decoder uses
``card.md``                 what the folder holds and where it came from
==========================  =====================================================================

The graphs re-express the model's eval-mode computation with its own weights: the features
(:func:`swipe.data.collate.trajectory_features`, the nearest key) are computed inside the encoder
graph, and the decoder step takes its cache as explicit inputs and outputs with a fixed number of
positions (``max_length``), so every shape an app allocates is known before the first step.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from swipe.atomic import atomic_output
from swipe.batch import SwipeBatch
from swipe.data.collate import trajectory_features
from swipe.decoding.trie import LexiconTrie
from swipe.keyboard import Layout
from swipe.model_files import load_model, read_decoding_settings, resolve_model, sha256_of
from swipe.models.attention import key_padding_to_attention_mask
from swipe.models.decoders import AttentionRNNDecoder, TransformerDecoder, TransformerDecoderLayer
from swipe.models.encoder_decoder import EncoderDecoder, TransformerLikeEncoderDecoder
from swipe.models.encoders import ConformerLayerWeights, conformer_layer_eval, encoder_layer_eval

ONNX_FORMAT = "swipe-onnx"
ONNX_VERSION = 1
OPSET = 18

# A far-away box for the padding keys of layouts with fewer keys than the largest: never nearest.
_FAR = 1e9
# Box distances closer than this (pixels) count as equal; the centre distance then decides, as in
# swipe.keyboard.Layout.nearest_keys (which compares them to 1e-6 px in float64).
_BOX_TIE = 1e-3


class OnnxExportError(ValueError):
    """The model cannot be written as ONNX graphs as asked."""


def _positions(position: Tensor, frequencies: Tensor) -> Tensor:
    """Sinusoidal positional encodings of float ``position`` ``(...,)``: ``(..., D)``, the values of
    :func:`swipe.models.embedders.sinusoidal_positions`."""
    angles = position[..., None] * frequencies
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


def _frequencies(dim: int) -> Tensor:
    return torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))


class EncoderGraph(nn.Module):
    """Raw points -> what the decoder step reads per curve.

    Inputs: ``points`` ``(B, T, 3)`` float32 x, y in pixels of the curve's layout and t in ms;
    ``lengths`` ``(B,)`` int64 real points per curve (``T >= 2``: pad a one-point curve);
    ``layout_ids`` ``(B,)`` int64.
    """

    def __init__(self, model: EncoderDecoder, layouts: list[Layout]) -> None:
        super().__init__()
        self.model = model
        num_keys = max(layout.num_keys for layout in layouts)
        boxes = np.full((len(layouts), num_keys, 4), _FAR, np.float32)
        centers = np.full((len(layouts), num_keys, 2), _FAR, np.float32)
        for i, layout in enumerate(layouts):
            boxes[i, : layout.num_keys] = layout._boxes
            centers[i, : layout.num_keys] = layout.centers
        self.register_buffer("key_boxes", torch.from_numpy(boxes))
        self.register_buffer("key_centers", torch.from_numpy(centers))
        key_size = [[layout.key_width, layout.key_height] for layout in layouts]
        self.register_buffer("key_size", torch.tensor(key_size, dtype=torch.float32))
        self.is_transformer = isinstance(model, TransformerLikeEncoderDecoder)
        if self.is_transformer:
            self.register_buffer("frequencies", _frequencies(model.d_model))
            # Gathered once (fused, transposed) so that the graph holds them as constants, which
            # the int8 quantiser can quantise, rather than the ops that make them.
            with torch.no_grad():
                self.encoder_weights = [layer.eval_weights() for layer in model.encoder.layers]
        else:
            self.directions = nn.ModuleList(_directions(model.encoder.rnn))

    def nearest_keys(self, coords: Tensor, layout_ids: Tensor) -> Tensor:
        """``(B, T)`` nearest key of each point rounded to the pixel grid: the key whose hitbox is
        closest, ties to the closer centre, then to the lower index."""
        p = torch.round(coords)[:, :, None, :]  # (B, T, 1, 2)
        boxes = self.key_boxes[layout_ids][:, None]  # (B, 1, K, 4)
        dx = torch.clamp(torch.maximum(boxes[..., 0] - p[..., 0], p[..., 0] - boxes[..., 2]), min=0.0)
        dy = torch.clamp(torch.maximum(boxes[..., 1] - p[..., 1], p[..., 1] - boxes[..., 3]), min=0.0)
        box = torch.sqrt(dx * dx + dy * dy)
        centre = (p - self.key_centers[layout_ids][:, None]).square().sum(-1)
        closest = box <= box.amin(dim=-1, keepdim=True) + _BOX_TIE
        return torch.where(closest, centre, torch.full_like(centre, math.inf)).argmin(dim=-1)

    def transformer_encoder(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        """The model's eval-mode encoder, always with the attention mask (the model skips it
        where nothing is padded, a choice made on the data that a graph cannot make)."""
        attn_mask = key_padding_to_attention_mask(pad_mask)
        for weights in self.encoder_weights:
            if isinstance(weights, ConformerLayerWeights):
                x = conformer_layer_eval(weights, x, attn_mask, pad_mask)
            else:
                x = encoder_layer_eval(weights, x, attn_mask)
        return x

    def rnn_encoder(self, x: Tensor, lengths: Tensor) -> Tensor:
        """The model's bidirectional RNN over padded curves without packing: the forward
        direction reads the padded rows as they are (padding comes after every real point), the
        backward one reads each curve reversed within its length; zero at padding, as
        ``pad_packed_sequence`` gives."""
        steps = x.shape[1]
        time = torch.arange(steps)[None, :]
        valid = (time < lengths[:, None])[..., None]
        # Row t of the reversed curve is point length - 1 - t (padding reads a real point: dropped).
        reverse = (lengths[:, None] - 1 - time).clamp(min=0)[..., None]
        for forward, backward in self.directions:
            ahead, _ = forward(x)
            back, _ = backward(x.gather(1, reverse.expand(-1, -1, x.shape[2])))
            back = back.gather(1, reverse.expand(-1, -1, back.shape[2]))
            x = torch.where(valid, torch.cat((ahead, back), dim=-1), 0.0)
        return x

    def forward(self, points: Tensor, lengths: Tensor, layout_ids: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        steps = points.shape[1]
        coords = points[..., :2]
        pad_mask = torch.arange(steps)[None, :] >= lengths[:, None]
        features = trajectory_features(coords, points[..., 2], lengths, self.key_size[layout_ids])
        swipe = SwipeBatch(coords, features, self.nearest_keys(coords, layout_ids), layout_ids, lengths)
        x = model.embedder(swipe)
        if self.is_transformer:
            x = x + _positions(torch.arange(steps).float(), self.frequencies)
            memory = self.transformer_encoder(x, pad_mask)
            decoder = model.decoder
            assert isinstance(decoder, TransformerDecoder)
            # Per layer the cross-attention's keys and values of the memory: (B, L, 2, H, T, D / H).
            memory_kv = torch.stack(
                [torch.stack(layer.cross_attn.keys_values(memory), 1) for layer in decoder.layers], 1
            )
            return memory_kv, ~pad_mask
        memory = self.rnn_encoder(x, lengths)
        decoder = model.decoder
        assert isinstance(decoder, AttentionRNNDecoder)
        state = decoder.initial_state(memory, pad_mask)
        if decoder.is_lstm:
            return memory, state.memory_keys, ~pad_mask, state.hidden, state.cell
        return memory, state.memory_keys, ~pad_mask, state.hidden


def _directions(rnn: nn.RNNBase) -> list[nn.ModuleList]:
    """Per layer of a bidirectional LSTM / GRU, its two directions as one-layer RNNs that share
    its weights."""
    layers = []
    for i in range(rnn.num_layers):
        pair = nn.ModuleList()
        for suffix in ("", "_reverse"):
            width = rnn.input_size if i == 0 else 2 * rnn.hidden_size
            one = type(rnn)(width, rnn.hidden_size, batch_first=True)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                setattr(one, f"{name}_l0", getattr(rnn, f"{name}_l{i}{suffix}"))
            pair.append(one)
        layers.append(pair)
    return layers


class TransformerStepGraph(nn.Module):
    """One decoding step of the transformer decoder for ``K`` hypotheses (slots) of each of ``C``
    curves.

    Inputs: ``tokens`` ``(C, K)`` int64 the previous token of each hypothesis (``<sos>`` at the
    first step); ``memory_kv`` ``(C, L, 2, H, T, D / H)`` and ``memory_valid`` ``(C, T)`` from the
    encoder; per decoder layer ``i``, ``self_cache_i`` ``(C, K, 2, H, S, D / H)``: the keys and
    values of the ``S`` tokens before (``S = 0`` at the first step). Outputs: ``logits``
    ``(C, K, V)`` and per layer ``new_self_cache_i`` ``(C, K, 2, H, S + 1, D / H)``. The
    hypotheses of a curve read its memory together, never copied; a cache per layer spares the
    graph splitting and stacking one (a third of a step's time for 32 curves of 16 hypotheses).
    The attention is written out with its scale and masks as constants or computed once, and
    every reshape has one free dimension: each op a graph runtime runs costs time of its own,
    and these keep a step to about 190 of them (300 with ``scaled_dot_product_attention``).
    """

    def __init__(self, model: TransformerLikeEncoderDecoder) -> None:
        super().__init__()
        self.decoder = model.decoder
        self.register_buffer("frequencies", _frequencies(model.d_model))

    def forward(self, tokens: Tensor, memory_kv: Tensor, memory_valid: Tensor,
                self_caches: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        decoder = self.decoder
        k, heads, dh = tokens.shape[1], decoder.num_heads, memory_kv.shape[-1]
        position = torch.tensor(self_caches[0].shape[4], dtype=torch.float32)
        memory_mask = _additive_mask(memory_valid)[:, None, None, :]  # (C, 1, 1, T)
        x = decoder.token_embedding(tokens.reshape(-1)) + _positions(position, self.frequencies)  # (C K, D)
        new_caches = []
        for i, (layer, cache) in enumerate(zip(decoder.layers, self_caches, strict=True)):
            h = layer.norm1(x) if layer.norm_first else x
            query = layer.self_attn.query(h).reshape(-1, heads, 1, dh)
            key_value = layer.self_attn.key_value(h).reshape(-1, 2, heads, 1, dh)
            # (C K, 2, H, S + 1, D / H): the positions before, then this one.
            cache = torch.cat((cache.reshape(-1, 2, heads, cache.shape[4], dh), key_value), dim=3)
            new_caches.append(cache.reshape(-1, k, 2, heads, cache.shape[3], dh))
            out = _attention(query, cache[:, 0], cache[:, 1], None)
            attended = layer.self_attn.out(out.reshape(-1, heads * dh))
            x = x + attended if layer.norm_first else layer.norm1(x + attended)
            h = layer.norm2(x) if layer.norm_first else x
            # The K hypotheses of a curve are the K queries of one attention over its memory.
            query = layer.cross_attn.query(h).reshape(-1, k, heads, dh).transpose(1, 2)
            out = _attention(query, memory_kv[:, i, 0], memory_kv[:, i, 1], memory_mask)
            cross = layer.cross_attn.out(out.transpose(1, 2).reshape(-1, heads * dh))
            x = _cross_and_feed_forward(layer, x, cross)
        logits = decoder.output(decoder.norm(x))
        return (logits.reshape(-1, k, logits.shape[-1]), *new_caches)


class TransformerScoreGraph(nn.Module):
    """The transformer decoder teacher-forced on ``W`` words of each of ``C`` curves, every
    position at once: what the decoder-step graph gives step by step along each word.

    Inputs: ``tokens`` ``(C, W, L)`` int64 the decoder inputs (``<sos>``, then each word's tokens,
    padded); ``memory_kv`` and ``memory_valid`` from the encoder. Output: ``logits``
    ``(C, W, L, V)`` of the token after each input. The words of a curve read its memory together,
    never copied. Written as :class:`TransformerStepGraph` is, for as few graph ops.
    """

    def __init__(self, model: TransformerLikeEncoderDecoder) -> None:
        super().__init__()
        self.decoder = model.decoder
        self.register_buffer("frequencies", _frequencies(model.d_model))

    def forward(self, tokens: Tensor, memory_kv: Tensor, memory_valid: Tensor) -> Tensor:
        decoder = self.decoder
        w, length = tokens.shape[1], tokens.shape[2]
        heads, dh = decoder.num_heads, memory_kv.shape[-1]
        positions = _positions(torch.arange(length).float(), self.frequencies)
        x = decoder.token_embedding(tokens.reshape(-1, length)) + positions  # (C W, L, D)
        causal = _additive_mask(torch.ones(length, length, dtype=torch.bool).tril())
        memory_mask = _additive_mask(memory_valid)[:, None, None, :]  # (C, 1, 1, T)
        for i, layer in enumerate(decoder.layers):
            h = layer.norm1(x) if layer.norm_first else x
            query = layer.self_attn.query(h).reshape(-1, length, heads, dh).transpose(1, 2)
            key, value = layer.self_attn.key_value(h).reshape(-1, length, 2, heads, dh).permute(2, 0, 3, 1, 4)
            out = _attention(query, key, value, causal).transpose(1, 2).reshape(-1, length, heads * dh)
            attended = layer.self_attn.out(out)
            x = x + attended if layer.norm_first else layer.norm1(x + attended)
            h = layer.norm2(x) if layer.norm_first else x
            # The W * L positions of a curve's words are the queries of one attention over its memory.
            query = layer.cross_attn.query(h).reshape(-1, w * length, heads, dh).transpose(1, 2)
            out = _attention(query, memory_kv[:, i, 0], memory_kv[:, i, 1], memory_mask)
            cross = layer.cross_attn.out(out.transpose(1, 2).reshape(-1, length, heads * dh))
            x = _cross_and_feed_forward(layer, x, cross)
        logits = decoder.output(decoder.norm(x))
        return logits.reshape(-1, w, length, logits.shape[-1])


def _additive_mask(valid: Tensor) -> Tensor:
    """0 where ``valid``, ``-inf`` elsewhere: added to attention scores before their softmax."""
    return torch.where(valid, 0.0, -math.inf)


def _attention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> Tensor:
    """``softmax(query key^T / sqrt(d) + mask) value`` over the last two dimensions: what
    ``scaled_dot_product_attention`` computes, with its scale a constant of the graph."""
    scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(query.shape[-1]))
    return torch.matmul(torch.softmax(scores if mask is None else scores + mask, dim=-1), value)


def _cross_and_feed_forward(layer: TransformerDecoderLayer, x: Tensor, cross: Tensor) -> Tensor:
    """A decoder layer's output after its cross-attention ``cross``: that residual, then the
    feed-forward block, pre- or post-norm as ``layer`` is (eval mode, no dropout)."""
    if layer.norm_first:
        x = x + cross
        return x + layer.feed_forward(layer.norm3(x))
    x = layer.norm2(x + cross)
    return layer.norm3(x + layer.feed_forward(x))


class RNNStepGraph(nn.Module):
    """One decoding step of the attention RNN decoder for ``K`` hypotheses of each of ``C`` curves.

    Inputs: ``tokens`` ``(C, K)``; ``memory`` ``(C, T, M)``, ``memory_keys`` ``(C, T, A)`` and
    ``memory_valid`` ``(C, T)`` from the encoder; ``hidden`` (and ``cell`` for an LSTM)
    ``(C, K, hidden)``. Outputs: ``logits`` ``(C, K, V)``, ``new_hidden`` (and ``new_cell``).
    """

    def __init__(self, decoder: AttentionRNNDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, tokens: Tensor, memory: Tensor, memory_keys: Tensor, memory_valid: Tensor,
                hidden: Tensor, cell: Tensor | None = None) -> tuple[Tensor, ...]:
        decoder = self.decoder
        c, k = tokens.shape
        query = decoder.query_proj(hidden)[:, :, None]  # (C, K, 1, A)
        scores = decoder.score(torch.tanh(memory_keys[:, None] + query)).squeeze(-1)  # (C, K, T)
        scores = scores.masked_fill(~memory_valid[:, None], torch.finfo(scores.dtype).min)
        context = torch.bmm(torch.softmax(scores, dim=-1), memory).flatten(0, 1)  # (C * K, M)
        cell_input = torch.cat((decoder.token_embedding(tokens.flatten()), context), dim=-1)
        hidden = hidden.flatten(0, 1)
        if decoder.is_lstm:
            assert cell is not None
            hidden, cell = decoder.cell(cell_input, (hidden, cell.flatten(0, 1)))
        else:
            hidden = decoder.cell(cell_input, hidden)
        logits = decoder.output(torch.cat((hidden, context), dim=-1))
        out = [logits.view(c, k, -1), hidden.view(c, k, -1)]
        if decoder.is_lstm:
            out.append(cell.view(c, k, -1))
        return tuple(out)


# ---- graphs and files ----------------------------------------------------------------------------


class GraphSpec(NamedTuple):
    """A graph's input and output names, as written into ``model.json``."""

    inputs: list[str]
    outputs: list[str]


class OnnxExportResult(NamedTuple):
    """What :func:`export_onnx` wrote.

    Attributes
    ----------
    out : Path
        The folder.
    files : dict of str to int
        Each file written and its size in bytes.
    """

    out: Path
    files: dict[str, int]


def _example_points(layouts: list[Layout], batch: int, steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """Tracing inputs: random points on the first layout, of unequal lengths (the padded path)."""
    gen = torch.Generator().manual_seed(0)
    layout = layouts[0]
    points = torch.rand(batch, steps, 3, generator=gen) * torch.tensor([layout.width, layout.height, 0.0])
    points[..., 2] = torch.arange(steps) * 15.0
    lengths = torch.linspace(steps, 2, batch).round().long()
    return points, lengths, torch.zeros(batch, dtype=torch.int64)


def _export(module: nn.Module, args: tuple[Any, ...], spec: GraphSpec, shapes: tuple[Any, ...],
            path: Path) -> None:
    """One graph, traced with ``torch.export`` (``shapes``: the dynamic dimensions of each of
    ``args``) and written with its weights inside the file."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module.eval(), args, dynamo=True, opset_version=OPSET, input_names=spec.inputs,
            output_names=spec.outputs, dynamic_shapes=shapes, verbose=False, external_data=False,
        )
        program.save(str(path), external_data=False)
    _strip(path)


def _strip(path: Path) -> None:
    """Drop the exporter's per-node notes (source lines, stack traces): a third of a small
    graph's file."""
    import onnx

    graph = onnx.load(str(path))
    for node in graph.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(graph, str(path))


def encoder_spec(model: EncoderDecoder) -> GraphSpec:
    """Input and output names of the encoder graph."""
    inputs = ["points", "lengths", "layout_ids"]
    if isinstance(model, TransformerLikeEncoderDecoder):
        return GraphSpec(inputs, ["memory_kv", "memory_valid"])
    assert isinstance(model.decoder, AttentionRNNDecoder)
    state = ["hidden", "cell"] if model.decoder.is_lstm else ["hidden"]
    return GraphSpec(inputs, ["memory", "memory_keys", "memory_valid", *state])


def decoder_spec(model: EncoderDecoder) -> GraphSpec:
    """Input and output names of the decoder-step graph."""
    if isinstance(model, TransformerLikeEncoderDecoder):
        layers = range(len(model.decoder.layers))
        return GraphSpec(["tokens", "memory_kv", "memory_valid", *(f"self_cache_{i}" for i in layers)],
                         ["logits", *(f"new_self_cache_{i}" for i in layers)])
    assert isinstance(model.decoder, AttentionRNNDecoder)
    state = ["hidden", "cell"] if model.decoder.is_lstm else ["hidden"]
    return GraphSpec(["tokens", "memory", "memory_keys", "memory_valid", *state],
                     ["logits", *(f"new_{name}" for name in state)])


def export_graphs(model: EncoderDecoder, layouts: list[Layout], out: Path) -> dict[str, Any]:
    """Write ``encoder.onnx``, ``decoder_step.onnx`` and (transformer decoders)
    ``decoder_score.onnx`` of ``model`` into ``out``.

    Returns
    -------
    dict
        The ``graphs`` section of ``model.json``: per graph its file, inputs and outputs; for
        the decoder step also the encoder outputs it reads (``per_curve_inputs``) and its state:
        each state input, the output that replaces it, its shape after ``(C, K)`` and where its
        first value comes from (``zeros``, or the encoder output of its name, one per curve);
        ``decoder_score`` where written (its inputs other than ``tokens`` are encoder outputs).
    """
    model = model.eval()
    curves, steps, beams, slots = 3, 17, 4, 7
    c, t = torch.export.Dim("curves"), torch.export.Dim("points", min=2, max=1 << 16)
    k = torch.export.Dim("beams")
    points = _example_points(layouts, curves, steps)
    encoder = EncoderGraph(model, layouts)
    enc = encoder_spec(model)
    _export(encoder, points, enc, ({0: c, 1: t}, {0: c}, {0: c}), out / "encoder.onnx")
    with torch.no_grad():
        encoded = dict(zip(enc.outputs, encoder.eval()(*points), strict=True))
    dec = decoder_spec(model)
    tokens = torch.full((curves, beams), model.tokenizer.sos_id, dtype=torch.int64)
    per_curve = {0: c, 1: t}
    graphs: dict[str, Any] = {}
    if isinstance(model, TransformerLikeEncoderDecoder):
        heads = model.decoder.num_heads
        shape = [2, heads, 0, model.d_model // heads]
        caches = tuple(torch.randn(curves, beams, 2, heads, slots, shape[3]) for _ in model.decoder.layers)
        args = (tokens, encoded["memory_kv"], encoded["memory_valid"], caches)
        positions = torch.export.Dim("positions", min=0)
        shapes = ({0: c, 1: k}, {0: c, 4: t}, per_curve, tuple({0: c, 1: k, 4: positions} for _ in caches))
        _export(TransformerStepGraph(model), args, dec, shapes, out / "decoder_step.onnx")
        state = [{"input": name, "output": f"new_{name}", "shape": shape, "init": "zeros"}
                 for name in dec.inputs[3:]]
        words, length = torch.export.Dim("words"), torch.export.Dim("length")
        gen = torch.Generator().manual_seed(0)
        forced = torch.randint(1, len(model.tokenizer.alphabet) + 1, (curves, beams, slots), generator=gen)
        forced[..., 0] = model.tokenizer.sos_id
        score = GraphSpec(["tokens", "memory_kv", "memory_valid"], ["logits"])
        _export(TransformerScoreGraph(model), (forced, encoded["memory_kv"], encoded["memory_valid"]), score,
                ({0: c, 1: words, 2: length}, {0: c, 4: t}, per_curve), out / "decoder_score.onnx")
        graphs["decoder_score"] = {"file": "decoder_score.onnx", "inputs": score.inputs,
                                   "outputs": score.outputs}
    else:
        decoder = model.decoder
        assert isinstance(decoder, AttentionRNNDecoder)
        names = dec.inputs[4:]
        initial = tuple(encoded[name][:, None].expand(-1, beams, -1).contiguous() for name in names)
        args = (tokens, encoded["memory"], encoded["memory_keys"], encoded["memory_valid"], *initial)
        shapes = ({0: c, 1: k}, per_curve, per_curve, per_curve, *({0: c, 1: k} for _ in names))
        _export(RNNStepGraph(decoder), args, dec, shapes, out / "decoder_step.onnx")
        state = [{"input": name, "output": f"new_{name}", "shape": [decoder.cell.hidden_size],
                  "init": "encoder"} for name in names]
    stateful = {entry["input"] for entry in state}
    per_curve_inputs = [name for name in dec.inputs if name in enc.outputs and name not in stateful]
    return {
        "encoder": {"file": "encoder.onnx", "inputs": enc.inputs, "outputs": enc.outputs},
        "decoder_step": {"file": "decoder_step.onnx", "inputs": dec.inputs, "outputs": dec.outputs,
                         "per_curve_inputs": per_curve_inputs, "state": state},
        **graphs,
    }


def quantize_graphs(out: Path) -> None:
    """Write the ``*.int8.onnx`` of each graph in ``out``: onnxruntime's dynamic quantisation
    (int8 weights of the matrix products, activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in ("encoder", "decoder_step", "decoder_score"):
        if not (out / f"{name}.onnx").is_file():
            continue
        quantize_dynamic(out / f"{name}.onnx", out / f"{name}.int8.onnx", weight_type=QuantType.QInt8)
        _strip(out / f"{name}.int8.onnx")


def trie_arrays(trie: LexiconTrie) -> dict[str, np.ndarray]:
    """The lexicon trie as the flat arrays of ``lexicon.npz``: those of
    :class:`swipe.decoding.pipeline.Trie` (which reads them back)."""
    flat = trie.flat()
    return {"children": flat.children, "lookahead": flat.lookahead, "end_log_prob": flat.end_log_prob,
            "word_ids": flat.word_ids, "words": np.array(flat.words)}


def runtime_settings(model_file: Path) -> dict[str, Any]:
    """The folder's ``decoding.json``: every setting of the decoding pipeline
    (:class:`swipe.decoding.pipeline.Settings`) from the model's ``decoding.json``, else the beam
    generator's defaults (the greedy generator is the beam search of one hypothesis)."""
    from swipe.decoding.generators import BeamOptions

    settings = read_decoding_settings(model_file)
    beam = BeamOptions()
    chosen: dict[str, Any] = {
        "beam_size": beam.beam_size, "num_candidates": beam.num_candidates,
        "prior_weight": beam.prior_weight, "length_penalty": beam.length_penalty,
        "max_length": beam.max_length, "template_weight": 0.0, "template_prior_weight": 1.0,
        "x_scales": [1.0], "views_below": None, "views_margin": None, "views_beam_size": None,
        "wide_x_scales": [], "template_candidates": 0, "templates_below": None,
    }
    if settings is not None:
        if settings.generator == "greedy":
            chosen["beam_size"] = chosen["num_candidates"] = 1
        for name in chosen:
            value = getattr(settings, name, None)
            if value is not None:
                chosen[name] = list(value) if isinstance(value, tuple) else value
    return chosen


def _card(manifest: dict[str, Any], files: dict[str, int]) -> str:
    source, settings = manifest["source"], manifest["decoding"]
    sizes = "\n".join(f"| `{name}` | {size / 1e6:.2f} MB |" for name, size in sorted(files.items()))
    return f"""# {source["run"]}: ONNX graphs

Exported by `python -m swipe.export {source["file"]} --format onnx` from `{source["file"]}`
(SHA-256 `{source["sha256"]}`, step {source["step"]}): a {manifest["family"]} model
({manifest["architecture"]}), layouts {", ".join(manifest["layouts"])}, lexicon `{manifest["lexicon"]}`.
Opset {manifest["opset"]}; graph inputs and outputs in `model.json`, described in `docs/onnx.md`
of the swipe repository. Decode with `swipe.runtime.OnnxDecoder` (numpy and onnxruntime only).

Decoding settings (`decoding.json`, the model's own): beam {settings["beam_size"]}, prior weight
{settings["prior_weight"]}, length penalty {settings["length_penalty"]}, template weight
{settings["template_weight"]}, keyboard-width views {settings["x_scales"]} below score
{settings["views_below"]}, wide views {settings["wide_x_scales"]}, template candidates
{settings["template_candidates"]}.

| file | size |
| --- | --- |
{sizes}
"""


def export_onnx(checkpoint: str | Path, out: str | Path, overwrite: bool = False,
                int8: bool = True) -> OnnxExportResult:
    """Write the ONNX folder of a checkpoint or exported model (see the module docstring).

    Parameters
    ----------
    checkpoint : path or str
        A training checkpoint, an exported ``model.pt``, a folder holding one, or a shipped
        model's name (``en_hws``).
    out : path
        The folder to write; it must not exist or be empty unless ``overwrite``. It is written
        beside its place and moved there at the end, so an interrupted export leaves nothing.
    overwrite : bool
        Replace an existing ONNX folder (one with a ``model.json``) as a whole.
    int8 : bool
        Also write the int8 graphs.

    Raises
    ------
    FileExistsError
        ``out`` holds files and ``overwrite`` is False.
    OnnxExportError, swipe.model_files.CheckpointError
        The model cannot be loaded or exported.
    """
    from swipe.lexicon import load_lexicon

    source = resolve_model(checkpoint)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OnnxExportError(f"{out}: is a file; --format onnx writes a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}: already holds files (overwrite=True replaces them)")
        if not (out / "model.json").is_file():
            raise OnnxExportError(f"{out}: holds files but is not an ONNX export (no model.json); "
                                  "refusing to replace it")
    loaded = load_model(source)
    settings = runtime_settings(source)
    trie = LexiconTrie.from_lexicon(load_lexicon(loaded.config.lexicon), loaded.tokenizer)
    max_length = settings["max_length"] or trie.max_word_length + 1
    with atomic_output(out, directory=True) as folder:
        files = _write_folder(folder, loaded, source, settings, trie, max_length, int8)
    return OnnxExportResult(out, files)


def _write_folder(out: Path, loaded: Any, source: Path, settings: dict[str, Any], trie: LexiconTrie,
                  max_length: int, int8: bool) -> dict[str, int]:
    """Write the graphs, layouts, lexicon, settings, manifest and card into ``out``; their sizes."""
    model, layouts, tokenizer = loaded.model, list(loaded.layouts), loaded.tokenizer
    # The exporter and the quantiser log warnings that concern other models (torchvision's
    # operators, image models' pre-processing).
    logging.disable(logging.WARNING)
    try:
        graphs = export_graphs(model, layouts, out)
        if int8:
            quantize_graphs(out)
    finally:
        logging.disable(logging.NOTSET)
    np.savez_compressed(out / "lexicon.npz", **trie_arrays(trie))
    (out / "layouts.json").write_text(
        json.dumps([layout.to_grid() for layout in layouts], indent=1) + "\n", encoding="utf-8")
    data = loaded.config.data
    manifest = {
        "format": ONNX_FORMAT,
        "version": ONNX_VERSION,
        "opset": OPSET,
        "family": model.config.family,
        "architecture": type(model).__name__,
        "graphs": graphs,
        "tokenizer": {"alphabet": tokenizer.alphabet, "eos_id": tokenizer.eos_id,
                      "sos_id": tokenizer.sos_id, "num_output_tokens": tokenizer.num_output_tokens},
        "layouts": [layout.name for layout in layouts],
        "lexicon": str(loaded.config.lexicon),
        "max_length": max_length,
        "preprocessing": {
            "resample": None if data.resample is None else {
                "mode": data.resample.mode, "step": data.resample.step, "keep_time": data.resample.keep_time},
            "max_points": data.max_points,
        },
        "decoding": settings,
        "source": {"file": source.name, "sha256": sha256_of(source),
                   "run": str(loaded.config.name), "step": loaded.step},
    }
    (out / "decoding.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    files = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file() and p.name != "card.md"}
    (out / "card.md").write_text(_card(manifest, files), encoding="utf-8")
    files["card.md"] = (out / "card.md").stat().st_size
    return files
