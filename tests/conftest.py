"""Shared test settings."""

from pathlib import Path

import pytest
import torch

# The test models are tiny: one thread avoids thread start-up overhead dominating every op, and
# leaves the second core to the subprocesses some tests start.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def onnx_folders(tmp_path_factory) -> dict[str, Path]:
    """ONNX folders of the shipped models by name (``onnx_folders["en_hws"]``), each exported on
    first use and shared by the test files that read them."""
    from swipe.export import main as export_main

    root = tmp_path_factory.mktemp("onnx_folders")

    class Folders(dict):
        def __missing__(self, name: str) -> Path:
            assert export_main([name, "--format", "onnx", "--out", str(root / name)]) == 0
            self[name] = root / name
            return self[name]

    return Folders()


@pytest.fixture(scope="module")
def export_folder(tmp_path_factory) -> Path:
    """A small but complete ONNX export folder: hand-made graphs, a six-word lexicon, a tiny layout."""
    from test_fuzz import make_export_folder

    return make_export_folder(tmp_path_factory.mktemp("export"))
