"""Serve the emulator over HTTP with the standard library: wsgiref plus a thread per connection.

The handler speaks HTTP/1.1 with keep-alive (wsgiref alone answers one request per connection),
so a client with a connection pool does not open a socket per call; a benchmark of tens of
thousands of requests would otherwise run the machine out of ephemeral ports. The request body is
read in full before the application runs, so a connection stays in step even when the answer is
an early 401 or 429. Threads are daemons; wsgiref's per-request log lines are suppressed.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from syncd.emulator.app import EmulatorApp, make_app
from syncd.emulator.constants import BASE_PATH
from syncd.emulator.stats import Stats
from syncd.emulator.store import EmulatorState


class _Server(ThreadingMixIn, WSGIServer):
    """A WSGIServer that handles each connection in its own daemon thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: EmulatorApp) -> None:
        super().__init__(address, _Handler)
        self.emulator_app = app
        self.set_app(app)


class _Http11Handler(ServerHandler):
    http_version = "1.1"


class _Handler(WSGIRequestHandler):
    """Keep-alive, quiet request handler."""

    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection frees its thread after this many seconds
    disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        """Write nothing: one line per request would drown test output."""

    def handle(self) -> None:
        """Serve requests on this connection until the client closes it or asks to."""
        self.close_connection = True
        self._handle_one()
        while not self.close_connection:
            self._handle_one()

    def _handle_one(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            self.close_connection = True
            return
        if self.command == "HEAD":
            self.close_connection = True  # wsgiref would send a body after HEAD; do not reuse the socket
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "Length Required")  # only Content-Length bodies are read
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "Bad Content-Length")
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        environ = self.get_environ()
        handler = _Http11Handler(
            io.BytesIO(body), cast(IO[bytes], self.wfile), self.get_stderr(), environ, multithread=True
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's log back-pointer
        handler.run(cast(_Server, self.server).emulator_app)


def _make_server(host: str, port: int, app: EmulatorApp) -> _Server:
    return _Server((host, port), app)


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    """What `running_emulator` yields.

    Attributes:
        url: the SCIM base URL, ``http://127.0.0.1:<port>/scim/v2/`` (with the trailing slash).
        state: the directory being served.
        stats: the request counters.
        app: the WSGI application.
    """

    url: str
    state: EmulatorState
    stats: Stats
    app: EmulatorApp


@contextmanager
def running_emulator(
    token: str = "t",  # noqa: S107 - the emulator is a test double; the default suits tests
    requests_per_second: float | None = None,
    latency: float = 0.0,
    state: EmulatorState | None = None,
) -> Iterator[RunningEmulator]:
    """Run an emulator on a free port of 127.0.0.1 in a daemon thread; stop it on exit.

    Args:
        token: the bearer token to require.
        requests_per_second: optional throttle (429 above it).
        latency: seconds to sleep before each answer.
        state: the directory to serve; a new empty one by default.
    """
    store = state if state is not None else EmulatorState()
    app = make_app(store, token=token, requests_per_second=requests_per_second, latency=latency)
    server = _make_server("127.0.0.1", 0, app)
    port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="syncd-emulator", daemon=True
    )
    thread.start()
    try:
        yield RunningEmulator(url=f"http://127.0.0.1:{port}{BASE_PATH}/", state=store, stats=app.stats, app=app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str,
    requests_per_second: float | None = None,
    latency: float = 0.0,
) -> None:
    """Serve an emulator with an empty directory until interrupted (blocking); print its URL first."""
    app = make_app(EmulatorState(), token=token, requests_per_second=requests_per_second, latency=latency)
    with _make_server(host, port, app) as server:
        bound_port = server.server_address[1]
        print(
            f"Identity Center SCIM emulator at http://{host}:{bound_port}{BASE_PATH}/",
            flush=True,
        )
        with suppress(KeyboardInterrupt):
            server.serve_forever()
