"""`syncd run` as a real process: endpoints, signals, exit codes, and a second daemon on one SQLite cache."""

from __future__ import annotations

import json
import signal
import socket
import struct
from collections.abc import Callable
from typing import Any

from typer.testing import CliRunner

from syncd.cli import app
from tests.conftest import Hold, Workspace
from tests.daemon.conftest import PATIENCE, Proc, free_port, json_lines, metric, probe, runs, schedule, wait_for
from tests.integration.test_cli_sync import sync


Spawn = Callable[..., Proc]


class NotifySocket:
    """A datagram socket standing in for systemd's, which learns each sender's pid as systemd does."""

    def __init__(self, name: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + name)
        self.sock.settimeout(PATIENCE)
        self.address = "@" + name

    def until(self, field: str) -> set[int]:
        """Read datagrams up to the first holding ``field``; return the pids that sent them."""
        senders = set()
        while True:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
            for level, kind, payload in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS):
                    senders.add(struct.unpack("3i", payload[: struct.calcsize("3i")])[0])
            if field in data.decode().split("\n"):
                return senders


def test_run_syncs_serves_the_endpoints_and_stops_on_sigterm(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], spawn: Spawn
) -> None:
    """`syncd run` notifies READY, syncs at start and each interval, serves the three endpoints, exits 0 on SIGTERM."""
    port = free_port()
    workspace.write(directory(5, {"eng": [0, 1, 2]}))
    notify = NotifySocket(f"syncd-test-{workspace.root.name}-{port}")
    with notify.sock:
        proc = spawn(
            workspace.configure(schedule(interval="1s", listen=f"127.0.0.1:{port}")),
            NOTIFY_SOCKET=notify.address,
        )
        assert {proc.pid} == notify.until("READY=1"), "NotifyAccess=main: only the main process may notify"
        wait_for(lambda: (r := probe(port, "/readyz")) is not None and r.status_code == 200, what="/readyz to be 200")
        assert 200 == probe(port, "/healthz").status_code  # type: ignore[union-attr]
        assert 1 == metric(port, "syncd_leader")
        wait_for(lambda: (metric(port, 'syncd_runs_total{status="ok"}') or 0) >= 2, what="a run after the first")
        page = probe(port, "/metrics").text  # type: ignore[union-attr]
        for name in ("syncd_last_success_timestamp_seconds", 'syncd_objects_managed{kind="users"} 5.0'):
            assert name in page
        assert 'syncd_changes_total{kind="users_created"} 5.0' in page
        proc.signal(signal.SIGTERM)
        notify.until("STOPPING=1")
        assert 0 == proc.wait()
    assert {"daemon.started", "daemon.stopping", "daemon.stopped"} <= {e["event"] for e in json_lines(proc.output())}
    assert probe(port, "/healthz") is None, "the port is closed after exit"


def test_sigterm_mid_run_exits_0_and_the_next_run_converges(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], spawn: Spawn, hold_writes: Hold
) -> None:
    """SIGTERM in the middle of a run: exit 0, the run is recorded interrupted, and the next sync has no duplicates."""
    ws = workspace
    ws.write(directory(80, {"eng": list(range(0, 80, 2))}))
    ws.configure(schedule(interval="1h", listen=f"127.0.0.1:{free_port()}"))
    gate = hold_writes(ws.emu, 30)
    proc = spawn(ws.config)
    assert gate.reached.wait(PATIENCE), "the run never reached 30 writes"
    proc.signal(signal.SIGTERM)
    wait_for(lambda: proc.logged("run.stop_requested"), what="the run to be told to stop")
    gate.release()
    assert 0 == proc.wait()
    assert ["interrupted"] == [r.status for r in runs(ws.cache_url)]
    assert 30 <= len(ws.emu.state.users) < 80, "the stop lands in the middle of the run"

    code, out = sync(ws)
    assert (0, "ok") == (code, out["status"])
    names = [u["userName"] for u in ws.emu.state.users]
    assert 80 == len(names) == len(set(names))
    assert 40 == len(ws.emu.state.members(ws.emu.state.groups[0]["id"]))


def test_a_run_that_outlives_shutdown_timeout_exits_1(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], spawn: Spawn, hold_writes: Hold
) -> None:
    """If the changes in flight do not land within shutdown_timeout the process still ends, with exit 1."""
    ws = workspace
    ws.write(directory(3))
    ws.configure(schedule(interval="1h", shutdown_timeout="0.5s", listen=f"127.0.0.1:{free_port()}"))
    gate = hold_writes(ws.emu, 1)  # the first write lands, and its answer is held until the process is gone
    proc = spawn(ws.config)
    assert gate.reached.wait(PATIENCE), "no write was sent"
    proc.signal(signal.SIGTERM)
    assert 1 == proc.wait()
    assert not gate.released, "the process ended while its write was still unanswered"
    gate.release()
    assert "did not end within shutdown_timeout" in proc.output()
    assert ["running"] == [r.status for r in runs(ws.cache_url)]  # the next start marks it interrupted


def test_a_second_daemon_on_one_sqlite_cache_is_refused(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], spawn: Spawn
) -> None:
    """Of two `syncd run` started together on one SQLite cache, one exits 1 saying the other holds it."""
    workspace.write(directory(2))
    config = workspace.configure(schedule(interval="1h", listen="127.0.0.1:0"))
    both = [spawn(config), spawn(config)]
    loser = wait_for(lambda: next((p for p in both if p.popen.poll() is not None), None), what="one to give up")
    assert loser is not None
    (winner,) = [p for p in both if p is not loser]
    assert 1 == loser.wait()
    message = " ".join(loser.output().split())
    assert f"another syncd (pid {winner.pid} on" in message
    assert "is already running on cache" in message
    assert "share a PostgreSQL cache" in message
    assert winner.popen.poll() is None, "the first daemon keeps running"
    winner.signal(signal.SIGTERM)
    assert 0 == winner.wait()


def test_sighup_runs_now_and_status_names_the_leader(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], spawn: Spawn
) -> None:
    """SIGHUP starts a run at once; `syncd status` names the running leader and its next run, then none after SIGINT."""
    port = free_port()
    workspace.write(directory(2))
    proc = spawn(workspace.configure(schedule(interval="1h", listen=f"127.0.0.1:{port}")))
    wait_for(lambda: metric(port, 'syncd_runs_total{status="ok"}') == 1, what="the start run")

    def status() -> dict[str, Any]:
        result = CliRunner().invoke(app, ["status", "--config", str(workspace.config), "--json"])
        assert 0 == result.exit_code, result.output
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed

    current = wait_for(lambda: (s := status())["next_run"] and s, what="the next run to be published")
    assert proc.pid == current["leader"]["pid"]
    assert f"127.0.0.1:{port}" == current["leader"]["http"]
    assert "ok" == current["runs"][0]["status"]
    text = CliRunner().invoke(app, ["status", "--config", str(workspace.config)]).stdout
    assert f":{proc.pid}" in text
    assert "Next run:" in text

    workspace.write(directory(3))
    proc.signal(signal.SIGHUP)
    wait_for(lambda: len(workspace.emu.state.users) == 3, what="the run SIGHUP asked for")
    proc.signal(signal.SIGINT)
    assert 0 == proc.wait()
    assert (None, None) == (status()["leader"], status()["next_run"])
