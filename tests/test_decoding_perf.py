"""What keeps the batched beam search fast: each curve's memory is read once for all its
hypotheses (never copied per hypothesis), and a step decodes only as many rows per curve as the
curve with the most live hypotheses needs."""

from __future__ import annotations

import pytest
import torch
from test_decoding_models import LAYOUT, TOKENIZER, random_batch, tiny

from swipe.decoding import BeamOptions, LexiconTrie, build_generator
from swipe.decoding.naive import NaiveBeamSearch
from swipe.models import build_model

SHORT_WORDS = ["a", "an", "and", "ant", "any", "at", "ate", "the", "then", "they", "to", "top", "tops"]


class RecordingModel(torch.nn.Module):
    """A model that records the shapes ``decode_step`` is called with."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls: list[tuple[int, int, int]] = []  # (token rows, memory rows, memory rows in state)

    def encode(self, swipe, swipe_pad_mask):
        return self.model.encode(swipe, swipe_pad_mask)

    def decode_step(self, last_tokens, memory, memory_pad_mask, state):
        step = self.model.decode_step(last_tokens, memory, memory_pad_mask, state)
        self.calls.append((last_tokens.shape[0], memory.shape[0], step.state.num_curves))
        return step


@pytest.mark.parametrize("name", ["base", "rnn"])
def test_beam_search_keeps_one_memory_row_per_curve_and_shrinks(name):
    torch.manual_seed(0)
    model = build_model(tiny(name), [LAYOUT], TOKENIZER).eval()
    # Words of many lengths along few paths: hypotheses finish at different steps.
    trie = LexiconTrie.from_words(SHORT_WORDS, None, TOKENIZER)
    swipe, pad = random_batch(6, seed=3)
    recording = RecordingModel(model)
    options = BeamOptions(beam_size=4)
    out = build_generator("beam", options, recording, TOKENIZER, trie).generate(swipe, pad)
    assert out == build_generator("beam", options, model, TOKENIZER, trie).generate(swipe, pad)
    assert recording.calls[0] == (6, 6, 6)  # one <sos> per curve
    widths = []
    for rows, curves, state_curves in recording.calls:
        assert curves == state_curves and rows % curves == 0
        widths.append(rows // curves)
    # Never more than beam_size rows per curve, and fewer as words finish and prefixes run out.
    assert max(widths) <= 4
    assert any(later < earlier for earlier, later in zip(widths[:-1], widths[1:], strict=True))
    naive = NaiveBeamSearch(model, TOKENIZER, options, trie).generate(swipe, pad)
    assert [[w for _, w in row] for row in out] == [[w for _, w in row] for row in naive]


def test_training_mode_step_equals_the_eval_step():
    """The eval-mode decoder step is written with functional ops; in training mode the modules'
    own path runs. Without dropout both compute the same logits."""
    from swipe.models.attention import MultiHeadAttention

    torch.manual_seed(0)
    model = build_model(tiny("base"), [LAYOUT], TOKENIZER)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, MultiHeadAttention):
            module.dropout = 0.0
    swipe, pad = random_batch(3, seed=4)
    tokens = torch.randint(1, TOKENIZER.num_output_tokens, (6, 4))
    beams = torch.tensor([[1, 0], [1, 1], [0, 1]])
    logits = {}
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            memory = model.encode(swipe, pad)
            state, out = None, []
            for i in range(tokens.shape[1]):
                step = model.decode_step(tokens[:, i], memory, pad, state)
                out.append(step.logits)
                state = step.state.select(beams)
        logits[training] = torch.stack(out)
    torch.testing.assert_close(logits[True], logits[False], atol=2e-5, rtol=1e-4)
