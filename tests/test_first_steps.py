"""A new user's first steps: the README's and docs/onnx.md's commands, run in order as written (on a
tiny config and a few swipes), and the messages for the first mistakes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = "swipe/resources/swipes/hws_real_en_dev.jsonl"
FENCE = re.compile(r"^```(bash|python)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def steps(doc: str, replace: dict[str, str]) -> list[tuple[str, str]]:
    """The doc's commands in order: ``("bash", line)`` for each line of a bash block that runs
    ``python`` (not pip), ``("python", code)`` for each Python block; each with ``replace`` applied."""
    found = []
    for kind, body in FENCE.findall((ROOT / doc).read_text(encoding="utf-8")):
        lines = [body] if kind == "python" else [
            line for line in body.splitlines() if line.startswith("python ") and " pip " not in line]
        for text in lines:
            for old, new in replace.items():
                text = text.replace(old, new)
            found.append((kind, text))
    return found


def walk(doc: str, where: Path, replace: dict[str, str]) -> None:
    """Run the doc's commands in ``where``, in order, each expected to succeed."""
    for name in ("train.py", "predict.py", "evaluate.py"):
        (where / name).symlink_to(ROOT / name)
    (where / "swipe").symlink_to(ROOT / "swipe")  # the doc's paths into the package
    for kind, text in steps(doc, replace):
        argv = ["bash", "-c", text] if kind == "bash" else [sys.executable, "-c", text]
        done = subprocess.run(argv, cwd=where, env=ENV, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{doc}: {text}\n{done.stderr[-3000:]}"


def few_swipes(where: Path, count: int) -> str:
    """The first ``count`` real swipes in a file of ``where``; its name."""
    lines = (ROOT / REAL).read_text(encoding="utf-8").splitlines(keepends=True)[:count]
    (where / "few.jsonl").write_text("".join(lines), encoding="utf-8")
    return "few.jsonl"


def tiny_quickstart(where: Path) -> str:
    """The quickstart config at a few seconds' size; its file name."""
    config = json.loads((ROOT / "configs" / "quickstart_en.json").read_text(encoding="utf-8"))
    config["model"]["transformer"].update(d_model=16, dim_feedforward=32, num_heads=2)
    config["data"]["synthetic"].update(num_train=256, num_val=16)
    config["data"].update(train="data/tiny/train", val="data/tiny/val", batch_size=32)
    config.update(name="tiny_quickstart", max_steps=8)
    config["validation"].update(every_steps=4, max_curves=16)
    config["schedule"]["warmup_steps"] = 2
    (where / "tiny.json").write_text(json.dumps(config), encoding="utf-8")
    return "tiny.json"


def test_the_readme_runs_top_to_bottom(tmp_path):
    # The decode quickstart, then the train line: each writes its own predictions file.
    replace = {REAL: few_swipes(tmp_path, 12), "python train.py": f"python train.py --config "
               f"{tiny_quickstart(tmp_path)}"}
    assert [kind for kind, _ in steps("README.md", replace)] == ["bash"] * 3 + ["python"]
    walk("README.md", tmp_path, replace)
    assert {"real.pkl", "preds.pkl", "results.csv"} <= {p.name for p in tmp_path.iterdir()}


EXPORT_REQUIREMENTS = ("onnx", "onnxscript", "onnxruntime")


@pytest.mark.slow  # an ONNX export: minutes on a busy 2-core machine
@pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in EXPORT_REQUIREMENTS),
                    reason="needs onnx, onnxscript, onnxruntime (pip install -r requirements-export.txt)")
def test_the_onnx_page_runs_top_to_bottom(tmp_path):
    # Its export and decode lines, then its Python snippet, which exports beside the first folder.
    walk("docs/onnx.md", tmp_path, {REAL: few_swipes(tmp_path, 4)})
    assert len((tmp_path / "preds.jsonl").read_text(encoding="utf-8").splitlines()) == 4
    assert (tmp_path / "en_onnx" / "encoder.int8.onnx").is_file()


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=120)


def test_predict_on_a_file_that_is_not_swipes_says_so():
    done = run("predict.py", "--data", "README.md")
    assert done.returncode == 2
    assert done.stderr.startswith("predict.py: error: README.md: not swipe data (line 1: ")


def test_evaluate_on_the_runtimes_json_lines_says_what_it_reads(tmp_path):
    (tmp_path / "preds.jsonl").write_text('{"word": "a", "candidates": [[-0.1, "a"]]}\n', encoding="utf-8")
    done = run(str(ROOT / "evaluate.py"), "preds.jsonl", cwd=tmp_path)
    assert done.returncode == 1
    assert "not a predictions file; evaluate.py reads what predict.py writes" in done.stderr


def test_the_runtime_without_onnxruntime_says_what_to_install(tmp_path):
    # An onnxruntime that cannot be imported stands for one that is not installed.
    (tmp_path / "onnxruntime.py").write_text("raise ModuleNotFoundError(\"No module named 'onnxruntime'\", "
                                             "name='onnxruntime')\n", encoding="utf-8")
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ENV['PYTHONPATH']}"}
    helped = subprocess.run([sys.executable, "-m", "swipe.runtime", "--help"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0 and "requirements-export.txt" in helped.stdout
    done = subprocess.run([sys.executable, "-m", "swipe.runtime", "en_onnx", "few.jsonl"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (
        2, "swipe.runtime: error: onnxruntime is not installed: pip install -r requirements-export.txt\n")


@pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in EXPORT_REQUIREMENTS),
                    reason="needs onnx, onnxscript, onnxruntime (pip install -r requirements-export.txt)")
def test_an_export_over_files_names_the_way_to_replace_them_for_python_and_for_the_shell(tmp_path):
    from swipe.onnx_export import export_onnx

    (tmp_path / "en_onnx").mkdir()
    (tmp_path / "en_onnx" / "model.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileExistsError, match=r"overwrite=True replaces them"):
        export_onnx("en_hws_transformer", tmp_path / "en_onnx")
    done = run("-m", "swipe.export", "en_hws_transformer", "--format", "onnx", "--out", "en_onnx",
               cwd=tmp_path)
    assert done.returncode == 2 and "pass --overwrite" in done.stderr, done.stderr
