"""Empty beam slots: the batched beam search skipping them against decoding them, side by side.

    nice -n 10 python bench/bench_slots.py                  # the transformer of the speed goals
    nice -n 10 python bench/bench_slots.py --checkpoint swipe/resources/models/en_hws \\
        --checkpoint swipe/resources/models/en_hws_transformer

Beam search decodes each step's hypotheses in slots, ``width`` per curve (the most live
hypotheses of any curve of the batch); a curve with fewer live hypotheses leaves slots empty
(``state.select`` with ``-1``), and the transformer decoder decodes only the filled ones. The
other way, as before, decodes every slot, the empty ones continuing their curve's first slot.
For each checkpoint this decodes the same curves (default: the 800 real English swipes, in
length-sorted batches as ``predict.py`` makes them, beam 8 with the 50,000-word English lexicon)
both ways, alternating the two on every batch, keeps the fastest of ``--repeats`` passes of
each, asserts identical candidates, and counts the decoded rows. One torch thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import REAL_EN_SWIPES, dataset_dir  # noqa: E402
from swipe.batch import SwipeBatch  # noqa: E402
from swipe.decoding import BeamOptions, build_generator  # noqa: E402
from swipe.decoding.trie import LexiconTrie  # noqa: E402
from swipe.lexicon import load_lexicon  # noqa: E402
from swipe.predict import DEFAULT_MAX_BATCH_POINTS, CheckpointLoader, DatasetCurves, make_batches  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "swipe" / "resources" / "models" / "en_hws_transformer"


class EverySlotState(NamedTuple):
    """A decoder state whose empty slots are decoded anyway: ``-1`` becomes the curve's slot 0."""

    inner: Any

    def select(self, beam_indices: Tensor) -> EverySlotState:
        return EverySlotState(self.inner.select(beam_indices.clamp(min=0)))

    def select_curves(self, curve_indices: Tensor) -> EverySlotState:
        return EverySlotState(self.inner.select_curves(curve_indices))


class RowCountingModel:
    """``model`` as it is; counts the rows each decoder step decodes (the filled slots)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.rows = 0

    def encode(self, swipe: SwipeBatch, swipe_pad_mask: Tensor) -> Tensor:
        return self.model.encode(swipe, swipe_pad_mask)

    def decode(
        self, tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, tokens_pad_mask: Tensor | None
    ) -> Tensor:
        return self.model.decode(tokens, memory, memory_pad_mask, tokens_pad_mask)

    def decode_step(self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: Any) -> Any:
        step = self.model.decode_step(last_tokens, memory, memory_pad_mask, state)
        slots = getattr(step.state, "slots", None)  # the transformer's filled slots; RNNs decode all
        self.rows += last_tokens.shape[0] if slots is None else len(slots)
        return step


class EverySlotModel(RowCountingModel):
    """``model`` with :class:`EverySlotState` states: every slot is decoded."""

    def decode_step(self, last_tokens: Tensor, memory: Tensor, memory_pad_mask: Tensor, state: Any) -> Any:
        inner = None if state is None else state.inner
        step = super().decode_step(last_tokens, memory, memory_pad_mask, inner)
        return step._replace(state=EverySlotState(step.state))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", action="append",
                        help="checkpoint, run or exported model (repeatable)")
    parser.add_argument("--data", default=str(REAL_EN_SWIPES), help="swipes (jsonl) or a built dataset")
    parser.add_argument("--lexicon", default="en")
    parser.add_argument("--beam-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; beam {args.beam_size}, lexicon {args.lexicon}, "
          f"batches of up to {args.batch_size} curves\n")
    print("| model | empty slots | curves/s | decoded rows | speed-up |")
    print("| --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="bench-slots-") as tmp:
        data = dataset_dir(Path(args.data), Path(tmp))
        for checkpoint in args.checkpoint or [str(DEFAULT_CHECKPOINT)]:
            loaded = CheckpointLoader(Path(checkpoint)).load("cpu")
            trie = LexiconTrie.from_lexicon(load_lexicon(args.lexicon), loaded.tokenizer)
            curves = DatasetCurves.for_model(data, loaded)
            batches = [curves.batch(rows) for rows in
                       make_batches(curves.num_points, args.batch_size, DEFAULT_MAX_BATCH_POINTS)]
            options = BeamOptions(beam_size=args.beam_size)
            ways = {"skipped": RowCountingModel(loaded.model), "decoded": EverySlotModel(loaded.model)}
            searches = {name: build_generator("beam", options, model, loaded.tokenizer, trie)
                        for name, model in ways.items()}
            seconds = {name: [0.0] * args.repeats for name in ways}
            outputs: dict[str, list] = {name: [] for name in ways}
            for repeat in range(args.repeats):
                for model in ways.values():
                    model.rows = 0
                for swipe, pad in batches:
                    for name, search in searches.items():
                        start = time.perf_counter()
                        rows = search.generate(swipe, pad)
                        seconds[name][repeat] += time.perf_counter() - start
                        if repeat == 0:
                            outputs[name] += rows
            assert outputs["skipped"] == outputs["decoded"], "skipping empty slots changed the candidates"
            fastest = {name: min(values) for name, values in seconds.items()}
            for name in ways:
                rate = len(curves) / fastest[name]
                ratio = fastest["decoded"] / fastest[name]
                print(f"| {checkpoint} | {name} | {rate:.1f} | {ways[name].rows:,} | {ratio:.2f}x |")
    print("\nCandidates (words and scores) identical on every curve.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
