"""The daemon's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics`` on one port.

A stdlib ``wsgiref`` server in a daemon thread, with a small dispatcher in front of
``prometheus_client.make_wsgi_app`` (whose own ``start_http_server`` would answer metrics on
every path, leaving no room for the probes).

* ``/healthz``: 200 while the process serves HTTP at all (a liveness probe).
* ``/readyz``: 200 or 503 with a JSON body saying why; what "ready" means is the daemon's
  business (:data:`Readiness`).
* ``/metrics``: the Prometheus text format (OpenMetrics when asked for).
* ``/`` and ``/runs/<id>``: the read-only status page (:mod:`syncd.status_page`), when given.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app

from syncd.errors import SyncdError


__all__ = ["HealthApp", "HealthServer", "Readiness"]

log = structlog.get_logger("syncd.health")

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
"""Answers ``(ready, details)``; the details become /readyz's JSON body."""

Pages = Callable[[str], "tuple[int, str] | None"]
"""Renders an HTML page for a path: ``(status, html)``, or None when the path is not a page."""

_REASONS = {
    200: "200 OK",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


class HealthApp:
    """The WSGI dispatcher: three paths, GET and HEAD only."""

    def __init__(self, registry: CollectorRegistry, readiness: Readiness, pages: Pages | None = None) -> None:
        """Serve ``registry`` on /metrics, ask ``readiness`` on each /readyz, and ``pages`` for the rest."""
        self._metrics = make_wsgi_app(registry)
        self._readiness = readiness
        self._pages = pages

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Dispatch one request."""
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return self._answer(start_response, 405, {"error": "only GET and HEAD"}, [("Allow", "GET, HEAD")])
        if path == "/healthz":
            return self._answer(start_response, 200, {"status": "alive"})
        if path == "/readyz":
            try:
                ready, details = self._readiness()
            except Exception as exc:  # a probe must answer, never crash the server thread
                log.exception("readyz.failed")
                ready, details = False, {"reason": f"readiness check failed: {exc.__class__.__name__}"}
            return self._answer(start_response, 200 if ready else 503, {"ready": ready, **details})
        if path == "/metrics":
            body: Iterable[bytes] = self._metrics(environ, start_response)
            return body
        if self._pages is not None:
            try:
                page = self._pages(path)
            except Exception as exc:  # the page must never take the probes' server down
                log.exception("page.failed", path=path)
                page = (500, f"<!doctype html><title>error</title><p>The page failed: {exc.__class__.__name__}</p>")
            if page is not None:
                return self._html(start_response, *page)
        return self._answer(start_response, 404, {"error": "not found; try /, /healthz, /readyz or /metrics"})

    @staticmethod
    def _html(start_response: StartResponse, status: int, text: str) -> list[bytes]:
        from syncd.status_page import CSP

        data = text.encode()
        start_response(
            _REASONS[status],
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "no-store"),
                ("Content-Security-Policy", CSP),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [data]

    @staticmethod
    def _answer(
        start_response: StartResponse, status: int, body: dict[str, Any], headers: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        data = (json.dumps(body, default=str) + "\n").encode()
        start_response(
            _REASONS[status],
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "no-store"),
                *(headers or []),
            ],
        )
        return [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a probe every few seconds would drown the run's own events."""


class HealthServer:
    """``app`` served on ``host:port`` from a daemon thread (port 0 picks a free one)."""

    def __init__(self, host: str, port: int, app: HealthApp) -> None:
        """Bind now, so that a taken port fails at start with a clear message.

        Raises:
            SyncdError: the address cannot be bound.
        """
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
        except OSError as exc:
            raise SyncdError(
                f"cannot serve HTTP on {host}:{port} ({exc.strerror or exc}); change http.listen "
                "(or SYNCD_HTTP__LISTEN) to a free address"
            ) from None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="syncd-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
