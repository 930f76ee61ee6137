"""Parameter counts and sizes of the model presets, optionally with single-swipe CPU latency.

    python bench/model_sizes.py                      # sizes for the Yandex Cup layouts
    python bench/model_sizes.py --layouts qwerty_en  # another alphabet
    nice -n 10 python bench/model_sizes.py --latency # + encode and 12 greedy steps, batch 1

Sizes count parameters only (buffers are rebuilt from the layouts). Latency is the median of
``--repeats`` runs on one CPU thread; a swipe of ``--points`` points.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swipe.batch import FEATURE_NAMES, SwipeBatch  # noqa: E402
from swipe.keyboard import bundled_layout  # noqa: E402
from swipe.models import PRESETS, EncoderDecoder, build_model  # noqa: E402
from swipe.tokenizers import CharTokenizer  # noqa: E402


def single_swipe_latency_ms(model: EncoderDecoder, num_points: int, num_steps: int, repeats: int) -> float:
    """Median milliseconds to encode one swipe and run ``num_steps`` greedy decoding steps."""
    gen = torch.Generator().manual_seed(0)
    swipe = SwipeBatch(
        coords=torch.rand(1, num_points, 2, generator=gen) * 600,
        features=torch.randn(1, num_points, len(FEATURE_NAMES), generator=gen),
        nearest_keys=torch.randint(0, 20, (1, num_points), generator=gen),
        layout_ids=torch.zeros(1, dtype=torch.int64),
        lengths=torch.tensor([num_points]),
    )
    mask = torch.zeros(1, num_points, dtype=torch.bool)
    sos = torch.tensor([model.tokenizer.sos_id])
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 2):
            start = time.perf_counter()
            memory = model.encode(swipe, mask)
            tokens, state = sos, None
            for _ in range(num_steps):
                step = model.decode_step(tokens, memory, mask, state)
                tokens, state = step.logits.argmax(-1), step.state
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layouts", nargs="+", default=["default", "extra"], help="bundled layout names")
    parser.add_argument("--latency", action="store_true", help="also time single-swipe greedy decoding")
    parser.add_argument("--points", type=int, default=60, help="points per swipe for --latency")
    parser.add_argument("--steps", type=int, default=12, help="greedy steps for --latency")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs for --latency")
    args = parser.parse_args()

    torch.set_num_threads(1)
    layouts = [bundled_layout(name) for name in args.layouts]
    tokenizer = CharTokenizer.from_layouts(layouts)
    print(f"layouts: {', '.join(args.layouts)}; alphabet: {len(tokenizer.alphabet)} characters")
    header = f"{'preset':<8} {'architecture':<26} {'embedder':<10} {'parameters':>11}"
    header += f" {'fp32 MB':>8} {'fp16 MB':>8}"
    if args.latency:
        header += f" {'1-swipe ms':>11}"
    print(header)
    print("-" * len(header))
    for name, config in PRESETS.items():
        torch.manual_seed(0)
        model = build_model(config, layouts, tokenizer).eval()
        params = sum(p.numel() for p in model.parameters())
        if config.transformer is not None:
            t = config.transformer
            arch = f"{t.encoder} {t.num_encoder_layers}+{t.num_decoder_layers} d{t.d_model}"
        else:
            assert config.rnn is not None
            r = config.rnn
            arch = f"bi-{r.cell} {r.num_encoder_layers}x{r.encoder_hidden_size} + att-{r.cell}"
        row = (
            f"{name:<8} {arch:<26} {config.embedder.name:<10} {params:>11,} "
            f"{params * 4 / 2**20:>8.2f} {params * 2 / 2**20:>8.2f}"
        )
        if args.latency:
            row += f" {single_swipe_latency_ms(model, args.points, args.steps, args.repeats):>11.1f}"
        print(row)


if __name__ == "__main__":
    main()
