"""The pre-trained models shipped with the package, found by the layouts they decode.

Kept for one release: these names now live in :mod:`swipe.model_files`; import them from there. ::

    from swipe.model_files import resolve_model, shipped_model_for_layouts
    path = shipped_model_for_layouts(["hws_fitted"])     # .../en_hws/model.pt, or None
    path = resolve_model("en_hws")                       # a shipped model by name (or any path)
"""

from __future__ import annotations

from swipe.model_files import (
    CARD_FILE,
    DECODING_FILE,
    MODEL_FILE,
    MODELS_DIR,
    DecodingSettings,
    ModelNotFoundError,
    ShippedModel,
    ShippedModelError,
    list_shipped_models,
    read_decoding_settings,
    resolve_model,
    shipped_model_for_layouts,
    shipped_names,
)

__all__ = [
    "CARD_FILE", "DECODING_FILE", "MODELS_DIR", "MODEL_FILE", "DecodingSettings", "ModelNotFoundError",
    "ShippedModel", "ShippedModelError", "list_shipped_models", "read_decoding_settings", "resolve_model",
    "shipped_model_for_layouts", "shipped_names",
]
