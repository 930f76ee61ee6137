"""Train a swipe decoder (python train.py, python -m swipe.train or swipe-train).

    python train.py                                           # the bundled English quickstart
    python train.py --config configs/base_weighted_en.json    # any config
    python train.py --config configs/base_weighted_en.json --resume   # continue where it stopped
    python train.py --max-minutes 50                          # stop with a checkpoint within 50 min
    torchrun --nproc_per_node=2 train.py --config configs/base_weighted_en.json   # several processes

See docs/training.md for every config key and the run directory layout.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from typing import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        help="training config JSON (default: configs/quickstart_en.json; with --resume, the run's own)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from <run_dir>/checkpoints/last.pt")
    parser.add_argument("--run-dir", help="run directory (default: the config's run_dir, else runs/<name>)")
    parser.add_argument("--max-minutes", type=float, help="wall-clock budget; ends with a checkpoint in time")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the config's device")
    parser.add_argument("--threads", type=int, help="override the config's num_threads (CPU threads)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (there is none anyway when the output is not a terminal)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from swipe.config import ConfigError
    from swipe.training import (
        CheckpointError,
        DataError,
        NonFiniteLossError,
        TrainingError,
        load_config_for_run,
        train,
    )

    try:
        config = load_config_for_run(args.config, args.run_dir, args.resume)
        if args.max_steps is not None:
            config = dataclasses.replace(config, max_steps=args.max_steps)
        if args.device is not None:
            config = dataclasses.replace(config, device=args.device)
        if args.threads is not None:
            config = dataclasses.replace(config, num_threads=args.threads)
        if args.quiet:
            quiet = dataclasses.replace(config.logging, progress_bar=False)
            config = dataclasses.replace(config, logging=quiet)
        result = train(config, resume=args.resume, max_minutes=args.max_minutes, run_dir=args.run_dir)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ConfigError, TrainingError, DataError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.stop_reason == "signal":
        return 128 + int(signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
