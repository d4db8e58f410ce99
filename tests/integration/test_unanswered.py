"""Requests that got no answer are counted: in --json, the runs table and syncd_requests_total (status 0)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from syncd.cache import Cache
from tests.conftest import Workspace, make_directory
from tests.daemon.conftest import ThreadDaemon, runs, schedule, wait_for
from tests.integration.test_cli_sync import sync


@dataclass
class Hangup:
    """A server that accepts each connection and closes it without answering."""

    url: str
    sock: socket.socket
    accepted: list[int] = field(default_factory=list)

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            connection.recv(65536)  # the request arrives; no answer is ever sent
            self.accepted.append(1)
            connection.close()


@pytest.fixture
def hangup() -> Iterator[Hangup]:
    """A hang-up server on a free port of 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = Hangup(f"http://127.0.0.1:{sock.getsockname()[1]}/scim/v2/", sock)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    sock.close()
    thread.join(10)


def _point_at(workspace: Workspace, url: str, extra: str = "") -> None:
    workspace.configure(extra)
    workspace.config.write_text(workspace.config.read_text().replace(workspace.emu.url, url))


def test_requests_closed_unanswered_are_counted_in_json_and_the_runs_table(
    workspace: Workspace, hangup: Hangup
) -> None:
    """Every request whose connection closed unanswered is in requests.target and the run's record."""
    workspace.write(make_directory(3))
    _point_at(workspace, hangup.url)
    code, out = sync(workspace)
    assert (5, "failed") == (code, out["status"])
    assert len(hangup.accepted) > 0
    assert len(hangup.accepted) == out["requests"]["target"]
    with Cache.open(workspace.cache_url) as cache:
        assert len(hangup.accepted) == cache.runs(1)[0].requests["target"]


def test_the_daemon_counts_them_under_status_0(workspace: Workspace, hangup: Hangup) -> None:
    """syncd_requests_total{system="target",status="0"} counts the requests that got no answer."""
    workspace.write(make_directory(2))
    _point_at(workspace, hangup.url, schedule(interval="1h"))
    daemon = ThreadDaemon(workspace.config).start()
    try:
        wait_for(lambda: [r.status for r in runs(workspace.cache_url)] == ["failed"], what="the failed run")
        registry = daemon.daemon.metrics.registry
        wait_for(
            lambda: registry.get_sample_value("syncd_requests_total", {"system": "target", "status": "0"}),
            what="the run's requests to be counted",
        )
        counted = registry.get_sample_value("syncd_requests_total", {"system": "target", "status": "0"})
    finally:
        daemon.stop()
    # The daemon's start-up check of the target sent its own requests; the run's are these.
    assert runs(workspace.cache_url)[0].requests["target"] == counted
    assert 0 < (counted or 0) <= len(hangup.accepted)
