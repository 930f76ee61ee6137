"""A tiny deterministic encoder-decoder for decoding tests: the same methods as
``swipe.models.EncoderDecoder`` (``encode``, ``decode``, ``decode_step`` with a selectable state),
small enough to run hundreds of searches in a second."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from swipe.batch import FEATURE_NAMES, SwipeBatch

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


class StandinState(NamedTuple):
    """Key/value cache of the tokens decoded so far: ``(C * K, S, D)``, ``K`` hypotheses per curve."""

    keys: Tensor
    beams_per_curve: int = 1

    def select(self, beam_indices: Tensor) -> StandinState:
        # -1 marks an empty slot: any row will do, its logits are never read.
        k = self.beams_per_curve
        rows = (beam_indices.clamp(min=0) + torch.arange(beam_indices.size(0))[:, None] * k).reshape(-1)
        return StandinState(self.keys.index_select(0, rows), beam_indices.size(1))

    def select_curves(self, curve_indices: Tensor) -> StandinState:
        k = self.beams_per_curve
        rows = (curve_indices[:, None] * k + torch.arange(k)).reshape(-1)
        return StandinState(self.keys.index_select(0, rows), k)


class StandinStep(NamedTuple):
    logits: Tensor
    state: StandinState


class StandinModel(nn.Module):
    """Encoder: a linear map of the features. Decoder: one attention read over the memory and
    over the previous tokens (a cache), then a linear output layer."""

    def __init__(self, num_output_tokens: int = len(ALPHABET) + 1, d: int = 16, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.num_output_tokens = num_output_tokens
        self.inp = nn.Linear(len(FEATURE_NAMES), d)
        self.emb = nn.Embedding(num_output_tokens + 2, d)
        self.out = nn.Linear(2 * d, num_output_tokens)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=gen) * 0.7

    def encode(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> Tensor:
        return torch.tanh(self.inp(swipe.features)).masked_fill(swipe_pad_mask.unsqueeze(-1), 0.0)

    def decode_step(
        self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: StandinState | None
    ) -> StandinStep:
        # One memory row per curve, K hypotheses per curve.
        k = state.beams_per_curve if state is not None else last_tokens.size(0) // memory.size(0)
        assert last_tokens.size(0) == k * memory.size(0)
        memory = memory.repeat_interleave(k, dim=0)
        memory_pad_mask = memory_pad_mask.repeat_interleave(k, dim=0)
        x = self.emb(last_tokens)  # (C * K, D)
        keys = x.unsqueeze(1) if state is None else torch.cat([state.keys, x.unsqueeze(1)], dim=1)
        att = torch.einsum("bd,btd->bt", x, memory).masked_fill(memory_pad_mask, float("-inf"))
        context = torch.einsum("bt,btd->bd", att.softmax(-1), memory)
        history = keys.mean(dim=1)
        logits = self.out(torch.cat([context, history], dim=-1))
        return StandinStep(logits, StandinState(keys, k))

    def decode(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        state, logits = None, []
        for i in range(tokens.size(1)):
            step = self.decode_step(tokens[:, i], memory, memory_pad_mask, state)
            logits.append(step.logits)
            state = step.state
        return torch.stack(logits, dim=1)


def random_swipes(num: int, seed: int = 0, min_len: int = 3, max_len: int = 12) -> tuple[SwipeBatch, Tensor]:
    """A padded batch of random curves of random lengths."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (num,), generator=gen)
    t = int(lengths.max())
    pad = torch.arange(t).unsqueeze(0) >= lengths.unsqueeze(1)
    features = torch.randn(num, t, len(FEATURE_NAMES), generator=gen).masked_fill(pad.unsqueeze(-1), 0.0)
    swipe = SwipeBatch(
        coords=torch.zeros(num, t, 2),
        features=features,
        nearest_keys=torch.zeros(num, t, dtype=torch.int64),
        layout_ids=torch.zeros(num, dtype=torch.int64),
        lengths=lengths,
    )
    return swipe, pad


def build_standin(seed: int = 0) -> StandinModel:
    return StandinModel(seed=seed).eval()


class StandinLoader:
    """A picklable model recipe for ``swipe.predict.decode`` (workers rebuild the same model)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(self, device: str):
        from swipe.predict import ModelParts
        from swipe.tokenizers import CharTokenizer

        return ModelParts(build_standin(self.seed).to(device), CharTokenizer(ALPHABET))


class StandinCurves:
    """``num`` random curves on the ``qwerty_en`` layout, each a pure function of its index."""

    def __init__(self, num: int, seed: int = 0) -> None:
        self.num = num
        self.seed = seed
        self.max_points = None
        self.resample = None
        gen = torch.Generator().manual_seed(seed)
        self._lengths = torch.randint(3, 15, (num,), generator=gen)

    def __len__(self) -> int:
        return self.num

    @property
    def layouts(self):
        from swipe.keyboard import bundled_layout

        return [bundled_layout("qwerty_en")]  # not pickled with the curves: workers load it

    @property
    def num_points(self):
        return self._lengths.numpy()

    def swipe(self, index: int):
        from swipe.decoding.pipeline import Swipe

        layout = self.layouts[0]
        gen = np.random.default_rng(self.seed * 100_003 + int(index))
        n = int(self._lengths[index])
        x, y = gen.uniform(0, layout.width, n).round(), gen.uniform(0, layout.height, n).round()
        return Swipe(x, y, np.arange(n) * 20.0, layout.name)

    def batch(self, indices, x_scales=(1.0,)):
        from swipe.decoding.pipeline import Preprocessing, preprocess
        from swipe.decoding.torch_backend import collate_points

        layout = self.layouts[0]
        curves = [preprocess(self.swipe(i), layout, Preprocessing(None, None), scale)
                  for scale in x_scales for i in indices]
        lengths = np.array([len(c) for c in curves], np.int64)
        points = np.zeros((len(curves), int(lengths.max()), 3), np.float32)
        for row, c in enumerate(curves):
            points[row, : len(c)] = c
        return collate_points(points, lengths, np.zeros(len(curves), np.int64), self.layouts)
