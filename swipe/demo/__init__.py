"""A live swipe demo in the browser and a recorder of real swipes: ``python -m swipe.demo``.

From Python::

    from swipe.demo import DemoServer, Engine
    server = DemoServer(("127.0.0.1", 0), Engine("en_hws"))
    print(server.url); server.serve_forever()

The names are imported on first use, so ``python -m swipe.demo --help`` does not load PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swipe.demo.engine import MAX_POINTS, AttentionView, Decoded, Engine, RequestError, Swipe
    from swipe.demo.recorder import PromptList, Recorder
    from swipe.demo.server import MAX_BODY_BYTES, DemoServer

# Each public name and the module it lives in.
_MODULES = {
    "MAX_POINTS": "engine", "AttentionView": "engine", "Decoded": "engine", "Engine": "engine",
    "RequestError": "engine", "Swipe": "engine", "PromptList": "recorder", "Recorder": "recorder",
    "MAX_BODY_BYTES": "server", "DemoServer": "server",
}

__all__ = ["MAX_BODY_BYTES", "MAX_POINTS", "AttentionView", "Decoded", "DemoServer", "Engine", "PromptList",
           "Recorder", "RequestError", "Swipe"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"swipe.demo.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'swipe.demo' has no attribute {name!r}")
