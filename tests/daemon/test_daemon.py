"""The daemon in a thread of the test process: schedule, overlap, on-demand runs, full resyncs, stopping."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from syncd.cache import Cache
from syncd.leader import read_record
from tests.conftest import Workspace, writes_reached
from tests.daemon.conftest import ThreadDaemon, probe, runs, schedule, wait_for
from tests.integration.test_cli_sync import sync


Start = Callable[[Path], ThreadDaemon]


def test_it_syncs_at_start_and_then_on_each_interval(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """The first run starts at once and the next ones follow every interval; a source change lands."""
    workspace.write(directory(3, {"eng": [0, 1, 2]}))
    daemon = thread_daemon(workspace.configure(schedule(interval="1s")))
    wait_for(lambda: len(workspace.emu.state.users) == 3, what="the first run to create 3 users")
    workspace.write(directory(4, {"eng": [0, 1, 2, 3]}))
    wait_for(
        lambda: any(r.status == "ok" and r.counts["users_created"] == 1 for r in runs(workspace.cache_url)),
        what="a later run to pick up the new user",
    )
    assert 0 == daemon.stop()
    assert 4 == len(workspace.emu.state.users)
    done = runs(workspace.cache_url)
    assert len(done) >= 2
    assert all(r.status == "ok" for r in done[:-1]), [(r.status, r.error) for r in done]
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(done)]
    assert all(0.8 <= gap < 3 for gap in gaps), gaps


def test_the_first_run_is_incremental_when_a_full_resync_is_recent(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """After a recent successful full resync the start run is incremental; with none, it is a full resync."""
    workspace.write(directory(2))
    assert 0 == sync(workspace, "--full-resync")[0]
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))
    wait_for(lambda: len(runs(workspace.cache_url)) == 2, what="the start run")
    daemon.stop()
    assert ["full", "incremental"] == [r.mode for r in runs(workspace.cache_url)]


def test_a_full_resync_comes_at_its_own_time(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """A full resync falls due on full_resync_every, not on the next interval: the run is pulled forward."""
    workspace.write(directory(2))
    daemon = thread_daemon(workspace.configure(schedule(interval="1h", full_resync_every="1s")))
    wait_for(lambda: len(runs(workspace.cache_url)) >= 2, timeout=10, what="the second full resync")
    daemon.stop()
    first, second = runs(workspace.cache_url)[:2]
    assert ("full", "full") == (first.mode, second.mode)  # the first: no full resync had succeeded yet
    assert 0.8 < (second.started_at - first.started_at).total_seconds() < 3


def test_a_run_due_while_one_is_going_is_skipped_and_counted(
    slow_workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """Runs never overlap: one asked for mid-run is skipped (syncd_runs_skipped_total), not queued."""
    ws = slow_workspace
    ws.write(directory(200))  # about 5 s of writes at 40/s: the trigger lands well inside the run
    ws.configure(schedule(interval="1h"), rps=40)
    midway = writes_reached(ws.emu, 5)
    daemon = thread_daemon(ws.config)
    assert midway.wait(20), "the first run never got going"
    daemon.daemon.trigger()
    skipped = wait_for(lambda: _skips(daemon), what="the skip to be counted")
    assert 1 == skipped
    wait_for(lambda: runs(ws.cache_url)[-1].status != "running", what="the run to end")
    assert 1 == len(runs(ws.cache_url)), "the skipped run must not have been queued"
    daemon.daemon.trigger()  # now idle: a run starts at once
    wait_for(lambda: len(runs(ws.cache_url)) == 2, what="the triggered run")
    daemon.stop()
    first, second = runs(ws.cache_url)
    assert first.finished_at is not None
    assert first.finished_at <= second.started_at


def _skips(daemon: ThreadDaemon) -> float:
    return sum(
        daemon.daemon.metrics.registry.get_sample_value("syncd_runs_skipped_total", {"mode": m}) or 0
        for m in ("incremental", "full")
    )


def test_stopping_mid_run_lets_changes_land_and_records_interrupted(
    slow_workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """stop() mid-run: writes in flight finish and are recorded, the run ends interrupted, serve() returns 0."""
    ws = slow_workspace
    ws.write(directory(80))
    ws.configure(schedule(interval="1h"), rps=40)
    midway = writes_reached(ws.emu, 20)
    daemon = thread_daemon(ws.config)
    assert midway.wait(20), "the run never got going"
    assert 0 == daemon.stop()
    assert ["interrupted"] == [r.status for r in runs(ws.cache_url)]
    with Cache.open(ws.cache_url) as cache:
        cached = {u.target_id for u in cache.load().users.values()}
    created = {u["id"] for u in ws.emu.state.users}
    assert 0 < len(created) < 80
    assert created == cached, "every user Identity Center holds is in the cache: nothing in flight was lost"


def test_readiness_and_the_leader_record(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """/readyz turns 200 after a successful run; the leader's record names it and its next run."""
    workspace.write(directory(2))
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))

    def ready_answer() -> httpx2.Response | None:
        response = probe(daemon.port, "/readyz")
        return response if response is not None and response.status_code == 200 else None

    ready = wait_for(ready_answer, what="/readyz to be 200")
    assert "leader" == ready.json()["role"]
    with Cache.open(workspace.cache_url) as cache:
        record = read_record(cache)
    assert record is not None
    assert record["alive"]
    assert record["id"] == daemon.daemon.identity
    assert record["next_run"] is not None
    daemon.stop()
    with Cache.open(workspace.cache_url) as cache:
        stopped = read_record(cache)
    assert stopped is not None
    assert not stopped["alive"]
    assert stopped["stopped_at"]
