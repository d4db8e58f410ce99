"""Serve an ``httpx2`` handler (a fake API) over real HTTP, so the CLI can reach it by URL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx2


Handler = Callable[[httpx2.Request], httpx2.Response]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log in test output."""


@dataclass
class Served:
    """A running server; set ``handler`` once the fake knows the URL it is served at."""

    url: str
    handler: Handler | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI → httpx2.Request → handler → WSGI response (one request at a time, like a MockTransport)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        query = environ.get("QUERY_STRING", "")
        url = self.url + environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if body and environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        request = httpx2.Request(environ["REQUEST_METHOD"], url, headers=headers, content=body)
        assert self.handler is not None, "set Served.handler before sending requests"
        with self.lock:
            response = self.handler(request)
            content = response.read()
        reason = HTTPStatus(response.status_code).phrase
        skip = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        start_response(
            f"{response.status_code} {reason}",
            [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip],
        )
        return [content]


@contextmanager
def serve() -> Iterator[Served]:
    """A server on a free port of 127.0.0.1 whose handler is set by the caller."""
    served = Served(url="")
    server = make_server("127.0.0.1", 0, served.app, server_class=_Server, handler_class=_Quiet)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
