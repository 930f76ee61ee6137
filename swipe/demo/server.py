"""The demo's HTTP server (standard library only): the page, its static files and a small JSON API.

Routes::

    GET  /                  the page (static/index.html)
    GET  /static/<file>     its scripts and styles
    GET  /api/info          the model: name, layouts (grids), whether it records
    POST /api/decode        {layout, x, y, t} -> {candidates: [{word, score}], decode_ms}
    POST /api/attention     {layout, x, y, t, word} -> {word, points, layers}
    POST /api/template      {layout, word} -> {points}
    GET  /api/prompt?layout=N          recording: the next word to swipe
    POST /api/record        {layout, word, x, y, t, device} -> {recorded}

A bad request gets a 4xx answer whose body is ``{"error": "<one line>"}``; the server goes on.
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from swipe.demo.engine import Engine, RequestError
from swipe.demo.recorder import PromptList, Recorder, device_info

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 1 << 20
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}


class _HTTPError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class DemoServer(ThreadingHTTPServer):
    """A threading HTTP server that holds the demo's engine and, when recording, its recorder.

    Parameters
    ----------
    address : (host, port)
        Where to listen; port 0 picks a free one.
    engine : Engine
        The model.
    recorder : Recorder, optional
        Where recorded swipes go; None: no recording.
    prompts : PromptList, optional
        The words to prompt when recording.
    quiet : bool
        Log no requests.
    """

    daemon_threads = True
    request_queue_size = 128  # the default 5 resets connections when many clients connect at once

    def __init__(self, address: tuple[str, int], engine: Engine, recorder: Recorder | None = None,
                 prompts: PromptList | None = None, quiet: bool = False) -> None:
        super().__init__(address, DemoHandler)
        self.engine = engine
        self.recorder = recorder
        self.prompts = prompts
        self.quiet = quiet

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class DemoHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests (see the routes above); errors become JSON answers."""

    server: DemoServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for the
    # client's delayed acknowledgement of the headers (40 ms on Linux) on a kept-alive connection.
    disable_nagle_algorithm = True
    timeout = 60  # seconds a connection may stay silent (a client that never sends its body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if not self.server.quiet:
            super().log_message(format, *args)

    # ---- dispatch ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (the base class's naming)
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _answer(self, route: Any) -> None:
        try:
            route()
        except _HTTPError as err:
            if self.command == "POST":  # the body may be left unread: the connection cannot go on
                self.close_connection = True
            self._send_json({"error": str(err)}, err.status)
        except RequestError as err:
            self._send_json({"error": str(err)}, HTTPStatus.BAD_REQUEST)
        except Exception as err:  # a bug: answer it, log it, keep serving
            self.log_error("%s on %s: %s", type(err).__name__, self.path, err)
            error = {"error": f"internal error: {type(err).__name__}"}
            self._send_json(error, HTTPStatus.INTERNAL_SERVER_ERROR)

    def _get(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        engine = self.server.engine
        if path in ("/", "/index.html"):
            self._send_file(STATIC_DIR / "index.html")
        elif path.startswith("/static/"):
            self._send_file(_static_file(path[len("/static/"):]))
        elif path == "/api/info":
            self._send_json({
                "model": engine.name,
                "layouts": [layout.to_grid() for layout in engine.layouts],
                "recording": self.server.recorder is not None,
                "recorded": self.server.recorder.count if self.server.recorder is not None else 0,
            })
        elif path == "/api/prompt" and self.server.prompts is not None:
            layout = engine.layout(_int(parse_qs(url.query).get("layout", ["0"])[0], "layout"))
            self._send_json({"word": self.server.prompts.next(layout)})
        else:
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        engine = self.server.engine
        routes = ("/api/decode", "/api/attention", "/api/template")
        if path not in routes and not (path == "/api/record" and self.server.recorder is not None):
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        body = self._read_json()
        if path == "/api/template":
            layout = engine.layout(body.get("layout", 0))
            self._send_json({"points": engine.template(layout, engine.word(body, layout))})
            return
        swipe = engine.swipe(body)
        if path == "/api/decode":
            decoded = engine.decode(swipe)
            self._send_json({"candidates": [{"word": w, "score": round(s, 4)} for w, s in decoded.candidates],
                             "decode_ms": round(decoded.seconds * 1000, 2)})
        elif path == "/api/attention":
            view = engine.attention(swipe, engine.word(body, swipe.layout))
            self._send_json(view._asdict())
        else:
            assert self.server.recorder is not None
            word = engine.word(body, swipe.layout, writable=False)
            count = self.server.recorder.append(swipe, word, device_info(body))
            self._send_json({"recorded": count})

    # ---- reading and writing -----------------------------------------------------------------

    def _read_json(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise _HTTPError(HTTPStatus.LENGTH_REQUIRED, "a JSON body with a Content-Length is required")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise _HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                             f"body of {int(length)} bytes; at most {MAX_BODY_BYTES} are accepted")
        try:
            raw = self.rfile.read(int(length))
        except TimeoutError:
            self.close_connection = True
            raise _HTTPError(HTTPStatus.REQUEST_TIMEOUT, "the body did not arrive in time") from None
        if len(raw) < int(length):
            self.close_connection = True
            raise RequestError(f"body of {len(raw)} bytes; Content-Length said {int(length)}")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise RequestError(f"bad JSON: {err}") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        return body

    def _send_json(self, value: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(data, "application/json; charset=utf-8", status)

    def _send_file(self, path: Path) -> None:
        if not path.is_file():
            raise _HTTPError(HTTPStatus.NOT_FOUND, "no such file")
        self._send(path.read_bytes(), _CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    def _send(self, data: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _static_file(name: str) -> Path:
    """The file ``name`` inside the static folder; a 404 for anything outside it."""
    path = (STATIC_DIR / name).resolve()
    if not name or STATIC_DIR not in path.parents:
        raise _HTTPError(HTTPStatus.NOT_FOUND, "no such file")
    return path


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RequestError(f"'{name}' must be a whole number") from None


def serve(server: DemoServer) -> None:
    """Serve until interrupted (Ctrl-C)."""
    print(f"swipe demo: {server.url} (Ctrl-C stops)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if server.recorder is not None:
            server.recorder.close()
