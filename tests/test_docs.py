"""The user docs stay short, their links resolve, and every Python snippet in them runs."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _snippets() -> list:
    cases = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            name = f"{doc.relative_to(ROOT)}:{line}"
            cases.append(pytest.param(match.group(1), id=name))
    return cases


# What a snippet importing these needs beyond requirements.txt (requirements-export.txt).
EXTRAS = {"swipe.runtime": ("onnxruntime",), "swipe.onnx_export": ("onnx", "onnxscript", "onnxruntime")}


def missing_extras(code: str) -> list[str]:
    """The packages ``code`` needs (through the modules of EXTRAS it imports) that are not installed."""
    needed = {name for module, names in EXTRAS.items()
              if re.search(rf"^\s*(from|import) {re.escape(module)}\b", code, re.M) for name in names}
    return sorted(name for name in needed if importlib.util.find_spec(name) is None)


@pytest.mark.parametrize("code", _snippets())
def test_python_snippet_runs(code, tmp_path):
    missing = missing_extras(code)
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (pip install -r requirements-export.txt)")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)  # an ONNX export takes minutes on a busy machine
    assert result.returncode == 0, f"snippet failed:\n{code}\n--- stderr ---\n{result.stderr[-3000:]}"


def test_readme_fits_on_a_few_screens():
    size = len((ROOT / "README.md").read_text(encoding="utf-8"))
    assert size <= 12_000, f"README.md is {size} characters (at most 12,000)"


def test_user_docs_stay_under_100_kb():
    total = sum(doc.stat().st_size for doc in DOCS)
    assert total <= 100_000, f"README.md and docs/ hold {total} bytes (at most 100 KB)"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        if path and not (doc.parent / path).exists():
            broken.append(target)
    assert not broken, f"{doc.name}: links to missing files: {broken}"
