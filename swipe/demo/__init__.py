"""A live swipe demo in the browser and a recorder of real swipes: ``python -m swipe.demo``.

From Python::

    from swipe.demo import DemoServer, Engine
    server = DemoServer(("127.0.0.1", 0), Engine("en_hws"))
    print(server.url); server.serve_forever()
"""

from swipe.demo.engine import MAX_POINTS, AttentionView, Decoded, Engine, RequestError, Swipe
from swipe.demo.recorder import PromptList, Recorder
from swipe.demo.server import MAX_BODY_BYTES, DemoServer

__all__ = ["MAX_BODY_BYTES", "MAX_POINTS", "AttentionView", "Decoded", "DemoServer", "Engine", "PromptList",
           "Recorder", "RequestError", "Swipe"]
