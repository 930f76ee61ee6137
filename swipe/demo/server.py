"""The demo's HTTP server (standard library only): the page, its static files and a small JSON API.

Routes::

    GET  /                  the page (static/index.html)
    GET  /static/<file>     its scripts and styles
    GET  /api/info          the model: name, layouts (grids), whether it records
    POST /api/decode        {layout, x, y, t} -> {candidates: [{word, score, in_lexicon}], decode_ms}
    POST /api/attention     {layout, x, y, t, word} -> {word, points, layers}
    POST /api/template      {layout, word} -> {points}
    POST /api/learn         {word} -> {learned}: the user picked the word; it ranks higher from now on
    POST /api/words         {word} -> {added}: the decoder outputs the word from now on
    GET  /api/prompt?layout=N          recording: the next word to swipe (null: done), words left
    POST /api/record        {layout, word, x, y, t, device} -> {recorded}
    POST /api/undo          {} -> {word, recorded}: the last recorded swipe removed
    GET  /onnx/<file>, /ort/<file>, /js/<file>   decoding in the browser (swipe.demo.ondevice)

A bad request gets a 4xx answer whose body is ``{"error": "<one line>"}``; the server goes on.

Only this server's pages may use it: a request must name the server in its ``Host`` (an IP
address, ``localhost`` or the name it listens on, with its port), an ``Origin``, where a browser
sends one, must be that same address, and a POST must be ``application/json`` (a form or a
``text/plain`` POST from another site is refused before its body is read). Each connection has
:attr:`ServerLimits.request_seconds` for each request, from the end of the previous one (a client
that trickles its bytes is cut off); at most :attr:`ServerLimits.max_connections` are served at
once (more get a 503); the model serves :attr:`ServerLimits.model_slots` requests at a time, and a
request that waits over :attr:`ServerLimits.model_wait_seconds` for it gets a 503. A swipe's work is
bounded by its points (:data:`swipe.formats.MAX_SWIPE_POINTS`, resampled to the model's
``max_points``), so no request holds the model for long.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from swipe.demo.engine import Engine, RequestError
from swipe.demo.ondevice import BrowserFiles
from swipe.demo.recorder import PromptList, Recorder, device_info
from swipe.formats import loads_json

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 1 << 20
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                  ".png": "image/png", ".svg": "image/svg+xml", ".wasm": "application/wasm",
                  ".json": "application/json; charset=utf-8"}
_BUSY_BODY = b'{"error":"too many connections; try again"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "
         + str(len(_BUSY_BODY)).encode() + b"\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + _BUSY_BODY)


@dataclass(frozen=True)
class ServerLimits:
    """What one client may take of the server.

    Attributes
    ----------
    max_connections : int
        Connections served at once; more are answered 503 and closed.
    request_seconds : float
        Seconds a connection has for each request (reading it, the model's work, writing the
        answer), counted from the end of its previous request; then it is closed.
    model_slots : int
        Requests that use the model at the same time.
    model_wait_seconds : float
        Longest wait for the model; a request that waits longer is answered 503.
    """

    max_connections: int = 64
    request_seconds: float = 15.0
    model_slots: int = 2
    model_wait_seconds: float = 5.0


class _HTTPError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Deadlines:
    """Shuts connections whose request runs past its deadline: a blocked read or write of that
    connection then ends at once, whatever the client does."""

    def __init__(self) -> None:
        self._due: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-deadlines", daemon=True)
        self._thread.start()

    def arm(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._due[sock] = time.monotonic() + seconds

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._due.pop(sock, None)

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            with self._lock:
                late = [sock for sock, due in self._due.items() if due <= now]
                for sock in late:
                    del self._due[sock]
            for sock in late:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


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
    limits : ServerLimits, optional
        What one client may take (connections, seconds, the model's time); default ServerLimits().
    browser : BrowserFiles, optional
        Serve the files a page needs to decode in the browser (an ONNX folder, onnxruntime-web,
        the JavaScript decoder); None: the page decodes on the server only.
    """

    daemon_threads = True
    request_queue_size = 128  # the default 5 resets connections when many clients connect at once

    def __init__(self, address: tuple[str, int], engine: Engine, recorder: Recorder | None = None,
                 prompts: PromptList | None = None, quiet: bool = False,
                 limits: ServerLimits | None = None, browser: BrowserFiles | None = None) -> None:
        if not 0 <= address[1] <= 65535:
            raise OSError(errno.EINVAL, f"port {address[1]} is not one of 0 to 65535")
        super().__init__(address, DemoHandler)
        self.engine = engine
        self.recorder = recorder
        self.prompts = prompts
        self.quiet = quiet
        self.limits = limits or ServerLimits()
        self.browser = browser
        self.deadlines = _Deadlines()
        self._connections = threading.BoundedSemaphore(self.limits.max_connections)
        self._model = threading.BoundedSemaphore(self.limits.model_slots)
        self._names = {"localhost", address[0].lower().strip("[]")}

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def is_own_host(self, host: str) -> bool:
        """Whether a ``Host`` header names this server: an IP address, ``localhost`` or the name it
        listens on, with its port (a name that merely resolves here, as in DNS rebinding, does not)."""
        name, _, port = host.rpartition(":")
        if not name or "]" in port:  # no port given (port 80), or an IPv6 address without one
            name, port = host, "80"
        if port != str(self.server_address[1]):
            return False
        name = name.lower().strip("[]")
        if name in self._names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    @contextlib.contextmanager
    def model_slot(self) -> Iterator[None]:
        """Hold one of the model's slots; a 503 if none frees within ``model_wait_seconds``."""
        if not self._model.acquire(timeout=self.limits.model_wait_seconds):
            raise _HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "the model is busy; try again")
        try:
            yield
        finally:
            self._model.release()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.setblocking(False)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (the client left, or its deadline passed) is no error of ours."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        self.deadlines.stop()
        super().server_close()


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

    def setup(self) -> None:
        super().setup()
        self.server.deadlines.arm(self.connection, self.server.limits.request_seconds)

    def handle_one_request(self) -> None:
        super().handle_one_request()
        # The next request on this connection gets a deadline of its own.
        self.server.deadlines.arm(self.connection, self.server.limits.request_seconds)

    def finish(self) -> None:
        self.server.deadlines.disarm(self.connection)
        with contextlib.suppress(OSError):  # the client may be gone
            super().finish()

    # ---- dispatch ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (the base class's naming)
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _answer(self, route: Any) -> None:
        try:
            self._check_site()
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

    def _check_site(self) -> None:
        """Refuse requests not made to this server (``Host``) or from another site's page
        (``Origin``), and POSTs of anything but JSON."""
        host = self.headers.get("Host")
        if host is None or not self.server.is_own_host(host):
            raise _HTTPError(HTTPStatus.FORBIDDEN, f"Host {str(host)[:100]!r} is not this server; "
                             f"open {self.server.url}")
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{host}":
            raise _HTTPError(HTTPStatus.FORBIDDEN, f"requests from {origin[:100]!r} are refused; "
                             "only this server's own page may use it")
        if self.command == "POST":
            kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise _HTTPError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                 "a POST must be JSON (Content-Type: application/json)")

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
                "ondevice": self.server.browser.info() if self.server.browser is not None else None,
            })
        elif self.server.browser is not None and (file := self.server.browser.file(path)) is not None:
            self._send_file(file)
        elif path == "/api/prompt" and self.server.prompts is not None:
            layout = engine.layout(_int(parse_qs(url.query).get("layout", ["0"])[0], "layout"))
            word = self.server.prompts.next(layout)
            self._send_json({"word": word, "left": self.server.prompts.left(layout)})
        else:
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        engine = self.server.engine
        routes = ("/api/decode", "/api/attention", "/api/template", "/api/learn", "/api/words")
        recording = ("/api/record", "/api/undo")
        if path not in routes and not (path in recording and self.server.recorder is not None):
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        body = self._read_json()
        if path == "/api/undo":
            assert self.server.recorder is not None
            word = self.server.recorder.undo()
            self._send_json({"word": word, "recorded": self.server.recorder.count})
            return
        if path in ("/api/learn", "/api/words"):
            with self.server.model_slot():
                word = engine.learn(body) if path == "/api/learn" else engine.add_word(body)
            self._send_json({"learned" if path == "/api/learn" else "added": word})
            return
        if path == "/api/template":
            layout = engine.layout(body.get("layout", 0))
            self._send_json({"points": engine.template(layout, engine.word(body, layout))})
            return
        swipe = engine.swipe(body)
        if path == "/api/decode":
            with self.server.model_slot():
                decoded = engine.decode(swipe)
            candidates = [{"word": c.word, "score": round(c.score, 4), "in_lexicon": c.in_lexicon}
                          for c in decoded.candidates]
            self._send_json({"candidates": candidates,
                             "decode_ms": round(decoded.seconds * 1000, 2)})
        elif path == "/api/attention":
            word = engine.word(body, swipe.layout)
            with self.server.model_slot():
                view = engine.attention(swipe, word)
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
            body = loads_json(raw)
        except ValueError as err:  # not JSON, not UTF-8, nested too deeply
            raise RequestError(f"bad JSON: {err}") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        return body

    def _send_json(self, value: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(data, "application/json; charset=utf-8", status)

    def _send_file(self, path: Path) -> None:
        """A file, with an ``ETag`` of its size and time: a browser asks again each time (the
        model's 25 MB may have been exported anew) and is told 304 where it has the same file."""
        if not path.is_file():
            raise _HTTPError(HTTPStatus.NOT_FOUND, "no such file")
        stat = path.stat()
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        if etag in (tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")):
            self._send(b"", "", HTTPStatus.NOT_MODIFIED, etag)
            return
        self._send(path.read_bytes(), _CONTENT_TYPES.get(path.suffix, "application/octet-stream"), etag=etag)

    def _send(self, data: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK,
              etag: str | None = None) -> None:
        """``data`` as the answer; ``etag``: a file's, which browsers revalidate (no-cache), else
        nothing is kept (no-store)."""
        self.send_response(status)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
        if etag is None:
            self.send_header("Cache-Control", "no-store")
        else:
            self.send_header("Cache-Control", "no-cache")
            self.send_header("ETag", etag)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and status != HTTPStatus.NOT_MODIFIED:
            self.wfile.write(data)


def _static_file(name: str) -> Path:
    """The static folder's file called exactly ``name`` (a plain name, no folders); a 404 for any
    other name, odd characters included."""
    if name.startswith(".") or name not in {path.name for path in STATIC_DIR.iterdir() if path.is_file()}:
        raise _HTTPError(HTTPStatus.NOT_FOUND, "no such file")
    return STATIC_DIR / name


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
