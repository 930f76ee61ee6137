"""The registry of shipped models: which model decodes which layouts."""

from __future__ import annotations

import pytest
from test_export import write_training_checkpoint

from swipe import shipped
from swipe.export import export_checkpoint
from swipe.keyboard import bundled_layout
from swipe.shipped import ShippedModelError, list_shipped_models, shipped_model_for_layouts
from swipe.training.checkpoint import load_model


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A models folder like ``swipe/resources/models``: an English and a Russian model."""
    root = tmp_path_factory.mktemp("registry")
    work = tmp_path_factory.mktemp("checkpoints")
    models = (("en_hws", ["hws_fitted"], "en"), ("ru_yandex", ["default", "extra"], "ru"))
    for folder, names, lexicon in models:
        write_training_checkpoint(work / f"{folder}.pt", [bundled_layout(n) for n in names], name=folder,
                                  lexicon=lexicon, d_model=16)
        (root / folder).mkdir()
        export_checkpoint(work / f"{folder}.pt", root / folder / "model.pt")
    (root / "en_hws" / "card.md").write_text("# en_hws\n", "utf-8")
    (root / "notes").mkdir()  # no model.pt: not a model
    return root


@pytest.fixture()
def patched(registry, monkeypatch):
    monkeypatch.setattr(shipped, "MODELS_DIR", registry)
    return registry


def test_layouts_map_to_the_model_trained_on_them(patched):
    assert shipped_model_for_layouts(["hws_fitted"]) == patched / "en_hws" / "model.pt"
    assert shipped_model_for_layouts(["default"]) == patched / "ru_yandex" / "model.pt"
    assert shipped_model_for_layouts(("extra", "default", "extra")) == patched / "ru_yandex" / "model.pt"
    # Same letters, another geometry: the English model's features would not fit.
    assert shipped_model_for_layouts(["qwerty_en"]) is None
    assert shipped_model_for_layouts(["hws_fitted", "default"]) is None
    assert shipped_model_for_layouts([]) is None


def test_list_describes_each_model(patched):
    models = list_shipped_models()
    assert [m.name for m in models] == ["en_hws", "ru_yandex"]
    en, ru = models
    assert en.layout_names == ("hws_fitted",) and en.lexicon == "en" and en.step == 500
    assert en.card == patched / "en_hws" / "card.md" and ru.card is None
    assert ru.layout_names == ("default", "extra") and ru.lexicon == "ru"
    loaded = load_model(ru.path)
    assert [layout.name for layout in loaded.layouts] == ["default", "extra"]


def test_missing_root_has_no_models_and_a_damaged_file_is_an_error(tmp_path, registry):
    assert list_shipped_models(tmp_path / "none") == []
    assert shipped_model_for_layouts(["hws_fitted"], root=tmp_path / "none") is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.pt").write_bytes(b"truncated")
    with pytest.raises(ShippedModelError, match="shipped model broken: .*model.pt"):
        list_shipped_models(tmp_path)


def test_the_bundled_registry_is_readable():
    # The models folder may be empty in a checkout; whatever it holds must load and say its layouts.
    for model in list_shipped_models():
        assert model.layout_names and model.path.name == "model.pt"
        assert shipped_model_for_layouts(model.layout_names) is not None
