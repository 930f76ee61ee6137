"""bench/gpu_run.sh, the one-call GPU run, at its tiny scale on the CPU (``--dry-run``).

The dry run takes one to three minutes on two cores, so it is marked slow:

    python -m pytest -q -m slow tests/test_gpu_run.py
    bash bench/gpu_run.sh --dry-run --out /tmp/gpu-dry       # the same by hand
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_run.sh"
HELPERS = ROOT / "bench" / "gpu_run.py"
RECIPE = ROOT / "swipe" / "resources" / "models" / "en_hws" / "config.json"


def run_script(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_dry_run_brings_back_the_model_the_log_and_the_tables(tmp_path):
    from swipe.training import load_model

    out = tmp_path / "out"
    env = {"PYTHON": sys.executable, "SWIPE_GPU_WORK": str(tmp_path / "work")}
    done = run_script(["--dry-run", "--out", str(out)], env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # What the GPU machine sends back: at most 8 files, at most two folders down.
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["logs.tar.gz", "model/config.json", "model/decoding.json", "model/model.pt",
                     "summary.md", "throughput.md", "train.log"]

    loaded = load_model(out / "model")
    transformer = loaded.config.model.transformer
    assert transformer is not None and transformer.encoder == "conformer" and loaded.step == 4
    assert json.loads((out / "model" / "config.json").read_text())["init_from"].endswith("en_hws")
    assert "gpu_en_hws: stopped (max_steps) at step 4" in (out / "train.log").read_text()
    assert "| cpu (1 threads) | fp32 | 32 |" in (out / "throughput.md").read_text()
    summary = (out / "summary.md").read_text()
    for phase in ("tests", "synth_plan", "synth", "build_val", "build", "throughput_32", "config", "train",
                  "export", "real"):
        assert f"| {phase} | ok |" in summary, summary
    assert "| swipe/resources/models/en_hws | 5586 | beam | beam=8 prior=0.3 |" in summary, summary
    assert "- built train: 400 curves" in summary and "- built val: 100 curves" in summary, summary


def test_a_mistyped_training_key_stops_the_run_before_it_starts(tmp_path):
    done = subprocess.run(
        [sys.executable, str(HELPERS), "config", str(RECIPE), str(tmp_path / "run.json"),
         "--set", "data.batch_sise=512"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "data.batch_sise: unknown key (did you mean 'batch_size'?)" in done.stderr


def test_the_script_refuses_a_results_folder_that_is_not_empty(tmp_path):
    (tmp_path / "summary.md").write_text("an earlier run\n")
    done = run_script(["--dry-run", "--out", str(tmp_path)], {"PYTHON": sys.executable}, timeout=60)
    assert done.returncode == 2 and "is not empty" in done.stderr
    assert (tmp_path / "summary.md").read_text() == "an earlier run\n"
