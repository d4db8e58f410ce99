"""Fixtures for the daemon tests: `syncd run` in a thread or a subprocess, HTTP probes, PostgreSQL.

Nothing here sleeps for a fixed time: waits are on events, pipes, or a bounded poll of a
condition (:func:`wait_for`). Every bound is :data:`PATIENCE`: it only ends a test that hung, and
is never a speed requirement (a busy two-core machine may take seconds over what takes
milliseconds alone).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
import sqlalchemy as sa

from syncd import config as config_module
from syncd.cache import Cache
from syncd.daemon import Daemon
from syncd.state import RunRecord
from tests.conftest import TOKEN
from tests.pg import throwaway_database


T = TypeVar("T")

PATIENCE = 120.0
"""Seconds any wait may take before the test is declared hung (the wait itself ends on its condition)."""


def wait_for(condition: Callable[[], T | None], timeout: float = PATIENCE, what: str = "the condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        pause.wait(0.05)  # between polls only; the wait ends on the condition, not on a fixed delay


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe(port: int, path: str) -> httpx2.Response | None:
    """GET ``path`` on the daemon's HTTP port; None while it does not answer."""
    try:
        return httpx2.get(f"http://127.0.0.1:{port}{path}", timeout=2.0)
    except httpx2.TransportError:
        return None


def metric(port: int, name: str) -> float | None:
    """The value of one unlabelled (or fully written) sample on /metrics, or None."""
    response = probe(port, "/metrics")
    if response is None or response.status_code != 200:
        return None
    for line in response.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def runs(cache_url: str) -> list[RunRecord]:
    """Every run in the cache, oldest first."""
    with Cache.open(cache_url) as cache:
        return list(reversed(cache.runs(1000)))


def schedule(interval: str = "1s", listen: str = "127.0.0.1:0", **extra: str) -> str:
    """TOML for the [schedule] and [http] tables."""
    lines = ["[schedule]", f'interval = "{interval}"', *(f'{k} = "{v}"' for k, v in extra.items())]
    return "\n".join([*lines, "", "[http]", f'listen = "{listen}"', ""])


class ThreadDaemon:
    """A Daemon serving in a thread of the test process (no signal handlers)."""

    def __init__(self, config: Path) -> None:
        self.daemon = Daemon(config_module.load(config))
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, name="test-daemon", daemon=True)

    def _serve(self) -> None:
        try:
            self.code = self.daemon.serve(install_signals=False)
        except BaseException as exc:
            self.error = exc
            self.daemon.started.set()  # wake the waiter; it checks the error

    def start(self) -> ThreadDaemon:
        self.thread.start()
        assert self.daemon.started.wait(PATIENCE), "the daemon did not start"
        if self.error is not None:
            raise self.error
        return self

    @property
    def port(self) -> int:
        assert self.daemon.http is not None
        return self.daemon.http.port

    def stop(self, timeout: float = PATIENCE) -> int | None:
        """Stop as SIGTERM does and wait for serve() to return; its exit code."""
        self.daemon.stop()
        return self.join(timeout)

    def join(self, timeout: float = PATIENCE) -> int | None:
        """Wait for serve() to return (after a stop already asked for); its exit code."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the daemon did not stop"
        return self.code


@pytest.fixture
def thread_daemon() -> Iterator[Callable[[Path], ThreadDaemon]]:
    """Start in-process daemons; each is stopped at the end of the test."""
    started: list[ThreadDaemon] = []

    def start(config: Path) -> ThreadDaemon:
        daemon = ThreadDaemon(config)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        if daemon.thread.is_alive():
            daemon.stop()


class Proc:
    """A `syncd run` subprocess; its stderr (JSON logs) goes to a file read after it ends."""

    def __init__(self, config: Path, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--log-json", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = PATIENCE) -> int:
        try:
            return self.popen.wait(timeout)
        finally:
            if self.popen.returncode is not None:
                self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def logged(self, event: str) -> dict[str, Any] | None:
        """The first JSON log line of ``event`` the process has written so far, or None."""
        return next((e for e in json_lines(self.output()) if e.get("event") == event), None)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(PATIENCE)
        self._log_file.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start `syncd run` subprocesses; any still running at the end is killed (by its pid)."""
    procs: list[Proc] = []

    def start(config: Path, **env: str) -> Proc:
        environment = {k: v for k, v in os.environ.items() if k != "SYNCD_CONFIG"}
        environment.update(SYNCD_TEST_SCIM_TOKEN=TOKEN, **env)
        proc = Proc(config, tmp_path / f"daemon-{len(procs)}.log", environment)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for the daemon tests; dropped at the end."""
    with throwaway_database("syncd_test_daemon_") as url:
        yield url


@pytest.fixture
def pg_cache_url(postgres_url: str) -> str:
    """The PostgreSQL database, emptied for this test."""
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    return postgres_url


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a daemon's stderr."""
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events
