"""The whole chain as a user runs it: train.py -> predict.py -> evaluate.py, on a tiny synthetic set."""

import json
import subprocess
import sys
from pathlib import Path

from swipe.predictions import read_predictions
from swipe.results import read_results

ROOT = Path(__file__).resolve().parents[1]

NUM_VAL = 12

TINY_CONFIG = {
    "name": "tiny_e2e",
    "model": {
        "embedder": {"name": "weighted"},
        "transformer": {
            "d_model": 16,
            "encoder": "transformer",
            "num_encoder_layers": 1,
            "num_decoder_layers": 1,
            "num_heads": 2,
            "dim_feedforward": 32,
            "dropout": 0.0,
        },
    },
    "data": {
        "synthetic": {"layouts": ["qwerty_en"], "lexicon": "en", "num_train": 48, "num_val": NUM_VAL},
        "batch_size": 16,
    },
    "lexicon": "en",
    "max_steps": 3,
    "device": "cpu",
    "schedule": {"warmup_steps": 1},
    "validation": {"every_steps": 3},
    "logging": {"tensorboard": False, "progress_bar": False},
}


def run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_train_predict_evaluate(tmp_path):
    run_dir = tmp_path / "run"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(dict(TINY_CONFIG, run_dir=str(run_dir))))

    run([ROOT / "train.py", "--config", config], tmp_path)
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("*.pt"))
    assert "last.pt" in checkpoints or "best.pt" in checkpoints, checkpoints

    preds = tmp_path / "preds.pkl"
    predict_args = ["--checkpoint", run_dir, "--beam-size", 2, "--out", preds, "--quiet"]
    run([ROOT / "predict.py", *predict_args], tmp_path)
    predictions = read_predictions(preds)
    assert len(predictions) == NUM_VAL
    assert predictions.num_with_targets == NUM_VAL  # the validation split has targets
    assert predictions.metadata["split"] == "val"
    assert predictions.metadata["generator"] == "beam"

    results = tmp_path / "results.csv"
    out = run([ROOT / "evaluate.py", preds, "--results", results], tmp_path).stdout
    assert "swipe_mrr" in out and f"curves       {NUM_VAL}" in out
    assert len(read_results(results)) == 1
