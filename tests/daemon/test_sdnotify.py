"""systemd's notify protocol: READY, WATCHDOG and STOPPING over $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd import sdnotify
from tests.conftest import Workspace
from tests.daemon.conftest import ThreadDaemon, schedule


class Listener:
    """A unix datagram socket standing in for systemd's notify socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(10)

    def next(self) -> set[str]:
        """The fields of the next datagram (waits up to 10 s)."""
        return set(self.sock.recv(4096).decode().split("\n"))

    def until(self, field: str) -> list[set[str]]:
        """Every datagram up to and including the first that carries ``field``."""
        seen = []
        while True:
            message = self.next()
            seen.append(message)
            if field in message:
                return seen


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """$NOTIFY_SOCKET pointing at a socket the test reads (abstract namespace, so no path length limit)."""
    name = f"syncd-test-{os.getpid()}-{id(monkeypatch)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with sock:
        yield Listener(sock)


def test_notify_sends_the_fields_in_one_datagram(listener: Listener) -> None:
    """notify() sends READY=1 and a STATUS line to $NOTIFY_SOCKET as one datagram."""
    assert sdnotify.notify("READY=1", "STATUS=up")
    assert {"READY=1", "STATUS=up"} == listener.next()


def test_notify_to_a_path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A $NOTIFY_SOCKET that is a filesystem path works too."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sdnotify.notify("WATCHDOG=1")
        assert b"WATCHDOG=1" == sock.recv(100)


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $NOTIFY_SOCKET notify() is a no-op that says so; a dead socket is not an error."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", "@no-such-socket-for-syncd-tests")
    assert not sdnotify.notify("READY=1")


@pytest.mark.parametrize(
    ("usec", "pid", "period"),
    [("4000000", None, 2.0), ("4000000", "self", 2.0), ("4000000", "1", None), ("0", None, None), (None, None, None)],
)
def test_watchdog_period(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, period: float | None
) -> None:
    """The watchdog is pinged at half $WATCHDOG_USEC, and only by the process $WATCHDOG_PID names."""
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert period == sdnotify.watchdog_period()


def test_the_daemon_reports_ready_pings_the_watchdog_and_says_stopping(
    workspace: Workspace,
    listener: Listener,
    monkeypatch: pytest.MonkeyPatch,
    directory: Callable[..., dict[str, object]],
    thread_daemon: Callable[[Path], ThreadDaemon],
) -> None:
    """Under Type=notify the daemon sends READY=1 once up, WATCHDOG=1 when asked, and STOPPING=1 on stop."""
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    workspace.write(directory(2))
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))
    ready = listener.until("READY=1")
    assert any(f.startswith("STATUS=leader") for f in ready[-1])
    listener.until("WATCHDOG=1")
    daemon.stop()
    listener.until("STOPPING=1")
