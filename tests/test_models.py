"""Tests of swipe.models: embedders, both encoder-decoder families, configs and presets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from swipe.batch import SwipeBatch
from swipe.config import ConfigError, from_dict, to_dict
from swipe.data import COORD_SCALE, SwipeCollator, SwipeItem
from swipe.keyboard import BUNDLED_LAYOUT_NAMES, Layout, bundled_layout
from swipe.models import (
    EMBEDDER_NAMES,
    PRESETS,
    EmbedderConfig,
    EncoderDecoder,
    ModelConfig,
    RNNLikeConfig,
    TransformerLikeConfig,
    build_model,
    preset,
)
from swipe.models.attention import MultiHeadAttention
from swipe.tokenizers import CharTokenizer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models: thread hand-offs cost more than they save, and much more on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


LAYOUTS = [bundled_layout(name) for name in BUNDLED_LAYOUT_NAMES]
TOKENIZER = CharTokenizer.from_layouts(LAYOUTS)


def tiny_transformer(
    encoder: str = "transformer", norm_first: bool = False, activation: str = "relu"
) -> TransformerLikeConfig:
    return TransformerLikeConfig(
        d_model=16,
        encoder=encoder,  # type: ignore[arg-type]
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        dim_feedforward=32,
        dropout=0.1,
        activation=activation,  # type: ignore[arg-type]
        norm_first=norm_first,
        conv_kernel_size=5,
    )


def tiny_rnn(cell: str) -> RNNLikeConfig:
    return RNNLikeConfig(
        d_model=16,
        cell=cell,  # type: ignore[arg-type]
        encoder_hidden_size=12,
        num_encoder_layers=2,
        decoder_hidden_size=20,
        attention_size=8,
        dropout=0.1,
    )


ARCHITECTURES = {
    "transformer-postnorm": dict(transformer=tiny_transformer()),
    "transformer-prenorm": dict(transformer=tiny_transformer(norm_first=True, activation="gelu")),
    "transformer-silu": dict(transformer=tiny_transformer(activation="silu")),
    "conformer": dict(transformer=tiny_transformer("conformer")),
    "lstm": dict(rnn=tiny_rnn("lstm")),
    "gru": dict(rnn=tiny_rnn("gru")),
}


def tiny_config(arch: str, embedder: str = "weighted") -> ModelConfig:
    return ModelConfig(embedder=EmbedderConfig(embedder), **ARCHITECTURES[arch])  # type: ignore[arg-type]


def tiny_model(arch: str, embedder: str = "weighted", seed: int = 0) -> EncoderDecoder:
    torch.manual_seed(seed)
    return build_model(tiny_config(arch, embedder), LAYOUTS, TOKENIZER).eval()


# ---- batches ---------------------------------------------------------------------------------


def make_curve(layout: Layout, num_points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A curve through a few random key centres: pixel coordinates ``(n, 2)`` and times in ms."""
    stops = layout.centers[rng.integers(0, layout.num_keys, size=3)]
    s = np.linspace(0.0, 2.0, num_points)
    segment = np.minimum(s.astype(int), 1)
    frac = (s - segment)[:, None]
    xy = stops[segment] * (1 - frac) + stops[segment + 1] * frac
    xy = xy + rng.normal(0.0, 0.1 * layout.half_diagonal, size=xy.shape)
    t = np.cumsum(rng.integers(0, 20, size=num_points)).astype(np.float64)  # dt = 0 happens
    return xy.astype(np.float32), t


def make_swipes(
    lengths: list[int], layout_ids: list[int], seed: int = 0, pad_to: int | None = None, garbage: bool = False
) -> tuple[SwipeBatch, torch.Tensor]:
    """A padded :class:`SwipeBatch` made by the dataset's collator, and its padding mask.

    ``pad_to`` pads further; ``garbage`` fills the padding with noise (which a model must ignore)
    instead of zeros.
    """
    rng = np.random.default_rng(seed)
    items = []
    for i, (n, layout_id) in enumerate(zip(lengths, layout_ids, strict=True)):
        layout = LAYOUTS[layout_id]
        xy, t = make_curve(layout, n, rng)
        stored = np.rint(xy * COORD_SCALE).astype(np.int16)  # as the dataset stores coordinates
        x, y = (stored / COORD_SCALE).T
        items.append(
            SwipeItem(
                index=i,
                x=stored[:, 0],
                y=stored[:, 1],
                t=t.astype(np.float32),
                nearest_keys=layout.nearest_keys_exact(x, y),
                chars=np.zeros(0, np.uint8),
                layout_id=layout_id,
                layout_name=layout.name,
                coord_scale=COORD_SCALE,
                alphabet=TOKENIZER.alphabet,
            )
        )
    swipe, mask = SwipeCollator(LAYOUTS, TOKENIZER)(items)[:2]
    total = pad_to or max(lengths)
    extra = total - swipe.coords.shape[1]
    if extra:
        swipe = SwipeBatch(
            torch.nn.functional.pad(swipe.coords, (0, 0, 0, extra)),
            torch.nn.functional.pad(swipe.features, (0, 0, 0, extra)),
            torch.nn.functional.pad(swipe.nearest_keys, (0, extra)),
            swipe.layout_ids,
            swipe.lengths,
        )
        mask = torch.nn.functional.pad(mask, (0, extra), value=True)
    if garbage:
        gen = torch.Generator().manual_seed(seed + 1)
        pad = mask[..., None]
        swipe = swipe._replace(
            coords=torch.where(pad, torch.rand(swipe.coords.shape, generator=gen) * 500, swipe.coords),
            features=torch.where(pad, torch.randn(swipe.features.shape, generator=gen) * 50, swipe.features),
            nearest_keys=torch.where(
                mask, torch.randint(0, 26, mask.shape, generator=gen), swipe.nearest_keys
            ),
        )
    return swipe, mask


def make_tokens(
    lengths: list[int], seed: int = 0, pad_to: int | None = None, garbage: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder inputs ``<sos> c1 .. c(n-1)`` padded with ``<pad>`` (or random ids) and their mask."""
    gen = torch.Generator().manual_seed(seed)
    total = pad_to or max(lengths)
    fill = torch.randint(0, TOKENIZER.vocab_size, (len(lengths), total), generator=gen)
    tokens = fill if garbage else torch.full((len(lengths), total), TOKENIZER.pad_id)
    chars = torch.randint(1, len(TOKENIZER.alphabet) + 1, (len(lengths), total), generator=gen)
    for i, n in enumerate(lengths):
        tokens[i, :n] = chars[i, :n]
        tokens[i, 0] = TOKENIZER.sos_id
    mask = torch.arange(total)[None] >= torch.tensor(lengths)[:, None]
    return tokens, mask


def select_rows(swipe: SwipeBatch, mask: torch.Tensor, i: int) -> tuple[SwipeBatch, torch.Tensor]:
    """Row ``i`` alone, cut to its own length (no padding at all)."""
    n = int(swipe.lengths[i])
    one = SwipeBatch(
        swipe.coords[i : i + 1, :n],
        swipe.features[i : i + 1, :n],
        swipe.nearest_keys[i : i + 1, :n],
        swipe.layout_ids[i : i + 1],
        swipe.lengths[i : i + 1],
    )
    return one, mask[i : i + 1, :n]


# ---- behaviour -------------------------------------------------------------------------------

TOL = dict(atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_padding_never_changes_real_positions(arch: str) -> None:
    model = tiny_model(arch)
    lengths, token_lengths = [9, 4, 13], [5, 2, 7]
    swipe, swipe_mask = make_swipes(lengths, [0, 2, 3], pad_to=17, garbage=True)
    tokens, tokens_mask = make_tokens(token_lengths, pad_to=9, garbage=True)
    with torch.no_grad():
        memory = model.encode(swipe, swipe_mask)
        logits = model.decode(tokens, memory, swipe_mask, tokens_mask)
        for i, (n, m) in enumerate(zip(lengths, token_lengths, strict=True)):
            one, one_mask = select_rows(swipe, swipe_mask, i)
            one_memory = model.encode(one, one_mask)
            torch.testing.assert_close(memory[i, :n], one_memory[0], **TOL)
            one_logits = model.decode(tokens[i : i + 1, :m], one_memory, one_mask, None)
            torch.testing.assert_close(logits[i, :m], one_logits[0], **TOL)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_forward_equals_encode_then_decode(arch: str) -> None:
    model = tiny_model(arch)
    swipe, swipe_mask = make_swipes([8, 11], [1, 0])
    tokens, tokens_mask = make_tokens([4, 6])
    with torch.no_grad():
        logits = model(tokens, swipe, swipe_mask, tokens_mask)
        expected = model.decode(tokens, model.encode(swipe, swipe_mask), swipe_mask, tokens_mask)
    assert logits.shape == (2, 6, TOKENIZER.num_output_tokens)
    torch.testing.assert_close(logits, expected, atol=0.0, rtol=0.0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_decode_step_matches_full_decoding_after_select(arch: str) -> None:
    """Hypotheses grouped by curve, reordered and expanded within each curve (``select``) and
    curves dropped (``select_curves``), as beam search does: every step's logits equal those of
    teacher-forced decoding of the same prefixes over per-hypothesis copies of the memory."""
    model = tiny_model(arch)
    swipe, swipe_mask = make_swipes([10, 6, 12], [0, 3, 2])
    tokens, _ = make_tokens([7] * 6)  # two hypotheses per curve to start with
    beams = torch.tensor([[1, 1, 0], [0, 1, 1], [1, 0, 0]])  # after step 3: three per curve
    kept = torch.tensor([2, 0])  # after step 5: curve 1 finished, the others swapped
    expand = (beams + torch.arange(3)[:, None] * 2).reshape(-1)
    keep_rows = (kept[:, None] * 3 + torch.arange(3)).reshape(-1)
    row_sets = [torch.arange(6), expand, expand[keep_rows]]  # hypothesis rows of `tokens`
    curve_sets = [torch.arange(3), torch.arange(3), kept]
    with torch.no_grad():
        memory = model.encode(swipe, swipe_mask)
        expected = []
        for rows in row_sets:
            curve = rows // 2
            expected.append(model.decode(tokens[rows], memory[curve], swipe_mask[curve], None))
        state, phase = None, 0
        for i in range(tokens.shape[1]):
            if i == 3:
                state, phase = state.select(beams), 1
            if i == 5:
                state, phase = state.select_curves(kept), 2
            curves = curve_sets[phase]
            last = tokens[row_sets[phase], i]
            step = model.decode_step(last, memory[curves], swipe_mask[curves], state)
            state = step.state
            torch.testing.assert_close(step.logits, expected[phase][:, i], **TOL)
            assert state.num_curves == len(curves)
            assert state.beams_per_curve == (2 if phase == 0 else 3)
        assert type(state.select(torch.zeros(2, 1, dtype=torch.int64))) is type(state)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_selects_in_a_row_then_a_step(arch: str) -> None:
    """Several ``select`` / ``select_curves`` calls before one step compose: the step decodes each
    hypothesis from the prefix it was last said to continue. Stepping a state leaves it as it
    was: stepped twice, it gives the same logits twice."""
    model = tiny_model(arch)
    swipe, swipe_mask = make_swipes([10, 6, 12], [0, 3, 2])
    tokens, _ = make_tokens([6] * 6)  # two hypotheses per curve
    beams = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0]])  # rows 1 0 1 | 2 2 3 | 5 5 4
    beams_again = torch.tensor([[2, 0], [1, 2], [0, 2]])  # rows 1 1 | 2 3 | 5 4
    kept = torch.tensor([2, 1])  # rows 5 4 | 2 3
    with torch.no_grad():
        memory = model.encode(swipe, swipe_mask)
        state = None
        for i in range(3):
            state = model.decode_step(tokens[:, i], memory, swipe_mask, state).state
        state = state.select(beams).select(beams_again).select_curves(kept)
        rows = torch.tensor([5, 4, 2, 3])
        steps = [model.decode_step(tokens[rows, 3], memory[kept], swipe_mask[kept], state) for _ in range(2)]
        expected = model.decode(tokens[rows], memory[rows // 2], swipe_mask[rows // 2], None)
    for step in steps:
        torch.testing.assert_close(step.logits, expected[:, 3], **TOL)
    torch.testing.assert_close(steps[0].logits, steps[1].logits, rtol=0, atol=0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_decode_step_tracks_gradients_outside_no_grad(arch: str) -> None:
    """An eval-mode step outside ``no_grad`` (a fine-tuning loop, a saliency probe) gives the same
    logits as under it, and gradients reach the weights through the cache and a select."""
    model = tiny_model(arch)
    swipe, swipe_mask = make_swipes([10, 6], [0, 3])
    tokens, _ = make_tokens([6] * 4)

    def run() -> torch.Tensor:
        memory, state = model.encode(swipe, swipe_mask), None
        for i in range(3):
            step = model.decode_step(tokens[:, i], memory, swipe_mask, state)
            state = step.state.select(torch.tensor([[1, 0], [0, 0]])) if i == 1 else step.state
        return step.logits

    with torch.no_grad():
        expected = run()
    logits = run()
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and bool(g.abs().sum() > 0) for g in grads)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_decode_step_with_empty_slots(arch: str, training: bool) -> None:
    """Slots left empty by ``select`` (``-1``), as beam search leaves them, through further
    selects and curve drops: every filled slot's logits equal teacher-forced decoding of its
    prefix, whether the state keeps cache rows for the filled slots only (the transformer in eval
    mode) or for all."""
    model = tiny_model(arch)
    if training:
        model = without_dropout(model.train())
    swipe, swipe_mask = make_swipes([10, 6, 12], [0, 3, 2])
    tokens, _ = make_tokens([7] * 6)  # two hypotheses per curve to start with
    # Per phase: the row of `tokens` each slot decodes (-1: empty), its curves, the select before it.
    first = torch.arange(6)
    beams = torch.tensor([[1, -1, 0], [0, 1, -1], [-1, -1, 1]])  # before step 3
    after_beams = torch.tensor([1, -1, 0, 2, 3, -1, -1, -1, 5])
    beams_again = torch.tensor([[2, 0], [1, -1], [2, 2]])  # before step 5
    after_again = torch.tensor([0, 1, 3, -1, 5, 5])
    kept = torch.tensor([2, 0])  # before step 6: curve 1 dropped, the others swapped
    after_kept = torch.tensor([5, 5, 0, 1])
    phases = {0: (first, torch.arange(3)), 3: (after_beams, torch.arange(3)),
              5: (after_again, torch.arange(3)), 6: (after_kept, kept)}
    with torch.no_grad():
        memory = model.encode(swipe, swipe_mask)
        state = None
        for i in range(tokens.shape[1]):
            if i == 3:
                state = state.select(beams)
            if i == 5:
                state = state.select(beams_again)
            if i == 6:
                state = state.select_curves(kept)
            rows, curves = phases[max(p for p in phases if p <= i)]
            last = tokens[rows.clamp(min=0), i]
            step = model.decode_step(last, memory[curves], swipe_mask[curves], state)
            state = step.state
            filled = rows >= 0
            slot_curves = curves.repeat_interleave(len(rows) // len(curves))[filled]
            expected = model.decode(tokens[rows[filled]], memory[slot_curves], swipe_mask[slot_curves], None)
            torch.testing.assert_close(step.logits[filled], expected[:, i], **TOL)
            assert step.logits.shape[0] == len(rows)
            if i == 5 and arch not in ("lstm", "gru") and not training:
                assert state.self_caches[0].shape[1] == 5  # cache rows for the filled slots only
                with pytest.raises(ValueError, match="continues an empty slot"):
                    state.select(torch.tensor([[0], [1], [0]]))  # slot 1 of curve 1 is empty


def without_dropout(model: EncoderDecoder) -> EncoderDecoder:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, MultiHeadAttention):
            module.dropout = 0.0
    return model


def modules_and_fast_paths(
    model: EncoderDecoder, swipe: SwipeBatch, mask: torch.Tensor, tokens: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Memory and step-by-step logits, in training mode (the modules) and in eval mode (the
    encoder's and the decoder step's fast paths)."""
    out = []
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            memory = model.encode(swipe, mask)
            out.append((memory, step_by_step_logits(model, memory, mask, tokens)))
    return out


def step_by_step_logits(
    model: EncoderDecoder, memory: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """``(B, L, V)`` logits of ``tokens`` decoded one ``decode_step`` at a time."""
    state, logits = None, []
    for i in range(tokens.shape[1]):
        step = model.decode_step(tokens[:, i], memory, mask, state)
        logits.append(step.logits)
        state = step.state
    return torch.stack(logits, 1)


@pytest.mark.parametrize("arch", ["transformer-postnorm", "transformer-prenorm", "transformer-silu"])
def test_eval_fast_paths_follow_every_change_of_the_weights(arch: str) -> None:
    """In eval mode the transformer encoder and decoder step run on weights gathered once (fused,
    transposed, post-norm residual biases folded) and kept on the model: they compute what the
    modules compute, also after a parameter is changed in place, replaced, or the model is moved
    to another dtype."""
    model = without_dropout(tiny_model(arch))
    swipe, mask = make_swipes([9, 6], [0, 1])
    tokens, _ = make_tokens([5, 5])

    def check(dtype: torch.dtype = torch.float32) -> None:
        (memory, logits), (fast_memory, fast_logits) = modules_and_fast_paths(model, swipe, mask, tokens)
        assert fast_memory.dtype == fast_logits.dtype == dtype
        torch.testing.assert_close(fast_memory, memory, **TOL)
        torch.testing.assert_close(fast_logits, logits, **TOL)

    check()
    check()  # the kept weights
    with torch.no_grad():
        model.decoder.layers[0].cross_attn.out.bias.add_(0.5)
        model.decoder.layers[1].feed_forward.linear2.bias.sub_(0.3)
        model.encoder.layers[1].feed_forward.linear1.weight.mul_(1.5)
    check()
    model.decoder.layers[1].norm3.bias = torch.nn.Parameter(torch.full((16,), 0.2))
    model.encoder.layers[0].self_attn.query.bias = torch.nn.Parameter(torch.full((16,), -0.1))
    check()
    model.double()
    check(torch.float64)


def test_conformer_eval_fast_path_follows_every_change_of_the_weights() -> None:
    """In eval mode the conformer encoder runs on gathered weights (fused attention projections,
    the feed-forward halving folded in, the depthwise convolution as a height-1 2-D one): it
    computes what the modules compute, with and without padding, also after its parameters
    change."""
    model = without_dropout(tiny_model("conformer"))
    padded = make_swipes([9, 6], [0, 1])
    single = make_swipes([7], [2])
    tokens, _ = make_tokens([5, 5])

    def check(dtype: torch.dtype = torch.float32) -> None:
        for swipe, mask in (padded, single):
            (memory, logits), (fast_memory, fast_logits) = modules_and_fast_paths(
                model, swipe, mask, tokens[: len(mask)]
            )
            assert fast_memory.dtype == dtype
            torch.testing.assert_close(fast_memory, memory, **TOL)
            torch.testing.assert_close(fast_logits, logits, **TOL)

    check()
    check()  # the kept weights
    layer = model.encoder.layers[1]
    with torch.no_grad():
        layer.ff1.linear2.bias.add_(0.5)
        layer.conv.depthwise.weight.mul_(1.5)
        layer.conv.norm.weight.sub_(0.2)
        model.encoder.layers[0].ff2.linear1.weight.mul_(-1.0)
    check()
    layer.norm_out.bias = torch.nn.Parameter(torch.full((16,), 0.2))
    check()
    model.double()
    check(torch.float64)


def test_eval_fast_paths_of_a_model_made_under_inference_mode() -> None:
    """Parameters made under ``torch.inference_mode`` keep no version counter: the fast paths
    then gather the weights at every call, and still follow in-place changes."""
    with torch.inference_mode():
        model = tiny_model("transformer-postnorm")
        swipe, mask = make_swipes([8], [2])
        tokens, _ = make_tokens([4])
        for _ in range(2):
            memory = model.encode(swipe, mask)
            expected = model.decode(tokens, memory, mask, None)
            torch.testing.assert_close(step_by_step_logits(model, memory, mask, tokens), expected, **TOL)
            model.decoder.layers[0].norm2.bias.add_(0.5)


@pytest.mark.parametrize("arch", ["transformer-postnorm", "lstm"])
def test_decode_step_rejects_tokens_not_grouped_by_curve(arch: str) -> None:
    model = tiny_model(arch)
    swipe, swipe_mask = make_swipes([5, 6], [0, 1])
    with torch.no_grad():
        memory = model.encode(swipe, swipe_mask)
        with pytest.raises(ValueError, match="one row per curve"):
            model.decode_step(torch.full((3,), TOKENIZER.sos_id), memory, swipe_mask, None)
        step = model.decode_step(torch.full((4,), TOKENIZER.sos_id), memory, swipe_mask, None)
        assert step.state.beams_per_curve == 2
        with pytest.raises(ValueError, match="one row per curve"):
            model.decode_step(torch.zeros(4, dtype=torch.int64), memory[:1], swipe_mask[:1], step.state)


@pytest.mark.parametrize("name", EMBEDDER_NAMES)
def test_every_embedder_trains_on_every_bundled_layout(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config("transformer-prenorm", name), LAYOUTS, TOKENIZER).train()
    layout_ids = list(range(len(LAYOUTS)))
    swipe, swipe_mask = make_swipes([12, 7, 9, 15], layout_ids)
    tokens, tokens_mask = make_tokens([5, 3, 6, 4])
    logits = model(tokens, swipe, swipe_mask, tokens_mask)
    targets = tokens.roll(-1, dims=1).clamp_max(TOKENIZER.num_output_tokens - 1)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss.backward()
    assert torch.isfinite(loss)
    for pname, param in model.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), pname
    used_rows = model.embedder.key_rows[torch.arange(len(LAYOUTS))]
    assert model.embedder.key_embedding.weight.grad[used_rows.unique()].abs().sum() > 0
    if name == "trainable_gaussian":
        assert model.embedder.gaussian_offset.grad.abs().sum() > 0
        assert model.embedder.gaussian_log_sigma.grad.abs().sum() > 0


def test_threshold_weighted_embedder_reduces_to_nearest() -> None:
    nearest = tiny_model("transformer-postnorm", "nearest")
    config = dataclasses.replace(
        tiny_config("transformer-postnorm"),
        embedder=EmbedderConfig("weighted", weight_function="threshold", threshold=0.5),
    )
    weighted = build_model(config, LAYOUTS, TOKENIZER).eval()
    weighted.load_state_dict(nearest.state_dict())
    # Points near key centres: exactly one key lies within half a half-diagonal.
    rng = np.random.default_rng(3)
    swipe, mask = make_swipes([6, 6, 6, 6], [0, 1, 2, 3])
    coords = swipe.coords.clone()
    nearest_keys = swipe.nearest_keys.clone()
    for i, layout in enumerate(LAYOUTS):
        keys = rng.integers(0, layout.num_keys, size=6)
        jitter = rng.uniform(-0.2, 0.2, size=(6, 2)) * layout.half_diagonal
        xy = (layout.centers[keys] + jitter).astype(np.float32)
        coords[i] = torch.from_numpy(xy)
        nearest_keys[i] = torch.from_numpy(layout.nearest_keys_exact(xy[:, 0], xy[:, 1]).astype(np.int64))
        assert (nearest_keys[i].numpy() == keys).all()
    swipe = swipe._replace(coords=coords, nearest_keys=nearest_keys)
    with torch.no_grad():
        torch.testing.assert_close(
            weighted.embedder.keyboard_embedding(swipe), nearest.embedder.keyboard_embedding(swipe)
        )
        torch.testing.assert_close(weighted.encode(swipe, mask), nearest.encode(swipe, mask))


@pytest.mark.parametrize("name", ["weighted", "trainable_gaussian"])
def test_key_weights_follow_the_formula(name: str) -> None:
    model = tiny_model("lstm", name)
    swipe, _ = make_swipes([5], [2])
    layout = LAYOUTS[2]
    weights = model.embedder.key_weights(swipe)[0].detach()
    xy = swipe.coords[0].numpy()
    d = layout.key_distances(xy[:, 0], xy[:, 1])
    # The sigmoid of the reference research; the Gaussians start at the key centres, sigma 1.
    expected = 1.0 / (1.0 + np.exp(1.8 * (d - 2.2))) if name == "weighted" else np.exp(-0.5 * d**2)
    np.testing.assert_allclose(weights[:, : layout.num_keys].numpy(), expected, atol=1e-5)
    assert (weights[:, layout.num_keys :] == 0).all()


def test_keys_with_the_same_name_share_an_embedding() -> None:
    embedder = tiny_model("gru").embedder
    default, qwerty = LAYOUTS.index(bundled_layout("default")), LAYOUTS.index(bundled_layout("qwerty_en"))
    rows = embedder.key_rows
    space = lambda i: int(rows[i, LAYOUTS[i].key_index("<space>")])  # noqa: E731
    assert space(default) == space(qwerty)
    assert int(rows[default, LAYOUTS[default].key_index("й")]) != int(
        rows[qwerty, LAYOUTS[qwerty].key_index("q")]
    )
    names = {k.name for layout in LAYOUTS for k in layout.keys}
    assert embedder.key_embedding.num_embeddings == len(names)


@pytest.mark.parametrize("arch", ["transformer-postnorm", "lstm"])
def test_output_layer_covers_only_emittable_tokens(arch: str) -> None:
    model = tiny_model(arch)
    assert model.num_output_tokens == TOKENIZER.num_output_tokens
    assert model.decoder.output.out_features == TOKENIZER.num_output_tokens
    embedding = model.decoder.token_embedding
    assert embedding.num_embeddings == TOKENIZER.vocab_size
    assert embedding.padding_idx == TOKENIZER.pad_id
    assert model.tokenizer == TOKENIZER and model.layout_names == BUNDLED_LAYOUT_NAMES


@pytest.mark.parametrize("arch", ["conformer", "gru"])
def test_config_round_trip_rebuilds_an_identical_model(arch: str, tmp_path) -> None:
    model = tiny_model(arch, "trainable_gaussian", seed=5)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(to_dict(model.config)))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    config = from_dict(ModelConfig, json.loads(path.read_text()))
    assert config == model.config
    rebuilt = build_model(config, LAYOUTS, TOKENIZER).eval()
    rebuilt.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    swipe, swipe_mask = make_swipes([9, 5], [3, 1])
    tokens, tokens_mask = make_tokens([4, 3])
    with torch.no_grad():
        torch.testing.assert_close(
            rebuilt(tokens, swipe, swipe_mask, tokens_mask),
            model(tokens, swipe, swipe_mask, tokens_mask),
            atol=0,
            rtol=0,
        )


def test_config_errors_name_the_key() -> None:
    good = to_dict(tiny_config("transformer-postnorm"))
    typo = json.loads(json.dumps(good))
    typo["transformer"]["d_modell"] = typo["transformer"].pop("d_model")
    with pytest.raises(ConfigError, match=r"transformer\.d_modell: unknown key \(did you mean 'd_model'\?\)"):
        from_dict(ModelConfig, typo)
    missing = json.loads(json.dumps(good))
    del missing["transformer"]["num_heads"]
    with pytest.raises(ConfigError, match=r"transformer\.num_heads: missing required key"):
        from_dict(ModelConfig, missing)
    mistyped = json.loads(json.dumps(good))
    mistyped["transformer"]["num_heads"] = "2"
    with pytest.raises(ConfigError, match=r"transformer\.num_heads: expected int"):
        from_dict(ModelConfig, mistyped)
    with pytest.raises(ConfigError, match=r"embedder\.name: expected one of"):
        from_dict(ModelConfig, {**good, "embedder": {"name": "weigted"}})
    with pytest.raises(ConfigError, match="exactly one of 'transformer' and 'rnn'"):
        from_dict(ModelConfig, {"embedder": {"name": "nearest"}})
    bad_heads = json.loads(json.dumps(good))
    bad_heads["transformer"]["num_heads"] = 3
    with pytest.raises(ConfigError, match="not divisible by num_heads"):
        from_dict(ModelConfig, bad_heads)


def test_presets() -> None:
    base = PRESETS["base"].transformer
    assert base is not None
    assert (base.num_encoder_layers, base.num_decoder_layers, base.d_model) == (4, 4, 128)
    assert (base.dim_feedforward, base.num_heads, base.dropout) == (128, 4, 0.1)
    assert PRESETS["rnn"].family == "rnn"
    assert preset("small", embedder="nearest").embedder.name == "nearest"
    for name, config in PRESETS.items():
        assert from_dict(ModelConfig, json.loads(json.dumps(to_dict(config)))) == config, name
    small = build_model(preset("small"), LAYOUTS, TOKENIZER)
    assert sum(p.numel() for p in small.parameters()) < 600_000
    with pytest.raises(KeyError, match="no model preset 'huge'"):
        preset("huge")


def test_unknown_layout_id_is_an_error() -> None:
    model = build_model(tiny_config("lstm"), LAYOUTS[:2], TOKENIZER).eval()
    swipe, mask = make_swipes([5], [3])
    with pytest.raises(ValueError, match="layout id 3 out of range"):
        model.encode(swipe, mask)


@pytest.mark.parametrize("arch", ["transformer-prenorm", "gru"])
def test_tiny_model_learns_to_spell_from_the_swipe(arch: str) -> None:
    # Four curves over the same layout, each with its own word: the decoder must read the memory.
    torch.manual_seed(0)
    config = dataclasses.replace(
        tiny_config(arch, "nearest"),
        **{key: dataclasses.replace(value, dropout=0.0) for key, value in ARCHITECTURES[arch].items()},
    )
    model = build_model(config, LAYOUTS, TOKENIZER)
    words = ["abc", "bad", "cab", "dab"]
    layout = LAYOUTS[2]
    swipe, swipe_mask = make_swipes([10, 10, 10, 10], [2, 2, 2, 2])
    for i, word in enumerate(words):
        xy = np.repeat(layout.centers[[layout.key_index(c) for c in word]], [3, 4, 3], axis=0)
        swipe.coords[i] = torch.from_numpy(xy)
        swipe.nearest_keys[i] = torch.from_numpy(
            layout.nearest_keys_exact(xy[:, 0], xy[:, 1]).astype(np.int64)
        )
    ids = torch.tensor([TOKENIZER.encode(w) for w in words])
    tokens = torch.cat([torch.full((4, 1), TOKENIZER.sos_id), ids], dim=1)
    targets = torch.cat([ids, torch.full((4, 1), TOKENIZER.eos_id)], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        logits = model(tokens, swipe, swipe_mask, None)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        memory = model.encode(swipe, swipe_mask)
        last, state, out = torch.full((4,), TOKENIZER.sos_id), None, []
        for _ in range(4):
            step = model.decode_step(last, memory, swipe_mask, state)
            last, state = step.logits.argmax(-1), step.state
            out.append(last)
    assert [TOKENIZER.decode(row) for row in torch.stack(out, 1).tolist()] == words


@pytest.mark.parametrize("arch", ["conformer", "lstm"])
@pytest.mark.parametrize("name", ["weighted", "trainable_gaussian"])
def test_a_half_precision_model_reads_float32_batches(arch: str, name: str) -> None:
    model = tiny_model(arch, name).to(torch.bfloat16)
    swipe, mask = make_swipes([7, 4], [0, 3])
    with torch.no_grad():
        memory = model.encode(swipe, mask)
        step = model.decode_step(torch.full((2,), TOKENIZER.sos_id), memory, mask, None)
    assert memory.dtype == step.logits.dtype == torch.bfloat16
    assert torch.isfinite(step.logits).all()
