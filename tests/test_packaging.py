"""The repository stays light and self-contained, and the package installs with its data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TREE_BYTES = 20 * 1024 * 1024


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def test_tracked_files_stay_small():
    files = _tracked_files()
    big = [f"{f.relative_to(ROOT)} ({f.stat().st_size / 2**20:.1f} MB)" for f in files
           if f.stat().st_size > MAX_FILE_BYTES]
    assert not big, f"tracked files over 5 MB: {big}"
    total = sum(f.stat().st_size for f in files)
    assert total <= MAX_TREE_BYTES, f"the tracked tree is {total / 2**20:.1f} MB (at most 20 MB)"


def test_no_training_checkpoint_is_tracked():
    models = ROOT / "swipe" / "resources" / "models"
    weights = [f for f in _tracked_files() if f.suffix in {".pt", ".pth", ".ckpt"}]
    stray = [str(f.relative_to(ROOT)) for f in weights if f.parent.parent != models or f.name != "model.pt"]
    assert not stray, f"checkpoints outside swipe/resources/models/<name>/model.pt: {stray}"


def test_nothing_reads_outside_the_repository():
    # A user who clones the repository has only the repository.
    places = [ROOT / "README.md", *(ROOT / d for d in ("swipe", "bench", "configs", "docs", "tests"))]
    offending = []
    for place in places:
        for path in [place] if place.is_file() else sorted(place.rglob("*")):
            if path.suffix in {".py", ".md", ".json", ".sh"} and path != Path(__file__):
                if "../shared" in path.read_text(encoding="utf-8"):
                    offending.append(str(path.relative_to(ROOT)))
    assert not offending, f"files referring to ../shared: {offending}"


def test_every_shipped_model_has_its_weights_card_and_config():
    from swipe.resources import REAL_EN_SWIPES
    from swipe.shipped import MODELS_DIR

    for folder in sorted(p for p in MODELS_DIR.iterdir() if p.is_dir()):
        for name in ("model.pt", "card.md", "config.json"):
            assert (folder / name).is_file(), f"{folder.name} has no {name}"
    assert REAL_EN_SWIPES.is_file()


def test_the_installed_package_works_from_any_folder(tmp_path):
    # Build a wheel, install it into a fresh virtual environment outside the clone and use it from
    # elsewhere: the bundled layouts, lexicons, models, swipes and configs travel with the package,
    # and the clone's train.py, predict.py and evaluate.py are its commands.
    # The build runs on a copy of what it reads, so it leaves no build/ or egg-info in the checkout.
    source, wheels, venv, elsewhere = (tmp_path / d for d in ("source", "wheels", "venv", "elsewhere"))
    elsewhere.mkdir()
    shutil.copytree(ROOT / "swipe", source / "swipe", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "-w", str(wheels)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("swipe-*.whl")
    # The venv sees this interpreter's packages (torch, numpy) through a .pth file, not the clone.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    outer = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (Path(site) / "outer.pth").write_text("\n".join(outer) + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    script = (
        "import swipe, swipe.resources as r\n"
        "from swipe.keyboard import bundled_layout\n"
        "from swipe.lexicon import load_lexicon\n"
        "from swipe.shipped import list_shipped_models\n"
        "from swipe.training import load_config_for_run, load_model\n"
        "print(swipe.__file__)\n"
        "print(sorted(m.name for m in list_shipped_models()))\n"
        "print(bundled_layout('hws_fitted').name, len(load_lexicon('ru')), r.REAL_EN_SWIPES.is_file())\n"
        "print(type(load_model(list_shipped_models()[0].path).model).__name__)\n"
        "print(load_config_for_run(None, None, False).name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([python, "-c", script], cwd=elsewhere, env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[0].startswith(site)
    assert out[1] == str(["en_hws", "en_hws_transformer", "ru_yandex"])
    assert out[2] == "hws_fitted 50000 True"
    assert out[3].endswith("EncoderDecoder")
    assert out[4] == "quickstart_en"  # python -m swipe.train with no config: the bundled quickstart
    for command in ("train", "predict", "evaluate"):
        for argv in ([python, "-m", f"swipe.{command}"], [bin_dir / f"swipe-{command}"]):
            done = subprocess.run([*argv, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True)
            assert done.returncode == 0 and "usage:" in done.stdout, (argv, done.stderr[-2000:])
    swipes = subprocess.run([bin_dir / "swipe-predict", "--data", "nowhere.jsonl"], cwd=elsewhere, env=env,
                            capture_output=True, text=True)
    assert (swipes.returncode, swipes.stderr.strip()) == (
        2, "predict.py: error: nowhere.jsonl: no such data file or dataset directory")
